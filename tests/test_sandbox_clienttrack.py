"""The CTAPI emulator over real HTTP on 127.0.0.1: keys, the CRQL subset, paging
quirks, CTObjects, the 502 knob and `sandbox serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest

from conftest import CLIENTTRACK_API_KEY, CLIENTTRACK_SUBSCRIPTION
from ports import free_port
from provisioner.connectors.clienttrack.emulator import ClientTrackEmulator, ClientTrackOptions

KEYS = {"Ocp-Apim-Subscription-Key": CLIENTTRACK_SUBSCRIPTION, "Authorization": f"ApiKey {CLIENTTRACK_API_KEY}"}


def client_for(emulator, headers=KEYS) -> httpx.Client:
    return httpx.Client(base_url=emulator.base_url, headers=headers)


def crql(client, q, **params):
    answer = client.get("/crql", params={"q": q, **params})
    return answer.status_code, answer.json()


@pytest.fixture
def seeded(clienttrack_factory):
    rows = [{"UserName": n, "LastName": last, "ActiveStatus": s} for n, last, s in
            [("ann", "O'Neil", "Active"), ("bob", "Baker", "Inactive"), ("cy", "Cole", "Active")]]
    return clienttrack_factory(rows=rows)


def test_keys_are_required(clienttrack):
    cases = [({}, "missing subscription key"), ({"Ocp-Apim-Subscription-Key": "x"}, "invalid subscription key"),
             ({"Ocp-Apim-Subscription-Key": CLIENTTRACK_SUBSCRIPTION}, "Invalid API key"),
             ({**KEYS, "Authorization": "Bearer " + CLIENTTRACK_API_KEY}, "Invalid API key")]
    for headers, message in cases:
        answer = client_for(clienttrack, headers).get("/auth/test")
        assert answer.status_code == 401 and message in answer.json()["message"]
    # the subscription key may come as a query parameter too
    query_form = client_for(clienttrack, {"Authorization": KEYS["Authorization"]}).get(
        "/auth/test", params={"subscription-key": CLIENTTRACK_SUBSCRIPTION})
    assert query_form.status_code == 200 and query_form.json()["environment"] == "ClientTrack sandbox"


def test_crql_select_where_and_empty_answer(seeded):
    client = client_for(seeded)
    assert crql(client, "SELECT TOP 10 UserID, UserName FROM Users") == (200, {
        "data": {"Table1": [{"UserID": 1001, "UserName": "ann"}, {"UserID": 1002, "UserName": "bob"},
                            {"UserID": 1003, "UserName": "cy"}]}, "recordCount": 3})
    names = lambda q: [r["UserName"] for r in crql(client, q)[1].get("data", {}).get("Table1", [])]
    assert names("select top 5 UserName from users where activestatus = 'ACTIVE'") == ["ann", "cy"]
    assert names("SELECT TOP 5 UserName FROM Users WHERE LastName = 'O''Neil'") == ["ann"]
    assert names("SELECT TOP 5 UserName FROM Users WHERE UserID >= 1002") == ["bob", "cy"]
    assert names("SELECT TOP 5 UserName FROM Users WHERE UserID <> 1002") == ["ann", "cy"]
    assert names("SELECT TOP 5 UserName FROM Users WHERE UserName < 'bob'") == ["ann"]
    assert names("SELECT TOP 1 UserName FROM Users WHERE UserID > 1001") == ["bob"]
    assert crql(client, "SELECT TOP 5 UserName FROM Users WHERE UserName = 'zed'") == (200, {})


def test_crql_refusals_name_what_is_wrong(seeded):
    client = client_for(seeded)
    assert crql(client, "SELECT TOP 5 UserName, Nick FROM Users")[1]["message"] == "Invalid column name 'Nick'."
    assert crql(client, "SELECT TOP 5 UserName FROM Staff")[1]["message"] == "Invalid object name 'Staff'."
    assert crql(client, "SELECT UserName FROM Users")[0] == 400
    assert crql(client, "SELECT TOP 5 UserName FROM Users", pageSize=501)[0] == 400
    status, body = crql(client, "SELECT TOP 5 UserName FROM Users WHERE UserName = '" + "x" * 2100 + "'")
    assert status == 400 and "2048" in body["message"]


@pytest.mark.parametrize("quirk,page2", [("none", ["cy"]), ("top_first", []), ("repeat", ["ann", "bob"])])
def test_paging_quirks(seeded, quirk, page2):
    seeded.options.paging_quirk = quirk
    client = client_for(seeded)
    pages = [crql(client, "SELECT TOP 2 UserName FROM Users", pageNo=n, pageSize=2)[1] for n in (1, 2)]
    assert [[r["UserName"] for r in p.get("data", {}).get("Table1", [])] for p in pages] == [["ann", "bob"], page2]


def test_ctobjects_get_insert_update_and_no_delete(seeded):
    client = client_for(seeded)
    made = client.post("/cto/Users", json={"UserName": "dee", "ActiveStatus": "Active"})
    assert made.status_code == 201 and made.json()["UserID"] == 1004
    assert client.put("/cto/Users/1004", json={"ActiveStatus": "Inactive"}).json()["ActiveStatus"] == "Inactive"
    assert client.get("/cto/Users/1004").json()["UserName"] == "dee"
    assert client.get("/cto/Users/9").status_code == 404
    assert client.post("/cto/Users", json={"Nick": "x"}).json()["message"] == "Invalid column name 'Nick'."
    assert client.post("/cto/Users", json={"UserID": 5}).status_code == 400
    assert client.delete("/cto/Users/1004").status_code == 405


def test_bad_gateway_burst_and_rate(clienttrack_factory):
    emulator = clienttrack_factory(bad_gateway_rate=0.5)
    client = client_for(emulator)
    assert [client.get("/auth/test").status_code for _ in range(4)] == [200, 502, 200, 502]
    emulator.options.bad_gateway_rate = 0
    emulator.bad_gateway(2)
    assert [client.get("/auth/test").status_code for _ in range(3)] == [502, 502, 200]


def test_state_file_keeps_rows(tmp_path):
    path = tmp_path / "ct.json"
    options = ClientTrackOptions(subscription_key=CLIENTTRACK_SUBSCRIPTION, api_key=CLIENTTRACK_API_KEY)
    with ClientTrackEmulator(options, state_file=path).start() as emulator:
        client_for(emulator).post("/cto/Users", json={"UserName": "kept"})
    with ClientTrackEmulator(options, state_file=path).start() as emulator:
        assert client_for(emulator).get("/cto/Users/1001").json()["UserName"] == "kept"
        assert client_for(emulator).post("/cto/Users", json={}).json()["UserID"] == 1002


def test_sandbox_serve_runs_it_and_check_reaches_it(tmp_path):
    port = free_port()
    (tmp_path / "people.csv").write_text("id\n", encoding="utf-8")
    (tmp_path / "m.toml").write_text('[attributes]\nUserName = "id"\n', encoding="utf-8")
    (tmp_path / "config.toml").write_text(f"""
[source]
type = "csv"
path = "people.csv"
key = "id"

[targets.ct]
type = "clienttrack"
base_url = "http://127.0.0.1:{port}"
subscription_key = "env:CT_SUB"
api_key = "env:CT_KEY"
mapping = "m.toml"

[sandbox.clienttrack]
port = {port}
subscription_key = "env:CT_SUB"
api_key = "env:CT_KEY"
environment = "Staging"
""", encoding="utf-8")
    env = {**os.environ, "CT_SUB": "serve-sub-8812", "CT_KEY": "serve-key-1290"}
    proc = subprocess.Popen([sys.executable, "-m", "provisioner", "sandbox", "serve"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "serving on" in proc.stdout.readline()
        check = subprocess.run([sys.executable, "-m", "provisioner", "check"], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stderr
        assert "environment 'Staging'" in check.stdout
        assert "serve-sub-8812" not in check.stdout + check.stderr
        assert "serve-key-1290" not in check.stdout + check.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
