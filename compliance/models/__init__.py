"""Models of the compliance app, one module per part (register, chain, retention,
requests, access, consumer): each module's models are re-exported here."""

from compliance.models.consumer import Complaint, ComplaintEvent, TermsAcceptance, TermsVersion  # noqa: F401
