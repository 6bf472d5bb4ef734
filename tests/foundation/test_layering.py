"""The house rules of docs/ARCHITECTURE.md, checked over the source (``ast``), so a shortcut that
breaks them fails here and not in a reviewer's head: frameworks are imported only by their adapter
package; ``policy/`` and ``redaction/`` never import an adapter; ``delivery/`` imports none of the
rooms that use it; the environment is read only in ``config.py``; no module grows past ~600 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "otel_audit"
MAX_LINES = 600

#: Top-level module -> the adapter package that alone may import it.
FRAMEWORKS = {
    "flask": "instrumentation/flask", "flask_login": "instrumentation/flask", "werkzeug": "instrumentation/flask",
    "flask_sqlalchemy": "instrumentation/flask",
    "django": "instrumentation/django",
    "starlette": "instrumentation/starlette", "fastapi": "instrumentation/starlette",
    "sqlalchemy": "instrumentation/sqlalchemy",
    "psycopg": "instrumentation/dbapi",
}
#: Environment access outside config.py that is not a read of ours, each with why.
ENVIRONMENT_EXCEPTIONS = {
    # Django reads its settings module from the environment: discovery tells it which one.
    ("instrumentation/django/routes.py", "setdefault"),
}


def _modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def _parsed() -> list[tuple[str, ast.AST, str]]:
    return [(_relative(path), ast.parse(path.read_text(), str(path)), path.read_text()) for path in _modules()]


def test_frameworks_are_imported_only_by_their_adapter_package() -> None:
    wrong = []
    for name, tree, _text in _parsed():
        for line, module in _imports(tree):
            owner = FRAMEWORKS.get(module.split(".")[0])
            if owner and not name.startswith(owner + "/"):
                wrong.append(f"otel_audit/{name}:{line} imports {module} (only {owner}/ may)")
    assert wrong == []


@pytest.mark.parametrize("room", ["policy", "redaction"])
def test_policy_and_redaction_import_no_adapter(room: str) -> None:
    wrong = [f"otel_audit/{name}:{line} imports {module}"
             for name, tree, _text in _parsed() if name.startswith(room + "/")
             for line, module in _imports(tree) if module.startswith("otel_audit.instrumentation")]
    assert wrong == []


#: delivery/ is below the pipeline: it never imports what calls it.
DELIVERY_MAY_NOT_IMPORT = ("otel_audit.pipeline", "otel_audit.policy", "otel_audit.redaction", "otel_audit.runtime",
                           "otel_audit.instrumentation", "otel_audit.recording", "otel_audit.action",
                           "otel_audit.context")


def test_delivery_imports_none_of_the_rooms_that_use_it() -> None:
    wrong = [f"otel_audit/{name}:{line} imports {module}"
             for name, tree, _text in _parsed() if name.startswith("delivery/")
             for line, module in _imports(tree) if module.startswith(DELIVERY_MAY_NOT_IMPORT)]
    assert wrong == []


def _environment_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """``os.environ`` (any use) and ``os.getenv``/``os.putenv``, with the method called on environ."""
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ("environ", "getenv", "environb"):
            uses.append((node.lineno, node.attr))
        elif isinstance(node, ast.ImportFrom) and node.module == "os" \
                and any(alias.name in ("environ", "getenv") for alias in node.names):
            uses.append((node.lineno, "from os import"))
    calls = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                and isinstance(node.value.value, ast.Name) and node.value.value.id == "os" and node.value.attr == "environ":
            calls[node.value.lineno] = node.attr
    return [(line, calls.get(line, kind)) for line, kind in uses]


def test_the_environment_is_read_only_in_config() -> None:
    wrong = [f"otel_audit/{name}:{line} ({kind})"
             for name, tree, _text in _parsed() if name != "config.py"
             for line, kind in _environment_uses(tree) if (name, kind) not in ENVIRONMENT_EXCEPTIONS]
    assert wrong == []


def test_no_module_is_over_600_lines() -> None:
    long = {name: text.count("\n") for name, _tree, text in _parsed() if text.count("\n") > MAX_LINES}
    assert long == {}


def test_the_checks_see_a_violation() -> None:
    """The walkers find what they look for (so an empty list above means none, not a blind check)."""
    tree = ast.parse("import os\nimport flask.app\nfrom otel_audit.instrumentation import flask\nos.environ.get('X')\n")
    assert (2, "flask.app") in _imports(tree)
    assert (3, "otel_audit.instrumentation") in _imports(tree)
    assert _environment_uses(tree) == [(4, "get")]
