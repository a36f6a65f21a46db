from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, UserChangeForm
from django.contrib.auth.models import Group
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django_celery_beat.admin import PeriodicTaskAdmin, PeriodicTaskForm, TaskSelectWidget
from django_celery_beat.models import PeriodicTask
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from loyalty.kernel.access_log import AccessLoggedAdminMixin
from loyalty.workplace.display import NOTHING, local_time, may_view, staff_link
from loyalty.workplace.viewer import current_viewer
from staffauth.admin_base import BaseAdmin, ReadOnlyAdmin
from staffauth.context import current_request
from staffauth.models import SecurityEvent, StaffUser
from staffauth.permissions import may_delete_staff, may_grant_superuser, may_manage_account, may_reset_mfa
from staffauth.roles import ROLE_BY_NAME
from staffauth.selectors import staff_security_status
from staffauth.services import staff_access_changed, staff_sessions_end

PRIVILEGE_FIELDS = ("groups", "stores", "is_active", "is_superuser", "user_permissions")


class StaffPasswordChangeForm(AdminPasswordChangeForm):
    """Set another person's password. No "unusable password" option: to stop someone
    signing in, deactivate the account (which is logged and ends their sessions)."""

    def __init__(self, user, *args, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.fields.pop("usable_password", None)
        self.fields["password1"].required = True
        self.fields["password2"].required = True


class StaffChangeForm(UserChangeForm):
    """The staff form, with the person's own programme membership given by loyalty
    number (whoever edits staff need not see members). Nobody changes their own link:
    unlinking oneself would open one's own account to one's own adjustments."""

    own_loyalty_number = forms.CharField(
        label="Own loyalty number", required=False, max_length=16,
        help_text="This person's own membership, if any: they may never adjust it or approve adjustments to it.",
    )  # fmt: skip
    editor = None  # the signed-in user, set by the admin

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        member = self.instance.member_account
        self.initial["own_loyalty_number"] = member.loyalty_number if member else ""

    def clean_own_loyalty_number(self):
        from members.models import Member

        number = self.cleaned_data["own_loyalty_number"].strip()
        member = Member.objects.filter(loyalty_number=number).first() if number else None
        if number and member is None:
            raise forms.ValidationError("No member has this loyalty number.")
        if self.editor is not None and self.editor.pk == self.instance.pk and member != self.instance.member_account:
            raise forms.ValidationError("You may not change the link to your own membership.")
        if member and StaffUser.objects.filter(member_account=member).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("This membership is already linked to another staff account.")
        return member

    def save(self, commit=True):
        self.instance.member_account = self.cleaned_data["own_loyalty_number"]
        return super().save(commit)


@admin.register(StaffUser)
class StaffUserAdmin(UserAdmin, BaseAdmin):
    list_display = ["username", "full_name", "roles", "store_codes", "is_active", "last_login"]
    list_filter = ["is_active", "groups", "stores"]
    search_fields = ["username", "first_name", "last_name"]
    ordering = ["username"]
    autocomplete_fields = ["stores"]
    filter_horizontal = ["groups"]
    actions = ["end_sessions"]
    change_password_form = StaffPasswordChangeForm
    form = StaffChangeForm
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Person", {"fields": ("first_name", "last_name", "email", "own_loyalty_number")}),
        ("Access", {"fields": ("is_active", "groups", "stores", "is_superuser", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
        ("Security status", {"fields": ("security_status",)}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "first_name", "last_name", "email", "password1", "password2"),
            },
        ),
        ("Access", {"fields": ("groups", "stores")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups", "stores")

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"editor": request.user}) if obj is not None else form

    @admin.display(description="Name")
    def full_name(self, obj):
        return obj.get_full_name()

    @admin.display(description="Roles")
    def roles(self, obj):
        return ", ".join(sorted(g.name for g in obj.groups.all()))

    @admin.display(description="Stores")
    def store_codes(self, obj):
        return ", ".join(sorted(s.code for s in obj.stores.all()))

    @admin.display(description="Sign-in security")
    def security_status(self, obj):
        """MFA, lockout and sessions at a glance (never a code); links for those who may act."""
        if obj is None or obj.pk is None:
            return NOTHING
        status = staff_security_status(obj)
        viewer = getattr(current_request(), "user", None)
        if status.totp_devices:
            mfa = format_html("Authenticator app confirmed ({})", ", ".join(status.totp_devices))
        else:
            mfa = format_html("<strong>No confirmed authenticator app</strong>: enrolment at next sign-in")
        codes = (
            "none issued"
            if status.backup_codes_left is None
            else f"{status.backup_codes_left} left"
            + (" (none: issue new ones)" if not status.backup_codes_left else "")
        )
        may_unlock = viewer is not None and viewer.has_perm("axes.delete_accessattempt")
        if status.lockouts:
            locks = format_html_join(
                ", ",
                "{}{}",
                (
                    (
                        f"from {address or 'an unknown address'}",
                        format_html(
                            ' (<a href="{}" class="unlock-link">Unlock</a>)',
                            reverse("admin:axes_accessattempt_delete", args=[pk], current_app=self.admin_site.name),
                        )
                        if may_unlock
                        else "",
                    )
                    for pk, address in status.lockouts
                ),
            )
            locked = format_html("<strong>Locked out</strong> {}", locks)
        else:
            locked = format_html("{}", "Not locked out")
        rows = [
            ("Two-factor", mfa),
            ("Backup codes", codes),
            ("Lockout", locked),
            ("Active sessions", str(status.active_sessions)),
            ("Last login", local_time(status.last_login)),
            ("Password last changed", local_time(status.password_changed_at) if status.password_changed_at else "not recorded"),
        ]  # fmt: skip
        return format_html(
            '<table class="facts" id="staff-security-status"><tbody>{}</tbody></table>',
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        )

    def get_readonly_fields(self, request, obj=None):
        fields = ["last_login", "date_joined", "security_status"]
        if not may_grant_superuser(request.user):
            # Roles come from groups only; nobody but a superuser hands out superuser
            # status or individual permissions.
            fields += ["is_superuser", "user_permissions"]
        if obj is not None and obj.pk == request.user.pk:
            # Nobody changes their own privileges.
            fields += [f for f in PRIVILEGE_FIELDS if f not in fields]
        return fields

    def has_change_permission(self, request, obj=None):
        if obj is not None and not may_manage_account(request.user, obj):
            return False
        return super().has_change_permission(request, obj)

    def user_change_password(self, request, id, form_url=""):
        # One's own password is changed on the form that asks for the current one, so a
        # hijacked session cannot silently take the account over.
        if str(request.user.pk) == str(id):
            return redirect(reverse("admin:password_change", current_app=self.admin_site.name))
        return super().user_change_password(request, id, form_url)

    def has_delete_permission(self, request, obj=None):
        # Staff accounts carry the audit trail; deactivate instead.
        return may_delete_staff(request.user) and super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            before = StaffUser.objects.get(pk=obj.pk)
            form.access_before = {
                "roles_before": set(before.groups.values_list("name", flat=True)),
                "stores_before": set(before.stores.values_list("code", flat=True)),
                "was_active": before.is_active,
            }
        else:
            form.access_before = {"roles_before": set(), "stores_before": set(), "was_active": True}
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Inside the admin's transaction: a refused self-escalation rolls the save back.
        staff_access_changed(actor=request.user, user=form.instance, **form.access_before)

    @admin.action(description="End all sessions of the selected staff", permissions=["end_sessions"])
    def end_sessions(self, request, queryset):
        ended = 0
        for user in queryset:
            staff_sessions_end(user=user, actor=request.user, reason="ended by administrator")
            ended += 1
        self.message_user(request, f"Ended the sessions of {ended} staff user(s).", messages.SUCCESS)

    def has_end_sessions_permission(self, request):
        return request.user.has_perm("staffauth.end_sessions")


admin.site.unregister(Group)


@admin.register(Group)
class RoleAdmin(ReadOnlyAdmin):
    """Roles are defined in code (staffauth.roles) and applied by ``manage.py sync_roles``."""

    list_display = ["name", "scope", "permission_count", "member_count"]
    fields = ["name", "scope", "permission_list"]
    readonly_fields = fields

    @admin.display(description="Permissions")
    def permission_list(self, obj):
        """The role's permissions by area and record type, each by its label."""
        grouped: dict[str, dict[str, list[str]]] = {}
        perms = obj.permissions.select_related("content_type").order_by(
            "content_type__app_label", "content_type__model", "name"
        )
        for perm in perms:
            model = perm.content_type.model_class()
            app = apps.get_app_config(perm.content_type.app_label).verbose_name
            kind = str(model._meta.verbose_name_plural).capitalize() if model else perm.content_type.model
            grouped.setdefault(str(app), {}).setdefault(kind, []).append(perm.name)
        if not grouped:
            return NOTHING
        return format_html(
            '<dl class="role-permissions" id="role-permissions">{}</dl>',
            format_html_join(
                "",
                "<dt>{}</dt><dd><ul>{}</ul></dd>",
                (
                    (
                        app,
                        format_html_join(
                            "", "<li><strong>{}</strong>: {}</li>", ((kind, "; ".join(names)) for kind, names in models.items())
                        ),
                    )
                    for app, models in grouped.items()
                ),
            ),
        )  # fmt: skip

    def get_queryset(self, request):
        from django.db.models import Count

        return (
            super()
            .get_queryset(request)
            .annotate(permission_total=Count("permissions", distinct=True), member_total=Count("user", distinct=True))
        )

    @admin.display(description="Scope")
    def scope(self, obj):
        role = ROLE_BY_NAME.get(obj.name)
        if role is None:
            return "not a defined role"
        return "own stores" if role.store_scoped else "all stores"

    @admin.display(description="Permissions", ordering="permission_total")
    def permission_count(self, obj):
        return obj.permission_total

    @admin.display(description="Staff", ordering="member_total")
    def member_count(self, obj):
        return obj.member_total


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "actor", "subject", "username", "ip_address"]
    list_filter = ["kind", "created_at"]
    search_fields = ["username", "ip_address", "actor__username", "subject__username"]
    date_hierarchy = "created_at"
    list_select_related = ["actor", "subject"]
    fields = ["created_at", "kind", "actor", "subject", "username", "ip_address", "user_agent", "detail"]
    readonly_fields = fields


admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class LockoutAdmin(AccessAttemptAdmin):
    """axes' own admin, in the words of the job: a record counts one user name's failed
    sign-ins from one address, "Locked out" from the limit until its cool-off ends;
    releasing it early is "Unlock" (it deletes the record, needing the delete
    permission), never "Delete". Times in the programme's time zone.

    axes' clean-up action (a delete) needs the delete permission too: axes declares it
    without one, so view-only roles were offered it."""

    list_display = ["attempt_time_local", "username", "ip_address", "failures_since_start", "status", "lock_ends"]
    list_display_links = ["attempt_time_local"]
    fieldsets = (
        (None, {"fields": ("username", "ip_address", "failures_since_start", "status", "lock_ends")}),
        ("Request", {"fields": ("path_info", "user_agent", "http_accept", "get_data", "post_data")}),
    )
    readonly_fields = [*AccessAttemptAdmin.readonly_fields, "status", "lock_ends"]
    actions = ["unlock_selected", "cleanup_expired_attempts"]

    @admin.display(description="Last failure", ordering="attempt_time")
    def attempt_time_local(self, obj):
        return local_time(obj.attempt_time)

    @admin.display(description="Lock ends")
    def lock_ends(self, obj):
        # axes keeps the end of the cool-off on a one-to-one row: its name, not "object (1)".
        expiration = getattr(obj, "expiration", None) if hasattr(obj, "expiration") else None
        return local_time(expiration.expires_at) if expiration is not None else NOTHING

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("expiration")

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        if not self.has_delete_permission(request):
            actions.pop("cleanup_expired_attempts", None)
        return actions

    @admin.action(description="Unlock the selected user names", permissions=["delete"])
    def unlock_selected(self, request, queryset):
        unlocked = sorted(queryset.values_list("username", flat=True))
        self.log_deletions(request, queryset)
        queryset.delete()
        self.message_user(request, f"Unlocked {len(unlocked)}: {', '.join(unlocked) or 'none'}.", messages.SUCCESS)

    def delete_view(self, request, object_id, extra_context=None):
        attempt = self.get_object(request, object_id)
        name = f"{attempt.username} from {attempt.ip_address}" if attempt else ""
        context = {"title": f"Unlock {name}", "lock_name": name, **(extra_context or {})}
        return super().delete_view(request, object_id, context)

    def response_delete(self, request, obj_display, obj_id):
        # Django's would say "deleted"; the record is gone so that the person may sign in.
        self.message_user(request, "Unlocked: they may sign in again.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:axes_accessattempt_changelist", current_app=self.admin_site.name))


