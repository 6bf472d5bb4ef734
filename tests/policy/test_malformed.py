"""Malformed policies: each one is rejected with a precise message and location.

The first problem reported is compared in full: path inside the document, what is wrong and what
was expected, and file:line:column.
"""

from __future__ import annotations

import pytest

from otel_audit.policy import PolicyError, load_policy

# (name, policy.yaml text, the first problem exactly as reported)
MALFORMED = [
    ('level_enum',
     'rules:\n  - match: {action: x}\n    level: verbose\n',
     "rules[0].level: 'verbose' is not one of none, metadata, request, full (policy.yaml:3:12)"),
    ('unknown_top_key',
     'id: p\nrulez: []\n',
     "rulez: unknown key 'rulez'; did you mean 'rules'? (policy.yaml:2:1)"),
    ('unknown_rule_key',
     'rules:\n  - leve: full\n',
     "rules[0].leve: unknown key 'leve'; did you mean 'level'? (policy.yaml:2:5)"),
    ('unknown_match_key',
     'rules:\n  - match: {verb: DELETE}\n',
     "rules[0].match.verb: unknown key 'verb'; expected one of: action, actor_id, actor_role, category, db_operation, db_table, method, outcome, path, resource_type, status (policy.yaml:2:13)"),
    ('rules_not_list',
     'rules: {level: full}\n',
     'rules: expected a list, got a mapping (policy.yaml:1:8)'),
    ('rule_not_mapping',
     'rules:\n  - full\n',
     "rules[0]: expected a mapping, got a string ('full') (policy.yaml:2:5)"),
    ('log_success_type',
     'rules:\n  - log_success: maybe\n',
     "rules[0].log_success: expected true or false, got a string ('maybe') (policy.yaml:2:18)"),
    ('category_enum',
     'rules:\n  - match: {category: auth}\n',
     "rules[0].match.category: 'auth' is not one of authentication, authorization, account_management, data_access, data_modification, configuration, admin, http, audit_system (policy.yaml:2:23)"),
    ('outcome_enum',
     'rules:\n  - match: {outcome: [success, ok]}\n',
     "rules[0].match.outcome[1]: 'ok' is not one of success, failure, denied, unknown (policy.yaml:2:32)"),
    ('status_bad_class',
     'rules:\n  - match: {status: 6xx}\n',
     'rules[0].match.status: \'6xx\' is not a status code (200), a class ("4xx") or a range ("500-599") (policy.yaml:2:21)'),
    ('status_out_of_range',
     'rules:\n  - match: {status: [200, 700]}\n',
     'rules[0].match.status[1]: 700 is out of range: expected 100 to 599 (policy.yaml:2:27)'),
    ('status_empty_range',
     'rules:\n  - match: {status: "599-500"}\n',
     "rules[0].match.status: range '599-500' is empty: 599 is above 500 (policy.yaml:2:21)"),
    ('empty_action_list',
     'rules:\n  - match: {action: []}\n',
     'rules[0].match.action: must not be empty (policy.yaml:2:21)'),
    ('bad_glob',
     'rules:\n  - match: {path: "/users/{id/roles"}\n',
     "rules[0].match.path: '/users/{id/roles': unbalanced '{' at character 8: write {name} for one path segment (policy.yaml:2:19)"),
    ('path_no_slash',
     'rules:\n  - match: {path: users/*}\n',
     "rules[0].match.path: 'users/*' must start with '/' or '*' (a path glob such as /admin/*) (policy.yaml:2:19)"),
    ('bad_method',
     'rules:\n  - match: {method: "GET POST"}\n',
     "rules[0].match.method: 'GET POST' is not an HTTP method (GET, POST, ...) (policy.yaml:2:21)"),
    ('duplicate_rule_id',
     'rules:\n  - {id: a}\n  - {id: a}\n',
     "rules[1].id: duplicate id 'a' (first used at rules[0]) (policy.yaml:3:10)"),
    ('user_filter_enum',
     'audit_configs:\n - action: delete_resource\n   user_filter: admins\n',
     "audit_configs[0].user_filter: a string ('admins') is not admin_only, non_admin, all, authenticated, anonymous or a list of roles (policy.yaml:3:17)"),
    ('shorthand_unknown_key',
     'audit_configs:\n - action: delete_resource\n   log_succes: true\n',
     "audit_configs[0].log_succes: unknown key 'log_succes'; did you mean 'log_success'? (policy.yaml:3:4)"),
    ('failure_mode_enum',
     'failure_mode: strict\n',
     "failure_mode: 'strict' is not one of open, closed (policy.yaml:1:15)"),
    ('format_version',
     'format: 2\n',
     'format: 2 is not supported: expected 1 (policy.yaml:1:9)'),
    ('id_pattern',
     'id: "my policy"\n',
     "id: 'my policy' is not an id (letters, digits, '.', '_', ':', '-'; starting with a letter or digit) (policy.yaml:1:5)"),
    ('defaults_level',
     'defaults:\n  level: everything\n',
     "defaults.level: 'everything' is not one of none, metadata, request, full (policy.yaml:2:10)"),
    ('route_missing_action',
     'routes:\n  - request: POST /login\n    category: authentication\n',
     "routes[0]: missing required key 'action' (policy.yaml:2:5)"),
    ('route_bad_category',
     'routes:\n  - {request: POST /login, category: login, action: login}\n',
     "routes[0].category: 'login' is not one of authentication, authorization, account_management, data_access, data_modification, configuration, admin, http, audit_system (policy.yaml:2:38)"),
    ('route_bad_action',
     'routes:\n  - {request: POST /login, category: authentication, action: Log-In}\n',
     "routes[0].action: 'Log-In' is not an action name in lower_snake_case (policy.yaml:2:62)"),
    ('route_bad_request',
     'routes:\n  - {request: "POST", category: authentication, action: login}\n',
     'routes[0].request: \'POST\' is not "METHOD /path-glob" (e.g. "POST /auth/login") (policy.yaml:2:15)'),
    ('route_no_path',
     'routes:\n  - {category: authentication, action: login}\n',
     'routes[0]: a route needs request: "METHOD /path" or path: (policy.yaml:2:5)'),
    ('route_request_and_path',
     'routes:\n  - {request: POST /a, path: /b, category: http, action: x}\n',
     'routes[0].request: give either request: "METHOD /path" or method/path, not both (policy.yaml:2:6)'),
    ('condition_unknown',
     'routes:\n  - request: POST /login\n    category: authentication\n    action: login\n    success_when: {redirected: true}\n',
     "routes[0].success_when.redirected: unknown key 'redirected'; did you mean 'redirect'? (policy.yaml:5:20)"),
    ('condition_empty',
     'routes:\n  - request: POST /login\n    category: authentication\n    action: login\n    failure_when: {}\n',
     'routes[0].failure_when: must not be empty (policy.yaml:5:19)'),
    ('actor_source',
     'actors:\n  sources: [framework_user, cookie:sid]\n',
     "actors.sources[1]: 'cookie:sid': unknown actor source 'cookie:sid'; expected framework_user, app_user, session:KEY, header:NAME, jwt:CLAIM or resolver:MODULE:FUNC (policy.yaml:2:29)"),
    ('actor_resolver_import',
     'actors:\n  sources: ["resolver:no_such_module_xyz:find"]\n',
     "actors.sources[0]: 'resolver:no_such_module_xyz:find': cannot load it (ModuleNotFoundError); expected framework_user, app_user, session:KEY, header:NAME, jwt:CLAIM or resolver:MODULE:FUNC (policy.yaml:2:13)"),
    ('attempted_username',
     'actors: {record_attempted_username: sometimes}\n',
     "actors.record_attempted_username: 'sometimes' is not one of true, false, hmac (policy.yaml:1:37)"),
    ('required_fields_category',
     'required_fields:\n  orders: [enduser.id]\n',
     "required_fields.orders: 'orders' is not a category: expected *, authentication, authorization, account_management, data_access, data_modification, configuration, admin, http, audit_system (policy.yaml:2:3)"),
    ('required_fields_type',
     'required_fields:\n  admin: enduser.id\n',
     "required_fields.admin: expected a list, got a string ('enduser.id') (policy.yaml:2:10)"),
    ('attributes_value',
     'defaults:\n  attributes: {team: {name: x}}\n',
     'defaults.attributes.team: a mapping is not a string, number, boolean or a list of them (policy.yaml:2:22)'),
    ('extends_missing',
     'extends: base.yaml\n',
     "extends: extended policy 'base.yaml' does not exist (./base.yaml) (policy.yaml:1:10)"),
    ('extends_pack',
     'extends: pack:hipaa-xyz\n',
     "extends: unknown policy pack 'hipaa-xyz': available packs are default, all-requests, gdpr, hipaa, pci-dss, security-routes, soc2 (policy.yaml:1:10)"),
    ('yaml_syntax',
     'rules:\n  - match: {action: [x}\n',
     "YAML syntax error: while parsing a flow sequence expected ',' or ']', but got '}' (policy.yaml:2:23)"),
    ('duplicate_key',
     'id: a\nid: b\n',
     "duplicate key 'id' (policy.yaml:2:1)"),
    ('top_level_list',
     '- rules\n',
     'expected a mapping at the top level, got a list (policy.yaml:1:1)'),
    ('empty_doc',
     '# nothing\n',
     'the document is empty: expected a mapping with rules, defaults, ... (policy.yaml)'),
    ('tab_indent',
     'rules:\n\t- level: full\n',
     "YAML syntax error: while scanning for the next token found character '\\t' that cannot start any token (policy.yaml:2:1)"),
    ('version_type',
     'version: [1, 2]\n',
     'version: a list is not a string or a number (policy.yaml:1:10)'),
    ('redaction_type',
     'redaction: strict\n',
     "redaction: expected a mapping, got a string ('strict') (policy.yaml:1:12)"),
    ('redaction_section',
     'redaction:\n  keys: 5\n',
     "redaction.keys: expected a list; got 'int' (policy.yaml:2:9)"),
    ('local_time_zone_unknown',
     'local_time:\n  zone: Europe/Berlinn\n',
     "local_time.zone: 'Europe/Berlinn' is not a time zone: expected an IANA name such as Europe/Berlin, "
     "America/New_York or UTC (policy.yaml:2:9)"),
    ('local_time_zone_type',
     'local_time: {zone: 2}\n',
     "local_time.zone: expected a string, got a number (2) (policy.yaml:1:20)"),
    ('local_time_category',
     'local_time: {categories: [authorisation]}\n',
     "local_time.categories[0]: 'authorisation' is not one of authentication, authorization, account_management, "
     "data_access, data_modification, configuration, admin, http, audit_system (policy.yaml:1:27)"),
]


