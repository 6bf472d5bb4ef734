"""policy/ and redaction/ stay out of the adapters and out of the environment (issue #23): they
import nothing from ``otel_audit.instrumentation`` and read no environment variable themselves
(``otel_audit.config`` does); no module of theirs is over ~600 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "otel_audit"
MODULES = sorted(p for room in ("policy", "redaction") for p in (PACKAGE / room).glob("*.py"))


def _imports(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_adapter_import_no_environment_read_and_not_too_long(path: Path) -> None:
    source = path.read_text()
    tree = ast.parse(source)
    assert not [name for name in _imports(tree) if name.startswith("otel_audit.instrumentation")]
    environment = [
        node.lineno for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb")
        or isinstance(node, ast.ImportFrom) and node.module == "os" and any(a.name in ("environ", "getenv") for a in node.names)
    ]  # fmt: skip
    assert not environment, f"environment read at line(s) {environment}: go through otel_audit.config"
    assert len(source.splitlines()) <= 600
