"""The till (POS) API under ``/api/v1/pos/``, its OpenAPI schema and docs.

``auth`` (request signing), ``cards`` (card-number guard, strict JSON), ``errors`` (the
one error shape), ``serializers`` (strict fields), ``views``, ``urls``.
"""
