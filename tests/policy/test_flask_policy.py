"""The policy on real Flask requests (test client, real instrumentation, real runtime and sink)."""

from __future__ import annotations

import pytest

from otel_audit.instrumentation.flask import FlaskAuditInstrumentor
from tests.policy.apps import create_app, login, make_jwt

SEED = """\
audit_configs:
 - action: delete_resource
   log_success: true
   log_failure: true
   user_filter: admin_only
"""


@pytest.fixture(autouse=True)
def instrumented():
    instrumentor = FlaskAuditInstrumentor()
    instrumentor.instrument()
    yield
    instrumentor.uninstrument()


@pytest.fixture
def client():
    return create_app().test_client()


def requests_to(audit, path: str) -> list[dict]:
    return audit.records(lambda r: r["attributes"].get("url.path") == path)


# --- the seed's shorthand ---------------------------------------------------------------------


def test_seed_shorthand_audits_admin_deletes_on_success_and_failure(audit, client) -> None:
    audit.start(SEED)
    login(client, "alice", "wonderland")  # alice is an admin
    assert client.delete("/items/3").status_code == 204
    assert client.delete("/items/nope").status_code == 404  # no such route: a failed DELETE
    ok, failed = requests_to(audit, "/items/3") + requests_to(audit, "/items/nope")
    assert ok["attributes"]["audit.rule"] == "audit_configs[0]"
    assert ok["attributes"]["audit.outcome"] == "success"
    assert ok["attributes"]["enduser.id"] == "u-alice"
    assert failed["attributes"]["audit.rule"] == "audit_configs[0]"
    assert failed["attributes"]["audit.outcome"] == "failure"


def test_seed_shorthand_does_not_match_non_admin_deletes(audit, client) -> None:
    audit.start(SEED)
    login(client, "bob", "builder")  # bob is an editor
    client.delete("/items/3")
    [record] = requests_to(audit, "/items/3")
    assert record["attributes"]["enduser.id"] == "u-bob"
    assert record["attributes"]["audit.rule"] == "default"


def test_seed_shorthand_with_nothing_else_audited(audit, client) -> None:
    """With defaults.level none, only what the shorthand selects is recorded at all."""
    audit.start("defaults: {level: none}\n" + SEED)
    login(client, "bob", "builder")
    client.delete("/items/3")
    client.get("/items/3")
    assert requests_to(audit, "/items/3") == []
    client.get("/auth/logout")
    login(client, "alice", "wonderland")
    client.delete("/items/4")
    [record] = requests_to(audit, "/items/4")
    assert record["attributes"]["audit.rule"] == "audit_configs[0]"


def test_log_success_false_keeps_only_failures(audit, client) -> None:
    audit.start("audit_configs:\n - {action: delete_resource, log_success: false, log_failure: true}\n")
    client.delete("/items/3")
    client.delete("/admin/users/3")  # anonymous: 403
    assert requests_to(audit, "/items/3") == []
    [denied] = requests_to(audit, "/admin/users/3")
    assert denied["attributes"]["audit.outcome"] == "denied"


# --- login classification ---------------------------------------------------------------------


def test_form_login_failure_200_and_success_302_are_classified(audit, client) -> None:
    audit.start()  # the built-in default policy classifies */login
    assert login(client, "alice", "not-her-password").status_code == 200
    assert login(client, "alice", "wonderland").status_code == 302
    [failed] = audit.named("audit.authentication.login_failed")
    [succeeded] = audit.named("audit.authentication.login")
    attrs = failed["attributes"]
    assert attrs["audit.outcome"] == "failure"
    assert attrs["audit.attempted_username"].startswith("[HMAC:")  # the default: a pseudonym, not the name
    assert "alice" not in str(attrs)
    assert "enduser.id" not in attrs
    assert attrs["audit.http.original_action"] == "http.request"
    assert attrs["audit.classification.route"] == "builtin.login"
    ok = succeeded["attributes"]
    assert ok["audit.outcome"] == "success"
    assert ok["enduser.id"] == "u-alice"  # taken from the session the login just set
    assert ok["http.response.status_code"] == 302
    for record in audit.all_records():  # the password never leaves, at any level
        assert "not-her-password" not in str(record) and "wonderland" not in str(record)


def test_attempted_username_can_be_pseudonymised_or_omitted(audit, client) -> None:
    audit.start("actors: {record_attempted_username: hmac}\n", OTEL_AUDIT_HMAC_KEY="k1-0123456789abcdef")
    login(client, "mallory", "guess")
    [failed] = audit.named("audit.authentication.login_failed")
    pseudonym = failed["attributes"]["audit.attempted_username"]
    assert pseudonym.startswith("[HMAC:") and "mallory" not in pseudonym
    audit.start("actors: {record_attempted_username: false}\n")
    login(client, "mallory", "guess")
    failed = audit.named("audit.authentication.login_failed")[-1]
    assert "audit.attempted_username" not in failed["attributes"]


