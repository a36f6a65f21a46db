"""The member API under ``/api/v1/``: sign-in (``auth/``) and the member's own data (``me``)."""

from members.api import auth_views, me_views

urlpatterns = [*auth_views.urlpatterns, *me_views.urlpatterns]
