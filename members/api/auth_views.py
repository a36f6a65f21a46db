"""Member sign-in endpoints under /api/v1/auth/ (OTP request and verify, refresh, logout)."""

urlpatterns: list = []
