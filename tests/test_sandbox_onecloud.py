"""The OneCloud emulator against the vendor's own examples (seed 001, a Postman
collection): same keys, same value types, field for field; ids and times differ.
Then its documented refusals and the fault knobs, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import ONECLOUD_SECRET, ONECLOUD_TENANT
from fake_clock import FakeClock
from ports import free_port
from provisioner.connectors.onecloud.emulator import TEAMS, OneCloudEmulator, OneCloudOptions
from provisioner.sandbox.server import Faults

SEED = Path(__file__).parent / "data" / "onecloud_postman.json"
API = "/configapi/v2"
# keys a user may or may not carry (optional attributes, or shown in only some examples)
OPTIONAL = {"externalId", "created", "lastModified", "nickName", "title", "timezone", "region",
            "groups", "external", "startIndex", "itemsPerPage", "locality", "country"}


def _examples() -> dict[str, list[tuple[dict, dict]]]:
    """request name -> [(request, response example)] from the Postman collection."""
    out: dict[str, list] = {}

    def walk(items, folder):
        for item in items:
            if "item" in item:
                walk(item["item"], item["name"])
            else:
                out.setdefault(f"{folder}/{item['name']}", []).extend(
                    (item["request"], r) for r in item.get("response", []))
    walk(json.loads(SEED.read_text(encoding="utf-8"))["item"], "")
    return out


EXAMPLES = _examples()


def vendor(name: str, index: int = 0) -> tuple[int, object, dict]:
    """(status, parsed body, request) of a seed example."""
    request, response = EXAMPLES[name][index]
    body = response.get("body") or ""
    return response.get("code"), json.loads(body) if body.strip() else None, request


def request_body(request: dict) -> dict:
    return json.loads(request["body"]["raw"])


def same_shape(ours, theirs, where="body") -> None:
    """Every key the vendor shows is in ours with a value of the same type (recursively)."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{where}: {ours!r} is not an object"
        for key, value in theirs.items():
            if key not in ours and key in OPTIONAL:
                continue
            assert key in ours, f"{where}: the vendor's {key!r} is missing"
            same_shape(ours[key], value, f"{where}.{key}")
        extra = set(ours) - set(theirs) - OPTIONAL
        assert not extra, f"{where}: keys the vendor never sends: {sorted(extra)}"
    elif isinstance(theirs, list):
        assert isinstance(ours, list), f"{where}: {ours!r} is not a list"
        if theirs and ours:
            # compare ours with the vendor's entry of the same kind (phone types differ by position)
            for i, mine in enumerate(ours):
                match = next((t for t in theirs if isinstance(t, dict) and isinstance(mine, dict)
                              and t.get("type") == mine.get("type") and "type" in t), theirs[0])
                same_shape(mine, match, f"{where}[{i}]")
    else:
        assert type(ours) is type(theirs), f"{where}: {ours!r} is not like the vendor's {theirs!r}"


def seed_options(**extra) -> OneCloudOptions:
    """An emulator configured like the tenant of the examples."""
    _, _, request = vendor("Authentication/Get Access Token")
    form = {f["key"]: f["value"] for f in request["body"]["urlencoded"]}
    return OneCloudOptions(client_id=form["client_id"], client_secret=form["client_secret"],
                           tenant=form["scope"], teams=(*TEAMS, "Support Team", "Accounting"),
                           skills=("Support", "Mobile", "Cable"), **extra)


@pytest.fixture
def seeded(onecloud_factory):
    """(emulator, client with a token) for the examples' tenant."""
    def make(**options):
        emulator = onecloud_factory(seed_options(**options))
        _, _, request = vendor("Authentication/Get Access Token")
        form = {f["key"]: f["value"] for f in request["body"]["urlencoded"]}
        token = httpx.post(emulator.base_url + API + "/oauth/token", data=form).json()["access_token"]
        client = httpx.Client(base_url=emulator.base_url, headers={"Authorization": f"Bearer {token}"})
        return emulator, client
    return make


# -- contract: the vendor's examples, field for field -------------------------------

