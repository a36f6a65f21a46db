"""The admin site: every page needs a password login and a verified OTP device.

Every ModelAdmin registered on it, the libraries' included, guards the free-text fields
of its forms (``staffauth.admin_base.FreeTextAdminMixin``): a card number, a bidi control
or an invisible character is refused, whoever wrote the admin.

Login is two steps. The password step is Django's admin login (guarded by axes);
then a staff user with a confirmed device enters a TOTP or backup code, and one
without a device is sent to enrol one first. Until then ``has_permission`` is
false, so every admin URL redirects to the login, which forwards to the OTP step.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin
from django.http import HttpResponseBase
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import user_has_device


def safe_next(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


class LoyaltyAdminSite(admin.AdminSite):
    site_header = "Loyalty back-office"
    site_title = "Loyalty back-office"
    index_title = "Programme administration"
    enable_nav_sidebar = True

    def register(self, model_or_iterable, admin_class=None, **options):
        from staffauth.admin_base import free_text_admin

        return super().register(model_or_iterable, free_text_admin(admin_class or admin.ModelAdmin), **options)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pages: list[tuple[str, Callable[..., HttpResponseBase], str]] = []

    def register_page(self, route: str, view: Callable[..., HttpResponseBase], *, name: str) -> None:
        """Add a page of a part's own at ``/admin/<route>`` (e.g. a dashboard that is no
        model's), behind ``admin_view`` like every admin page: active, staff, OTP-verified.
        The view checks its own permissions."""
        self._pages.append((route, view, name))

    def has_permission(self, request):
        user = request.user
        return bool(user.is_active and user.is_staff and user.is_verified())

    def index(self, request, extra_context=None):
        """The landing page: the signed-in person's workplace (what awaits their decision,
        their figures, shortcuts, job status for system administrators), then the lists
        they may open. See ``loyalty.workplace.dashboards``."""
        from loyalty.workplace.dashboards import workplace

        place = workplace(request.user)
        return super().index(request, {"title": place.title, "workplace": place, **(extra_context or {})})

    def login(self, request, extra_context=None):
        user = request.user
        if user.is_authenticated and user.is_active and user.is_staff and not user.is_verified():
            step = "admin:otp_verify" if user_has_device(user) else "admin:otp_enrol"
            query = request.META.get("QUERY_STRING", "")
            return redirect(reverse(step, current_app=self.name) + (f"?{query}" if query else ""))
        return super().login(request, extra_context)

    def get_urls(self):
        from staffauth import views

        urls = [
            path("otp/verify/", self.login_step(views.OtpVerifyView.as_view(admin_site=self)), name="otp_verify"),
            path("otp/enrol/", self.login_step(views.OtpEnrolView.as_view(admin_site=self)), name="otp_enrol"),
            path("otp/logout/", self.login_step(views.OtpLogoutView.as_view(admin_site=self)), name="otp_logout"),
        ]
        pages = [path(route, self.admin_view(view), name=name) for route, view, name in self._pages]
        return urls + pages + super().get_urls()

    def login_step(self, view):
        """Wrap a view of the second login step: password-authenticated staff only."""
        from django.views.decorators.cache import never_cache
        from django.views.decorators.csrf import csrf_protect

        def wrapper(request, *args, **kwargs):
            user = request.user
            if not (user.is_authenticated and user.is_active and user.is_staff):
                return redirect(reverse("admin:login", current_app=self.name))
            if user.is_verified():
                return redirect(safe_next(request, reverse("admin:index", current_app=self.name)))
            return view(request, *args, **kwargs)

        return never_cache(csrf_protect(wrapper))
