"""Fuzzing the loader: generated documents either load or raise PolicyError - never a raw
KeyError/TypeError/RecursionError from inside the loader."""

from __future__ import annotations

import json

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_audit.errors import OtelAuditError
from otel_audit.policy import PolicyError, load_policy
from otel_audit.policy.loader import load_document
from otel_audit.policy.source import Document, parse

# Keys the policy knows, so generated documents get past the top level often enough to be interesting.
KEYS = ["id", "version", "format", "extends", "defaults", "rules", "audit_configs", "routes", "match", "level",
        "log_success", "log_failure", "required", "attributes", "tags", "category", "action", "method", "path",
        "status", "outcome", "actor_role", "actor_id", "db_table", "db_operation", "resource_type", "user_filter",
        "request", "success_when", "failure_when", "redirect", "redirect_not", "response_header",
        "session_changed", "actor_changed", "failure_action", "actors", "sources", "admin_roles",
        "record_attempted_username", "username_fields", "required_fields", "failure_mode", "redaction", "*",
        "http", "admin", "unknown_key"]
WORDS = ["none", "metadata", "request", "full", "admin_only", "non_admin", "all", "POST /login", "/admin/*",
         "/users/{id}", "{", "}", "4xx", "599-500", "pack:default", "pack:nope", "jwt:sub", "session:user_id",
         "resolver:os:getcwd", "cookie:x", "hmac", "closed", "open", "authentication", "login", "delete_*",
         "DELETE", "GET POST", "", "users/*", "..", "/tmp"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10, max_value=1000),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(WORDS), st.text(max_size=12),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.integers(), st.text(max_size=5)), children, max_size=5),
    ),
    max_leaves=30,
)
policies = st.dictionaries(st.sampled_from(KEYS), documents, max_size=6)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies)
def test_generated_documents_load_or_raise_policy_error(data) -> None:
    try:
        load_document(Document(data, "fuzz.yaml"))
    except PolicyError as exc:
        assert isinstance(exc, OtelAuditError) and exc.problems and str(exc)


@settings(max_examples=200, deadline=None)
@given(policies)
def test_generated_yaml_and_json_text_load_or_raise_policy_error(data) -> None:
    for text in (yaml.safe_dump(data, allow_unicode=True), json.dumps(data, default=str)):
        try:
            load_policy(text if "\n" in text.strip() or text.startswith("{") else text + "\n", environ={})
        except PolicyError as exc:
            assert exc.problems


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_raises_policy_error(text) -> None:
    try:
        parse(text, "fuzz.yaml")
    except PolicyError as exc:
        assert exc.problems[0].document == "fuzz.yaml"
