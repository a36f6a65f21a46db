"""The dependency rules that import-linter cannot state (issue 12, point 6).

``make lint`` runs import-linter over the contracts in pyproject.toml. This module adds:
no module imports another module's ``_private`` names (except today's debts, listed), and
every module of the six apps is placed in a layer of the direction contract, so a new
module cannot slip past it unplaced.
"""

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("loyalty", "members", "staffauth", "vouchers", "fraud", "compliance")

# Cross-module imports of private names allowed: none (issue 12 removed the last ones).
# Never add one.
PRIVATE_IMPORTS_TODAY: dict[str, set[tuple[str, str]]] = {}


def _modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def _private_imports():
    found = {}
    for module, path in _modules():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") and source != module:
                    found.setdefault(module, set()).add((source, alias.name))
    return found


def test_no_new_cross_module_imports_of_private_names():
    found = _private_imports()
    new = {m: sorted(names - PRIVATE_IMPORTS_TODAY.get(m, set())) for m, names in found.items()}
    assert {m: names for m, names in new.items() if names} == {}


def test_the_list_of_private_imports_is_not_stale():
    found = _private_imports()
    gone = {m: sorted(names - found.get(m, set())) for m, names in PRIVATE_IMPORTS_TODAY.items()}
    assert {m: names for m, names in gone.items() if names} == {}


def _layered_modules():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (direction,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "direction"]
    names = set()
    for layer in direction["layers"]:
        for separator in ("|", ":"):
            layer = layer.replace(separator, " ")
        names.update(layer.split())
    return names


def test_every_module_has_a_layer():
    layered = _layered_modules()
    unplaced = [
        module
        for module, path in _modules()
        if path.name != "__init__.py" and not any(module == name or module.startswith(name + ".") for name in layered)
    ]
    assert unplaced == []


def test_database_functions_are_created_by_their_owner():
    """The loyalty app owns the ``loyalty_*`` database functions (append-only triggers,
    guarded updates, the purge); no other app's migration creates one. The trigger
    function moved from a staffauth migration to loyalty's first migration (issue 12)."""
    creators = set()
    for app in APPS:
        for path in sorted((ROOT / app / "migrations").glob("*.py")):
            if "CREATE OR REPLACE FUNCTION loyalty_" in path.read_text():
                creators.add(app)
    assert creators == {"loyalty"}
    first = (ROOT / "loyalty" / "migrations" / "0001_initial.py").read_text()
    assert "CREATE OR REPLACE FUNCTION loyalty_refuse_change()" in first


def test_every_refusal_code_of_the_api_edge_has_its_status_in_the_one_table():
    """The API edge's own refusals (missing header, unknown loyalty number, body too large...)
    take their status from the same table as the services' refusals: no class names one."""
    import django

    django.setup()
    from loyalty.api.errors import ApiRefusal
    from loyalty.kernel.statuses import REFUSAL_STATUS

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    import members.api.urls  # noqa: F401 (loads the member API's refusals)
    import vouchers.api.urls  # noqa: F401

    found = {sub.__name__: sub.default_code for sub in subclasses(ApiRefusal)}
    assert found and {name: code for name, code in found.items() if code not in REFUSAL_STATUS} == {}
    assert all("status_code" not in vars(sub) for sub in subclasses(ApiRefusal))
