"""The pytest plugin, exercised the way users meet it: test files run by pytest's own pytester.

Each test writes a small suite (a real Flask app or manual ``otel_audit.record`` calls), runs it
with the plugin loaded from its ``pytest11`` entry point, and checks outcomes and failure messages.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from otel_audit import runtime

APP = '''
import pytest
import otel_audit
from flask import Flask, jsonify, request

def make_app():
    app = Flask(__name__)

    @app.post("/login")
    def login():
        if request.form.get("password") == "right-password":
            return "", 302, {"Location": "/home"}
        return "<form>try again</form>", 200

    @app.delete("/admin/users/<name>")
    def delete_user(name):
        return "", 204

    return app

@pytest.fixture
def client():
    return make_app().test_client()
'''

POLICY = '''
routes:
  - id: delete-user
    request: "DELETE /admin/users/{name}"
    category: admin
    action: delete_user
rules:
  - id: admin-actions
    match: {category: admin}
    level: full
'''


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in list(os.environ):
        if name.startswith(("OTEL_AUDIT_", "OTEL_EXPORTER_OTLP", "OTEL_LOGS_EXPORTER")):
            monkeypatch.delenv(name)
    runtime.reset_for_tests()
    pytester.makeconftest(APP)
    pytester.makefile(".yaml", policy=POLICY)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "-q", *args)


# -- assert_audited --------------------------------------------------------------------------------


def test_assert_audited_passes_on_a_classified_failed_login(suite: pytest.Pytester) -> None:
    suite.makepyfile('''
        from otel_audit.redaction.pseudonyms import pseudonymise

        def test_login(client, audit_trail):
            client.post("/login", data={"username": "alice", "password": "wrong"})
            record = audit_trail.assert_audited(event="audit.authentication.login_failed", outcome="failure",
                                                route="/login", attributes={"audit.attempted_username": pseudonymise("alice")})
            assert record["attributes"]["audit.rule"] == "default"
            audit_trail.assert_audited(event="audit.authentication.*", count=1)
    ''')
    run(suite).assert_outcomes(passed=1)


def test_assert_audited_failure_shows_the_nearest_records_and_what_mismatched(suite: pytest.Pytester) -> None:
    suite.makepyfile('''
        from otel_audit.redaction.pseudonyms import pseudonymise

        def test_login(client, audit_trail):
            client.post("/login", data={"username": "alice", "password": "wrong"})
            audit_trail.assert_audited(event="audit.authentication.login", outcome="success", route="/login")
    ''')
    result = run(suite)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*no audit record matches event='audit.authentication.login', outcome='success', route='/login'",
        "*records were captured; the nearest:",
        "*#2 audit.authentication.login_failed outcome=failure POST /login status=200 rule=default*[[]1/3 criteria met]",
        "*event: expected 'audit.authentication.login', got 'audit.authentication.login_failed' (event_name)",
        "*outcome: expected 'success', got 'failure' (audit.outcome)",
        "*all event names: audit.audit_system.start, audit.audit_system.policy_loaded, "
        "audit.authentication.login_failed",
    ])
    # the nearest record comes first, and the test's own line is where the failure points
    text = result.stdout.str()
    assert text.index("#2 audit.authentication.login_failed") < text.index("#1 audit.audit_system.policy_loaded")
    assert "assert_audited(event=\"audit.authentication.login\"" in text


def test_assert_audited_with_count_lists_what_was_found(suite: pytest.Pytester) -> None:
    suite.makepyfile('''
        def test_twice(client, audit_trail):
            client.post("/login", data={"password": "wrong"})
            client.post("/login", data={"password": "wrong"})
            audit_trail.assert_audited(event="audit.authentication.login_failed", count=1)
    ''')
    result = run(suite)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*expected 1 audit record matching event='audit.authentication.login_failed', found 2:",
        "*- audit.authentication.login_failed outcome=failure POST /login status=200*",
    ])


def test_assert_audited_rejects_unknown_criteria(suite: pytest.Pytester) -> None:
    suite.makepyfile('''
        def test_typo(audit_trail):
            audit_trail.assert_audited(evnt="audit.x.y")
    ''')
    result = run(suite)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*TypeError: unknown audit criterion 'evnt'; expected one of *event*"])


# -- assert_not_audited ----------------------------------------------------------------------------


def test_assert_not_audited_pass_and_fail(suite: pytest.Pytester) -> None:
    suite.makepyfile('''
        import pytest

        @pytest.mark.audit_policy("policy.yaml")
        def test_delete_is_not_a_plain_request(client, audit_trail):
            client.delete("/admin/users/carol")
            audit_trail.assert_audited(event="audit.admin.delete_user", rule="admin-actions", level="full")
            audit_trail.assert_not_audited(event="audit.http.request", method="DELETE")

        @pytest.mark.audit_policy("policy.yaml")
        def test_fails_when_it_was_audited(client, audit_trail):
            client.delete("/admin/users/carol")
            audit_trail.assert_not_audited(category="admin")
    ''')
    result = run(suite)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*expected no audit record matching category='admin', found 1:",
        "*- audit.admin.delete_user outcome=success DELETE /admin/users/<name> status=204 rule=admin-actions level=full",
    ])


# -- assert_no_secrets -----------------------------------------------------------------------------


def test_assert_no_secrets_passes_when_redaction_worked(suite: pytest.Pytester) -> None:
    suite.makepyfile('''
        import pytest

        @pytest.mark.audit_policy("rules: [{id: everything, match: {}, level: full}]")
        def test_password_redacted(client, audit_trail):
            client.post("/login", data={"username": "alice", "password": "s3cret-pass"})
            record = audit_trail.assert_audited(event="audit.authentication.login_failed")
            assert "audit.request.body" in record["attributes"]  # the body was recorded, redacted
            audit_trail.assert_no_secrets("s3cret-pass")
    ''')
    run(suite).assert_outcomes(passed=1)


def test_assert_no_secrets_finds_detected_and_literal_secrets_without_printing_them(suite: pytest.Pytester) -> None:
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    suite.makepyfile(f'''
        import otel_audit, pytest

        @pytest.mark.audit_policy("redaction: {{detectors: {{github_token: 'off'}}}}")
        def test_leaks(audit_trail):
            otel_audit.record("configuration", "update_setting", attributes={{"audit.note": "found {token}",
                                                                             "audit.comment": "pw is Tr0ub4dor&3x"}})
            audit_trail.assert_no_secrets("Tr0ub4dor&3x")
    ''')
    result = run(suite)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*secrets found in * captured audit records:",
        "*record 2 audit.configuration.update_setting: attributes[[]'audit.comment'] contains literal secret #1 "
        "'T…' (12 chars)",
        "*record 2 audit.configuration.update_setting: attributes[[]'audit.note'] holds a github_token "
        "('g…' (40 chars) at 6-46)",
    ])
    text = result.stdout.str()
    failure = text[text.index("secrets found in"):]
    assert token not in failure and "Tr0ub4dor&3x\"" not in failure.replace('assert_no_secrets("Tr0ub4dor&3x")', "")


def test_assert_no_secrets_needs_meaningful_literals(suite: pytest.Pytester) -> None:
    suite.makepyfile('''
        import pytest

        def test_short(audit_trail):
            with pytest.raises(ValueError, match="at least 4 characters"):
                audit_trail.assert_no_secrets("ab")
    ''')
    run(suite).assert_outcomes(passed=1)


# -- assert_schema ---------------------------------------------------------------------------------


def test_assert_schema_pass_and_fail(suite: pytest.Pytester) -> None:
    suite.makepyfile('''
        import otel_audit, pytest
        from otel_audit import Target

        REQUIRE_TARGET = "required_fields: {data_access: [audit.target.id]}"

        @pytest.mark.audit_policy(REQUIRE_TARGET)
        def test_complete(audit_trail):
            otel_audit.record("data_access", "export", actor="u1", target=Target(type="report", id="r-7"))
            audit_trail.assert_schema()
            audit_trail.assert_schema("enduser.id")

        @pytest.mark.audit_policy(REQUIRE_TARGET)
        def test_incomplete(audit_trail):
            otel_audit.record("data_access", "export", target=Target(type="report"))
            audit_trail.assert_schema()

        def test_extra_field_missing(audit_trail):
            otel_audit.record("data_access", "export")
            audit_trail.assert_schema("audit.target.type")
    ''')
    result = run(suite)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*1 of 3 audit records do not meet the schema:",
        "*record 2 audit.data_access.export: missing audit.target.id; marked audit.incomplete "
        "(missing [[]'audit.target.id'])",
        "*1 of 3 audit records do not meet the schema:",
        "*record 2 audit.data_access.export: missing audit.target.type",
    ])


# -- policy sources ----------------------------------------------------------------------------------


def test_policy_from_marker_ini_and_environment(suite: pytest.Pytester) -> None:
    suite.makeini('''
        [pytest]
        audit_policy = policy.yaml
    ''')
    suite.makepyfile('''
        import pytest

        def test_ini_policy(audit_trail):
            assert audit_trail.policy.id == "policy"

        @pytest.mark.audit_policy("id: from-marker")
        def test_marker_wins(audit_trail):
            assert audit_trail.policy.id == "from-marker"

        @pytest.mark.audit_policy("pack:default")
        def test_pack(audit_trail):
            assert audit_trail.policy.id == "otel-audit-default"
    ''')
    run(suite).assert_outcomes(passed=3)


def test_policy_from_environment_when_nothing_else_says(suite: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_AUDIT_POLICY", "id: from-env")
    suite.makepyfile('''
        def test_env(audit_trail):
            assert audit_trail.policy.id == "from-env"
    ''')
    run(suite).assert_outcomes(passed=1)


def test_a_broken_policy_errors_the_test_with_every_problem(suite: pytest.Pytester) -> None:
    suite.makepyfile('''
        import pytest

        @pytest.mark.audit_policy("rules: [{id: x, match: {}, level: verbose}]")
        def test_never_runs(audit_trail):
            pass

        @pytest.mark.audit_policy("missing.yaml")
        def test_missing_file(audit_trail):
            pass
    ''')
    result = run(suite)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([
        "*audit_trail: the audit policy is invalid:",
        "*rules[[]0].level: 'verbose' is not one of none, metadata, request, full*",
        "*@pytest.mark.audit_policy: policy file 'missing.yaml' not found (looked at */missing.yaml, */missing.yaml)",
    ])
    assert "Traceback" not in result.stdout.str() and "policy_source_for(request)" not in result.stdout.str()


# -- isolation and opt-in ------------------------------------------------------------------------------


def test_each_test_sees_only_its_own_records(suite: pytest.Pytester) -> None:
    suite.makepyfile('''
        import otel_audit

        def test_first(audit_trail):
            otel_audit.record("configuration", "first_thing")
            assert audit_trail.event_names == ["audit.configuration.first_thing"]

        def test_second(audit_trail):
            otel_audit.record("configuration", "second_thing")
            audit_trail.assert_not_audited(action="first_thing")
            assert audit_trail.event_names == ["audit.configuration.second_thing"]
            audit_trail.clear()
            assert audit_trail.records == []
    ''')
    run(suite).assert_outcomes(passed=2)


def test_suites_that_do_not_use_the_fixture_are_untouched(suite: pytest.Pytester) -> None:
    suite.makepyfile('''
        import os, flask
        from otel_audit import runtime
        from otel_audit.instrumentation.flask import FlaskAuditInstrumentor

        def test_nothing_started():
            assert runtime._runtime is None
            assert not any(name.startswith("OTEL_AUDIT_") for name in os.environ)
            assert not FlaskAuditInstrumentor().is_instrumented_by_opentelemetry
            assert "_otel_audit" not in repr(flask.Flask.full_dispatch_request)
    ''')
    run(suite).assert_outcomes(passed=1)


def test_runtime_environment_and_adapters_are_restored_after_the_test(suite: pytest.Pytester) -> None:
    suite.makepyfile('''
        import os
        from otel_audit import runtime
        from otel_audit.instrumentation.flask import FlaskAuditInstrumentor

        def test_uses_it(audit_trail):
            assert runtime._runtime is audit_trail.runtime
            assert FlaskAuditInstrumentor().is_instrumented_by_opentelemetry

        def test_after():
            assert runtime._runtime is None
            assert "OTEL_AUDIT_SPOOL_DIR" not in os.environ and "OTEL_AUDIT_POLICY" not in os.environ
            assert not FlaskAuditInstrumentor().is_instrumented_by_opentelemetry
    ''')
    run(suite).assert_outcomes(passed=2)


def test_a_runtime_started_before_comes_back(tmp_path, monkeypatch) -> None:
    from otel_audit.testing import AuditTrail

    for name in list(os.environ):
        if name.startswith("OTEL_AUDIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OTEL_AUDIT_SINK_PATH", str(tmp_path / "outer.jsonl"))
    monkeypatch.setenv("OTEL_AUDIT_SPOOL_DIR", str(tmp_path / "outer-spool"))
    monkeypatch.setenv("OTEL_AUDIT_QUIET", "1")
    runtime.reset_for_tests()
    outer = runtime.start()
    try:
        trail = AuditTrail(workdir=tmp_path / "inner", instrument=["none"]).start()
        assert runtime.get_runtime() is trail.runtime is not outer
        assert os.environ["OTEL_AUDIT_SPOOL_DIR"] == str(tmp_path / "inner" / "spool")
        trail.stop()
        assert runtime.get_runtime() is outer
        assert os.environ["OTEL_AUDIT_SPOOL_DIR"] == str(tmp_path / "outer-spool")
        assert "OTEL_AUDIT_HMAC_KEY" not in os.environ
    finally:
        runtime.reset_for_tests()


def test_the_plugin_loads_from_its_entry_point_and_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
        import sys

        def test_loaded(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("otel_audit")
            for heavy in ("flask", "django", "starlette", "sqlalchemy", "otel_audit.testing.trail"):
                assert heavy not in sys.modules, heavy
    ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)


def test_importing_the_plugin_has_no_side_effects() -> None:
    code = ("import os, sys; before = dict(os.environ); import otel_audit.testing.pytest_plugin; "
            "from otel_audit import runtime; assert runtime._runtime is None; assert dict(os.environ) == before; "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('flask', 'django', 'starlette', 'sqlalchemy')]")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
