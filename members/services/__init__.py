"""The members' services, one module per operation family: personal data (``pii``: its
normalisation, encryption and reads; ``membership``: creating a member, setting, shredding
and revealing their data), one-time codes (``otp``, ``otp_caps``), sessions (``sessions``),
sign-in (``signin``), passwords (``passwords``), contact-detail changes (``contact``), the
profile (``profile``) and consents (``consents``). Views, the admin and tasks call them;
they know nothing of HTTP.
"""
