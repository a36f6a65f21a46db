"""The members and the new addresses of the contact-change tests (services and API)."""

PHONE_A = "+60125550101"
EMAIL_A = "aminah@example.com"
PHONE_B = "+60135550202"
EMAIL_B = "bala@example.com"
NEW_EMAIL = "aminah.new@example.com"
NEW_PHONE = "+60175550303"
