"""The Ytel YCC agent connector against the YCC emulator on a real loopback port."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import YCC_PASSWORD, YCC_USER, assert_nowhere
from fake_clock import FakeClock
from provisioner.errors import AlreadyExists, ConfigError, TargetError
from provisioner.executor import apply_plan
from provisioner.mapping import load_mapping
from provisioner.model import Identity, SourceResult
from provisioner.planner import PlanPolicy, TargetInput, make_plan
from provisioner.sandbox.server import Faults
from provisioner.secrets import Secret
from provisioner.state import StateDB
from provisioner.target_handle import TargetHandle
from provisioner.connectors.ytel.ycc_target import YccTarget, refused, rows_of, user_info
from default_mappings import default_mapping

REPO = Path(__file__).resolve().parent.parent
MAPPING = load_mapping(default_mapping("ytel_ycc"))
PATHS = list(dict.fromkeys([*MAPPING.attributes, *MAPPING.correlate]))


def connect(emulator, template_agent="9999", **kwargs) -> YccTarget:
    return YccTarget("ycc", emulator.base_url, paths=PATHS, token_url=emulator.base_url + "/auth/v3/token",
                     username=YCC_USER, password=Secret(YCC_PASSWORD, "env:YCC_PASSWORD"),
                     template_agent=template_agent, **kwargs)


def agent(user, email=None, **extra):
    return {"user": user, "full_name": "Ada Lovelace", "email": email or f"{user.lower()}@example.com",
            "user_group": "AGENTS", "active": True, **extra}


def person(key, email=None, role="Agent", status="active"):
    return Identity(key, {"employee_id": key, "given_name": "Ada", "family_name": "Lovelace",
                          "email": email or f"{key.lower()}@example.com", "department": "Support",
                          "role": role, "status": status})


def api_calls(emulator) -> list[tuple[str, str, int]]:
    return [r for r in emulator.requests if r[1].startswith("/api/")]


def plan_and_apply(target, people, state, *, apply=True):
    """The planner and the executor, with the target's hooks as the flow passes them."""
    accounts = target.list_accounts()     # first: it decides this run's capabilities
    plan = make_plan(SourceResult(tuple(people)), [TargetInput(
        name="ycc", mapping=MAPPING, accounts=accounts, links=state.links("ycc"),
        capabilities=target.capabilities, validate=target.validate, manual_create=target.manual_create,
        read_only=target.read_only, immutable=target.immutable, rename_hint=target.rename_hint,
        max_disable_percent=100)],
        PlanPolicy(), plan_id=f"p{time.monotonic_ns()}", created_at="2026-01-01T00:00:00+00:00")
    state.save_plan(plan)
    handle = TargetHandle("ycc", target, MAPPING, concurrency=4, rate_limit=None)
    result = apply_plan(plan, {"ycc": handle}, state, run_id="r1") if apply else None
    return plan, result


@pytest.fixture
def state(tmp_path):
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    yield db
    db.close()


# -- reading ------------------------------------------------------------------

def test_list_reads_every_agents_details_in_list_order(ycc):
    for user, group in (("E3", "SUPERVISORS"), ("E1", "AGENTS"), ("E2", "ADMIN")):
        ycc.add_agent(user, f"Agent {user}", f"{user.lower()}@example.com", user_group=group,
                      active="N" if user == "E2" else "Y")
    with connect(ycc, concurrency=3) as target:
        accounts = target.list_accounts()
        assert [a.id for a in accounts] == ["E3", "E1", "E2"]     # the template is left out
        assert accounts[0].attrs == {"user": "E3", "full_name": "Agent E3", "email": "e3@example.com",
                                     "user_group": "SUPERVISORS", "active": True}
        assert [a.active for a in accounts] == [True, True, False]
        target.list_accounts()
        assert [a.id for a in target.find_accounts("email", "E1@Example.com")] == ["E1"]
        assert [a.id for a in target.find_accounts("user", "E2")] == ["E2"]
        assert target.find_accounts("user", "9999") == [] and target.get_account("nobody") is None
    details = [p for _, p, _ in api_calls(ycc) if p.endswith("/agent-details")]
    assert len(details) == 3 * 3 + 2      # three lists, two single reads; never the template's
    assert sum(1 for _, p, _ in api_calls(ycc) if p.endswith("/agentgroup-lists")) == 1