def test_logout_is_classified_with_the_actor_before_it(audit, client) -> None:
    audit.start()
    login(client, "bob", "builder")
    client.get("/auth/logout")
    [logout] = audit.named("audit.authentication.logout")
    assert logout["attributes"]["enduser.id"] == "u-bob"
    assert logout["attributes"]["audit.outcome"] == "success"


def test_own_routes_classify_and_override_the_builtin_ones(audit, client) -> None:
    audit.start("""
routes:
  - request: "POST /users/{id}/roles"
    category: authorization
    action: grant_role
  - request: "DELETE /admin/*"
    category: admin
    action: delete_resource
  - request: "POST /auth/login"
    category: authentication
    action: sign_on
    failure_action: sign_on_rejected
    success_when: {session_changed: true}
""")
    login(client, "alice", "wonderland")
    client.post("/users/7/roles", json={"role": "editor"})
    client.delete("/admin/users/9")
    login(client, "alice", "bad")
    [grant] = audit.named("audit.authorization.grant_role")
    assert grant["attributes"]["http.route"] == "/users/<int:user_id>/roles"
    assert grant["attributes"]["audit.outcome"] == "success"
    [delete] = audit.named("audit.admin.delete_resource")
    assert delete["attributes"]["enduser.id"] == "u-alice"
    assert len(audit.named("audit.authentication.sign_on")) == 1
    assert len(audit.named("audit.authentication.sign_on_rejected")) == 1
    assert audit.named("audit.authentication.login") == []


def test_flask_login_signal_and_route_give_one_login_record(audit) -> None:
    flask_login = pytest.importorskip("flask_login")
    import flask

    app = flask.Flask("fl")
    app.secret_key = "test-only"
    manager = flask_login.LoginManager(app)

    class User(flask_login.UserMixin):
        def __init__(self, user_id: str) -> None:
            self.id = user_id

    manager.user_loader(lambda user_id: User(user_id))

    @app.post("/login")
    def do_login():
        if flask.request.form.get("password") == "right":
            flask_login.login_user(User("u-7"))
            return flask.redirect("/")
        return "form", 200

    audit.start()
    client = app.test_client()
    client.post("/login", data={"username": "seven", "password": "wrong"})
    client.post("/login", data={"username": "seven", "password": "right"})
    logins = audit.named("audit.authentication.login")
    assert len(logins) == 1 and logins[0]["attributes"]["audit.origin"] == "flask_login"
    assert logins[0]["attributes"]["enduser.id"] == "u-7" and logins[0]["attributes"]["url.path"] == "/login"
    assert len(audit.named("audit.authentication.login_failed")) == 1
    # the signal and its request are one record, not two
    assert [r for r in audit.named("audit.http.request") if r["attributes"].get("url.path") == "/login"] == []


# --- actors -----------------------------------------------------------------------------------


def test_jwt_api_takes_enduser_id_from_sub(audit, client) -> None:
    audit.start("actors: {sources: ['jwt:sub']}\n")
    token = make_jwt({"sub": "svc-42", "roles": ["reader"]})
    client.put("/api/profile", json={"bio": "x"}, headers={"Authorization": f"Bearer {token}"})
    [record] = requests_to(audit, "/api/profile")
    attrs = record["attributes"]
    assert attrs["enduser.id"] == "svc-42"
    assert attrs["audit.actor.source"] == "jwt:sub"
    assert attrs["audit.actor.verified"] is False
    assert token not in str(record)


def test_admin_roles_are_configurable(audit, client) -> None:
    audit.start("actors: {admin_roles: [editor]}\n" + SEED)
    login(client, "bob", "builder")  # editor counts as admin now
    client.delete("/items/3")
    [record] = requests_to(audit, "/items/3")
    assert record["attributes"]["audit.rule"] == "audit_configs[0]"


# --- rules: order, levels, defaults -----------------------------------------------------------


def test_first_matching_rule_decides(audit, client) -> None:
    both = """
rules:
  - {id: %s, match: {path: "/items/*"}, level: metadata}
  - {id: %s, match: {method: GET}, level: request}
"""
    audit.start(both % ("by-path", "by-method"))
    client.get("/items/1")
    assert requests_to(audit, "/items/1")[-1]["attributes"]["audit.rule"] == "by-path"
    audit.start(both.replace("path: \"/items/*\"", "method: GET").replace("method: GET}, level: request",
                                                                          "path: \"/items/*\"}, level: request")
                % ("by-method", "by-path"))
    client.get("/items/1")
    record = requests_to(audit, "/items/1")[-1]
    assert record["attributes"]["audit.rule"] == "by-method"
    assert record["attributes"]["audit.level"] == "metadata"


LEVELS_POLICY = """
rules:
  - {match: {path: /health}, level: none}
  - {id: meta, match: {path: "/search"}, level: metadata}
  - {id: req, match: {path: "/api/*"}, level: request}
  - {id: all, match: {path: "/users/{id}/roles"}, level: full}
"""
REQUEST_KEYS = {"url.query", "audit.request.body"}
FULL_KEYS = {"audit.response.body"}
REDACTION_SUMMARY = {"audit.redaction.count", "audit.redaction.fields", "audit.redaction.kinds"}


