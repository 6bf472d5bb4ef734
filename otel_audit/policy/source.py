"""Find a policy document (``pack:NAME``, a file, inline text) and read it (YAML or JSON),
remembering where each key and value came from.

PyYAML's composer gives every node a start mark; we build the Python value and a map from the
path of each value (``("rules", 3, "level")``) to its line and column in one walk, so schema and
semantic errors can point at the exact spot. Anchors/aliases are allowed but the expanded size is
capped (no "billion laughs"), recursive aliases and duplicate keys are rejected.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path as FsPath
from typing import Any

import yaml

from otel_audit.policy.errors import PolicyError, Problem, format_path, shown

MAX_NODES = 100_000
MAX_BYTES = 2 * 1024 * 1024
#: The name an inline ``OTEL_AUDIT_POLICY`` document goes by in messages.
INLINE_NAME = "<OTEL_AUDIT_POLICY>"

Path = tuple[Any, ...]


@dataclass
class Document:
    """A parsed document: its data, its name for messages, and where each path sits in it."""

    data: Any
    name: str
    value_marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    base_dir: str | None = None  # for relative ``extends:`` paths

    def mark(self, path: Path, key: bool = False) -> tuple[int, int] | tuple[None, None]:
        """Line/column of ``path`` (of its key when ``key``), else of the nearest enclosing value."""
        marks = self.key_marks if key else self.value_marks
        if path in marks:
            return marks[path]
        while path:
            path = path[:-1]
            if path in self.value_marks:
                return self.value_marks[path]
        return (None, None)

    def problem(self, path: Path, message: str, key: bool = False) -> Problem:
        line, column = self.mark(tuple(path), key)
        return Problem(format_path(path) if path else "", message, self.name, line, column)


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, doc: Document) -> None:
        self.loader = loader
        self.doc = doc
        self.count = 0
        self.active: set[int] = set()

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise PolicyError.single(
                f"document is too large: more than {MAX_NODES} values once anchors are expanded",
                self.doc.name, format_path(path), node.start_mark.line + 1, node.start_mark.column + 1)
        if id(node) in self.active:
            raise PolicyError.single("recursive alias: a value contains itself", self.doc.name, format_path(path),
                                     node.start_mark.line + 1, node.start_mark.column + 1)
        self.doc.value_marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.ScalarNode):
            return self.loader.construct_object(node, deep=True)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(child, path + (index,)) for index, child in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                self.loader.flatten_mapping(node)  # resolves "<<" merge keys
                out: dict[Any, Any] = {}
                for key_node, value_node in node.value:
                    key = self.build_key(key_node, path)
                    if key in out:
                        line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                        raise PolicyError.single(f"duplicate key {shown(key)}", self.doc.name,
                                                 format_path(path), line, column)
                    self.doc.key_marks[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                    out[key] = self.build(value_node, path + (key,))
                return out
        finally:
            self.active.discard(id(node))
        raise PolicyError.single("unsupported YAML node", self.doc.name, format_path(path))  # pragma: no cover

    def build_key(self, node: yaml.Node, path: Path) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise PolicyError.single("a mapping key must be a plain value, not a list or mapping", self.doc.name,
                                     format_path(path), node.start_mark.line + 1, node.start_mark.column + 1)
        key = self.loader.construct_object(node, deep=True)
        try:
            hash(key)
        except TypeError:  # pragma: no cover - scalars are hashable
            raise PolicyError.single("unhashable mapping key", self.doc.name, format_path(path)) from None
        return key


def parse(text: str | bytes, name: str, base_dir: str | None = None) -> Document:
    """Parse YAML (JSON is YAML) with marks. Raises :class:`PolicyError` only."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise PolicyError.single(f"document is larger than {MAX_BYTES} bytes", name)
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PolicyError.single(f"not UTF-8 text (byte {exc.start})", name) from None
    if len(text) > MAX_BYTES:
        raise PolicyError.single(f"document is larger than {MAX_BYTES} bytes", name)
    doc = Document(None, name, base_dir=base_dir)
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        raise PolicyError.single(f"not YAML text: unprintable character {exc.character!r} at offset {exc.position}",
                                 name) from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            if text.lstrip().startswith(("{", "[")):
                return _parse_json(text, name, base_dir, exc)
            mark = exc.problem_mark or exc.context_mark
            message = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
            raise PolicyError.single(f"YAML syntax error: {message}", name, "",
                                     mark.line + 1 if mark else None, mark.column + 1 if mark else None) from None
        except yaml.reader.ReaderError as exc:
            raise PolicyError.single(
                f"not YAML text: unprintable character {exc.character!r} at offset {exc.position}", name) from None
        except yaml.YAMLError as exc:
            raise PolicyError.single(f"YAML error: {type(exc).__name__}", name) from None
        if node is None:
            raise PolicyError.single("the document is empty: expected a mapping with rules, defaults, ...", name)
        builder = _Builder(loader, doc)
        try:
            doc.data = builder.build(node, ())
        except yaml.constructor.ConstructorError as exc:
            mark = exc.problem_mark
            raise PolicyError.single(f"YAML value error: {exc.problem}", name, "",
                                     mark.line + 1 if mark else None, mark.column + 1 if mark else None) from None
        except (RecursionError, ValueError, OverflowError) as exc:
            raise PolicyError.single(f"YAML value error: {type(exc).__name__}", name) from None
    finally:
        loader.dispose()
    return doc