def test_answer_shapes_the_seed_leaves_open():
    info = {"user": "1010", "active": "Y"}
    assert user_info({"data": {"user_info": info}}) == info == user_info({"user_info": info})
    assert user_info({"data": {"user_info": {}}}) is None and user_info(None) is None
    rows = [{"user_group": "AGENTS"}]
    assert rows_of({"data": rows}) == rows == rows_of({"data": {"current_page": 1, "data": rows}})
    assert refused({"success": False}) and refused({"status": "error"}) and refused({"error": "no"})
    assert not refused({"status": True, "error": []}) and not refused(None)


# -- writing ------------------------------------------------------------------

def test_create_clones_the_template_then_sets_what_the_clone_did_not_give(ycc):
    ycc.agents["9999"].update(voicemail_id="8000", custom_two="from the template")
    with connect(ycc) as target:
        target.list_accounts()
        before = len(api_calls(ycc))
        made = target.create(agent("E1", user_group="SUPERVISORS"))
        assert made.attrs == agent("E1", user_group="SUPERVISORS")
        assert [p for _, p, _ in api_calls(ycc)[before:]] == [
            "/api/v2/clone-agent-details", "/api/v2/agent-details", "/api/v2/update-agent-details"]
        # what the mapping does not manage stays as the template gave it
        new = ycc.agents["E1"]
        assert (new["user_group"], new["active"], new["voicemail_id"], new["custom_two"]) == (
            "SUPERVISORS", "Y", "8000", "from the template")
        assert len(ycc.agent_passwords["E1"]) >= 20

        # a created-inactive agent in the template's group needs no update
        before = len(api_calls(ycc))
        target.create(agent("E2", active=False))
        assert [p for _, p, _ in api_calls(ycc)[before:]] == [
            "/api/v2/clone-agent-details", "/api/v2/agent-details"]
        assert ycc.agents["E2"]["active"] == "N"


def test_update_lays_the_changes_over_the_current_values(ycc):
    kept = {"voicemail_id": "8001", "custom_one": "desk 12", "agentcall_manual": "0",
            "force_change_password": "Y", "user_group": "SUPERVISORS"}
    ycc.add_agent("E1", "Ada Lovelace", "ada@example.com", **kept)
    with connect(ycc) as target:
        target.modify(target.get_account("E1"), {"full_name": "Ada King"})
        assert ycc.agents["E1"]["full_name"] == "Ada King"
        target.modify(target.get_account("E1"), {"active": False})
        assert ycc.agents["E1"]["active"] == "N"
        target.modify(target.get_account("E1"), {"active": True, "user_group": "AGENTS"})
        assert (ycc.agents["E1"]["active"], ycc.agents["E1"]["user_group"]) == ("Y", "AGENTS")
    # the emulator clears a field an update leaves out: these were sent back as they were
    assert {k: ycc.agents["E1"][k] for k in kept} == {**kept, "user_group": "AGENTS"}
    assert ycc.agents["E1"]["email"] == "ada@example.com"


def test_refusals_under_http_200_fail_and_quote_ycc(ycc_factory):
    ycc = ycc_factory(soft_errors=True)
    with connect(ycc) as target:
        target.create(agent("E1"))
        with pytest.raises(AlreadyExists) as exc:
            target.create(agent("E1", "other@example.com"))
        assert exc.value.status == 200 and not exc.value.retryable
        assert str(exc.value) == ("ycc: create (clone of 9999) refused (HTTP 200, status false): "
                                  "The new agent E1 has already been taken.")
        with pytest.raises(TargetError, match=r"update agent E1 refused \(HTTP 200, status false\): "
                                              r"The selected user group NOPE is invalid\."):
            target.modify(target.get_account("E1"), {"user_group": "NOPE"})
        assert target.get_account("nobody") is None     # "Agent not found" under 200
    assert {s for _, _, s in api_calls(ycc)} == {200}
    assert ycc.agents["E1"]["user_group"] == "AGENTS"


def test_a_token_that_dies_mid_run_is_renewed_once(ycc_factory):
    ycc = ycc_factory(Faults(token_lifetime=60))
    ycc.clock = clock = FakeClock()   # the server's: its tokens die when the test says
    with connect(ycc) as target:
        assert "1 agents; template agent '9999' present" in target.check()
        clock.advance(61)
        assert "present" in target.check()
    assert ycc.grants == ["resource_owner_credentials", "refresh_token"]
    assert ycc.statuses("/api/v2/get-agent-list") == [200, 401, 200]