def _payload(keys: set[str]) -> set[str]:
    return {k for k in keys if k.startswith(("http.request.header.", "http.response.header."))
            or k in REQUEST_KEYS | FULL_KEYS}


def test_each_level_lets_out_exactly_its_fields(audit, client) -> None:
    audit.start(LEVELS_POLICY)
    client.get("/health")
    assert requests_to(audit, "/health") == []  # level none: no record at all
    client.get("/search?q=cats", headers={"X-Trace-Note": "n1"})
    client.put("/api/profile?v=1", json={"bio": "hi"}, headers={"X-Trace-Note": "n2"})
    client.post("/users/7/roles?notify=1", json={"role": "editor"}, headers={"X-Trace-Note": "n3"})
    [metadata_level] = requests_to(audit, "/search")
    [request_level] = requests_to(audit, "/api/profile")
    [full_level] = requests_to(audit, "/users/7/roles")
    meta, req, full = (set(r["attributes"]) for r in (metadata_level, request_level, full_level))
    # metadata: no payload of any kind
    assert _payload(meta) == set()
    # request: + query, request headers, request body; nothing from the response
    assert {k for k in _payload(req) if not k.startswith("http.request.header.")} == REQUEST_KEYS
    assert "http.request.header.x-trace-note" in req
    # full: + response headers and body
    assert {k for k in _payload(full) if not k.startswith("http.")} == REQUEST_KEYS | FULL_KEYS
    assert "http.request.header.x-trace-note" in full and "http.response.header.content-type" in full
    # and the who/what/when/where keys are the same at every level (the routes differ in what
    # REST semantics makes their target: POST /users/7/roles creates in the roles collection)
    same = REDACTION_SUMMARY | {"audit.target.type", "audit.target.id"}
    assert (meta - same) == (req - _payload(req) - same) == (full - _payload(full) - same)
    assert request_level["attributes"]["url.query"] == "v=1"
    assert request_level["attributes"]["audit.request.body"] == {"bio": "hi"}
    assert full_level["attributes"]["audit.response.body"]["granted"] == {"role": "editor"}
    for record, level in ((metadata_level, "metadata"), (request_level, "request"), (full_level, "full")):
        assert record["attributes"]["audit.level"] == level


def test_unmatched_events_get_the_policy_defaults(audit, client) -> None:
    audit.start("""
extends: []   # no built-in rules: a plain GET is unmatched too (the default pack leaves it out)
defaults: {level: request, attributes: {app.tier: gold}, tags: [baseline]}
rules:
  - {id: only-deletes, match: {method: DELETE}, level: metadata, tags: [pci]}
""")
    client.get("/search?q=x")
    client.delete("/items/1")
    [search] = requests_to(audit, "/search")
    [delete] = requests_to(audit, "/items/1")
    assert search["attributes"]["audit.rule"] == "default"
    assert search["attributes"]["audit.level"] == "request"
    assert search["attributes"]["url.query"] == "q=x"
    assert search["attributes"]["app.tier"] == "gold" and search["attributes"]["audit.tags"] == ["baseline"]
    assert delete["attributes"]["audit.rule"] == "only-deletes" and delete["attributes"]["audit.tags"] == ["pci"]
    assert "app.tier" not in delete["attributes"]


def test_env_override_of_the_default_level(audit, client) -> None:
    audit.start(SEED, OTEL_AUDIT_POLICY_DEFAULT_LEVEL="none")
    client.get("/search?q=x")
    assert requests_to(audit, "/search") == []


# --- required fields --------------------------------------------------------------------------


def test_missing_required_fields_mark_the_record_incomplete(audit, client) -> None:
    rt = audit.start("""
required_fields:
  data_modification: [enduser.id]
  "*": [client.address, audit.ticket]
routes:
  - {request: "DELETE /items/{id}", category: data_modification, action: delete_resource}
""")
    client.delete("/items/1")  # anonymous
    login(client, "bob", "builder")
    client.delete("/items/2")
    anonymous, known = audit.named("audit.data_modification.delete_resource")
    assert anonymous["attributes"]["audit.incomplete"] is True
    assert anonymous["attributes"]["audit.incomplete.fields"] == ["client.address", "audit.ticket", "enduser.id"][1:]
    assert known["attributes"]["audit.incomplete.fields"] == ["audit.ticket"]
    assert known["attributes"]["enduser.id"] == "u-bob"
    assert rt.policy.incomplete["data_modification"] == 2


def test_complete_records_are_not_marked(audit, client) -> None:
    rt = audit.start("extends: []\n"  # the GET below is recorded (not left out by the default's quiet rules)
                     "required_fields: {data_modification: [enduser.id]}\n"
                     "routes: [{request: 'DELETE /items/{id}', category: data_modification, action: delete_resource}]\n")
    login(client, "bob", "builder")
    client.delete("/items/2")
    client.get("/search")  # another category: no requirement
    [record] = audit.named("audit.data_modification.delete_resource")
    assert "audit.incomplete" not in record["attributes"]
    assert "audit.incomplete" not in requests_to(audit, "/search")[0]["attributes"]
    assert sum(rt.policy.incomplete.values()) == 0
