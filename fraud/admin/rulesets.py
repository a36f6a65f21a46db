"""Fraud ruleset versions in the admin (FRAUD.md §2 "Reproducible"; ``fraud.replay``).

- **List**: version, hash, when written, whether it is the configuration in force, and
  its approval (pending, or who approved it and when) and latest replay's count of
  changed decisions.
- **Version page** (read-only): what changed against the baseline (the last approved
  version), the latest replay (per outcome and per detector, with what cannot be
  replayed) and two POST buttons: **Run the replay** (whoever may view rulesets: it
  changes no decision) and **Approve** (``fraud.approve_fraudruleset``: Program
  Administrators, after a replay). The services decide and refuse clearly, so a button
  shown by mistake still changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from fraud import config as fraud_config
from fraud.models import FraudRuleset
from fraud.replay import (
    RulesetRefused,
    config_changes,
    may_approve_rulesets,
    replay_text,
    ruleset_approve,
    ruleset_baseline,
    ruleset_replay_version,
)
from loyalty.kernel.access_log import access_record
from loyalty.workplace import display
from loyalty.workplace.viewer import ViewerAdminMixin, current_viewer
from staffauth.admin_base import ReadOnlyAdmin

VIEW_RULESET = "fraud.view_fraudruleset"
REPLAY_DAYS = 30


@admin.register(FraudRuleset)
class FraudRulesetAdmin(ViewerAdminMixin, ReadOnlyAdmin):
    change_form_template = "admin/fraud/fraudruleset/change_form.html"
    list_display = ["version_ref", "sha_ref", "created", "in_force", "approval", "replay_ref"]
    list_display_links = ["version_ref"]
    ordering = ["-version"]
    fields = ["version"]
    readonly_fields = fields

    class Media:
        css = {"all": ["loyalty/fraud_cases.css"]}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("approved_by")

    @admin.display(description="Version", ordering="version")
    def version_ref(self, obj):
        return f"v{obj.version}"

    @admin.display(description="Hash")
    def sha_ref(self, obj):
        return obj.sha256[:12]

    @admin.display(description="Written", ordering="created_at")
    def created(self, obj):
        return display.local_time(obj.created_at)

    @admin.display(description="In force", boolean=True)
    def in_force(self, obj):
        return obj.sha256 == fraud_config.config_sha256()

    @admin.display(description="Approval")
    def approval(self, obj):
        if not obj.approved:
            return "Pending"
        return format_html(
            "Approved by {} at {}",
            display.staff_link(obj.approved_by, current_viewer()),
            display.local_time(obj.approved_at),
        )

    @admin.display(description="Latest replay")
    def replay_ref(self, obj):
        if obj.replayed_at is None:
            return "Not replayed"
        return f"{obj.replay.get('changed', 0)} of {obj.replay.get('decisions', 0)} decisions change"

    # --- URLs ---

    def get_urls(self):
        wrap = self.admin_site.admin_view
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("<path:object_id>/replay/", wrap(require_POST(self.replay_view)), name=f"{info}_replay"),
            path("<path:object_id>/approve/", wrap(require_POST(self.approve_view)), name=f"{info}_approve"),
            *super().get_urls(),
        ]

    def _visible(self, request, object_id) -> FraudRuleset:
        if not request.user.has_perm(VIEW_RULESET):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No ruleset version matches the given query.")
        return obj

    def _page(self, obj) -> HttpResponseRedirect:
        return HttpResponseRedirect(
            reverse("admin:fraud_fraudruleset_change", args=[obj.pk], current_app=self.admin_site.name)
        )

    def replay_view(self, request, object_id):
        """Replay the version's last 30 days (POST, CSRF, OTP-verified): any ruleset viewer."""
        obj = self._visible(request, object_id)
        result = ruleset_replay_version(ruleset=obj, days=REPLAY_DAYS)
        self.message_user(
            request, f"Replayed: {result['changed']} of {result['decisions']} decisions would change.", messages.SUCCESS
        )
        return self._page(obj)

    def approve_view(self, request, object_id):
        """Approve the version (POST): the service checks the permission and the replay."""
        obj = self._visible(request, object_id)
        try:
            approved = ruleset_approve(ruleset_id=obj.pk, actor=request.user)
        except RulesetRefused as refusal:
            self.message_user(request, f"Refused ({refusal.code}): {refusal}", messages.ERROR)
        else:
            # programme configuration: the access log names who approved which version
            access_record("config_change", request=request, obj=approved, parameters={"action": "approve"})
            self.message_user(request, f"Ruleset v{approved.version} is approved.", messages.SUCCESS)
        return self._page(obj)

    # --- the version page ---

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if obj is not None and self.has_view_permission(request, obj):
            context.update(ruleset_page_context(obj, request.user))
        return super().change_view(request, object_id, form_url, context)


def ruleset_page_context(ruleset: FraudRuleset, user: Any) -> dict[str, Any]:
    """What the version page shows ``user``: the changes against the baseline, the latest
    replay, and which buttons (approval for approvers of a pending, replayed version)."""
    base = ruleset_baseline(ruleset.sha256)
    replay = ruleset.replay or {}
    return {
        "ruleset": ruleset,
        "ruleset_in_force": ruleset.sha256 == fraud_config.config_sha256(),
        "ruleset_baseline": base,
        "ruleset_changes": config_changes(base.config, ruleset.config) if base is not None else {},
        "ruleset_replay": replay,
        "ruleset_replay_lines": replay_text(replay) if replay else [],
        "ruleset_replayed_at": display.local_time(ruleset.replayed_at) if ruleset.replayed_at else "",
        "ruleset_approved_by": display.staff_link(ruleset.approved_by, user) if ruleset.approved_by_id else "",
        "ruleset_approved_at": display.local_time(ruleset.approved_at) if ruleset.approved_at else "",
        "ruleset_may_approve": may_approve_rulesets(user) and not ruleset.approved,
        "ruleset_replay_days": REPLAY_DAYS,
    }
