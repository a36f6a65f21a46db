"""The classification register as a fides dataset (fideslang ``Dataset``: one collection per
table, every column tagged with its data category), for fides-based privacy tooling."""

from __future__ import annotations

from typing import Any

import yaml
from django.apps import apps

from compliance import register


def dataset() -> dict[str, Any]:
    collections = []
    for model in apps.get_models():
        opts = model._meta
        field_rows = []
        for field in opts.concrete_fields:
            e = register.entry(model, field.name)
            field_rows.append(
                {
                    "name": field.column,
                    "description": f"{e.level}{', secret' if e.secret else ''}; retention {e.retention}; "
                    f"erasure {e.erasure}; export {'yes' if e.export else 'no'}",
                    "data_categories": [e.category],
                }
            )
        collections.append({"name": opts.db_table, "description": opts.label, "fields": field_rows})
    return {
        "dataset": [
            {
                "fides_key": "loyalty_backoffice",
                "name": "Loyalty back-office database",
                "description": "Generated from compliance/register.py (manage.py compliance_fides_dataset).",
                "collections": collections,
            }
        ]
    }


def dataset_yaml() -> str:
    return yaml.safe_dump(dataset(), sort_keys=False, allow_unicode=True)