def test_token_answer_matches_the_example(onecloud_factory):
    status, expected, request = vendor("Authentication/Get Access Token")
    emulator = onecloud_factory(seed_options())
    form = {f["key"]: f["value"] for f in request["body"]["urlencoded"]}
    answer = httpx.post(emulator.base_url + API + "/oauth/token", data=form)
    assert answer.status_code == status
    same_shape(answer.json(), expected)
    assert isinstance(answer.json()["expires_in"], str)   # a string, as the vendor sends it


def test_scim_create_matches_the_example(seeded):
    emulator, client = seeded()
    status, expected, request = vendor("Users SCIM Provisioning/Create User")
    answer = client.post(API + "/scim/users", json=request_body(request))
    assert answer.status_code == status == 201
    same_shape(answer.json(), expected)
    body = answer.json()
    assert body["externalId"] == "" and body["emails"][0]["primary"] is True
    assert {p["type"] for p in body["phoneNumbers"]} == {"work", "mobile", "extension"}


def test_scim_get_put_and_filter_match_the_examples(seeded):
    emulator, client = seeded()
    created = client.post(API + "/scim/users", json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "elizabeth",
        "name": {"familyName": "Smith", "givenName": "Liza"}, "emails": [{"value": "liza@smith.com"}],
        "roles": ["System Administrator", "Agent"]}).json()
    status, expected, _ = vendor("Users SCIM Provisioning/Get User by ID")
    got = client.get(f"{API}/scim/users/{created['id']}")
    assert got.status_code == status
    same_shape(got.json(), expected)

    status, expected, request = vendor(
        "Users SCIM Provisioning/Replace User Properties (by replacing all existing attributes "
        "with a specified set of replacement attributes)")
    put = client.put(f"{API}/scim/users/{created['id']}", json=request_body(request))
    assert put.status_code == status
    same_shape(put.json(), expected)
    assert put.json()["userName"] == "bjinsin" and put.json()["id"] == created["id"]
    # the extension survives a replacement that does not mention it, as in the example
    assert {"type": "extension", "value": created["phoneNumbers"][-1]["value"]} in put.json()["phoneNumbers"]

    status, expected, _ = vendor("Users SCIM Provisioning/Get User by userName", 0)
    found = client.get(API + "/scim/users", params={"filter": 'userName eq "BJINSIN"'})
    assert found.status_code == status
    same_shape(found.json(), expected)
    assert found.json()["totalResults"] == 1


def test_patch_and_objects_form_of_roles_match_the_examples(seeded):
    emulator, client = seeded(roles_as_objects=True, scim_groups=True)
    # made through the non-SCIM user API, so it has a team (SCIM "groups" on this tenant)
    made = client.post(API + "/user", json={
        "loginId": "carlos.clapper", "password": "x-Secret-1", "firstName": "Carlos", "lastName": "Clapper",
        "team": "CSIM Support", "email": "carlos.clapper@servicepattern.sb.office",
        "roles": ["System Administrator", "Agent"]})
    assert made.status_code == 200
    listed = client.get(API + "/scim/users", params={"filter": 'userName eq "carlos.clapper"'}).json()
    status, expected, _ = vendor("Users SCIM Provisioning/Get User by userName", 1)
    same_shape(listed, expected)
    user_id = listed["Resources"][0]["id"]

    name = "Users SCIM Provisioning/Update User (updates only the properties indicated in the specified set)"
    status, expected, request = vendor(name)
    patched = client.patch(f"{API}/scim/users/{user_id}", json=request_body(request))
    assert patched.status_code == status
    same_shape(patched.json(), expected)
    assert patched.json()["active"] is False
    assert patched.json()["groups"][0]["display"] == "CSIM Support"


def test_scim_users_show_no_groups_unless_configured_and_the_user_api_has_the_team(seeded):
    emulator, client = seeded()
    client.post(API + "/user", json={"loginId": "carlos.clapper", "password": "x-Secret-1",
                                     "firstName": "Carlos", "lastName": "Clapper", "team": "CSIM Support"})
    listed = client.get(API + "/scim/users", params={"filter": 'userName eq "carlos.clapper"'}).json()
    # like the examples with roles as strings: the user carries no groups at all
    status, expected, _ = vendor("Users SCIM Provisioning/Get User by userName", 0)
    same_shape(listed, expected)
    assert "groups" not in listed["Resources"][0] and "groups" not in expected["Resources"][0]
    assert client.get(API + "/user/carlos.clapper").json()["team"] == "CSIM Support"


