"""Writes of members' personal data (encrypted; see ``members.services.pii`` for the key hierarchy)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from loyalty.kernel.models import Store
from members.models import ContactVerification, Member, MemberPasswordHistory, MemberPiiAccess, MemberSecurityEvent
from members.services.pii import (
    ADDRESS_MAX,
    BLIND_INDEX_VERSION,
    NAME_MAX,
    InvalidMemberData,
    MemberPiiErased,
    birth_date_normalise,
    blind_index,
    data_key_new,
    data_key_wrap,
    email_normalise,
    field_encrypt,
    member_data_key,
    member_pii_value,
    phone_normalise,
    text_normalise,
)
from members.services.pii_watch import PiiRevealThrottled, pii_reveal_throttle_record, pii_reveal_watch

if TYPE_CHECKING:
    from staffauth.models import StaffUser

logger = logging.getLogger(__name__)


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def _normalised(
    *,
    name: str | None,
    phone: str | None,
    email: str | None,
    address: str | None,
    birth_date: date | str | None,
    preferred_channel: str | None,
    phone_region: str,
) -> dict[str, Any]:
    """Every given field normalised; raises InvalidMemberData with all the refusals at once.

    ``None`` or ``""`` clears a field; UNSET leaves it alone.
    """
    given = {
        "name": name,
        "phone": phone,
        "email": email,
        "address": address,
        "birth_date": birth_date,
        "preferred_channel": preferred_channel,
    }
    normalisers: dict[str, Callable[[Any], Any]] = {
        "name": lambda v: text_normalise("name", v, max_length=NAME_MAX),
        "phone": lambda v: phone_normalise(v, region=phone_region),
        "email": email_normalise,
        "address": lambda v: text_normalise("address", v, max_length=ADDRESS_MAX),
        "birth_date": birth_date_normalise,
    }
    values: dict[str, Any] = {}
    errors: dict[str, tuple[str, str]] = {}
    for field, value in given.items():
        if value is UNSET:
            continue
        if value is None or value == "":
            values[field] = None
            continue
        if field == "preferred_channel":
            if value not in Member.Channel.values:
                errors[field] = ("invalid_choice", "Choose sms or email.")
            else:
                values[field] = value
            continue
        try:
            values[field] = normalisers[field](value)
        except InvalidMemberData as refusal:
            errors.update(refusal.errors)
    if errors:
        raise InvalidMemberData(errors)
    return values


@transaction.atomic
def member_pii_set(
    *,
    member: Member,
    actor: StaffUser | None = None,
    name: str | None = UNSET,
    phone: str | None = UNSET,
    email: str | None = UNSET,
    address: str | None = UNSET,
    birth_date: date | str | None = UNSET,
    preferred_channel: str | None = UNSET,
    phone_region: str = "MY",
) -> Member:
    """Set (or clear, with None) some of a member's personal data, encrypted under their data key.

    Validates and normalises everything first: nothing is saved unless all is valid.
    Raises InvalidMemberData (per-field codes and messages; also for a phone or email
    another member already has) and MemberPiiErased for an erased member.
    """
    values = _normalised(
        name=name,
        phone=phone,
        email=email,
        address=address,
        birth_date=birth_date,
        preferred_channel=preferred_channel,
        phone_region=phone_region,
    )
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.pii_erased_at is not None:
        raise MemberPiiErased()
    changed = []
    if "preferred_channel" in values:
        member.preferred_channel = values.pop("preferred_channel") or ""
        changed.append("preferred_channel")
    if values and not member.data_key_wrapped:
        member.data_key_wrapped = data_key_wrap(data_key_new())
        changed.append("data_key_wrapped")
    key = member_data_key(member)
    for field, value in values.items():
        assert key is not None  # values to write: the data key was made just above
        plain = value.isoformat() if isinstance(value, date) else value
        token = "" if plain is None else field_encrypt(key, plain)
        setattr(member, f"{field}_encrypted", token)
        changed.append(f"{field}_encrypted")
        if field in ("phone", "email"):
            setattr(member, f"{field}_index", None if value is None else blind_index(field, value))
            changed += [f"{field}_index", "blind_index_version"]
            member.blind_index_version = BLIND_INDEX_VERSION
    _refuse_taken(member, values)
    try:
        with transaction.atomic():
            member.save(update_fields=sorted(set(changed)))
    except IntegrityError as exc:
        # A concurrent writer took the phone or email between the check and the save.
        field = "phone" if "phone_index" in str(exc) else "email"
        raise InvalidMemberData({field: ("taken", f"Another member already has this {field}.")}) from None
    logger.info(
        "member personal data changed",
        extra={"member_id": str(member.member_id), "fields": sorted(values), "actor": getattr(actor, "pk", None)},
    )
    return member


@transaction.atomic
def member_pii_correct_by_staff(
    *, member: Member, actor: StaffUser, reference: str, name: str | None = UNSET, birth_date: date | str | None = UNSET
) -> Member:
    """Staff correct a member's name or birth date (a data-subject correction request,
    ``reference``): ``member_pii_set``, then a ``profile_changed`` security event naming
    the fields, "staff" and the reference, never the values (the member sees it in their
    security log; the event is on the chained member-security stream; who did it is the
    request's event).

    An empty value is refused (``required``): a correction never clears a field.
    Raises what ``member_pii_set`` raises."""
    values: dict[str, Any] = {k: v for k, v in {"name": name, "birth_date": birth_date}.items() if v is not UNSET}
    empty = [k for k, v in values.items() if v is None or (isinstance(v, str) and not v.strip())]
    if empty:
        raise InvalidMemberData(dict.fromkeys(empty, ("required", "A new value is required.")))
    member = member_pii_set(member=member, actor=actor, **values)
    MemberSecurityEvent.objects.create(
        member=member, kind="profile_changed",
        detail={"fields": sorted(values), "by": "staff", "reference": reference},
    )  # fmt: skip
    return member


def _refuse_taken(member: Member, values: dict[str, Any]) -> None:
    errors: dict[str, tuple[str, str]] = {}
    for field in ("phone", "email"):
        index = getattr(member, f"{field}_index")
        taken = Member.objects.filter(**{f"{field}_index": index}).exclude(pk=member.pk)
        if field in values and index is not None and taken.exists():
            errors[field] = ("taken", f"Another member already has this {field}.")
    if errors:
        raise InvalidMemberData(errors)


@transaction.atomic
def member_create(*, home_store: Store | None = None, actor: StaffUser | None = None, **pii: Any) -> Member:
    """A new member with personal data (see ``member_pii_set`` for the fields and errors).

    Validation comes first: an invalid value creates nothing.
    """
    _normalised(**{k: pii.get(k, UNSET) for k in _FIELDS}, phone_region=pii.get("phone_region", "MY"))
    member = Member.objects.create(home_store=home_store)
    return member_pii_set(member=member, actor=actor, **pii)


_FIELDS = ("name", "phone", "email", "address", "birth_date", "preferred_channel")


@transaction.atomic
def member_pii_shred(*, member: Member, actor: StaffUser | None = None) -> Member:
    """Erase the member's personal data by erasing their data key (crypto-shredding).

    The ciphertexts stay where they are (as they do in every backup) and can no longer
    be decrypted by anyone; the blind indexes go too, so the phone and email are free
    and no longer point to this member. Reads return None (``member_pii_read`` says
    ``erased=True``). Idempotent. Other members are untouched.
    """
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.pii_erased_at is None:
        member.data_key_wrapped = ""
        member.phone_index = None
        member.email_index = None
        member.pii_erased_at = timezone.now()
        member.password_hash = ""
        member.save(update_fields=["data_key_wrapped", "phone_index", "email_index", "pii_erased_at", "password_hash"])
        member.__dict__.pop("_pii_data_key", None)
        # Addresses waiting for verification go too (their blind index would still
        # point here), and so do the password hashes.
        ContactVerification.objects.filter(member=member).update(
            value_encrypted="", value_index="", token_hash=None,
            cancelled_at=Coalesce(F("cancelled_at"), Value(member.pii_erased_at)),
        )  # fmt: skip
        MemberPasswordHistory.objects.filter(member=member).delete()
        logger.info(
            "member personal data erased",
            extra={"member_id": str(member.member_id), "actor": getattr(actor, "pk", None)},
        )
    return member


def member_pii_reveal(*, member: Member, field: str, actor: StaffUser) -> Any:
    """One field in clear for a staff user, recording the access (who, when, which field).

    The caller checks ``members.reveal_member_pii``. Returns None when the field is
    empty or erased (the access is recorded all the same). Raises
    ``members.services.pii_watch.PiiRevealThrottled`` when the staff member has
    revealed too much lately (nothing revealed, nothing recorded but the throttle).
    """
    if field not in MemberPiiAccess.Field.values:
        raise ValueError(f"not a personal-data field: {field}")
    try:
        with transaction.atomic():
            pii_reveal_watch(member=member, staff=actor)
            MemberPiiAccess.objects.create(member=member, staff=actor, field=field)
    except PiiRevealThrottled as refusal:
        pii_reveal_throttle_record(staff=actor, refusal=refusal)
        raise
    return member_pii_value(member, field)
