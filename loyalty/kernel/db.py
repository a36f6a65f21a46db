"""Connections as the tables' owner (migrations, grants) when the application runs as
another role (``MIGRATION_DATABASE_URL``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

_CONNECTION_KEYS = ("NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")


@contextmanager
def owner_connection(alias: str = "default") -> Iterator[BaseDatabaseWrapper]:
    """``connections[alias]``, connected as ``MIGRATION_DATABASE_URL``'s role while the
    block runs (everything in the block, migrations' own code included, uses it); the
    connection as it was when there is no such setting."""
    connection = connections[alias]
    owner = settings.MIGRATION_DATABASE
    if not owner or alias != "default":
        yield connection
        return
    if owner.get("NAME") != connection.settings_dict.get("NAME"):
        raise ValueError("MIGRATION_DATABASE_URL must name the same database as DATABASE_URL")
    saved = connection.settings_dict
    connection.close()
    connection.settings_dict = {
        **saved,
        **{key: owner.get(key, {} if key == "OPTIONS" else "") for key in _CONNECTION_KEYS},
    }
    try:
        yield connection
    finally:
        connection.close()
        connection.settings_dict = saved
