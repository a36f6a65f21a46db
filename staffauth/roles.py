"""The five staff roles and exactly what each may do (spec: "Role-Based Access Control").

This table is the single source of the role permissions: the data migration,
``manage.py migrate`` (post-migrate) and ``manage.py sync_roles`` apply it to the
groups, and the authorization-matrix test checks the admin against the same spec.
Later issues add their models' permissions here. Numeric limits of the roles
(redemption and adjustment thresholds) live in ``settings.ROLE_LIMITS``.

The README's permissions table is generated from it (``permissions_markdown``, printed
by ``manage.py sync_roles --table``) and a test fails when the two differ.

Decided against the spec ("Role-Based Access Control"), beyond the obvious:

- System Administrators add and change stores and tills (switch a till off, set its
  address allow-list): "full system access" and "configuration changes"; every change
  is in the audit log ("all actions logged"). Programme Administrators also add and
  change stores (programme set-up); neither deletes one.
- Store Managers view their stores' tills (read-only, no secret): store-level
  operations, not headquarters data.
- Fraud Analysts view every store and member, personal data masked (only Programme
  Administrators reveal it): "investigate suspicious activity" needs both.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    key: str
    name: str  # the Group name
    permissions: frozenset[str]  # "app_label.codename"

    @property
    def store_scoped(self) -> bool:
        return "loyalty.view_all_stores" not in self.permissions


def _crud(app_label: str, model: str, *actions: str) -> set[str]:
    return {f"{app_label}.{action}_{model}" for action in actions}


# Retention runs (read, evidence download) and legal holds (place, release): compliance
# work, for the system and programme administrators (COMPLIANCE.md §2).
_RETENTION = {"compliance.view_retentionrun"} | _crud("compliance", "legalhold", "view", "add", "change")

_BEAT_MODELS = ("periodictask", "intervalschedule", "crontabschedule", "solarschedule", "clockedschedule")
_LOGS_READ = {
    "staffauth.view_securityevent",
    "auditlog.view_logentry",
    "axes.view_accessattempt",
    "axes.view_accesslog",
    "axes.view_accessfailurelog",
    # Who revealed which member's personal data (the access log).
    "members.view_memberpiiaccess",
    # Who viewed, searched, reported, downloaded or reconfigured (compliance.access).
    "compliance.view_accessevent",
}

# The journal, lots and accounts (read-only for everyone: points move only through
# the ledger services).
_LEDGER_READ = {
    "loyalty.view_ledgeroperation",
    "loyalty.view_transfer",
    "loyalty.view_pointslot",
    "loyalty.view_account",
}

# Manual adjustments (maker-checker, settings.ADJUSTMENT_POLICY): store managers and
# programme administrators raise and approve them; the fraud team reviews large ones.
# Cashiers, system administrators and fraud analysts never post one.
_ADJUSTMENTS_MAKE = {
    "loyalty.view_adjustmentrequest",
    "loyalty.add_adjustmentrequest",
    "loyalty.approve_adjustmentrequest",
    "loyalty.view_adjustmentreport",
}

# Vouchers (issue 6). The catalogue is programme set-up (Program Administrators); vouchers
# are read-only in the admin (issued by the member API or as goodwill, revoked by an
# action), and goodwill is bounded per role by settings.VOUCHERS["goodwill_max_points"].
# Cashiers redeem at the till, never in the admin.
_REWARDS_MANAGE = _crud("vouchers", "reward", "view", "add", "change")
_VOUCHERS_READ = {"vouchers.view_voucher"}
_VOUCHERS_GOODWILL = {"vouchers.issue_goodwill_voucher"}
# The till's records (vouchers.admin_till): shifts and the scan log (store-scoped for
# store managers), the redemption audit sample (reviewed by the store's managers).
_TILL_RECORDS_READ = {"vouchers.view_staffshift", "vouchers.view_voucherscan", "vouchers.view_redemptionaudit"}
# Points redeemed at the till, and redemptions a till attempted offline (approved or
# rejected online by a store manager or programme administrator: vouchers.admin_offline).
_TILL_POINTS_READ = {"vouchers.view_tillredemption", "vouchers.view_pendingredemption"}
_OFFLINE_DECIDE = {"vouchers.decide_pendingredemption"}

_COMPLAINTS_HANDLE = {
    "compliance.view_complaint",
    "compliance.add_complaint",
    "compliance.respond_complaint",
    "compliance.view_complaintevent",
}

CASHIER = Role(
    key="cashier",
    name="Cashier",
    # View member information and process earning/redemptions (<500) for their stores:
    # the member and ledger permissions arrive with those models.
    permissions=frozenset({"loyalty.view_store", "members.view_member", "loyalty.view_ledgeroperation"}),
)

STORE_MANAGER = Role(
    key="store_manager",
    name="Store Manager",
    # All cashier permissions plus store-level reports; never headquarters data.
    # Vouchers: those of their stores' members (see vouchers.admin), goodwill within the
    # limit; their stores' shifts and scans, and the redemption audit sample to review.
    permissions=frozenset(
        CASHIER.permissions
        | {"loyalty.view_till"}
        | _ADJUSTMENTS_MAKE
        | _VOUCHERS_READ
        | _VOUCHERS_GOODWILL
        | _TILL_RECORDS_READ
        | {"vouchers.review_redemptionaudit"}
        | _TILL_POINTS_READ
        | _OFFLINE_DECIDE
        # Fraud reports: their stores' alert counts only (fraud.reports).
        | {"fraud.view_fraudreport"}
        # Complaints of their stores: intake on a member's behalf, respond, resolve.
        | _COMPLAINTS_HANDLE
    ),
)

PROGRAM_ADMIN = Role(
    key="program_admin",
    name="Program Administrator",
    # View all member data, configure programme rules (stores are programme set-up),
    # reports across all stores.
    permissions=frozenset(
        _crud("loyalty", "store", "view", "add", "change")
        | {"loyalty.view_all_stores", "members.view_member"}
        # Reveal a member's full personal data in the admin (each reveal is recorded).
        | {"members.reveal_member_pii"}
        # End a member's sessions from the member page (suspicious activity: spec
        # "Session Invalidation"); recorded in the member's change history.
        | {"members.end_member_sessions"}
        # Fraud actions on a member (FRAUD.md §3): everything an analyst does, and the
        # suspension, restore and freeze confirmation an analyst only recommends.
        | {"members.restrict_member", "members.suspend_member"}
        | _LEDGER_READ
        | _ADJUSTMENTS_MAKE
        | _crud("loyalty", "adjustmentreason", "view", "add", "change")
        | {"loyalty.view_outboundmessage"}
        # The reward catalogue; every voucher: view, revoke, goodwill within the limit.
        | _REWARDS_MANAGE
        | _VOUCHERS_READ
        | _VOUCHERS_GOODWILL
        | {"vouchers.revoke_voucher"}
        | _TILL_POINTS_READ
        | _OFFLINE_DECIDE
        # Fraud cases, read-only (they confirm suspensions and raise reversals a case
        # recommends): the case, its timeline, the signals and risk decisions behind it.
        | {"fraud.view_fraudcase", "fraud.view_caseevent", "fraud.view_risksignal", "fraud.view_riskdecision"}
        | {"fraud.view_fraudreport"}
        # Fraud ruleset versions: approved after seeing their replay (the last 30 days'
        # decisions scored again under them: fraud.replay); the approval is recorded.
        | {"fraud.view_fraudruleset", "fraud.approve_fraudruleset"}
        | _RETENTION
        # Data-subject requests (PDPA; COMPLIANCE.md §4): no compliance role exists, so
        # the programme's administrators take them in and carry them out.
        | {"compliance.view_datasubjectrequest", "compliance.add_datasubjectrequest"}
        | {"compliance.manage_datasubjectrequest"}
        # Consumer protection: every complaint; terms and conditions drafted and published.
        | _COMPLAINTS_HANDLE
        | _crud("compliance", "termsversion", "view", "add", "change")
        | {"compliance.publish_termsversion", "compliance.view_termsacceptance"}
    ),
)

SYSTEM_ADMIN = Role(
    key="system_admin",
    name="System Administrator",
    # Full system access for running the system: staff accounts, roles (read-only: roles
    # are defined here), stores, schedules, MFA device resets, lockout release, logs.
    # Not a superuser: later issues keep points adjustments away from this role.
    permissions=frozenset(
        _crud("loyalty", "store", "view", "add", "change")
        | {"loyalty.view_all_stores"}
        | _crud("staffauth", "staffuser", "view", "add", "change")
        | {"staffauth.end_sessions", "auth.view_group"}
        | _crud("loyalty", "till", "view", "change")
        | _crud("otp_totp", "totpdevice", "view", "delete")
        | _crud("otp_static", "staticdevice", "view", "delete")
        | {"axes.delete_accessattempt"}
        | _LOGS_READ
        | {"loyalty.view_outboundmessage"}
        | {"compliance.view_chainhead"}  # tamper-evident logs: chain status
        | _RETENTION
        | {
            perm
            for model in _BEAT_MODELS
            for perm in _crud("django_celery_beat", model, "view", "add", "change", "delete")
        }
    ),
)

FRAUD_ANALYST = Role(
    key="fraud_analyst",
    name="Fraud Analyst",
    # View all transactions and fraud alerts, investigate suspicious activity; never
    # modifies balances. Reads the security, audit and lockout logs.
    permissions=frozenset(
        {"loyalty.view_store", "loyalty.view_all_stores", "members.view_member"}
        | _LOGS_READ
        | _LEDGER_READ
        | {"loyalty.view_adjustmentrequest", "loyalty.review_adjustmentrequest", "loyalty.view_adjustmentreport"}
        # Vouchers and the till's records (read-only); fraud alerts, which they close
        # after investigating (closing moves no points).
        | _VOUCHERS_READ
        | _TILL_RECORDS_READ
        | _TILL_POINTS_READ
        | {"fraud.view_fraudalert", "fraud.change_fraudalert"}
        # Cases, which they work (assign, investigate, note, close: moves no points), and
        # the signals and risk decisions behind them.
        | {"fraud.view_fraudcase", "fraud.work_fraudcase", "fraud.view_caseevent", "fraud.view_risksignal"}
        | {"fraud.view_riskdecision", "fraud.view_fraudruleset", "fraud.view_detectorsnooze"}
        # Headquarters' monthly audit of adjustment rationales (FRAUD.md row 10): they
        # review adjustments and make none, so nobody audits their own.
        | {"fraud.view_auditsample"}
        | {"fraud.view_fraudreport"}
        # Suspicious activity: end the member's sessions (moves no points); freeze a
        # member's spending (lapses unless confirmed), lock a member, block a device.
        | {"members.end_member_sessions", "members.restrict_member"}
    ),
)

ROLES: dict[str, Role] = {
    role.key: role for role in (CASHIER, STORE_MANAGER, PROGRAM_ADMIN, SYSTEM_ADMIN, FRAUD_ANALYST)
}
ROLE_BY_NAME: dict[str, Role] = {role.name: role for role in ROLES.values()}


def apply_roles(*, Group, Permission, strict: bool = True) -> dict[str, int]:
    """Make each role's group hold exactly its permissions. Idempotent.

    Takes the model classes so that a migration can pass its historical models.
    Returns the number of permissions granted per group. When ``strict``, raises
    LookupError naming any permission that does not exist (a typo or an app that is
    not installed); otherwise grants the ones that exist (a migration running before
    later apps' migrations).
    """
    wanted = {perm for role in ROLES.values() for perm in role.permissions}
    found = {}
    for perm in Permission.objects.select_related("content_type").filter(
        codename__in={p.split(".", 1)[1] for p in wanted}
    ):
        found[f"{perm.content_type.app_label}.{perm.codename}"] = perm
    missing = sorted(wanted - found.keys())
    if missing and strict:
        raise LookupError(f"Unknown permissions in staffauth.roles: {', '.join(missing)}")
    counts = {}
    for role in ROLES.values():
        group, _ = Group.objects.get_or_create(name=role.name)
        granted = [found[p] for p in role.permissions if p in found]
        group.permissions.set(granted)
        counts[role.name] = len(granted)
    return counts


# --- the README's permissions table ---------------------------------------------------------

_ACTION_ORDER = ("view", "add", "change", "delete")
README_TABLE_START = "<!-- roles-permissions: generated by `python manage.py sync_roles --table` -->"
README_TABLE_END = "<!-- /roles-permissions -->"


def _action_key(action: str) -> tuple[int, str]:
    return (_ACTION_ORDER.index(action), "") if action in _ACTION_ORDER else (len(_ACTION_ORDER), action)


def permissions_markdown() -> str:
    """Every permission of every role as a Markdown table: one row per object
    (``app_label.model``, or the object a custom permission names, e.g.
    ``loyalty.all_stores``), one column per role, the actions in each cell."""
    objects: dict[str, dict[str, set[str]]] = {}
    for role in ROLES.values():
        for perm in role.permissions:
            app_label, codename = perm.split(".", 1)
            action, _, obj = codename.partition("_")
            objects.setdefault(f"{app_label}.{obj}", {}).setdefault(role.key, set()).add(action)
    lines = [
        "| object | " + " | ".join(role.name for role in ROLES.values()) + " |",
        "|---" * (len(ROLES) + 1) + "|",
    ]
    for obj in sorted(objects):
        cells = [", ".join(sorted(objects[obj].get(key, ()), key=_action_key)) for key in ROLES]
        lines.append(f"| `{obj}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
