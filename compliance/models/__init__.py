"""Models of the compliance app, one module per part (register, chain, retention,
requests, access, consumer): each module's models are re-exported here."""

from .requests import DataExport, DataSubjectRequest, DataSubjectRequestEvent, ErasureCertificate  # noqa: F401
