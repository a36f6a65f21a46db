"""The till's data on purchases and returns, kept for the return detectors (FRAUD.md,
"Till data"): item lines, the payment tender and whether the receipt was shown.

Nothing is kept as the till sent it. An item's SKU and the payment processor's tender
token are stored only as HMAC-SHA256 under ``settings.TILL_DATA_HMAC_KEY``, each under a
label of its own (``sku``, ``tender``), so a SKU's hash never equals a token's: equal
inputs give equal hashes (a return matches its purchase, a SKU bought again matches),
and a hash reveals neither. The values reach this module only after the API's card
number guard (``loyalty.api.cards``): a card number where a token goes is refused
before it is hashed, let alone stored.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings


def keyed_hash(label: str, value: str) -> str:
    """HMAC-SHA256 (hex) of ``value`` under the till data key, separated by ``label``."""
    message = f"{label}\x00{value}".encode()
    return hmac.new(settings.TILL_DATA_HMAC_KEY.encode(), message, hashlib.sha256).hexdigest()


def sku_hash(sku: str) -> str:
    return keyed_hash("sku", sku)


def tender_hash(tender_ref: str) -> str:
    return keyed_hash("tender", tender_ref)


@dataclass(frozen=True)
class TillData:
    """What a purchase or a return carries from the till, hashed; the fields of the
    ``LedgerOperation`` it is stored on."""

    item_lines: list[dict[str, Any]] | None = None
    tender_hash: str = ""
    receipt_presented: bool | None = None

    def operation_fields(self) -> dict[str, Any]:
        return {
            "item_lines": self.item_lines,
            "tender_hash": self.tender_hash,
            "receipt_presented": self.receipt_presented,
        }


NO_TILL_DATA = TillData()


def till_data(
    *,
    items: Iterable[Mapping[str, Any]] | None = None,
    tender_ref: str | None = None,
    receipt_presented: bool | None = None,
) -> TillData:
    """The till data to store from the values as sent: ``items`` as ``{sku, qty,
    amount_minor}`` (validated by the caller), ``tender_ref`` the processor's token."""
    lines = None
    if items is not None:
        lines = [
            {"sku_hash": sku_hash(item["sku"]), "qty": item["qty"], "amount_minor": item["amount_minor"]}
            for item in items
        ]
    return TillData(
        item_lines=lines,
        tender_hash=tender_hash(tender_ref) if tender_ref else "",
        receipt_presented=receipt_presented,
    )