class _GuardedDeviceAdmin:
    """Resetting someone's MFA (deleting their device) is for other people's ordinary
    accounts only: never one's own, and never a superuser's unless one is a superuser.
    Deletions are logged by staffauth.receivers."""

    def has_delete_permission(self, request, obj=None):
        if obj is not None and not may_reset_mfa(request.user, obj.user):
            return False
        return super().has_delete_permission(request, obj)

    def has_add_permission(self, request):
        # Devices are enrolled by their owner at login, never created for someone else.
        return False


admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class AuditLogEntryAdmin(LogEntryAdmin):
    """django-auditlog's pages, linking the actor and the record only for a viewer who
    may open them (its own links answered 403 to most roles)."""

    @admin.display(description="User")
    def user_url(self, obj):
        return staff_link(obj.actor, current_viewer()) if obj.actor else "system"

    @admin.display(description="Resource")
    def resource_url(self, obj):
        model = obj.content_type.model_class()
        if model is None or not may_view(current_viewer(), model):
            return f"{obj.content_type} - {obj.object_repr}"
        return super().resource_url(obj)


admin.site.unregister(TOTPDevice)
admin.site.unregister(StaticDevice)


@admin.register(TOTPDevice)
class GuardedTOTPDeviceAdmin(_GuardedDeviceAdmin, TOTPDeviceAdmin):
    pass


