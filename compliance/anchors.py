"""Anchors: every stream's head ``(stream, seq, chain)``, the time and the previous anchor's
hash, signed with Ed25519 (key HKDF-derived from ``AUDIT_CHAIN_KEY``), like a Signed Tree
Head (RFC 6962 §3.5). Kept in the database every 15 minutes and written daily to the sink
``AUDIT_ANCHOR_SINK`` outside it: ``file:///path`` (one JSON line appended per anchor) or
``mailto:address`` (an outbox email). Object storage (``s3://``) is not supported: settings
refuse to load with any other scheme (ImproperlyConfigured).

A head short of the last anchor's seq means the tail was cut (``verify_audit --anchor``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from compliance.chain import canonical_value


def _private_key() -> Ed25519PrivateKey:
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"loyalty audit-chain anchor/1").derive(
        settings.AUDIT_CHAIN_KEY.encode()
    )
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key() -> Ed25519PublicKey:
    return _private_key().public_key()


def _hash(anchor: Any) -> str:
    return hashlib.sha256((anchor.body + "." + anchor.signature).encode()).hexdigest()


def anchor_create() -> Any:
    """Sign every stream's head (read under the heads' row locks, so no append is half-seen)."""
    from compliance.models import ChainAnchor, ChainHead

    with transaction.atomic():
        heads = list(ChainHead.objects.select_for_update().order_by("stream").values_list("stream", "seq", "chain"))
        prev = ChainAnchor.objects.order_by("-id").first()
        body = json.dumps(
            {
                "heads": [[stream, seq, bytes(chain).hex()] for stream, seq, chain in heads],
                "time": canonical_value(timezone.now()),
                "prev_anchor_hash": _hash(prev) if prev else "",
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        signature = base64.b64encode(_private_key().sign(body.encode())).decode()
        return ChainAnchor.objects.create(body=body, signature=signature)


def anchor_signed_heads(body: str, signature: str) -> dict[str, tuple[int, bytes]]:
    """The heads of a signed anchor (``{stream: (seq, chain)}``); ValueError if the signature fails."""
    from cryptography.exceptions import InvalidSignature

    try:
        public_key().verify(base64.b64decode(signature), body.encode())
    except (InvalidSignature, ValueError) as exc:
        raise ValueError("anchor signature invalid") from exc
    return {stream: (seq, bytes.fromhex(chain)) for stream, seq, chain in json.loads(body)["heads"]}


def anchor_check(body: str, signature: str) -> dict[str, int]:
    """The heads of a signed anchor (``{stream: seq}``); ValueError if the signature fails."""
    return {stream: seq for stream, (seq, _chain) in anchor_signed_heads(body, signature).items()}


def anchor_export(anchor: Any) -> None:
    sink = settings.AUDIT_ANCHOR_SINK
    line = json.dumps({"body": anchor.body, "signature": anchor.signature})
    if sink.startswith("file://"):
        with Path(sink.removeprefix("file://")).open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    elif sink.startswith("mailto:"):
        from loyalty.notifications import notify_address

        notify_address(
            to=sink.removeprefix("mailto:"), subject="Audit chain anchor", body=line, topic="audit_chain_anchor"
        )
    elif sink:
        raise ValueError("AUDIT_ANCHOR_SINK: only file:// and mailto: are supported")


def anchor_from_file(path: str) -> dict[str, int]:
    """The heads of the last anchor in a sink file (one JSON line per anchor)."""
    return {stream: seq for stream, (seq, _chain) in _signed_heads_from_file(path).items()}


def _signed_heads_from_file(path: str) -> dict[str, tuple[int, bytes]]:
    lines = [ln for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        return {}
    last = json.loads(lines[-1])
    return anchor_signed_heads(last["body"], last["signature"])


def anchor_pins(path: str | None = None) -> dict[str, list[tuple[int, bytes]]]:
    """The anchored heads ``{stream: [(seq, chain), ...]}`` verification must reach and pass
    through: the last anchor of the sink file ``path`` if given, else the newest anchor in the
    database and the last of the sink file if there is one. A head short of an anchored seq is
    a cut tail; a different chain at it is a cut tail written over (new links since the cut)."""
    from compliance.models import ChainAnchor

    found: list[dict[str, tuple[int, bytes]]] = []
    sink = settings.AUDIT_ANCHOR_SINK
    if path is None:
        anchor = ChainAnchor.objects.order_by("-id").first()
        if anchor is not None:
            found.append(anchor_signed_heads(anchor.body, anchor.signature))
        if sink.startswith("file://") and Path(sink.removeprefix("file://")).exists():
            path = sink.removeprefix("file://")
    if path is not None:
        found.append(_signed_heads_from_file(path))
    pins: dict[str, list[tuple[int, bytes]]] = {}
    for heads in found:
        for stream, head in heads.items():
            pins.setdefault(stream, []).append(head)
    return pins


def last_anchor_heads() -> dict[str, int]:
    """The heads of the newest anchor in the database, and of the sink file if there is one
    (the larger seq wins: a cut tail shows against either)."""
    from compliance.models import ChainAnchor

    heads: dict[str, int] = {}
    anchor = ChainAnchor.objects.order_by("-id").first()
    if anchor is not None:
        heads = anchor_check(anchor.body, anchor.signature)
    sink = settings.AUDIT_ANCHOR_SINK
    if sink.startswith("file://") and Path(sink.removeprefix("file://")).exists():
        for stream, seq in anchor_from_file(sink.removeprefix("file://")).items():
            heads[stream] = max(seq, heads.get(stream, 0))
    return heads
