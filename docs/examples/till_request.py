#!/usr/bin/env python3
"""Send one signed request to the till (POS) API: the signing recipe of docs/integrators.md.

Standard library only. Every till request carries three headers:

  X-Till-Key    the till's key id
  X-Timestamp   the current time in whole Unix seconds (within 300 s of the server's clock)
  X-Signature   lowercase hex HMAC-SHA256, keyed with the till's secret (UTF-8), over
                "{timestamp}\\n{METHOD}\\n{target}\\n" followed by the raw body bytes,
                where target is the path (and query string) exactly as sent

and every write (POST) an Idempotency-Key: new for each operation, the same when retrying it.

Examples, against `make run` with the demo's test till (seed_demo: till KL01/DEMO, key id
"demo-till"; its secret is random and printed by `make run`: pass it as --secret or put
it in the TILL_SECRET environment variable):

  python docs/examples/till_request.py /api/v1/pos/members/balance \\
      --body '{"loyalty_number": "9900000000000127"}'
  python docs/examples/till_request.py /api/v1/pos/purchases \\
      --body '{"loyalty_number": "9900000000000127", "receipt_number": "R-1001", "amount_minor": 12500}'
  python docs/examples/till_request.py /api/v1/pos/vouchers/public-key --method GET
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

DEFAULT_URL = "http://127.0.0.1:8000"
DEMO_KEY_ID = "demo-till"


def signature(*, secret: str, timestamp: str, method: str, target: str, body: bytes) -> str:
    """The X-Signature of a request: hex HMAC-SHA256 over timestamp, method, target, body."""
    message = f"{timestamp}\n{method.upper()}\n{target}\n".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(
    *,
    key_id: str,
    secret: str,
    method: str,
    target: str,
    body: bytes,
    idempotency_key: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The headers of a signed till request (``target``: the path and query as sent).
    A POST gets ``idempotency_key``, or a fresh one: keep it to retry the same operation."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "Content-Type": "application/json",
        "X-Till-Key": key_id,
        "X-Timestamp": stamp,
        "X-Signature": signature(secret=secret, timestamp=stamp, method=method, target=target, body=body),
    }
    if method.upper() == "POST":
        headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
    return headers


def send(
    *,
    url: str,
    target: str,
    method: str,
    body: bytes,
    key_id: str,
    secret: str,
    extra: dict[str, str] | None = None,
    idempotency_key: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Send the signed request; returns (status, headers, body), errors included."""
    headers = signed_headers(
        key_id=key_id, secret=secret, method=method, target=target, body=body, idempotency_key=idempotency_key
    )
    headers.update(extra or {})
    if not url.startswith(("http://", "https://")):
        raise ValueError("the server URL is http:// or https://")
    request = urllib.request.Request(  # noqa: S310 (http or https only: checked above)
        url.rstrip("/") + target, data=body or None, method=method.upper(), headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (checked above)
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Send one signed request to the till API and print the answer.",
        epilog="The key id defaults to the demo's test till (demo-till); its secret is printed by make run.",
    )
    parser.add_argument("target", help="path (and query) as sent, e.g. /api/v1/pos/members/balance")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the server (default {DEFAULT_URL})")
    parser.add_argument("--method", default="POST", help="POST (default) or GET")
    parser.add_argument("--body", default="{}", help="the JSON body, as sent (default {}; none for GET)")
    parser.add_argument("--key-id", default=DEMO_KEY_ID, help="the till's key id (X-Till-Key)")
    parser.add_argument(
        "--secret", default=os.environ.get("TILL_SECRET"), help="the till's secret (default: $TILL_SECRET)"
    )
    parser.add_argument("--idempotency-key", help="for a write: reuse one to retry an operation (default: new)")
    parser.add_argument("--shift", help="X-Staff-Shift: the shift token POST /api/v1/pos/shifts answered")
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error("the till's secret is needed: --secret, or the TILL_SECRET environment variable")

    method = args.method.upper()
    body = b"" if method == "GET" else args.body.encode()
    extra = {"X-Staff-Shift": args.shift} if args.shift else None
    status, headers, answer = send(
        url=args.url,
        target=args.target,
        method=method,
        body=body,
        key_id=args.key_id,
        secret=args.secret,
        extra=extra,
        idempotency_key=args.idempotency_key,
    )
    print(status, "(replayed)" if headers.get("Idempotency-Replayed") == "true" else "")
    try:
        print(json.dumps(json.loads(answer), indent=2))
    except ValueError:
        print(answer.decode(errors="replace"))
    return 0 if status < 400 else 1


if __name__ == "__main__":
    sys.exit(main())
