"""Load a policy: find the document (``source.py``), check it against the JSON Schema
(``schema_messages.py``), normalise it (``normalise.py``), resolve ``extends:`` and apply the
``OTEL_AUDIT_POLICY_*`` overrides (``merge.py``), and produce a :class:`PolicyModel`.

Every failure is a :class:`PolicyError` whose problems name the document, the path inside it, what
was expected and the line/column. Nothing else escapes: the fuzz test feeds generated documents.
"""

from __future__ import annotations

import re
from pathlib import Path as FsPath
from typing import Any, Mapping

from otel_audit.config import process_environ
from otel_audit.policy.errors import PolicyError
from otel_audit.policy.merge import env_partials, merge, resolve
from otel_audit.policy.model import (
    ADMIN,
    DEFAULT_ADMIN_ROLES,
    ActorSettings,
    Critical,
    Defaults,
    LocalTimeSettings,
    PolicyModel,
    Rule,
)
from otel_audit.policy.source import INLINE_NAME, Document, looks_inline, read_pack, read_source


def _finalise(partial: Mapping[str, Any], default_id: str, sources: tuple[str, ...]) -> PolicyModel:
    actors = dict(partial.get("actors", {}))
    admin_roles = tuple(actors.get("admin_roles", DEFAULT_ADMIN_ROLES))
    rules = tuple(_expand_admin(rule, admin_roles) for rule in partial.get("rules", []))
    return PolicyModel(
        id=str(partial.get("id") or default_id),
        version=str(partial.get("version", "0")),
        description=partial.get("description"),
        failure_mode=partial.get("failure_mode", "open"),
        defaults=Defaults(**partial.get("defaults", {})),
        redaction=partial.get("redaction", {}),
        required_fields=tuple(sorted((k, tuple(v)) for k, v in partial.get("required_fields", {}).items())),
        actors=ActorSettings(**actors),
        rules=rules,
        routes=tuple(partial.get("routes", [])),
        local_time=LocalTimeSettings(**partial.get("local_time", {})),
        critical=Critical(**partial.get("critical", {})),
        sources=sources,
        notes=tuple(partial.get("notes", ())),
    )


def _expand_admin(rule: Rule, admin_roles: tuple[str, ...]) -> Rule:
    match = rule.match
    if ADMIN not in match.actor_roles and ADMIN not in match.actor_not_roles:
        return rule

    def expand(roles: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r for role in roles for r in (admin_roles if role == ADMIN else (role,))))

    from dataclasses import replace

    return replace(rule, match=replace(match, actor_roles=expand(match.actor_roles),
                                       actor_not_roles=expand(match.actor_not_roles)))


def _default_id(doc: Document) -> str:
    if doc.name.startswith("pack:"):
        return doc.name[5:]
    if doc.name == INLINE_NAME:
        return "inline"
    stem = FsPath(doc.name).stem
    return re.sub(r"[^A-Za-z0-9._:-]", "-", stem).lstrip("._:-") or "policy"


def load_model(source: str | None, environ: Mapping[str, str] | None = None) -> PolicyModel:
    """The normalised policy for an ``OTEL_AUDIT_POLICY`` value (None: the built-in default)."""
    env = process_environ() if environ is None else environ
    try:
        doc = read_source(source) if source and source.strip() else read_pack("default", "built-in")
        partial = resolve(doc, (doc.name,), "")
        for overlay in env_partials(env):
            partial = merge(partial, overlay, inherit_identity=True)
        return _finalise(partial, _default_id(doc), (doc.name,))
    except PolicyError:
        raise
    except RecursionError:
        raise PolicyError.single("policy nested too deeply", source or "built-in") from None
    except Exception as exc:  # noqa: BLE001 - a loader bug must still surface as a policy error
        raise PolicyError.single(f"internal error while loading the policy ({type(exc).__name__})",
                                 source if source and not looks_inline(source) else INLINE_NAME) from exc


def load_document(doc: Document, environ: Mapping[str, str] | None = None) -> PolicyModel:
    """Like :func:`load_model` for an already parsed document (tests, the CLI)."""
    partial = resolve(doc, (doc.name,), "")
    for overlay in env_partials({} if environ is None else environ):
        partial = merge(partial, overlay, inherit_identity=True)
    return _finalise(partial, _default_id(doc), (doc.name,))
