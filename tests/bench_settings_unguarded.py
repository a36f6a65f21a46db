"""The benchmark's "before" for the fraud work on the request path (``bench_ledger``):
``tests.settings`` without the API enumeration guard, the one per-request addition of the
fraud issue to the till's earn (the restriction check rides on the member lock's SELECT,
which the "service" figures include)."""

from tests.settings import *  # noqa: F403

MIDDLEWARE = [name for name in MIDDLEWARE if name != "loyalty.api.enumeration.ApiEnumerationGuardMiddleware"]  # noqa: F405
