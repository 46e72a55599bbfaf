"""The CCS connector against the CCS emulator on a real loopback port, and the
planner driven by the accounts it reads (correlation, manual items, validation)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from provisioner.errors import ConfigError, TargetError
from provisioner.mapping import load_mapping
from provisioner.model import FOLD, Change, Identity, SourceResult, normalize, same_value
from provisioner.planner import PlanPolicy, TargetInput, make_plan
from provisioner.connectors.ccs.emulator import CcsEmulator, CcsOptions
from provisioner.secrets import Secret
from provisioner.connectors.ccs.target import CcsTarget
from default_mappings import default_mapping

REPO = Path(__file__).resolve().parent.parent
TOKEN = "test-ccs-token-51c0"
TENANT = "81bf95ea-53d6-48e2-85cd-f8d6bde10fd9"
MAPPING = load_mapping(default_mapping("ccs"))
PATHS = list(dict.fromkeys([*MAPPING.attributes, *MAPPING.correlate]))


@pytest.fixture
def ccs():
    emulator = CcsEmulator(CcsOptions(token=TOKEN, extensions=[
        dict(uuid="u-114", firstname="Reese", lastname="Nath", extension="114", is_agent="true",
             recording_type="On Demand", monitor="true", max_chats="3", is_multimedia_enabled="true",
             agent_state="Ready"),
        dict(uuid="u-113", firstname="JOSE", lastname="Nunez", extension="113"),
        dict(uuid="u-112", firstname="Sam", lastname="Lee", extension="112"),
        dict(uuid="u-111", firstname="Sam", lastname="Lee", extension="111"),
    ])).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def connect(emulator, token=TOKEN, **kwargs) -> CcsTarget:
    return CcsTarget("ccs", emulator.base_url, paths=PATHS, token=Secret(token, "env:CCS_TOKEN"),
                     tenant_uuid=TENANT, **kwargs)


def person(key, given, family, status="active", **attrs):
    return Identity(key, {"given_name": given, "family_name": family, "department": "Support",
                          "status": status, **attrs})


# what this tool wrote to Reese's extension on an earlier run (the state DB's memory)
REESE_WRITTEN = {"active": True, "recording_type": "On Demand", "monitor": "true", "max_chats": "3",
                 "is_multimedia_enabled": "true"}


def plan_for(target, *identities, links=None, written=None):
    accounts = target.list_accounts()
    inputs = TargetInput(name="ccs", mapping=MAPPING, accounts=accounts, links=links or {},
                         capabilities=frozenset(target.capabilities), validate=target.validate,
                         manual_create=target.manual_create, read_only=target.read_only,
                         write_only=target.write_only,
                         written={"u-114": REESE_WRITTEN} if written is None else written,
                         max_disable_percent=100)
    plan = make_plan(SourceResult(tuple(identities)), [inputs], PlanPolicy(),
                     plan_id="p", created_at="t")
    return {i.identity: i for i in plan.items}, plan


def test_lists_in_both_modes_names_and_numbers_only(ccs):
    for mode, path in (("telco", f"/tenants/{TENANT}/extensions"), ("tenant", "/extensions")):
        with connect(ccs, mode=mode) as target:
            accounts = {a.id: a for a in target.list_accounts()}
        assert ccs.requests[-1][1] == "/6/v2/api" + path
        reese = accounts["u-114"]
        assert reese.attrs["fullname"] == "Reese Nath" and reese.attrs["extension"] == "114"
        # the list cannot show the agent settings: they are unknown, never guessed from the list
        assert all(reese.attrs[p] is None for p in target.write_only if p in reese.attrs)
        assert target.write_only == {"active", "is_agent", "recording_type", "monitor", "max_chats",
                                     "is_multimedia_enabled"}
    # CCS's strings equal the mapping's booleans and numbers: no false differences
    assert same_value("3", 3) and same_value("true", True)


def test_write_only_settings_are_planned_against_what_was_last_written(ccs):
    with connect(ccs) as target:
        # Reese's extension got these settings from us before: nothing to do, although the list
        # shows none of them; the same person leaving is a disable (is_agent was written true)
        items, _ = plan_for(target, person("E1", "Reese", "Nath", **{"links.onecloud.extension": "114"}),
                            links={"E1": "u-114"})
        assert items == {}
        items, _ = plan_for(target, person("E1", "Reese", "Nath", status="terminated"), links={"E1": "u-114"})
        assert items["E1"].op == "disable" and items["E1"].changes["active"].before is True
        # gone from the source altogether: disabled too
        items, _ = plan_for(target, links={"E1": "u-114"})
        assert items["E1"].op == "disable"
        # a source change is planned from the value last written
        items, _ = plan_for(target, person("E1", "Reese", "Nath"), links={"E1": "u-114"},
                            written={"u-114": {**REESE_WRITTEN, "max_chats": "2"}})
        assert items["E1"].op == "update" and items["E1"].changes["max_chats"] == Change("2", "3")
        # never written: every setting and is_agent are written once, whatever the extension holds
        items, _ = plan_for(target, person("E1", "Reese", "Nath"), links={"E1": "u-114"}, written={})
        assert items["E1"].op == "enable" and set(items["E1"].changes) == {
            "recording_type", "monitor", "max_chats", "is_multimedia_enabled", "active"}
        # a leaver whose extension was never made an agent by this tool is left alone
        items, _ = plan_for(target, person("E2", "José", "Núñez", status="terminated"),
                            links={"E2": "u-113"})
        assert items == {}


def test_correlates_by_number_then_by_name_ignoring_case_and_accents(ccs):
    with connect(ccs) as target:
        items, plan = plan_for(
            target,
            # extension 114 (from another target's link) matches, settings already right: adopted
            person("E1", "Someone", "Else", **{"links.onecloud.extension": "114"}),
            # no number: "José Núñez" finds "JOSE Nunez", who is not an agent yet
            person("E2", "José", "Núñez"),
            # two extensions carry "Sam Lee": a conflict naming both
            person("E3", "sam", "LEE"),
            # nobody: manual work naming the person and the settings
            person("E4", "Ada", "Lovelace", **{"links.onecloud.extension": "2002"}))
    assert "E1" not in items and [(l.identity, l.account_id) for l in plan.adopt] == [("E1", "u-114")]
    assert items["E2"].op == "enable" and items["E2"].account_id == "u-113"
    # never written by this tool: every setting is written once (the list cannot show them)
    assert {k: (c.before, c.after) for k, c in items["E2"].changes.items()} == {
        "recording_type": (None, "On Demand"), "monitor": (None, "true"), "max_chats": (None, "3"),
        "is_multimedia_enabled": (None, "true"), "active": (False, True)}
    assert items["E3"].op == "conflict" and "u-111" in items["E3"].reason and "u-112" in items["E3"].reason
    assert items["E4"].op == "manual"
    assert items["E4"].reason == (
        "E4 (Ada Lovelace) has no CCS extension and CCS cannot create one over its API: create "
        "extension 2002 for Ada Lovelace in CCS by hand with is_agent true, recording_type On Demand, "
        "monitor true, max_chats 3, is_multimedia_enabled true; the next run links it")


def test_fold_compares_accents_and_case():
    assert normalize(" José Núñez ", FOLD) == normalize("JOSE NUNEZ", FOLD) == "jose nunez"
    assert normalize("José", True) != normalize("Jose", True)


def test_update_and_enable_write_strings_with_put(ccs):
    with connect(ccs) as target:
        items, _ = plan_for(target, person("E2", "José", "Núñez"))
        account = target.get_account("u-113")
        target.modify(account, {k: c.after for k, c in items["E2"].changes.items()})
    after = ccs.extensions["u-113"]     # only the emulator can show what CCS holds now
    assert (after["is_agent"], after["max_chats"], after["recording_type"]) == ("true", "3", "On Demand")
    assert ("PUT", f"/6/v2/api/tenants/{TENANT}/extensions/u-113/", 200) in ccs.requests


def test_leaver_is_disabled_and_signed_out(ccs):
    with connect(ccs, signout_presence="Sign Out") as target:
        items, _ = plan_for(target, person("E1", "Reese", "Nath", status="terminated"))
        assert items["E1"].op == "disable"
        target.modify(target.get_account("u-114"), {"active": False})
        assert ccs.extensions["u-114"]["is_agent"] == "false"
        assert ccs.extensions["u-114"]["agent_state"] == "Sign Out"
        # already signed out: read the state, do not post it again
        posts = len([r for r in ccs.requests if r[0] == "POST"])
        target.modify(target.get_account("u-114"), {"active": False})
        assert len([r for r in ccs.requests if r[0] == "POST"]) == posts


def test_a_signout_presence_that_does_not_exist_blocks_reading(ccs):
    with connect(ccs, signout_presence="Coffee Break") as target:
        with pytest.raises(TargetError, match="not a sign-out presence option.*Holiday In Bahamas, Sign Out"):
            target.list_accounts()
        with pytest.raises(TargetError, match="Coffee Break"):
            target.check()


def test_out_of_range_values_are_conflicts_at_plan_time(ccs):
    with connect(ccs) as target:
        assert target.validate({"max_chats": "7"}) == "max_chats = '7': CCS takes a whole number from 0 to 6"
        assert "CCS takes 'None', 'Mandatory', 'On Demand'" in target.validate({"recording_type": "Always"})
        assert target.validate({"monitor": "yes"}) == "monitor = 'yes': CCS takes true or false"
        assert target.validate({"max_chats": 6, "monitor": True, "recording_type": "None"}) is None
        accounts = target.list_accounts()
    mapping = load_mapping(_mapping_with(Path(ccs.state_file or "."), 'max_chats = { from = "chats" }'))
    inputs = TargetInput(name="ccs", mapping=mapping, accounts=accounts, links={},
                         capabilities=frozenset(target.capabilities), validate=target.validate)
    plan = make_plan(SourceResult((person("E2", "Jose", "Nunez", chats="9"),)), [inputs], PlanPolicy(),
                     plan_id="p", created_at="t")
    assert [(i.op, i.reason) for i in plan.items] == [
        ("conflict", "max_chats = '9': CCS takes a whole number from 0 to 6")]


def _mapping_with(_unused: Path, line: str) -> Path:
    import tempfile
    text = default_mapping("ccs").read_text(encoding="utf-8").replace(
        'max_chats = { constant = "3" }', line)
    path = Path(tempfile.mkdtemp()) / "ccs.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_500_claiming_success_is_a_failure_and_400_reason_is_verbatim(ccs):
    with connect(ccs, retries=0) as target:
        account = target.get_account("u-113")
        ccs.fail_next_puts = 1
        with pytest.raises(TargetError) as failed:
            target.modify(account, {"max_chats": "2"})
        assert failed.value.status == 500 and failed.value.retryable
        assert "update extension failed (500): Internal Server Error" in str(failed.value)
        assert ccs.extensions["u-113"]["max_chats"] == "0"
        with pytest.raises(TargetError, match=r"refused \(400\): max_chats must be between 0 and 6$"):
            target.modify(account, {"max_chats": "8"})


def test_wrong_token_and_no_create(ccs):
    with connect(ccs, token="wrong") as target:
        with pytest.raises(TargetError, match="authentication refused") as refused:
            target.list_accounts()
        assert "wrong" not in str(refused.value)
    with connect(ccs) as target:
        assert "create" not in target.capabilities and "delete" not in target.capabilities
        assert target.check().endswith("4 extensions")


def test_auth_header_is_configuration(ccs):
    ccs.options.auth_header, ccs.options.auth_scheme = "X-Api-Key", ""
    with connect(ccs, auth_header="X-Api-Key", auth_scheme="") as target:
        assert len(target.list_accounts()) == 4


def test_unknown_attribute_or_mode_is_a_config_error(ccs):
    with pytest.raises(ConfigError, match="no attribute 'title'"):
        CcsTarget("ccs", ccs.base_url, paths=["title"], token=Secret(TOKEN, "x"), tenant_uuid=TENANT)
    with pytest.raises(ConfigError, match="mode must be one of tenant, telco"):
        connect(ccs, mode="admin")


def test_emulator_answers_in_the_documented_shapes(ccs):
    api = ccs.base_url + "/6/v2/api"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    listed = httpx.get(f"{api}/extensions", headers=auth).json()
    assert listed["total"] == "4" and listed["success"] is True
    # exactly the fields of the document's example: no agent settings
    assert [list(i) for i in listed["items"]] == [["uuid", "lastname", "firstname", "extension"]] * 4
    assert httpx.get(f"{api}/extensions").json() == {"status": 401, "reason": "Unauthorized"}
    bad = httpx.put(f"{api}/tenants/nope/extensions/u-113/", headers=auth, json={})
    assert (bad.status_code, bad.json()) == (400, {"success": False, "reason": "Invalid tenant"})
    ccs.fail_next_puts = 1
    quirk = httpx.put(f"{api}/tenants/{TENANT}/extensions/u-113/", headers=auth, json={"monitor": "true"})
    assert (quirk.status_code, quirk.json()) == (500, {"success": True, "reason": "Internal Server Error"})
    options = httpx.get(f"{api}/tenants/{TENANT}/presence_options", headers=auth).json()
    assert [o["name"] for o in options["items"]] == ["Holiday In Bahamas", "Sign Out", "Coffee Break"]


def test_sandbox_serve_runs_the_configured_ccs_emulator(tmp_path, monkeypatch):
    from ports import free_port
    from provisioner.config import load_config
    from provisioner.sandbox.serve import start_emulators
    port = free_port()
    monkeypatch.setenv("SANDBOX_CCS_TOKEN", TOKEN)
    (tmp_path / "config.toml").write_text(f"""
