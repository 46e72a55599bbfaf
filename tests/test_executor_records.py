"""What the executor records, against the CCS emulator on a real loopback port.

CCS cannot show an extension's agent settings, so what the executor wrote is
remembered per account in the state DB, and the next apply checks its plan
against that memory (not against the blanks the list shows). Also: a disable
never takes a person's link from the account that replaced the disabled one,
and every item, skipped ones too, is reported to `on_item`."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from provisioner.executor import apply_plan
from provisioner.mapping import load_mapping
from provisioner.model import DISABLE, DONE, ENABLE, IN_FLIGHT, MANUAL, SKIPPED, STALE, UPDATE, Change, Plan, PlanItem, TargetSummary
from provisioner.connectors.ccs.emulator import CcsEmulator, CcsOptions
from provisioner.secrets import Secret
from provisioner.state import StateDB, WrittenRecord
from provisioner.target_handle import TargetHandle
from provisioner.connectors.ccs.target import CcsTarget
from default_mappings import default_mapping

REPO = Path(__file__).resolve().parent.parent
TOKEN = "test-ccs-token-51c0"
TENANT = "81bf95ea-53d6-48e2-85cd-f8d6bde10fd9"
MAPPING = load_mapping(default_mapping("ccs"))
PATHS = list(dict.fromkeys([*MAPPING.attributes, *MAPPING.correlate]))
SETTINGS = {"recording_type": "On Demand", "monitor": "true", "max_chats": "3", "is_multimedia_enabled": "true"}


@pytest.fixture
def ccs():
    emulator = CcsEmulator(CcsOptions(token=TOKEN, extensions=[
        dict(uuid="u-113", firstname="Jose", lastname="Nunez", extension="113"),
        dict(uuid="u-114", firstname="Jose", lastname="Nunez", extension="114")])).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def handle(ccs):
    target = CcsTarget("ccs", ccs.base_url, paths=PATHS, token=Secret(TOKEN, "env:CCS_TOKEN"),
                       tenant_uuid=TENANT)
    with target:
        yield TargetHandle("ccs", target, MAPPING, concurrency=1, rate_limit=None)


@pytest.fixture
def state(tmp_path):
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    yield db
    db.close()


def plan_of(plan_id: str, op: str, changes: dict, *more: PlanItem, blocked: str | None = None) -> Plan:
    item = PlanItem("i1", "ccs", op, "E2", "u-113", changes, "changed in the source")
    summary = TargetSummary(accounts=1, counts={op: 1}, unmanaged=0, blocked=blocked is not None,
                            block_reason=blocked)
    return Plan(plan_id, "2026-01-01T00:00:00+00:00", "pending", 1, (), {"ccs": summary}, (item, *more))


def writes(ccs) -> list[str]:
    return [path for method, path, _ in ccs.requests if method in ("PUT", "POST", "PATCH")]


def test_what_is_written_is_remembered_and_the_next_apply_is_checked_against_it(ccs, handle, state):
    enable = {p: Change(None, v) for p, v in SETTINGS.items()} | {"active": Change(False, True)}
    result = apply_plan(plan_of("p1", ENABLE, enable), {"ccs": handle}, state, run_id="r1")
    assert result.counts == {DONE: 1} and result.run_id == "r1"
    assert writes(ccs)
    # every write-only value sent is remembered for the account, with whose link and which plan
    assert state.written("ccs") == {"u-113": {**SETTINGS, "active": True}}
    with state.session() as s:
        rows = s.exec(select(WrittenRecord)).all()
    assert {(r.account_id, r.identity, r.plan_id) for r in rows} == {("u-113", "E2", "p1")}

    # the list still shows no settings; the plan's "before" is what was written: sent, not stale
    sent = len(writes(ccs))
    result = apply_plan(plan_of("p2", UPDATE, {"max_chats": Change("3", "2")}), {"ccs": handle}, state,
                        run_id="r2")
    assert result.counts == {DONE: 1}
    assert len(writes(ccs)) > sent
    assert state.written("ccs") == {"u-113": {**SETTINGS, "max_chats": "2", "active": True}}
    assert {(r.path, r.plan_id) for r in _rows(state) if r.path == "max_chats"} == {("max_chats", "p2")}

    # applied again (a resumed plan): already as planned by memory, so nothing is sent
    sent = len(writes(ccs))
    result = apply_plan(plan_of("p2", UPDATE, {"max_chats": Change("3", "2")}), {"ccs": handle}, state,
                        run_id="r3")
    assert result.counts == {DONE: 1} and len(writes(ccs)) == sent

    # a plan made before another write is stale against the memory
    result = apply_plan(plan_of("p3", UPDATE, {"max_chats": Change("5", "6")}), {"ccs": handle}, state,
                        run_id="r4")
    assert result.counts == {STALE: 1} and len(writes(ccs)) == sent
    assert state.written("ccs")["u-113"]["max_chats"] == "2"


def _rows(state):
    with state.session() as s:
        return s.exec(select(WrittenRecord)).all()


def test_a_disable_keeps_the_link_a_replacement_got_in_an_earlier_batch(ccs, handle, state):
    state.save_link("ccs", "E2", "u-114")     # the person's new extension, linked already
    result = apply_plan(plan_of("p1", DISABLE, {"active": Change(True, False)}), {"ccs": handle}, state,
                        run_id="r1")
    assert result.counts == {DONE: 1}
    assert state.links("ccs") == {"E2": "u-114"}
    # nothing replaced it: the disabled account stays the person's
    state.save_link("ccs", "E2", "u-113")
    apply_plan(plan_of("p2", DISABLE, {"active": Change(True, False)}), {"ccs": handle}, state, run_id="r2")
    assert state.links("ccs") == {"E2": "u-113"}


def test_every_item_is_reported_with_its_status_skipped_ones_too(ccs, handle, state):
    manual = PlanItem("i2", "ccs", MANUAL, "E3", None, {}, "create extension 2002 by hand")
    stray = PlanItem("i3", "gone", UPDATE, "E4", "x", {"max_chats": Change("1", "2")}, "")
    seen = []
    enable = {"active": Change(False, True)}
    result = apply_plan(plan_of("p1", ENABLE, enable, manual, stray), {"ccs": handle}, state, run_id="r1",
                        on_item=lambda item, status: seen.append((item.id, status)))
    assert sorted(seen) == [("i1", DONE), ("i2", SKIPPED)]
    assert result.counts == {DONE: 1, SKIPPED: 1}   # an item of a target the plan does not list: untouched
    seen.clear()
    result = apply_plan(plan_of("p2", ENABLE, enable, manual, blocked="would disable 100%"), {"ccs": handle},
                        state, run_id="r2", on_item=lambda item, status: seen.append((item.id, status)))
    assert sorted(seen) == [("i1", SKIPPED), ("i2", SKIPPED)] and result.blocked_targets == ["ccs"]


class Watching:
    """The CCS target, noting the item's status in the state DB when the target hears of it."""

    def __init__(self, target, state, plan_id):
        self._target, self._state, self._plan_id, self.seen = target, state, plan_id, []

    def __getattr__(self, name):
        return getattr(self._target, name)

    def modify(self, account, changes):
        self.seen.append(self._state.load_plan(self._plan_id).items[0].status)
        return self._target.modify(account, changes)


def test_an_item_is_recorded_in_flight_before_the_target_hears_of_it(ccs, handle, state):
    # what a resumed apply relies on: a kill while the request is out leaves the item in flight
    plan = plan_of("p1", ENABLE, {"active": Change(False, True)})
    state.save_plan(plan)
    watching = Watching(handle.target, state, "p1")
    watched = TargetHandle("ccs", watching, MAPPING, concurrency=1, rate_limit=None)
    assert apply_plan(plan, {"ccs": watched}, state, run_id="r1").counts == {DONE: 1}
    assert watching.seen == [IN_FLIGHT]
    assert state.load_plan("p1").items[0].status == DONE