def test_directory_teams_and_user_api_match_the_examples(seeded):
    emulator, client = seeded()
    _, _, request = vendor("Users/Create User")
    seed_request = request_body(EXAMPLES["Users/Create User"][0][1]["originalRequest"])
    assert client.post(API + "/user", json=seed_request).status_code == 200

    status, expected, _ = vendor("Users/Get User Data")
    got = client.get(API + "/user/testuser005")
    assert got.status_code == status
    same_shape(got.json(), expected)
    assert got.json()["extension"] == "2005" and got.json()["skills"]["Cable"] == 70

    status, expected, _ = vendor("Phones/Get Directory")
    directory = client.get(API + "/phone/user")
    assert directory.status_code == status
    same_shape(directory.json(), expected)
    assert [e["loginId"] for e in directory.json()] == ["myuser", "testuser005"]

    status, expected, _ = vendor("Users/Get Teams")
    same_shape(client.get(API + "/team").json(), expected)

    status, _, request = vendor("Users/Update User ")
    updated = client.put(API + "/user/testuser005", json=request_body(request))
    assert updated.status_code == status
    after = client.get(API + "/user/testuser005").json()
    assert after["disabled"] is True and after["team"] == "Accounting"


# -- documented refusals ---------------------------------------------------------------

def token(emulator, secret=ONECLOUD_SECRET, scope=ONECLOUD_TENANT, client_id="admin"):
    return httpx.post(emulator.base_url + API + "/oauth/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
        "scope": scope})


def client_for(emulator) -> httpx.Client:
    access = token(emulator).json()["access_token"]
    return httpx.Client(base_url=emulator.base_url + API, headers={"Authorization": f"Bearer {access}"})


def user(login, **extra):
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": login,
            "name": {"givenName": "G", "familyName": "F"}, "emails": [{"value": f"{login}@example.com"}],
            **extra}


def test_token_endpoint_refuses_bad_secret_scope_and_json(onecloud):
    assert token(onecloud, secret="wrong").status_code == 401
    assert token(onecloud, client_id="someone").status_code == 401
    assert token(onecloud, scope="other.cx.onecloud.com").json()["error"] == "invalid_scope"
    as_json = httpx.post(onecloud.base_url + API + "/oauth/token", json={
        "grant_type": "client_credentials", "client_id": "admin", "client_secret": ONECLOUD_SECRET})
    assert as_json.status_code == 415
    assert httpx.get(onecloud.base_url + API + "/scim/users/x").status_code == 401


def test_tokens_expire(onecloud_factory):
    clock = FakeClock()
    emulator = onecloud_factory(faults=Faults(token_lifetime=60, advertised_lifetime=3600), clock=clock)
    answer = token(emulator).json()
    assert answer["expires_in"] == "3600"    # what it claims, not what it does
    headers = {"Authorization": f"Bearer {answer['access_token']}"}
    assert httpx.get(emulator.base_url + API + "/team", headers=headers).status_code == 200
    clock.advance(59)
    assert httpx.get(emulator.base_url + API + "/team", headers=headers).status_code == 200
    clock.advance(1)
    assert httpx.get(emulator.base_url + API + "/team", headers=headers).status_code == 401


