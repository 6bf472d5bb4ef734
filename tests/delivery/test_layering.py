"""delivery/, the pipeline and the runtime read the environment only through otel_audit/config.py,
delivery/ imports nothing of the pipeline, the policy, redaction, the runtime or the adapters, and
no module of delivery/ is over 600 lines (issue #23)."""

from __future__ import annotations

import ast
from pathlib import Path

import otel_audit

PACKAGE = Path(otel_audit.__file__).parent
MODULES = [*sorted((PACKAGE / "delivery").glob("*.py")), PACKAGE / "pipeline.py", PACKAGE / "runtime.py"]
DELIVERY_MAY_NOT_IMPORT = ("otel_audit.pipeline", "otel_audit.policy", "otel_audit.redaction", "otel_audit.runtime",
                           "otel_audit.instrumentation", "otel_audit.recording", "otel_audit.sink")


def _environment_reads(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb") \
                and isinstance(node.value, ast.Name) and node.value.id == "os":
            lines.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "os" and any(
                alias.name in ("environ", "getenv") for alias in node.names):
            lines.append(node.lineno)
    return lines


def _imports(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_the_environment_is_read_through_config_only() -> None:
    found = {str(path.relative_to(PACKAGE)): lines for path in MODULES
             if (lines := _environment_reads(ast.parse(path.read_text())))}
    assert not found, f"os.environ read outside config.py: {found}"


def test_delivery_imports_none_of_the_rooms_that_use_it() -> None:
    found = {path.name: bad for path in sorted((PACKAGE / "delivery").glob("*.py"))
             if (bad := [name for name in _imports(ast.parse(path.read_text()))
                         if name.startswith(DELIVERY_MAY_NOT_IMPORT)])}
    assert not found, found


def test_no_delivery_module_is_over_600_lines() -> None:
    sizes = {path.name: len(path.read_text().splitlines()) for path in sorted((PACKAGE / "delivery").glob("*.py"))}
    assert max(sizes.values()) <= 600, sizes
