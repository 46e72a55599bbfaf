"""The Ytel AMS connector against the Ytel emulator on a real loopback port."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import assert_nowhere
from fake_clock import FakeClock
from provisioner.connectors.ytel.auth import YtelTokenAuth
from provisioner.errors import AlreadyExists, ConfigError, TargetError
from provisioner.executor import apply_plan
from provisioner.mapping import load_mapping
from provisioner.model import Identity, SourceResult
from provisioner.planner import PlanPolicy, TargetInput, make_plan
from provisioner.sandbox.server import Faults
from provisioner.connectors.ytel.emulator import YtelEmulator, YtelOptions
from provisioner.secrets import Secret
from provisioner.state import StateDB
from provisioner.target_handle import TargetHandle
from provisioner.connectors.ytel.ams_target import YtelTarget, new_password
from default_mappings import default_mapping

REPO = Path(__file__).resolve().parent.parent
API_USER, API_PASSWORD = "api@test.ytel", "test-ytel-password-5c2b"
MAPPING = load_mapping(default_mapping("ytel"))
PATHS = list(dict.fromkeys([*MAPPING.attributes, *MAPPING.correlate]))


@pytest.fixture
def ytel_factory():
    started = []

    def start(faults=None, **options):
        emulator = YtelEmulator(YtelOptions(username=API_USER, password=API_PASSWORD, **options),
                                faults).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def ytel(ytel_factory):
    return ytel_factory()


def connect(emulator, password=API_PASSWORD, **kwargs) -> YtelTarget:
    return YtelTarget("ytel", emulator.base_url, paths=PATHS, username=API_USER,
                      password=Secret(password, "env:YTEL_PASSWORD"),
                      account_id=emulator.options.account_id, **kwargs)


def user(email, **extra):
    return {"username": email, "firstName": "Ada", "lastName": "Lovelace", "emailAddress": email,
            "phone": None, "roles": "webrtc-agent", "active": True, **extra}


def person(key, email, role="Agent", status="active"):
    return Identity(key, {"employee_id": key, "given_name": "Ada", "family_name": key,
                          "email": email, "department": "Support", "role": role, "status": status})


# -- the connector ------------------------------------------------------------

def test_create_read_update_disable_enable(ytel):
    with connect(ytel) as target:
        made = target.create(user("ada@example.com", phone="555-0101"))
        assert made.attrs == user("ada@example.com", phone="555-0101")
        assert ytel.users[made.id]["belongAcctId"] == ytel.options.account_id
        # the emulator refuses a PUT without the full roles: a name change alone still goes through
        target.modify(made, {"firstName": "Augusta"})
        target.modify(target.get_account(made.id), {"roles": "supervisor, webrtc-agent", "phone": None})
        got = target.get_account(made.id)
        assert (got.attrs["firstName"], got.attrs["roles"], got.attrs["phone"]) == \
            ("Augusta", "supervisor, webrtc-agent", None)
        target.modify(got, {"active": False})
        assert target.get_account(made.id).active is False
        assert ytel.users[made.id]["userStatus"] == "inactive"
        target.modify(target.get_account(made.id), {"active": True})
        assert target.get_account(made.id).active is True
        assert [a.id for a in target.find_accounts("username", "ADA@example.com")] == [made.id]
        assert target.find_accounts("username", "nobody@example.com") == []
        assert target.get_account("no-such-id") is None
        assert [a.id for a in target.list_accounts()] == [made.id]
        assert "1 users" in target.check()


def test_envelope_failure_under_http_200_is_the_items_error(ytel):
    with connect(ytel) as target:
        target.create(user("ada@example.com"))
        with pytest.raises(AlreadyExists) as exc:
            target.create(user("Ada@Example.com"))
        assert exc.value.status == 200
        assert "409 User already exists (username Ada@Example.com is taken)" in str(exc.value)
        with pytest.raises(TargetError) as exc:
            target.create(user("bob@example.com", roles="astronaut"))
        assert "400 Role astronaut does not exist" in str(exc.value) and not exc.value.retryable
    assert [s for m, p, s in ytel.requests if m == "POST" and p.startswith("/ams")] == [200, 200, 200]


def test_unknown_role_is_found_at_plan_time(ytel):
    with connect(ytel) as target:
        target.list_accounts()   # reads the roles once per run
        assert target.validate(user("a@example.com")) is None
        problem = target.validate(user("a@example.com", roles="webrtc-agent, supervsor"))
        assert "role 'supervsor' does not exist in Ytel (did you mean 'supervisor'?)" in problem
    assert sum(1 for _, p, _ in ytel.requests if p == "/ams/v2/roles/all") == 1


def test_a_username_change_is_refused_by_the_connector_too(ytel):
    with connect(ytel) as target:
        made = target.create(user("ada@example.com"))
        with pytest.raises(TargetError, match="usernames cannot change"):
            target.modify(made, {"username": "ada.l@example.com"})


def test_generated_passwords_are_strong_and_different():
    seen = {new_password() for _ in range(50)}
    assert len(seen) == 50
    for password in seen:
        assert len(password) >= 20 and not password.isalnum()
        assert any(c.isupper() for c in password) and any(c.islower() for c in password)
        assert any(c.isdigit() for c in password)


def test_sso_mode_sends_no_password(ytel_factory):
    ytel = ytel_factory(sso=True)
    with connect(ytel, password_mode="none") as target:
        made = target.create(user("ada@example.com"))
    assert made.id in ytel.users and made.id not in ytel.passwords


# -- tokens -------------------------------------------------------------------

@pytest.mark.parametrize("status", [401, 403])
def test_bad_token_mid_run_refreshes_once(ytel_factory, status):
    ytel = ytel_factory(Faults(token_lifetime=60), bad_token_status=status)
    ytel.clock = clock = FakeClock()   # the server's: its tokens die when the test says
    with connect(ytel) as target:
        made = target.create(user("ada@example.com"))
        clock.advance(61)   # the token expired; the client still believes in its 120 minutes
        assert target.get_account(made.id).id == made.id
    assert ytel.grants == ["resource_owner_credentials", "refresh_token"]
    assert ytel.statuses(f"/ams/v3/users/{made.id}") == [status, 200]


def test_token_is_refreshed_before_it_expires(ytel):
    now = [1000.0]
    auth = YtelTokenAuth(ytel.base_url + "/auth/v3/token", API_USER,
                         Secret(API_PASSWORD, "env:YTEL_PASSWORD"), clock=lambda: now[0])
    with httpx.Client(base_url=ytel.base_url, auth=auth) as client:
        assert client.get("/ams/v3/users/").status_code == 200
        now[0] += 117 * 60     # still good for three minutes: kept
        assert client.get("/ams/v3/users/").status_code == 200
        assert ytel.grants == ["resource_owner_credentials"]
        now[0] += 90           # 90 s left: renewed with the refresh token, before it expires
        assert client.get("/ams/v3/users/").status_code == 200
        now[0] += 119 * 60
        assert client.get("/ams/v3/users/").status_code == 200
    assert ytel.grants == ["resource_owner_credentials", "refresh_token", "refresh_token"]
    assert 401 not in ytel.statuses("/ams/")


def test_refresh_minutes_is_the_refresh_tokens_lifetime_not_the_access_tokens(ytel):
    # seed 002: refreshDurationMinutes is how long the refresh token stays valid; the access token
    # lives its documented 120 minutes whatever is asked for the refresh token
    now = [1000.0]
    auth = YtelTokenAuth(ytel.base_url + "/auth/v3/token", API_USER,
                         Secret(API_PASSWORD, "env:YTEL_PASSWORD"), refresh_minutes=30, clock=lambda: now[0])
    with httpx.Client(base_url=ytel.base_url, auth=auth) as client:
        assert client.get("/ams/v3/users/").status_code == 200
        now[0] += 60 * 60      # the refresh token is out of date, the access token still good: kept
        assert client.get("/ams/v3/users/").status_code == 200
        assert ytel.grants == ["resource_owner_credentials"]
        now[0] += 59 * 60      # the access token is due; its refresh token is too old to use
        assert client.get("/ams/v3/users/").status_code == 200
    assert ytel.grants == ["resource_owner_credentials"] * 2
    assert ytel.refresh_durations == [30, 30] and all(type(m) is int for m in ytel.refresh_durations)


def test_refresh_minutes_from_the_config_go_out_as_an_integer(tmp_path):
    from provisioner.config import load_config
    from provisioner.flow import open_targets
    from ports import free_port
    port = free_port()
    path = _config(tmp_path, 'account_id = "173c6f7f-c911-f823-fb2d-a13e4780c300"\nrefresh_minutes = 45')
    path.write_text(path.read_text().replace("{port}", str(port)))
    settings = load_config(path)
    emulator = YtelEmulator(YtelOptions(username=API_USER, password=API_PASSWORD)).start(port)
    try:
        with open_targets(settings) as handles:
            assert "0 users" in handles["ytel"].target.check()
    finally:
        emulator.stop()
    assert emulator.refresh_durations == [45] and type(emulator.refresh_durations[0]) is int
    path.write_text(path.read_text().replace("refresh_minutes = 45", "refresh_minutes = 45.5"))
    with pytest.raises(ConfigError, match=r"targets\.ytel\.refresh_minutes: must be a whole number"):
        load_config(path)
    path.write_text(path.read_text().replace("refresh_minutes = 45.5", "token_minutes = 45"))
    with pytest.raises(ConfigError, match=r"targets\.ytel: token_minutes is now refresh_minutes"):
        load_config(path)


def test_a_token_refused_twice_is_an_error_not_a_loop(ytel_factory):
    ytel = ytel_factory(Faults(token_lifetime=0))   # every token is dead on arrival
    with connect(ytel) as target:
        with pytest.raises(TargetError, match="401"):
            target.list_accounts()
    assert ytel.grants == ["resource_owner_credentials", "refresh_token"]
    assert ytel.statuses("/ams/") == [401, 401]


def test_wrong_password_says_what_to_check(ytel):
    with connect(ytel, password="wrong-password-1234") as target:
        with pytest.raises(TargetError) as exc:
            target.list_accounts()
    message = str(exc.value)
    assert "refused 'api@test.ytel'" in message and "check username and password" in message
    assert "wrong-password-1234" not in message


# -- rate limits --------------------------------------------------------------

def test_requests_are_paced_to_the_announced_limit(ytel_factory):
    # the outcome, not the rate: how close to the limit (and how few 429s) is bench/ytel_pacing.py's
    ytel = ytel_factory(rate_limit=40)
    with connect(ytel) as target:
        target.list_accounts()              # the first answer announces 40/s
        with ThreadPoolExecutor(8) as pool:
            made = list(pool.map(lambda n: target.create(user(f"p{n}@example.com")), range(60)))
        assert target._limiter.rate == pytest.approx(40 * 0.95)
    assert len(made) == len(ytel.users) == 60


def test_documented_limits_hold_from_the_first_request_and_after_a_renewal(ytel_factory):
    # seed 002: 150 requests/s on AMS calls and, separately, 25/s on the token endpoint. Slow
    # answers keep 100 workers' requests in flight: a client that paced only once the headers
    # told it the limit would send 100 before the first answer, and each request refused for its
    # token would be sent again at once, beside the paced ones.
    ytel = ytel_factory(Faults(latency=0.3))
    with connect(ytel) as target, ThreadPoolExecutor(100) as pool:
        assert not any(pool.map(lambda n: target.get_account(f"none-{n}"), range(250)))
        assert ytel.busiest_second("api") <= 150 and 429 not in ytel.statuses()
        ytel.revoke_tokens()     # the first wave after this is refused "Bad token", renewed, re-sent
        assert not any(pool.map(lambda n: target.get_account(f"none-{n}"), range(250)))
    assert ytel.grants == ["resource_owner_credentials", "refresh_token"]
    assert 401 in ytel.statuses() and 429 not in ytel.statuses() and ytel.throttled == 0
    assert ytel.busiest_second("api") <= 150 and ytel.busiest_second("token") <= 25
    assert len(ytel.arrivals["api"]) > 500      # the re-sent requests are in the count


def test_the_emulator_holds_each_limit_in_any_one_second_span(ytel_factory):
    ytel = ytel_factory(rate_limit=5, token_rate_limit=2)
    with httpx.Client(base_url=ytel.base_url) as client:
        token = [client.post("/auth/v3/token", json={"grantType": "x"}).status_code for _ in range(3)]
        api = [client.get("/ams/v3/users/").status_code for _ in range(7)]
    # its own bucket each: the token calls do not use up the API's five
    assert token == [400, 400, 429] and api == [401] * 5 + [429] * 2
    assert (ytel.busiest_second("token"), ytel.busiest_second("api")) == (3, 7) and ytel.throttled == 3


def test_429_is_waited_out_as_the_headers_say(ytel_factory):
    # paced to the documented 150/s until told 3/s: too fast. Slow answers make sure all six are
    # on their way before the first answer tells the limit (a prompt one could slow the later ones)
    ytel = ytel_factory(Faults(latency=0.3), rate_limit=3)
    with connect(ytel) as target:
        with ThreadPoolExecutor(6) as pool:
            counts = list(pool.map(lambda _: len(target.list_accounts()), range(6)))
    assert counts == [0] * 6
    assert ytel.throttled > 0 and ytel.statuses("/ams/v3/users").count(200) == 6


# -- through the planner and the executor --------------------------------------

def _plan_and_apply(target, people, tmp_path, rename="manual", state=None):
    state = state or StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    handle = TargetHandle("ytel", target, MAPPING, concurrency=4, rate_limit=None)
    plan = make_plan(SourceResult(tuple(people)), [TargetInput(
        name="ytel", mapping=MAPPING, accounts=target.list_accounts(), links=state.links("ytel"),
        capabilities=target.capabilities, validate=target.validate, immutable=target.immutable,
        rename=rename, max_disable_percent=100)], PlanPolicy(),
        plan_id=f"p{time.monotonic_ns()}", created_at="2026-01-01T00:00:00+00:00")
    state.save_plan(plan)
    return apply_plan(plan, {"ytel": handle}, state, run_id="r1"), plan, state


def test_passwords_never_reach_the_log_the_plan_or_the_state_db(ytel, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with connect(ytel) as target:
        result, plan, state = _plan_and_apply(
            target, [person("E1", "ada@example.com"), person("E2", "bob@example.com")], tmp_path)
    assert result.counts == {"done": 2}
    passwords = list(ytel.passwords.values())
    assert len(passwords) == 2 and all(len(p) >= 20 for p in passwords)
    state.close()
    assert_nowhere(passwords, db_file=tmp_path / "state.db", log_text=caplog.text, plan=plan)


def test_rename_is_manual_by_default_and_recreate_when_asked(ytel, tmp_path):
    with connect(ytel) as target:
        _, _, state = _plan_and_apply(target, [person("E1", "old@example.com")], tmp_path)
        old = state.links("ytel")["E1"]
        moved = [person("E1", "new@example.com")]

        result, plan, _ = _plan_and_apply(target, moved, tmp_path, state=state)
        assert [i.op for i in plan.items] == ["manual"]
        assert "username cannot change on ytel: E1's username changed from 'old@example.com' " \
               "to 'new@example.com'" in plan.items[0].reason
        assert len(ytel.users) == 1

        result, plan, _ = _plan_and_apply(target, moved, tmp_path, rename="recreate", state=state)
        assert [(i.op, i.account_id) for i in plan.items] == [("create", None), ("disable", old)]
        assert result.counts == {"done": 2}
        new = state.links("ytel")["E1"]
        assert new != old and ytel.users[new]["username"] == "new@example.com"
        assert ytel.users[old]["userStatus"] == "inactive" and ytel.users[new]["userStatus"] == "active"

        _, plan, _ = _plan_and_apply(target, moved, tmp_path, rename="recreate", state=state)
        assert plan.items == ()


def test_unknown_role_in_the_source_is_a_conflict_item(ytel, tmp_path):
    with connect(ytel) as target:
        result, plan, _ = _plan_and_apply(
            target, [person("E1", "ada@example.com", role="Astronaut"), person("E2", "b@example.com")],
            tmp_path)
    assert [(i.op, i.identity) for i in plan.items] == [("conflict", "E1"), ("create", "E2")]
    assert "role 'Astronaut' does not exist in Ytel" in plan.items[0].reason
    assert len(ytel.users) == 1


# -- configuration and `sandbox serve` ------------------------------------------

def _config(tmp_path, target_extra="", policy=""):
    (tmp_path / "mappings").mkdir(exist_ok=True)
    (tmp_path / "mappings" / "ytel.toml").write_text(
        default_mapping("ytel").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "people.csv").write_text("employee_id,email\n", encoding="utf-8")
    (tmp_path / "ytel_password").write_text(API_PASSWORD, encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(f'''
[source]
type = "csv"
path = "people.csv"
key = "employee_id"
{policy}
[targets.ytel]
type = "ytel"
base_url = "http://127.0.0.1:{{port}}"
mapping = "mappings/ytel.toml"
username = "{API_USER}"
password = "file:ytel_password"
{target_extra}
[sandbox.ytel]
port = {{port}}
username = "{API_USER}"
password = "file:ytel_password"
state_file = "ytel.json"
''', encoding="utf-8")
    return path


def test_config_sandbox_serve_and_the_target_meet(tmp_path):
    from provisioner.config import load_config
    from provisioner.flow import open_targets
    from provisioner.sandbox.serve import start_emulators
    from ports import free_port
    port = free_port()
    path = _config(tmp_path, 'account_id = "173c6f7f-c911-f823-fb2d-a13e4780c300"\nrename = "recreate"')
    path.write_text(path.read_text().replace("{port}", str(port)))
    settings = load_config(path)
    assert settings.targets["ytel"].rename_mode(settings.policy) == "recreate"
    started = start_emulators(settings.sandbox, path.name)
    try:
        with open_targets(settings) as handles:
            target = handles["ytel"].target
            assert "0 users" in target.check()
            target.create(user("ada@example.com"))
    finally:
        for _, emulator in started:
            emulator.stop()
    assert "ada@example.com" in (tmp_path / "ytel.json").read_text()
    assert API_PASSWORD not in (tmp_path / "ytel.json").read_text()


def test_the_old_policy_ytel_rename_says_where_rename_went(tmp_path):
    from provisioner.config import load_config
    from provisioner.errors import ConfigError
    path = _config(tmp_path, 'account_id = "173c6f7f-c911-f823-fb2d-a13e4780c300"',
                   "[policy]\nytel_rename = \"recreate\"")
    path.write_text(path.read_text().replace("{port}", "9102"))
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == (
        f"{path}: policy: ytel_rename: has moved: set rename = \"manual\" or \"recreate\" in the "
        "[targets.NAME] table of each target of type \"ytel\" instead (line 6, column 2)")


def test_a_ytel_target_renames_by_hand_unless_told(tmp_path):
    from provisioner.config import load_config
    path = _config(tmp_path, 'account_id = "173c6f7f-c911-f823-fb2d-a13e4780c300"')
    path.write_text(path.read_text().replace("{port}", "9102"))
    settings = load_config(path)
    assert settings.targets["ytel"].rename_mode(settings.policy) == "manual"


def test_config_without_account_id_names_the_key(tmp_path):
    from provisioner.config import load_config
    from provisioner.errors import ConfigError
    path = _config(tmp_path)
    with pytest.raises(ConfigError, match="account_id"):
        load_config(path)


def test_an_apply_of_500_creates_at_25_per_second_loses_nothing():
    """The issue's load: every item done, none failed (the 429s answered and the achieved rate
    are bench/ytel_pacing.py's figures: a loaded machine bunches requests, an outcome it cannot break)."""
    import sys
    sys.path.insert(0, str(REPO / "bench"))
    from ytel_pacing import run
    got = run(creates=500, limit=25)
    assert got.counts == {"done": 500} and got.failed == 0