[sandbox.ccs]
port = {port}
token = "env:SANDBOX_CCS_TOKEN"

[source]
type = "csv"
path = "people.csv"
key = "employee_id"

[targets.ccs]
type = "ccs"
base_url = "http://127.0.0.1:{port}"
token = "env:SANDBOX_CCS_TOKEN"
tenant_uuid = "{TENANT}"
mode = "tenant"
mapping = "{default_mapping('ccs')}"
""", encoding="utf-8")
    settings = load_config(tmp_path / "config.toml")
    assert (settings.targets["ccs"].mode, settings.targets["ccs"].api_path) == ("tenant", "/6/v2/api")
    started = start_emulators(settings.sandbox, "config.toml")
    try:
        assert [name for name, _ in started] == ["ccs"]
        (_, emulator), = started
        emulator.add_extension("Ada", "Lovelace", "2002", is_agent="true")
        with CcsTarget("ccs", f"http://127.0.0.1:{port}", paths=PATHS, token=Secret(TOKEN, "x"),
                       tenant_uuid=TENANT) as target:
            account, = target.list_accounts()
        # the list as the vendor's example shows it: names and number only
        assert account.attrs["extension"] == "2002" and account.attrs["max_chats"] is None
    finally:
        for _, emulator in started:
            emulator.stop()


def test_header_token_auth_alone():
    from provisioner.connectors.ccs.auth import HeaderTokenAuth
    seen = []
    transport = httpx.MockTransport(lambda request: seen.append(dict(request.headers)) or httpx.Response(200))
    with httpx.Client(transport=transport) as client:
        client.get("http://x/", auth=HeaderTokenAuth(Secret("s3cret", "env:T")))
        client.get("http://x/", auth=HeaderTokenAuth(Secret("s3cret", "env:T"), "X-Api-Key", ""))
    assert seen[0]["authorization"] == "Bearer s3cret" and seen[1]["x-api-key"] == "s3cret"
    assert "s3cret" not in repr(HeaderTokenAuth(Secret("s3cret", "env:T")))