@admin.register(StaticDevice)
class GuardedStaticDeviceAdmin(_GuardedDeviceAdmin, StaticDeviceAdmin):
    pass


# The project's own task modules: the only tasks a schedule may name.
SCHEDULABLE_TASK_PREFIXES = tuple(
    f"{app}.tasks." for app in ("loyalty", "staffauth", "members", "vouchers", "fraud", "compliance")
)


def schedulable_tasks() -> list[str]:
    """The registered jobs a schedule may name: the product's own (``*.tasks.*``)."""
    app = TaskSelectWidget.celery_app
    app.loader.import_default_modules()  # autodiscovery, if the web process has not run it
    return sorted(name for name in app.tasks if name.startswith(SCHEDULABLE_TASK_PREFIXES))


class ScheduleForm(PeriodicTaskForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = schedulable_tasks()
        # The widget ignores assigned choices (django-celery-beat lists every task, its
        # own and Celery's); ours are the product's jobs only.
        self.fields["regtask"].widget._choices = (("", "---------"), *((name, name) for name in names))
        # django-celery-beat leaves "Task (registered)" blank on an existing schedule
        # (the name is in "Task (custom)"): select it when it is a registered job.
        task = self.instance.task if self.instance.pk else ""
        if task in names and not self.is_bound:
            self.initial["regtask"] = task

    def clean(self):
        data = super().clean()
        task = data.get("task") or ""
        if not task.startswith(SCHEDULABLE_TASK_PREFIXES):
            raise forms.ValidationError(
                f"Only the product's own jobs can be scheduled ({', '.join(SCHEDULABLE_TASK_PREFIXES)}…)."
            )
        return data


admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class ScheduleAdmin(AccessLoggedAdminMixin, PeriodicTaskAdmin):
    access_config = True  # who changed which schedule

    """Schedules may name only the product's own jobs (not celery.chain or other
    built-ins that would run any task with any arguments). The form is Django's own
    change form: django-celery-beat's adds an inline script (refused by the CSP) that
    only echoed the crontab's reading, which the page shows already
    ("Crontab translation")."""

    form = ScheduleForm
    change_form_template = None
