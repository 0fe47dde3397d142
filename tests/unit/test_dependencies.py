"""Declared dependencies are the ones used: every runtime dependency in pyproject.toml is
imported by dunline's own packages (or, for a database driver, named in the URL that loads
it), and nothing dunline imports from outside the standard library goes undeclared."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from tests.packages import PACKAGES, ROOT

# loaded by name, not by import: SQLAlchemy imports the driver a database URL names
LOADED_BY_NAME = {"aiosqlite": "sqlite+aiosqlite", "asyncpg": "postgresql+asyncpg"}
# imported directly, pinned by the declared package that ships them (boto3 pins its botocore)
PROVIDED_BY = {"botocore": "boto3"}
# files that travel without dunline (the bags' verifier): their imports are theirs
STANDALONE = {ROOT / "recorder" / "standalone" / "verify_bag.py"}


def _declared() -> dict[str, str]:
    """Runtime dependencies (with the postgres extra): normalised distribution -> spec."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = [*project["dependencies"], *project["optional-dependencies"].get("postgres", [])]
    return {re.split(r"[\[<>=!~ ;]", spec, maxsplit=1)[0].lower().replace("_", "-"): spec for spec in specs}


def _imported_top_levels() -> set[str]:
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path in STANDALONE:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module.split(".")[0])
    return found - set(PACKAGES) - set(sys.stdlib_module_names) - {"__future__"}


def _distributions_of(modules: set[str]) -> set[str]:
    table = packages_distributions()
    return {dist.lower().replace("_", "-") for module in modules for dist in table.get(module, [module])}


def _source_text() -> str:
    return "\n".join(p.read_text() for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_every_declared_runtime_dependency_is_used():
    used = _distributions_of(_imported_top_levels())
    text = _source_text()
    unused = sorted(dist for dist in _declared()
                    if dist not in used and not (dist in LOADED_BY_NAME and LOADED_BY_NAME[dist] in text))
    assert unused == [], f"declared in pyproject.toml but never imported: {unused}"


def test_nothing_imported_is_undeclared():
    declared = set(_declared())
    # webrtcvad-wheels provides the module webrtcvad; SQLAlchemy's [asyncio] extra greenlet is its own
    undeclared = sorted(d for d in _distributions_of(_imported_top_levels()) - declared
                        if PROVIDED_BY.get(d) not in declared)
    assert undeclared == [], f"imported but not declared in pyproject.toml: {undeclared}"


def test_the_finder_would_notice_an_unused_one(monkeypatch):
    import tests.unit.test_dependencies as me

    real = _declared()
    monkeypatch.setattr(me, "_declared", lambda: {**real, "left-pad": "left-pad>=1"})
    try:
        me.test_every_declared_runtime_dependency_is_used()
    except AssertionError as exc:
        assert "left-pad" in str(exc)
    else:
        raise AssertionError("an unused declared dependency went unnoticed")