def test_scim_users_are_unique_and_get_their_own_extensions(onecloud):
    client = client_for(onecloud)
    first = client.post("/scim/users", json=user("ada", externalId="E1")).json()
    second = client.post("/scim/users", json=user("bob")).json()
    assert first["externalId"] == "" and second["externalId"] == ""
    ext = [next(p["value"] for p in u["phoneNumbers"] if p["type"] == "extension") for u in (first, second)]
    assert len(set(ext)) == 2
    dup = client.post("/scim/users", json=user("ADA"))
    assert dup.status_code == 409 and dup.json()["scimType"] == "uniqueness"
    taken = client.post("/scim/users", json=user("cy", phoneNumbers=[{"type": "extension", "value": ext[0]}]))
    assert taken.status_code == 409 and "Extension" in taken.json()["detail"]
    role = client.post("/scim/users", json=user("dee", roles=["Wizard"]))
    assert role.status_code == 404 and "Role not found" in role.json()["detail"]
    rename = client.patch(f"/scim/users/{second['id']}", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userName", "value": "Ada"}]})
    assert rename.status_code == 409
    assert client.delete(f"/scim/users/{second['id']}").status_code == 204
    assert client.get(f"/scim/users/{second['id']}").status_code == 404
    assert client.post("/scim/users", content=b"{}", headers={"Content-Type": "text/plain"}).status_code == 415


def test_listing_without_a_filter_follows_the_paging_knob(onecloud_factory):
    paged = client_for(onecloud_factory())
    for n in range(3):
        paged.post("/scim/users", json=user(f"u{n}"))
    page = paged.get("/scim/users", params={"startIndex": 2, "count": 2}).json()
    assert page["totalResults"] == 4 and len(page["Resources"]) == 2
    unpaged = client_for(onecloud_factory(OneCloudOptions(client_secret=ONECLOUD_SECRET,
                                                          tenant=ONECLOUD_TENANT, scim_paging=False)))
    assert unpaged.get("/scim/users").status_code == 400


def test_user_api_refuses_unknown_team_and_fields(onecloud):
    client = client_for(onecloud)
    assert client.put("/user/admin", json={"team": "Night Shift"}).status_code == 404
    assert client.put("/user/admin", json={"firstName": "X"}).status_code == 400
    assert client.put("/user/nobody", json={"team": TEAMS[0]}).status_code == 404


# -- fault knobs ---------------------------------------------------------------------------

def test_fault_rates_are_exact_and_429_carries_retry_after(onecloud_factory):
    emulator = onecloud_factory(faults=Faults(error_rate=0.25, throttle_rate=0.2, retry_after=7))
    with httpx.Client(base_url=emulator.base_url) as client:
        answers = [client.get(API + "/team") for _ in range(20)]
    codes = [a.status_code for a in answers]
    assert codes.count(500) == 5 and codes[3] == codes[7] == 500
    throttled = [a for a in answers if a.status_code == 429]
    assert len(throttled) == 3 and all(a.headers["Retry-After"] == "7" for a in throttled)


def test_latency_is_added(onecloud_factory):
    emulator = onecloud_factory(faults=Faults(latency=0.2))
    started = time.monotonic()
    httpx.get(emulator.base_url + API + "/team")
    assert time.monotonic() - started >= 0.2


def test_state_file_keeps_users_between_runs(tmp_path):
    path = tmp_path / "onecloud.json"
    options = OneCloudOptions(client_secret=ONECLOUD_SECRET, tenant=ONECLOUD_TENANT)
    with OneCloudEmulator(options, state_file=path).start() as emulator:
        client_for(emulator).post("/scim/users", json=user("kept"))
    with OneCloudEmulator(options, state_file=path).start() as emulator:
        found = client_for(emulator).get("/scim/users", params={"filter": 'userName eq "kept"'}).json()
    assert found["totalResults"] == 1


def test_sandbox_serve_command(tmp_path):
    port = free_port()
    (tmp_path / "people.csv").write_text("id\n", encoding="utf-8")
    (tmp_path / "m.toml").write_text('[attributes]\nuserName = "id"\n', encoding="utf-8")
    (tmp_path / "config.toml").write_text(f"""
[source]
type = "csv"
path = "people.csv"
key = "id"

[targets.onecloud]
type = "onecloud"
base_url = "http://127.0.0.1:{port}"
client_id = "admin"
client_secret = "env:SANDBOX_SECRET"
mapping = "m.toml"

[sandbox.onecloud]
port = {port}
client_secret = "env:SANDBOX_SECRET"
""", encoding="utf-8")
    env = {**os.environ, "SANDBOX_SECRET": "serve-secret-1234"}
    proc = subprocess.Popen([sys.executable, "-m", "provisioner", "sandbox", "serve"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "serving on" in proc.stdout.readline()
        check = subprocess.run([sys.executable, "-m", "provisioner", "check"], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stderr
        assert "token accepted" in check.stdout and "serve-secret-1234" not in check.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0

