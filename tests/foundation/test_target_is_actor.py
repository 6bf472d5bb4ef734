"""``audit.target.is_actor``: a role or account action on the actor's own account says so on the
record (the self-grant rule matches it), whoever's convention names the account; never true by
accident, and absent where actor or target names nothing or the target is no account."""

from __future__ import annotations

import pytest

from otel_audit.attributes import event_attributes
from otel_audit.event import Actor, AuditEvent, Target

ALICE = Actor(id="1", name="alice", type="user")  # Django, FastAPI: the account's pk / ORM key
BOB = Actor(id="2", name="bob", type="user")  # Flask example: its route names the account by username


def attrs(category: str, action: str, actor: Actor, target: Target | None) -> dict:
    return event_attributes(AuditEvent(category, action, outcome="success", actor=actor, target=target), "metadata")


@pytest.mark.parametrize("actor, target", [
    (ALICE, Target("auth.user", "1")),  # Django: /staff/users/1/groups/
    (ALICE, Target("app_user", 1)),  # an int key from the manual API
    (BOB, Target("users", "bob")),  # Flask: /admin/users/bob/role
    (BOB, Target("users", None, "bob")),  # a target named, not numbered
    (Actor(id=0, name="root"), Target("users", "0")),  # user 0 is a user
], ids=["pk", "int-pk", "username-as-id", "name", "id-zero"])
def test_a_grant_to_ones_own_account_is_true(actor: Actor, target: Target) -> None:
    assert attrs("authorization", "grant_role", actor, target)["audit.target.is_actor"] is True


@pytest.mark.parametrize("actor, target", [
    (ALICE, Target("auth.user", "3")),
    (BOB, Target("users", "carol")),
    (BOB, Target("users", "1", "alice")),
    (Actor(name="alice"), Target("auth.user", "1")),  # only a name, and the target is numbered
], ids=["other-pk", "other-username", "other-both", "name-against-pk"])
def test_a_grant_to_another_account_is_false(actor: Actor, target: Target) -> None:
    assert attrs("authorization", "grant_role", actor, target)["audit.target.is_actor"] is False


@pytest.mark.parametrize("actor, target", [
    (Actor(), Target("users")),  # nobody, no id: not "the same"
    (Actor(id="", name=""), Target("users", "", "")),
    (ALICE, Target("users")),  # the account acted on is not named
    (Actor(type="anonymous"), Target("users", "1")),
    (ALICE, None),
], ids=["both-missing", "both-empty", "target-unnamed", "actor-unnamed", "no-target"])
def test_nothing_to_compare_leaves_it_out(actor: Actor, target: Target | None) -> None:
    assert "audit.target.is_actor" not in attrs("authorization", "grant_role", actor, target)


def test_it_is_written_for_role_and_account_actions_only() -> None:
    own = Target("users", "1")
    assert attrs("authorization", "revoke_role", ALICE, own)["audit.target.is_actor"] is True
    assert attrs("account_management", "password_change", ALICE, own)["audit.target.is_actor"] is True
    # a resource whose id happens to be the actor's: no account, no claim
    for category, action in [("data_modification", "delete_resource"), ("authorization", "access_denied"),
                             ("admin", "update_resource"), ("authentication", "login")]:
        assert "audit.target.is_actor" not in attrs(category, action, ALICE, Target("note", "1"))
