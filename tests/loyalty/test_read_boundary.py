"""The ledger's read boundary (issue 12): apps other than ``loyalty`` read the ledger only
through ``loyalty.ledger.selectors`` (and write it only through its services). No module of
theirs imports the ledger's models or names the ledger's tables in SQL.

A string reference (``"loyalty.LedgerOperation"``) serves a foreign key without the
class, and the ledger's admin pages live in ``loyalty/``, so no app needs the classes
today. Should one truly need a class (a foreign key or admin registration that a string
cannot serve), list it in ALLOWED with the reason. Migrations are history and are not
checked.
"""

import ast
import re
from pathlib import Path

from django.conf import settings

from loyalty.ledger import models as ledger

LEDGER_MODELS = (
    ledger.LedgerOperation,
    ledger.Transfer,
    ledger.PointsLot,
    ledger.LotMovement,
    ledger.MemberBalance,
    ledger.IdempotencyKey,
    ledger.Account,
)
LEDGER_NAMES = {model.__name__ for model in LEDGER_MODELS}
LEDGER_TABLES = re.compile(r"\b(" + "|".join(model._meta.db_table for model in LEDGER_MODELS) + r")\b", re.IGNORECASE)

# (path from the project root, model name) -> why that module needs the class.
ALLOWED: dict[tuple[str, str], str] = {}


def _app_modules() -> list[Path]:
    root = Path(settings.BASE_DIR)
    apps = [p.parent for p in root.glob("*/apps.py") if p.parent.name != "loyalty"]
    return sorted(
        path for app in apps for path in app.rglob("*.py") if "migrations" not in path.relative_to(root).parts
    )


def ledger_reads(source: str) -> list[tuple[int, str]]:
    """(line, what) for each ledger model imported and each ledger table named in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "loyalty":
            for alias in node.names:
                if alias.name in LEDGER_NAMES or (node.module == "loyalty" and alias.name == "models"):
                    found.append((node.lineno, alias.name))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("loyalty.models")]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [(node.lineno, f"table {m.group(1)}") for m in LEDGER_TABLES.finditer(node.value)]
    return found


def test_the_check_sees_imports_and_sql():
    source = (
        "from loyalty.models import Store, Transfer\n"
        "from loyalty import models\n"
        "import loyalty.models\n"
        'SQL = f"SELECT 1 FROM loyalty_pointslot WHERE id = {x}"\n'
        'URL = "admin:loyalty_ledgeroperation_change"\n'  # a URL name, not a table
        'FK = "loyalty.LedgerOperation"\n'
    )
    assert ledger_reads(source) == [
        (1, "Transfer"),
        (2, "models"),
        (3, "loyalty.models"),
        (4, "table loyalty_pointslot"),
    ]


def test_no_app_outside_loyalty_reads_the_ledgers_tables():
    root = Path(settings.BASE_DIR)
    modules = _app_modules()
    assert {p.relative_to(root).parts[0] for p in modules} >= {"members", "vouchers", "staffauth"}
    found = {
        (str(path.relative_to(root)), line, what) for path in modules for line, what in ledger_reads(path.read_text())
    }
    refused = sorted(f"{path}:{line}: {what}" for path, line, what in found if (path, what) not in ALLOWED)
    assert refused == [], "read the ledger through loyalty.ledger.selectors instead:\n" + "\n".join(refused)
    stale = set(ALLOWED) - {(path, what) for path, _, what in found}
    assert not stale, f"no longer needed, remove from ALLOWED: {sorted(stale)}"