def _parse_json(text: str, name: str, base_dir: str | None, yaml_error: Exception) -> Document:
    """JSON that YAML 1.1 refuses (tabs, for example): parse as JSON, without marks."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError.single(f"JSON syntax error: {exc.msg}", name, "", exc.lineno, exc.colno) from None
    except RecursionError:
        raise PolicyError.single("JSON nested too deeply", name) from None
    return Document(data, name, base_dir=base_dir)


# ---------------------------------------------------------------------------------------------
# Finding the document


def pack_names() -> list[str]:
    packs = resources.files("otel_audit.policy").joinpath("packs")
    names = ["default"]
    if packs.is_dir():
        names += sorted(p.name[: -len(".yaml")] for p in packs.iterdir() if p.name.endswith(".yaml"))
    return names


def read_pack(name: str, referrer: str) -> Document:
    package = resources.files("otel_audit.policy")
    resource = package.joinpath("defaults.yaml") if name == "default" else package.joinpath("packs", f"{name}.yaml")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or not resource.is_file():
        raise PolicyError.single(f"unknown policy pack {name!r}: available packs are {', '.join(pack_names())}",
                                 referrer)
    return parse(resource.read_bytes(), f"pack:{name}")


def read_file(path: str, referrer: str) -> Document:
    try:
        data = FsPath(path).read_bytes()
    except FileNotFoundError:
        raise PolicyError.single(f"policy file {path!r} does not exist", referrer) from None
    except IsADirectoryError:
        raise PolicyError.single(f"policy file {path!r} is a directory", referrer) from None
    except OSError as exc:
        raise PolicyError.single(f"cannot read policy file {path!r}: {exc.strerror}", referrer) from None
    return parse(data, path, base_dir=str(FsPath(path).parent))


def looks_inline(source: str) -> bool:
    """Inline YAML/JSON rather than a file name: braces, several lines, or ``key: value``."""
    stripped = source.strip()
    return stripped.startswith(("{", "[")) or "\n" in stripped or bool(re.match(r"^[\w$-]+:\s", stripped))


def read_source(source: str) -> Document:
    """``OTEL_AUDIT_POLICY`` value -> document: ``pack:NAME``, an existing file, or inline text."""
    if source.startswith("pack:"):
        return read_pack(source[5:], "OTEL_AUDIT_POLICY")
    if os.path.exists(source):
        return read_file(source, "OTEL_AUDIT_POLICY")
    if looks_inline(source):
        return parse(source, INLINE_NAME)
    raise PolicyError.single(
        f"policy file {source!r} does not exist (expected a file path, inline YAML/JSON or pack:NAME)",
        "OTEL_AUDIT_POLICY")