# -- through the planner and the executor --------------------------------------

def test_passwords_never_reach_the_log_the_plan_or_the_state_db(ycc, state, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with connect(ycc) as target:
        plan, result = plan_and_apply(target, [person("E1"), person("E2")], state)
    assert result.counts == {"done": 2}
    passwords = list(ycc.agent_passwords.values())
    assert len(passwords) == 2
    state.close()
    assert_nowhere(passwords, db_file=tmp_path / "state.db", log_text=caplog.text, plan=plan)


def test_a_hand_made_agent_is_linked_by_email_and_the_second_plan_is_empty(ycc, state):
    ycc.add_agent("1001", "Ada Lovelace", "e1@example.com")
    people = [person("E1"), person("E2", role="Agent, Supervisor"), person("E3", status="inactive")]
    with connect(ycc) as target:
        plan, result = plan_and_apply(target, people, state)
        assert [(i.op, i.identity) for i in plan.items] == [("create", "E2")]
        assert result.counts == {"done": 1}
        assert state.links("ycc") == {"E1": "1001", "E2": "E2"}    # E1 keeps user id 1001
        assert ycc.agents["E2"]["user_group"] == "SUPERVISORS" and ycc.agents["E2"]["active"] == "Y"
        plan, _ = plan_and_apply(target, people, state, apply=False)
        assert plan.items == ()
    assert not any("delete" in p for _, p, _ in ycc.requests)


def test_an_unknown_user_group_is_a_conflict_with_a_hint(ycc, state):
    with connect(ycc) as target:
        plan, result = plan_and_apply(target, [person("E1", role="AGENT"), person("E2")], state)
    assert [(i.op, i.identity) for i in plan.items] == [("conflict", "E1"), ("create", "E2")]
    assert plan.items[0].reason.startswith("user_group 'AGENT' is not an agent group in YCC "
                                           "(did you mean 'AGENTS'?)")
    assert sorted(ycc.agents) == ["9999", "E2"]


def test_without_the_template_creates_are_manual_and_disables_still_apply(ycc, state):
    ycc.add_agent("E1", "Ada Lovelace", "e1@example.com")
    people = [person("E1", status="inactive"), person("E2")]
    with connect(ycc, template_agent="8888") as target:
        assert "template agent '8888' NOT among them" in target.check()
        plan, result = plan_and_apply(target, people, state)
    assert [(i.op, i.identity) for i in plan.items] == [("disable", "E1"), ("manual", "E2")]
    assert "template_agent '8888' is not among the agents" in plan.items[1].reason
    assert result.counts == {"done": 1, "skipped": 1}
    assert ycc.agents["E1"]["active"] == "N" and "E2" not in ycc.agents


def test_an_email_change_needs_the_admin_password(ycc, state):
    ycc.add_agent("E1", "Ada Lovelace", "ada@example.com")
    moved = [person("E1", "ada.king@example.com")]
    with connect(ycc) as target:
        plan, result = plan_and_apply(target, moved, state)
    assert [i.op for i in plan.items] == ["manual"]
    assert "email cannot change on ycc" in plan.items[0].reason
    assert "or set admin_password for target ycc" in plan.items[0].reason
    assert "recreate" not in plan.items[0].reason      # a key only ytel targets take
    assert ycc.agents["E1"]["email"] == "ada@example.com"

    with connect(ycc, admin_password=Secret("not-the-admin-password", "env:YCC_ADMIN")) as target:
        plan, result = plan_and_apply(target, moved, state)
    assert [i.op for i in plan.items] == ["update"] and result.counts == {"failed": 1}
    assert "The admin password is required to change the email." in state.load_plan(plan.plan_id).items[0].error

    with connect(ycc, admin_password=Secret(YCC_PASSWORD, "env:YCC_ADMIN")) as target:
        plan, result = plan_and_apply(target, moved, state)
        assert result.counts == {"done": 1} and ycc.agents["E1"]["email"] == "ada.king@example.com"
        assert plan_and_apply(target, moved, state, apply=False)[0].items == ()


# -- configuration, `sandbox serve` and the CLI ----------------------------------

def _config(tmp_path, port, target_extra='template_agent = "9999"\n'):
    (tmp_path / "ytel_ycc.toml").write_text(default_mapping("ytel_ycc").read_text(encoding="utf-8"),
                                            encoding="utf-8")
    # the columns the default mapping reads, no people
    (tmp_path / "people.csv").write_text("employee_id,given_name,family_name,email,department,role,status\n",
                                         encoding="utf-8")
    (tmp_path / "ycc_password").write_text(YCC_PASSWORD, encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(f'''
[state]
url = "sqlite:///state.db"

[source]
type = "csv"
path = "people.csv"
key = "employee_id"

[targets.ycc]
type = "ytel_ycc"
base_url = "http://127.0.0.1:{port}"
token_url = "http://127.0.0.1:{port}/auth/v3/token"
mapping = "ytel_ycc.toml"
username = "{YCC_USER}"
password = "file:ycc_password"
{target_extra}
[sandbox.ytel_ycc]
port = {port}
username = "{YCC_USER}"
password = "file:ycc_password"
admin_password = "file:ycc_password"
state_file = "ycc.json"
''', encoding="utf-8")
    return path


def test_config_sandbox_serve_and_the_target_meet(tmp_path):
    from ports import free_port
    from provisioner.config import load_config
    from provisioner.flow import open_targets
    from provisioner.sandbox.serve import start_emulators
    port = free_port()
    settings = load_config(_config(tmp_path, port, 'template_agent = "9999"\n'
                                                   'admin_password = "file:ycc_password"\n'))
    target_settings = settings.targets["ycc"]
    assert (target_settings.template_agent, target_settings.refresh_minutes) == ("9999", 120)
    assert settings.sandbox.ytel_ycc.port == port and settings.sandbox.ytel_ycc.template_agent == "9999"
    [(name, emulator)] = start_emulators(settings.sandbox, "config.toml")
    try:
        with open_targets(settings) as handles:
            target = handles["ycc"].target
            assert target.immutable == frozenset()          # admin_password set: e-mails can change
            assert "template agent '9999' present" in target.check()
            target.create(agent("E1"))
    finally:
        emulator.stop()
    kept = (tmp_path / "ycc.json").read_text()
    assert name == "ytel_ycc" and '"E1"' in kept and YCC_PASSWORD not in kept
    assert ycc_password_sent(emulator) not in kept


def ycc_password_sent(emulator) -> str:
    [password] = emulator.agent_passwords.values()
    return password


def test_config_mistakes_are_one_sentence(tmp_path, monkeypatch):
    from provisioner.config import load_config
    monkeypatch.chdir(tmp_path)     # the messages name the file as it was given
    path = _config(tmp_path, 9106, target_extra="")
    with pytest.raises(ConfigError) as exc:
        load_config("config.toml")
    assert str(exc.value) == "config.toml: targets.ycc.template_agent: is required (line 10, column 2)"
    path = _config(tmp_path, 9106, 'template_agent = "9999"\nadmin_password = "hunter2-plain"\n')
    with pytest.raises(ConfigError) as exc:
        load_config("config.toml")
    assert str(exc.value).startswith("config.toml: targets.ycc.admin_password: secrets are never written")
    assert "hunter2-plain" not in str(exc.value)
    path.write_text(path.read_text().replace('admin_password = "hunter2-plain"\n', "")
                    .replace("token_url = \"http://", "token_url = \"ftp://"))
    with pytest.raises(ConfigError, match="targets.ycc.token_url: must be an http:// or https:// URL"):
        load_config(path)


def test_cli_check_and_a_mapping_field_ycc_lacks(tmp_path, ycc):
    path = _config(tmp_path, ycc.port)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PROVISIONER_DB", None)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "provisioner", "--config", str(path), *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    checked = run("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "template agent '9999' present" in checked.stdout
    mapping = tmp_path / "ytel_ycc.toml"
    mapping.write_text(mapping.read_text() + 'nickname = { from = "given_name" }\n')
    refused_run = run("check")
    assert refused_run.returncode == 2 and "Traceback" not in refused_run.stderr
    assert refused_run.stderr.strip() == ("error: ycc: YCC agents have no field 'nickname' (known: user, email, "
                                          "full_name, user_group, active, agent_choose_ingroups, agentcall_manual, "
                                          "agentonly_callbacks, closer_default_blended, voicemail_id, custom_one, "
                                          "custom_two, custom_three, custom_four, custom_five, force_change_password)")
    assert YCC_PASSWORD not in checked.stdout + checked.stderr + refused_run.stderr
