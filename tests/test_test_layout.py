"""The test suite's own shape: fixtures come from conftest.py files (pytest's plugins), and
shared helpers from modules that are not test modules, so no module under tests/ imports a
``test_*`` module (an imported test module runs its tests twice and drags its autouse
fixtures into the importer)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _imported_modules(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """Every module ``path`` imports (at any depth, relative imports resolved), with its line."""
    package = ".".join(path.relative_to(TESTS.parent).with_suffix("").parts[:-1])
    found = []
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.append((node.lineno, module))
            # ``from tests.x import test_y`` imports a module too.
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _is_test_module(name: str) -> bool:
    parts = name.split(".")
    return (
        parts[0] == "tests"
        and parts[-1].startswith("test_")
        and (TESTS.parent / f"{name.replace('.', '/')}.py").exists()
    )


def test_no_module_under_tests_imports_a_test_module():
    offenders = [
        f"{path.relative_to(TESTS.parent)}:{line} imports {module}"
        for path in sorted(TESTS.rglob("*.py"))
        for line, module in _imported_modules(path)
        if _is_test_module(module)
    ]
    advice = "move shared fixtures to a conftest.py and plain helpers to a module not named test_*"
    assert offenders == [], "\n".join([advice, *offenders])


def test_the_check_sees_every_form_of_import():
    """The check itself: absolute, from-, relative and nested imports of a test module are found."""
    source = (
        "import tests.vouchers.test_issuing\n"
        "from tests.vouchers.test_redemption import open_shift\n"
        "from . import test_till_points\n"
        "from .test_shifts import clock_in\n"
        "def f():\n    from tests.vouchers.test_limits import cap\n"
        "from tests.vouchers.till_helpers import give\n"
    )
    imported = _imported_modules(TESTS / "vouchers" / "probe.py", source)
    assert sorted(module for _, module in imported if _is_test_module(module)) == [
        "tests.vouchers.test_issuing",
        "tests.vouchers.test_limits",
        "tests.vouchers.test_redemption",
        "tests.vouchers.test_shifts",
        "tests.vouchers.test_till_points",
    ]
