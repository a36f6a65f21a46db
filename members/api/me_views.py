"""The signed-in member's own data under /api/v1/me."""

urlpatterns: list = []