@pytest.mark.parametrize("name, text, expected", MALFORMED, ids=[case[0] for case in MALFORMED])
def test_malformed_policy_is_rejected_with_path_message_and_location(tmp_path, monkeypatch, name, text,
                                                                      expected) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.yaml").write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy("policy.yaml", environ={})
    assert str(caught.value.problems[0]) == expected


def test_there_are_at_least_25_cases() -> None:
    assert len(MALFORMED) >= 25


def test_every_problem_is_reported_not_just_the_first(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.yaml").write_text("failure_mode: strict\nrules:\n  - level: loud\n  - lvl: full\n")
    with pytest.raises(PolicyError) as caught:
        load_policy("policy.yaml", environ={})
    assert [str(p) for p in caught.value.problems] == [
        "failure_mode: 'strict' is not one of open, closed (policy.yaml:1:15)",
        "rules[0].level: 'loud' is not one of none, metadata, request, full (policy.yaml:3:12)",
        "rules[1].lvl: unknown key 'lvl'; did you mean 'level'? (policy.yaml:4:5)",
    ]
    assert str(caught.value).endswith("(and 2 more problems)")


def test_inline_policy_errors_name_the_variable(monkeypatch) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy("rules: [{level: loud}]", environ={})
    assert str(caught.value.problems[0]) == (
        "rules[0].level: 'loud' is not one of none, metadata, request, full (<OTEL_AUDIT_POLICY>:1:17)")


def test_extends_cycle_is_reported(tmp_path) -> None:
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(PolicyError, match="extends cycle"):
        load_policy(str(tmp_path / "a.yaml"), environ={})


def test_alias_bombs_and_recursive_aliases_are_refused() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8))
    with pytest.raises(PolicyError, match="document is too large"):
        load_policy(bomb, environ={})
    with pytest.raises(PolicyError, match="recursive alias"):
        load_policy("rules: &r\n  - *r\n", environ={})
