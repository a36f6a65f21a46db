"""Chain status for the system administrator: per stream, the head, the last verification,
the last anchor and the ledger entries waiting for the sealer (read-only)."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils import timezone

from compliance.models import ChainAnchor, ChainHead, ChainQueue
from staffauth.admin_base import ReadOnlyAdmin


@admin.register(ChainHead)
class ChainHeadAdmin(ReadOnlyAdmin):
    list_display = ["stream", "seq", "verified", "last_verified_at", "last_anchor", "unsealed"]
    fields = ["stream", "seq", "last_verified_at", "last_verified_ok"]
    readonly_fields = fields
    ordering = ["stream"]

    @admin.display(description="Verification")
    def verified(self, obj: ChainHead) -> str:
        if obj.last_verified_ok is None:
            return "not yet verified"
        return "intact" if obj.last_verified_ok else "BROKEN"

    @admin.display(description="Last anchor (seq, time)")
    def last_anchor(self, obj: ChainHead) -> str:
        anchor = ChainAnchor.objects.order_by("-id").first()
        if anchor is None:
            return "none"
        heads = {stream: seq for stream, seq, _chain in json.loads(anchor.body)["heads"]}
        when = timezone.localtime(anchor.created_at).strftime("%Y-%m-%d %H:%M")
        return f"{heads.get(obj.stream, 0)} at {when}"

    @admin.display(description="Unsealed")
    def unsealed(self, obj: ChainHead) -> int:
        return ChainQueue.objects.filter(stream=obj.stream).count()
