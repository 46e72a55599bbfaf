"""The executor's guarantees, in process, against real targets over loopback HTTP: the
ClientTrack emulator (which, like the real CTAPI, happily creates a duplicate) and
the OneCloud emulator (which answers a duplicate create 409). Requests are counted at the
server, so "not sent again" is checked, not inferred.

Plans are built by hand here, so these tests pin the executor alone; the planner
has its own tests (test_planner.py) and the CLI its own (test_end_to_end.py,
test_resume.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import CLIENTTRACK_API_KEY, CLIENTTRACK_SUBSCRIPTION, ONECLOUD_SECRET, ONECLOUD_TENANT
from provisioner.errors import ProvisionerError
from provisioner.executor import ApplyResult, apply_plan
from provisioner.mapping import load_mapping
from provisioner.model import (
    CREATE, DISABLE, DONE, FAILED, IN_FLIGHT, MANUAL, PENDING, SKIPPED, STALE, UPDATE,
    Change, Link, Plan, PlanItem, TargetSummary,
)
from provisioner.secrets import Secret
from provisioner.state import StateDB
from provisioner.target_handle import TargetHandle
from provisioner.connectors.clienttrack.target import ClientTrackTarget
from provisioner.connectors.onecloud.target import OneCloudTarget
from default_mappings import default_mapping

REPO = Path(__file__).resolve().parent.parent
CT_MAPPING = load_mapping(default_mapping("clienttrack"))
CT_PATHS = ["UserName", "FirstName", "LastName", "Email", "Title", "active"]


def ada(**extra) -> dict:
    return {"UserName": "ada@example.com", "FirstName": "Ada", "LastName": "Lovelace",
            "Email": "ada@example.com", "Title": "Agent", "active": True, **extra}


def create(n: int, attrs: dict, status: str = PENDING, lookup=None, target: str = "ct") -> PlanItem:
    return PlanItem(f"i{n}", target, CREATE, f"E{n}", None, {}, "new in the source", status=status,
                    attrs=attrs, lookup=tuple(lookup or [("UserName", attrs["UserName"])]))


def change(n: int, op: str, account_id: str, changes: dict, status: str = PENDING) -> PlanItem:
    return PlanItem(f"i{n}", "ct", op, f"E{n}", account_id, changes, "changed in the source", status=status)


def plan_of(*items: PlanItem, blocked: str | None = None, adopt=(), target: str = "ct",
            plan_id: str = "p1") -> Plan:
    summary = TargetSummary(accounts=0, counts={}, unmanaged=0, blocked=blocked is not None,
                            block_reason=blocked)
    return Plan(plan_id, "2026-01-01T00:00:00+00:00", "pending", len(items), (), {target: summary},
                tuple(items), adopt=tuple(adopt))


@pytest.fixture(scope="session")
def empty_state_db(tmp_path_factory) -> Path:
    """A state DB file with the schema made, once: copying it is quicker than migrating."""
    path = tmp_path_factory.mktemp("state") / "empty.db"
    StateDB(f"sqlite:///{path}").close()
    return path


@pytest.fixture
def state(tmp_path, empty_state_db):
    shutil.copyfile(empty_state_db, tmp_path / "state.db")
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    yield db
    db.close()


@pytest.fixture
def ct(clienttrack):
    target = ClientTrackTarget("ct", clienttrack.base_url, paths=CT_PATHS,
                               subscription_key=Secret(CLIENTTRACK_SUBSCRIPTION, "env:CT_SUB"),
                               api_key=Secret(CLIENTTRACK_API_KEY, "env:CT_KEY"))
    yield TargetHandle("ct", target, CT_MAPPING, concurrency=1, rate_limit=None)
    target.close()


def apply(plan: Plan, handle, state: StateDB, **kwargs) -> ApplyResult:
    """Store the plan (with its items' statuses, as a killed apply leaves them), then apply it."""
    state.save_plan(plan)
    for item in plan.items:
        if item.status != PENDING:
            state.set_item_status(plan.plan_id, item.id, item.status)
    return apply_plan(plan, {handle.name: handle} if handle else {}, state, run_id="r1", **kwargs)


def posts(emulator) -> int:
    return sum(1 for method, _, _ in emulator.requests if method == "POST")


def puts(emulator) -> int:
    return sum(1 for method, _, _ in emulator.requests if method == "PUT")


def items(state: StateDB) -> dict[str, tuple]:
    return {i.id: (i.status, i.account_id, i.error) for i in state.load_plan("p1").items}


def outcomes(state: StateDB) -> list[tuple]:
    return [(r.identity, r.outcome) for r in state.audit_rows()]


def insert_ada(emulator, **extra) -> str:
    row = {"UserName": "ada@example.com", "FirstName": "Ada", "LastName": "Lovelace",
           "Email": "ada@example.com", "Title": "Agent", "ActiveStatus": "Active", **extra}
    return str(emulator.insert(row)["UserID"])


# -- resuming a create that was in flight --------------------------------------------

def test_an_in_flight_create_whose_account_exists_is_linked_and_not_sent_again(ct, clienttrack, state):
    made = insert_ada(clienttrack)   # the killed apply's create reached the target
    result = apply(plan_of(create(1, ada(), IN_FLIGHT)), ct, state)
    assert posts(clienttrack) == 0 and len(clienttrack.rows) == 1
    assert result.counts == {DONE: 1} and result.plan_status == "applied"
    assert state.links("ct") == {"E1": made}
    assert items(state) == {"i1": (DONE, made, None)}
    assert outcomes(state) == [("E1", "found on resume; linked")]


def test_an_in_flight_create_whose_account_is_missing_is_sent_once(ct, clienttrack, state):
    result = apply(plan_of(create(1, ada(Title=None), IN_FLIGHT)), ct, state)
    assert posts(clienttrack) == 1 and result.counts == {DONE: 1}
    (made,) = clienttrack.rows
    assert state.links("ct") == {"E1": str(made)}
    assert outcomes(state) == [("E1", DONE)]
    # what was sent is audited, without the attributes that had no value
    (row,) = state.audit_rows()
    assert "Title" not in row.after and "ada@example.com" in row.after


def test_the_look_up_tries_each_correlation_pair_until_one_finds_exactly_one(ct, clienttrack, state):
    made = insert_ada(clienttrack)
    insert_ada(clienttrack, UserName="twin", Email="same@example.com")
    insert_ada(clienttrack, UserName="twin2", Email="same@example.com")
    lookup = [("UserName", "nobody@example.com"), ("Email", "same@example.com"), ("UserName", "ADA@example.com")]
    apply(plan_of(create(1, ada(), IN_FLIGHT, lookup=lookup)), ct, state)
    assert posts(clienttrack) == 0 and state.links("ct") == {"E1": made}


def test_a_failed_or_skipped_create_is_tried_again_but_a_done_one_is_not(ct, clienttrack, state):
    plan = plan_of(create(1, ada(), FAILED),
                   create(2, ada(UserName="bob@example.com", Email="bob@example.com"), SKIPPED),
                   create(3, ada(UserName="cy@example.com", Email="cy@example.com"), DONE))
    seen = []
    result = apply(plan, ct, state, on_item=lambda item, status: seen.append((item.id, status)))
    assert posts(clienttrack) == 2 and result.counts == {DONE: 3}
    assert sorted(seen) == [("i1", DONE), ("i2", DONE), ("i3", DONE)]


def test_a_pending_create_costs_one_request(ct, clienttrack, state):
    # rate-limited vendors count every request: a first apply does not look before it creates
    apply(plan_of(create(1, ada())), ct, state)
    assert [m for m, _, _ in clienttrack.requests] == ["POST"]


# -- a create answered "already exists" ----------------------------------------------

@pytest.fixture
def oc(onecloud):
    paths = ["userName", "name.givenName", "name.familyName", "emails[0].value", "active"]
    target = OneCloudTarget("dir", onecloud.base_url, paths=paths, client_id="admin",
                            client_secret=Secret(ONECLOUD_SECRET, "env:OC"), tenant=ONECLOUD_TENANT)
    mapping = load_mapping(default_mapping("onecloud"))
    yield TargetHandle("dir", target, mapping, concurrency=2, rate_limit=None)
    target.close()


def oc_attrs(login: str) -> dict:
    return {"userName": login, "name.givenName": "Ada", "name.familyName": "Lovelace",
            "emails[0].value": "ada@example.com", "active": True}


def oc_create(n: int, login: str, lookup_login: str | None = None) -> PlanItem:
    return create(n, oc_attrs(login), lookup=[("userName", lookup_login or login)], target="dir")


def extension(onecloud, login: str) -> str:
    with onecloud.lock:
        return next(u["extension"] for u in onecloud.users.values() if u["loginId"].lower() == login)


def test_a_create_keeps_what_the_target_assigned_with_the_link(oc, onecloud, state):
    apply(plan_of(oc_create(1, "ada@example.com"), target="dir"), oc, state)
    assert state.link_data("dir") == {"E1": {"extension": extension(onecloud, "ada@example.com")}}


def test_an_in_flight_create_found_on_resume_keeps_what_the_target_assigned(oc, onecloud, state):
    oc.target.create(oc_attrs("ada@example.com"))
    apply(plan_of(create(1, oc_attrs("ada@example.com"), IN_FLIGHT, [("userName", "ada@example.com")],
                         target="dir"), target="dir"), oc, state)
    assert outcomes(state) == [("E1", "found on resume; linked")]
    assert state.link_data("dir") == {"E1": {"extension": extension(onecloud, "ada@example.com")}}


def test_a_create_answered_409_is_linked_to_the_account_found(oc, onecloud, state):
    made = oc.target.create(oc_attrs("Ada@Example.com"))
    result = apply(plan_of(oc_create(1, "ada@example.com"), target="dir"), oc, state)
    assert result.counts == {DONE: 1}
    assert state.links("dir") == {"E1": made.id}
    assert outcomes(state) == [("E1", "already existed; linked")]
    assert state.link_data("dir") == {"E1": {"extension": extension(onecloud, "ada@example.com")}}


def test_a_409_whose_account_cannot_be_found_fails_the_item_with_the_targets_answer(oc, state):
    oc.target.create(oc_attrs("ada@example.com"))
    result = apply(plan_of(oc_create(1, "ada@example.com", lookup_login="someone@else"), target="dir"),
                   oc, state)
    assert result.counts == {FAILED: 1} and result.plan_status == "partial"
    ((status, account, error),) = items(state).values()
    assert status == FAILED and account is None and "409" in error
    assert state.links("dir") == {}
    (row,) = state.audit_rows()
    assert row.outcome == f"failed: {error}"
    assert (row.run_id, row.plan_id, row.identity, row.account_id, row.before, row.after) == (
        "r1", "p1", "E1", None, "{}", "{}")


# -- changes to existing accounts ----------------------------------------------------

def test_an_update_sends_only_what_still_differs_and_audits_before_and_after(ct, clienttrack, state):
    made = insert_ada(clienttrack)
    # the change already made comes first: the ones after it are still looked at
    plan = plan_of(change(1, UPDATE, made, {"UserName": Change("ada@example.com", "ADA@example.com"),
                                            "Title": Change("Agent", "Lead")}))
    result = apply(plan, ct, state)
    assert result.counts == {DONE: 1} and puts(clienttrack) == 1
    assert clienttrack.rows[int(made)]["Title"] == "Lead"
    assert clienttrack.rows[int(made)]["UserName"] == "ada@example.com"   # same ignoring case: not sent
    (row,) = state.audit_rows()
    assert (row.before, row.after, row.outcome) == ('{"Title": "Agent"}', '{"Title": "Lead"}', DONE)
    assert (row.run_id, row.plan_id, row.item_id, row.account_id) == ("r1", "p1", "i1", made)
    assert state.links("ct") == {"E1": made}


def test_an_update_already_made_is_done_without_a_request(ct, clienttrack, state):
    made = insert_ada(clienttrack, Title="Lead")   # applied before a kill
    result = apply(plan_of(change(1, UPDATE, made, {"Title": Change("Agent", "Lead")}, IN_FLIGHT)), ct, state)
    assert result.counts == {DONE: 1} and puts(clienttrack) == 0
    assert items(state)["i1"] == (DONE, made, None)
    assert state.audit_rows() == []


def test_an_account_changed_since_the_plan_is_stale_and_left_alone(ct, clienttrack, state):
    made = insert_ada(clienttrack, Title="Changed by hand")
    other = insert_ada(clienttrack, UserName="bob@example.com", Email="bob@example.com")
    plan = plan_of(change(1, UPDATE, made, {"Title": Change("Agent", "Lead")}),
                   change(2, UPDATE, other, {"Title": Change("Agent", "Lead")}))
    result = apply(plan, ct, state)
    assert result.counts == {STALE: 1, DONE: 1} and result.plan_status == "stale"
    assert clienttrack.rows[int(made)]["Title"] == "Changed by hand"
    assert clienttrack.rows[int(other)]["Title"] == "Lead"
    status, _, error = items(state)["i1"]
    assert status == STALE
    assert error == "Title is now 'Changed by hand' on ct, the plan expected 'Agent'; make a new plan"


def test_a_disable_and_an_enable(ct, clienttrack, state):
    a = insert_ada(clienttrack)
    b = insert_ada(clienttrack, UserName="bob@example.com", ActiveStatus="Inactive")
    result = apply(plan_of(change(1, DISABLE, a, {"active": Change(True, False)}),
                           change(2, "enable", b, {"active": Change(False, True)})), ct, state)
    assert result.counts == {DONE: 2}
    assert clienttrack.rows[int(a)]["ActiveStatus"] == "Inactive"
    assert clienttrack.rows[int(b)]["ActiveStatus"] == "Active"
    assert [(r.before, r.after) for r in state.audit_rows()] == [
        ('{"active": true}', '{"active": false}'), ('{"active": false}', '{"active": true}')]


def test_a_vanished_account_fails_its_item(ct, clienttrack, state):
    result = apply(plan_of(change(1, UPDATE, "4242", {"Title": Change("Agent", "Lead")})), ct, state)
    assert result.counts == {FAILED: 1} and result.failed == 1
    assert items(state)["i1"] == (FAILED, "4242", "account 4242 no longer exists on ct")
    assert [(r.account_id, r.outcome) for r in state.audit_rows()] == [
        ("4242", "failed: account 4242 no longer exists on ct")]


def test_the_disable_of_a_replaced_account_keeps_the_link_of_its_replacement(ct, clienttrack, state):
    old = insert_ada(clienttrack, UserName="old@example.com")
    state.save_link("ct", "E1", old)
    # rename = "recreate": a create of the new account and a disable of the old one, same person
    plan = plan_of(create(1, ada()), change(1, DISABLE, old, {"active": Change(True, False)}))
    plan = Plan(plan.plan_id, plan.created_at, plan.status, 1, (), plan.targets,
                (plan.items[0], PlanItem("i2", "ct", DISABLE, "E1", old, {"active": Change(True, False)}, "")))
    assert apply(plan, ct, state).counts == {DONE: 2}
    new = next(str(k) for k, r in clienttrack.rows.items() if r["UserName"] == "ada@example.com")
    assert state.links("ct") == {"E1": new}
    assert clienttrack.rows[int(old)]["ActiveStatus"] == "Inactive"


def test_a_disable_links_the_account_it_disabled_when_nothing_replaced_it(ct, clienttrack, state):
    made = insert_ada(clienttrack)
    apply(plan_of(change(1, DISABLE, made, {"active": Change(True, False)})), ct, state)
    assert state.links("ct") == {"E1": made}


# -- what is not applied --------------------------------------------------------------

def test_a_blocked_target_is_not_touched_unless_mass_change_is_allowed(ct, clienttrack, state):
    made = insert_ada(clienttrack)
    plan = plan_of(change(1, DISABLE, made, {"active": Change(True, False)}),
                   change(2, MANUAL, made, {}), blocked="would disable 100%",
                   adopt=[Link("ct", "E9", "77")])
    result = apply(plan, ct, state)
    assert result.blocked_targets == ["ct"] and result.plan_status == "blocked"
    assert result.counts == {SKIPPED: 2} and len(clienttrack.requests) == 0
    assert items(state)["i1"] == (SKIPPED, made, "not applied: target blocked (would disable 100%)")
    assert state.links("ct") == {}   # not even the adopted links

    result = apply_plan(state.load_plan("p1"), {"ct": ct}, state, run_id="r2", allow_mass_change=True)
    assert result.counts == {DONE: 1, SKIPPED: 1} and result.plan_status == "applied"
    assert clienttrack.rows[int(made)]["ActiveStatus"] == "Inactive"
    assert state.links("ct")["E1"] == made
    assert state.links("ct")["E9"] == "77"   # applied anyway: the plan's adoptions with it


def test_blocked_with_some_items_done_is_partial():
    result = ApplyResult(counts={DONE: 1, SKIPPED: 1}, blocked_targets=["ct"])
    assert result.plan_status == "partial"


def test_manual_and_conflict_items_are_skipped_and_adopted_links_saved(ct, clienttrack, state):
    plan = plan_of(change(1, MANUAL, "5", {}), change(2, "conflict", None, {}, status=SKIPPED),
                   adopt=[Link("ct", "E9", "77"), Link("elsewhere", "E8", "1")])
    result = apply(plan, ct, state)
    assert result.counts == {SKIPPED: 2} and len(clienttrack.requests) == 0
    assert {i: s for i, (s, _, _) in items(state).items()} == {"i1": SKIPPED, "i2": SKIPPED}
    assert state.links("ct") == {"E9": "77"} and state.links("elsewhere") == {}


def test_items_for_a_target_no_longer_configured_stop_the_apply_with_its_name(state):
    with pytest.raises(ProvisionerError, match="plan p1 has items for target 'ct', which is not in the "
                                               "configuration any more"):
        apply(plan_of(create(1, ada())), None, state)
    # nothing left to do there: no complaint
    assert apply(plan_of(create(1, ada(), DONE), plan_id="p2"), None, state).counts == {DONE: 1}


def test_a_stop_request_starts_nothing_more_and_leaves_the_rest_pending(ct, clienttrack, state):
    plan = plan_of(*[create(n, ada(UserName=f"p{n}@example.com", Email=f"p{n}@example.com"))
                     for n in range(1, 5)])
    asked = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 2
    two_at_a_time = TargetHandle("ct", ct.target, CT_MAPPING, concurrency=2, rate_limit=None)
    # the two started are both recorded, though the stop came while one was still running
    result = apply(plan, two_at_a_time, state, should_stop=should_stop)
    assert result.stopped and result.plan_status == "partial" and posts(clienttrack) == 2
    assert [s for s, _, _ in items(state).values()] == [DONE, DONE, PENDING, PENDING]


def test_an_unexpected_error_fails_one_item_not_the_apply(ct, clienttrack, state, caplog):
    class Broken(ClientTrackTarget):
        def create(self, attrs):
            if attrs["UserName"] == "ada@example.com":
                raise KeyError(f"key {CLIENTTRACK_API_KEY}")
            return super().create(attrs)

    broken = TargetHandle("ct", Broken("ct", clienttrack.base_url, paths=CT_PATHS,
                                       subscription_key=Secret(CLIENTTRACK_SUBSCRIPTION, "env:A"),
                                       api_key=Secret(CLIENTTRACK_API_KEY, "env:B")), CT_MAPPING, 1, None)
    result = apply(plan_of(create(1, ada()), create(2, ada(UserName="bob@example.com"))), broken, state)
    assert result.counts == {FAILED: 1, DONE: 1}
    status, _, error = items(state)["i1"]
    assert status == FAILED and error.startswith("unexpected error: KeyError: ")
    assert CLIENTTRACK_API_KEY not in error   # the state DB keeps no secret
    # the traceback is logged for whoever fixes the bug
    assert any(r.getMessage() == "unexpected error applying item i1" and r.exc_info for r in caplog.records)


def test_each_item_is_logged_with_the_fields_a_json_log_carries(ct, clienttrack, state, caplog):
    caplog.set_level("INFO", logger="provisioner.executor")
    apply(plan_of(create(1, ada()), change(2, UPDATE, "4242", {"Title": Change("Agent", "Lead")})), ct, state)
    done, failed = [r for r in caplog.records if r.name == "provisioner.executor"]
    assert done.getMessage() == ("apply run=r1 plan=p1 target=ct op=create identity=E1 account=1001 "
                                 "status=done")
    assert failed.getMessage().endswith("status=failed error=account 4242 no longer exists on ct")
    assert {k: getattr(done, k) for k in ("run_id", "plan_id", "target", "op", "identity", "account_id",
                                          "status")} == {
        "run_id": "r1", "plan_id": "p1", "target": "ct", "op": "create", "identity": "E1",
        "account_id": "1001", "status": "done"}


def test_a_value_that_differs_from_the_plan_only_in_ignored_case_is_not_stale(ct, clienttrack, state):
    made = insert_ada(clienttrack, Email="ADA@Example.com")   # the mapping compares Email ignoring case
    result = apply(plan_of(change(1, UPDATE, made, {"Email": Change("ada@example.com", "ada@new.example")})),
                   ct, state)
    assert result.counts == {DONE: 1}
    assert clienttrack.rows[int(made)]["Email"] == "ada@new.example"


def test_every_item_started_is_recorded_when_several_run_at_once(ct, clienttrack, state):
    plan = plan_of(*[create(n, ada(UserName=f"p{n}@example.com", Email=f"p{n}@example.com"))
                     for n in range(1, 6)])
    result = apply(plan, TargetHandle("ct", ct.target, CT_MAPPING, concurrency=2, rate_limit=None), state)
    assert result.counts == {DONE: 5} and posts(clienttrack) == 5
    assert {s for s, _, _ in items(state).values()} == {DONE}


def test_a_blocked_target_leaves_its_finished_items_alone_and_the_next_target_still_applies(
        ct, clienttrack, state):
    made = insert_ada(clienttrack)
    other = TargetHandle("ct2", ct.target, CT_MAPPING, concurrency=1, rate_limit=None)
    blocked = TargetSummary(accounts=0, counts={}, unmanaged=0, blocked=True, block_reason="too many")
    fine = TargetSummary(accounts=0, counts={}, unmanaged=0)
    done = PlanItem("i1", "ct", DISABLE, "E1", made, {"active": Change(True, False)}, "", status=DONE)
    second = PlanItem("i2", "ct2", UPDATE, "E1", made, {"Title": Change("Agent", "Lead")}, "")
    plan = Plan("p1", "t", "pending", 1, (), {"ct": blocked, "ct2": fine}, (done, second))
    state.save_plan(plan)
    state.set_item_status("p1", "i1", DONE)
    result = apply_plan(plan, {"ct": ct, "ct2": other}, state, run_id="r1")
    assert result.counts == {DONE: 2} and result.blocked_targets == ["ct"]
    assert items(state)["i1"][0] == DONE
    assert clienttrack.rows[int(made)]["Title"] == "Lead"


def test_a_target_refusing_an_item_fails_that_item_with_the_targets_words(ct, clienttrack, state):
    result = apply(plan_of(create(1, ada(Bogus="x"))), ct, state)
    assert result.counts == {FAILED: 1}
    status, _, error = items(state)["i1"]
    assert status == FAILED and "Invalid column name 'Bogus'" in error
