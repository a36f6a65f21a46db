"""Models of the compliance app, one module per part (register, chain, retention,
requests, access, consumer): each module's models are re-exported here."""

from compliance.models.access import AccessEvent  # noqa: F401
from compliance.models.chain import (  # noqa: F401
    ChainAnchor,
    ChainCheckpoint,
    ChainHead,
    ChainLink,
    ChainPurge,
    ChainQueue,
    ChainRotation,
)
from compliance.models.consumer import Complaint, ComplaintEvent, TermsAcceptance, TermsVersion  # noqa: F401
from compliance.models.requests import DataExport, DataSubjectRequest, DataSubjectRequestEvent, ErasureCertificate  # noqa: F401
from compliance.models.retention import InactivityNotice, LegalHold, RetentionBatch, RetentionRun  # noqa: F401
