"""The member API under ``/api/v1/``: sign-in (``auth/``) and the member's own data (``me``)."""

from members.api import (
    auth_views,
    consent_views,
    contact_views,
    me_views,
    password_views,
    restriction_views,
    stepup_views,
)

urlpatterns = [
    *auth_views.urlpatterns,
    *me_views.urlpatterns,
    *stepup_views.urlpatterns,
    *contact_views.urlpatterns,
    *password_views.urlpatterns,
    *consent_views.urlpatterns,
    *restriction_views.urlpatterns,
]
