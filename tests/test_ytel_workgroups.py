"""Ytel work-group membership (`workgroups`) against the Ytel emulator on a loopback port."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from provisioner.errors import ConfigError, TargetError
from provisioner.executor import apply_plan
from provisioner.mapping import load_mapping
from provisioner.model import Identity, SourceResult
from provisioner.planner import PlanPolicy, TargetInput, make_plan
from provisioner.connectors.ytel.emulator import YtelEmulator, YtelOptions
from provisioner.secrets import Secret
from provisioner.state import StateDB
from provisioner.target_handle import TargetHandle
from provisioner.connectors.ytel.ams_target import YtelTarget
from default_mappings import default_mapping

REPO = Path(__file__).resolve().parent.parent
API_USER, API_PASSWORD = "api@test.ytel", "test-ytel-password-5c2b"
REMOVE = "/ams/v3/workgroup/remove"     # the emulator's stand-in for the account's removal call


@pytest.fixture
def mapping(tmp_path):
    text = default_mapping("ytel").read_text(encoding="utf-8")
    text = text.replace("[attributes]\n", '[attributes]\nworkgroups = { from = "team" }\n', 1)
    path = tmp_path / "ytel.toml"
    path.write_text(text, encoding="utf-8")
    return load_mapping(path)


@pytest.fixture
def ytel():
    emulator = YtelEmulator(YtelOptions(username=API_USER, password=API_PASSWORD,
                                        workgroups=("Support", "Sales", "Crew"))).start()
    yield emulator
    emulator.stop()


def connect(emulator, mapping, managed=("Support", "Sales", "Billing"), **kwargs) -> YtelTarget:
    paths = list(dict.fromkeys([*mapping.attributes, *mapping.correlate]))
    return YtelTarget("ytel", emulator.base_url, paths=paths, username=API_USER,
                      password=Secret(API_PASSWORD, "env:YTEL_PASSWORD"),
                      account_id=emulator.options.account_id, workgroups=managed, **kwargs)


def person(key, team):
    return Identity(key, {"employee_id": key, "given_name": "Ada", "family_name": key,
                          "email": f"{key.lower()}@example.com", "department": "Support",
                          "role": "Agent", "team": team, "status": "active"})


def members(ytel, group):
    return sorted(ytel.users[u]["username"] for u in ytel.workgroups[group]["userIds"])


def plan_and_apply(target, mapping, people, state):
    handle = TargetHandle("ytel", target, mapping, concurrency=2, rate_limit=None)
    plan = make_plan(SourceResult(tuple(people)), [TargetInput(
        name="ytel", mapping=mapping, accounts=target.list_accounts(), links=state.links("ytel"),
        capabilities=target.capabilities, validate=target.validate,
        partial_change=target.partial_change, max_disable_percent=100)], PlanPolicy(),
        plan_id=f"p{time.monotonic_ns()}", created_at="2026-01-01T00:00:00+00:00")
    state.save_plan(plan)
    return apply_plan(plan, {"ytel": handle}, state, run_id="r1"), plan


@pytest.fixture
def state(tmp_path):
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    yield db
    db.close()


def test_only_managed_groups_are_read_and_a_create_joins_its_group(ytel, mapping):
    by_hand = ytel.add_user("old.hand@example.com", "Old", "Hand")
    ytel.workgroups["Crew"]["userIds"].append(by_hand["clientId"])    # not managed: never shown
    ytel.workgroups["Sales"]["userIds"].append(by_hand["clientId"])
    with connect(ytel, mapping) as target:
        [seen] = target.list_accounts()
        assert seen.attrs["workgroups"] == "Sales"
        made = target.create({"username": "ada@example.com", "firstName": "Ada", "lastName": "L",
                              "roles": "webrtc-agent", "workgroups": "Support", "active": True})
        assert made.attrs["workgroups"] == "Support"
    assert members(ytel, "Support") == ["ada@example.com"]
    assert members(ytel, "Crew") == ["old.hand@example.com"]


def test_a_move_without_a_removal_call_adds_and_leaves_a_manual_item(ytel, mapping, state):
    with connect(ytel, mapping) as target:
        plan_and_apply(target, mapping, [person("E1", "Sales")], state)
        assert members(ytel, "Sales") == ["e1@example.com"]

        result, plan = plan_and_apply(target, mapping, [person("E1", "Support")], state)
        assert [i.op for i in plan.items] == ["update", "manual"]
        assert plan.items[0].changes["workgroups"].after == "Sales, Support"
        assert "remove the user from Ytel work group 'Sales' by hand" in plan.items[1].reason
        assert result.counts == {"done": 1, "skipped": 1}     # a manual item is left to a person
        assert members(ytel, "Support") == members(ytel, "Sales") == ["e1@example.com"]

        # until a person acts, each plan says so again, and nothing else
        _, plan = plan_and_apply(target, mapping, [person("E1", "Support")], state)
        assert [i.op for i in plan.items] == ["manual"]
        ytel.workgroups["Sales"]["userIds"].clear()       # the person acted
        _, plan = plan_and_apply(target, mapping, [person("E1", "Support")], state)
        assert plan.items == ()


def test_a_move_with_the_removal_call_is_one_update(ytel, mapping, state):
    with connect(ytel, mapping, workgroup_remove_path=REMOVE) as target:
        plan_and_apply(target, mapping, [person("E1", "Sales"), person("E2", "Sales")], state)
        result, plan = plan_and_apply(target, mapping,
                                      [person("E1", "Support"), person("E2", "")], state)
        assert [(i.op, i.changes["workgroups"].after) for i in plan.items] == \
            [("update", "Support"), ("update", None)]
        assert result.counts == {"done": 2}
        assert members(ytel, "Support") == ["e1@example.com"] and members(ytel, "Sales") == []
        _, plan = plan_and_apply(target, mapping, [person("E1", "Support"), person("E2", "")], state)
        assert plan.items == ()


def test_unmanaged_or_missing_groups_are_conflicts_and_nothing_is_created(ytel, mapping, state):
    with connect(ytel, mapping) as target:
        result, plan = plan_and_apply(
            target, mapping, [person("E1", "Marketing"), person("E2", "Billing"),
                              person("E3", "Support")], state)
    assert [(i.op, i.identity) for i in plan.items] == \
        [("conflict", "E1"), ("conflict", "E2"), ("create", "E3")]
    assert "work group 'Marketing' is not in ytel's workgroups setting" in plan.items[0].reason
    assert "work group 'Billing' does not exist in Ytel: create it there first" in plan.items[1].reason
    assert result.counts == {"done": 1, "skipped": 2}
    assert sorted(ytel.workgroups) == ["Crew", "Sales", "Support"]
    assert [u["username"] for u in ytel.users.values()] == ["e3@example.com"]


def test_the_connector_refuses_what_the_plan_would_never_ask(ytel, mapping):
    with connect(ytel, mapping) as target:
        made = target.create({"username": "ada@example.com", "roles": "agent",
                              "workgroups": "Sales", "active": True})
        with pytest.raises(TargetError, match="no workgroup_remove_path is set"):
            target.modify(made, {"workgroups": None})
        with pytest.raises(TargetError, match="'Billing' does not exist in Ytel"):
            target.modify(made, {"workgroups": "Billing, Sales"})
    assert sorted(ytel.workgroups) == ["Crew", "Sales", "Support"]
    assert members(ytel, "Sales") == ["ada@example.com"]


def test_a_mapped_workgroups_attribute_needs_the_managed_list(ytel, mapping):
    with pytest.raises(ConfigError, match="list the work groups provisioner may add people to"):
        connect(ytel, mapping, managed=())


def write_config(tmp_path, base_url, rest):
    """config.toml with a CSV source and a Ytel target at `base_url`, `rest` after it."""
    (tmp_path / "pw").write_text(API_PASSWORD)
    (tmp_path / "m.toml").write_text('correlate = ["username"]\n[attributes]\nusername = { from = "email" }\n')
    path = tmp_path / "config.toml"
    path.write_text(f'''
[source]
type = "csv"
path = "people.csv"
key = "employee_id"
[targets.ytel]
type = "ytel"
base_url = "{base_url}"
mapping = "m.toml"
username = "{API_USER}"
password = "file:pw"
account_id = "acct"
{rest}''')
    return path


def test_workgroup_remove_path_must_be_a_path(tmp_path):
    from provisioner.config import load_config
    path = write_config(tmp_path, "https://api.ytel.com", 'workgroups = ["Support"]\n'
                        'workgroup_remove_path = "https://api.ytel.com/ams/v3/workgroup/remove"\n')
    with pytest.raises(ConfigError, match="workgroup_remove_path.*must be a path on the API host"):
        load_config(path)


def test_sandbox_serve_seeds_work_groups_and_keeps_membership_in_its_state_file(tmp_path, mapping):
    from provisioner.config import load_config
    from provisioner.sandbox.serve import start_emulators
    from ports import free_port
    port = free_port()
    path = write_config(tmp_path, f"http://127.0.0.1:{port}", f'''
[sandbox.ytel]
port = {port}
username = "{API_USER}"
password = "file:pw"
workgroups = ["Support", "Sales"]
state_file = "ytel.json"
''')
    settings = load_config(path)
    for round_ in range(2):
        [(_, ytel)] = start_emulators(settings.sandbox, "config.toml")
        try:
            with connect(ytel, mapping, managed=("Support",)) as target:
                if round_ == 0:
                    target.create({"username": "ada@example.com", "roles": "agent",
                                   "workgroups": "Support", "active": True})
                [ada] = target.list_accounts()
        finally:
            ytel.stop()
        assert sorted(ytel.workgroups) == ["Sales", "Support"]
        assert ada.attrs["workgroups"] == "Support"
