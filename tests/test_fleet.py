"""The fleet through the real CLI: tenants in a PostgreSQL database of this test's own, real
`provisioner worker` processes, scim2-server and the OneCloud emulator as each tenant's two
targets, behind recording proxies whose logs say what each target was sent and when."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ONECLOUD_SECRET, ONECLOUD_TENANT, SCIM_TOKEN, bodies, throwaway_pg_database
from ports import closed_port_url
from recording_proxy import RecordingProxy
from scripted_server import Reply, ScriptedServer
from default_mappings import default_mapping

REPO = Path(__file__).resolve().parent.parent
HEADER = ("employee_id,given_name,family_name,email,department,title,timezone,work_phone,mobile_phone,"
          "role,team,status")
STALLED_AFTER = "3"   # seconds without a heartbeat before a killed worker's job moves


def person(n: int, tenant: str) -> str:
    return f"E{n:04d},Given{n},Tester,{tenant}.p{n}@example.com,Support,Agent,Europe/London,,,,Customer Service,active"


@pytest.fixture
def fleet_db():
    """A database of this test's own (the fleet's schemas are outside `public`), dropped afterwards."""
    with throwaway_pg_database("FLEET TESTS", "provisioner_fleet") as url:
        yield url


class Fleet:
    """The CLI and worker processes against one fleet database, from a directory of tenant configs."""

    def __init__(self, root: Path, url: str):
        self.root, self.url = root, url
        self.env = {**os.environ, "PROVISIONER_DB": url, "E2E_SCIM_TOKEN": SCIM_TOKEN,
                    "E2E_ONECLOUD_SECRET": ONECLOUD_SECRET, "COLUMNS": "200"}
        self.env.pop("PROVISIONER_TENANT", None)
        self.workers: list[subprocess.Popen] = []
        (root / "directory.toml").write_text((REPO / "mappings" / "directory.toml").read_text())
        (root / "onecloud.toml").write_text(default_mapping("onecloud").read_text())

    def tenant(self, name: str, people: int, scim_url: str, onecloud_url: str | None = None,
               hook=None, concurrency: int = 2, cron: str = "0 2 * * *", auto_apply: bool = True) -> Path:
        folder = self.root / name
        folder.mkdir()
        (folder / "people.csv").write_text("\n".join([HEADER, *(person(n, name) for n in range(people))]) + "\n")
        config = f"""
[source]
type = "csv"
path = "people.csv"
key = "employee_id"

[targets.directory]
type = "scim"
base_url = "{scim_url}"
token = "env:E2E_SCIM_TOKEN"
mapping = "../directory.toml"
concurrency = {concurrency}
"""
        if onecloud_url:
            config += f"""
[targets.onecloud]
type = "onecloud"
base_url = "{onecloud_url}"
tenant = "{ONECLOUD_TENANT}"
client_id = "admin"
client_secret = "env:E2E_ONECLOUD_SECRET"
mapping = "../onecloud.toml"
concurrency = {concurrency}
"""
        config += (f'\n[schedule]\ncron = "{cron}"\nauto_apply = {str(auto_apply).lower()}\n'
                   '\n[lock]\nwait_seconds = 0\n')
        if hook is not None:
            config += f'\n[notify]\nwebhooks = ["{hook.url}/hook"]\ntimeout = 10\n'
        (folder / "config.toml").write_text(config)
        self.run("fleet", "add", name, "--config", str(folder / "config.toml"))
        return folder

    def run(self, *args: str, check: int | None = 0, env: dict | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "provisioner", *args], cwd=self.root,
                              env=env or self.env, capture_output=True, text=True, timeout=120)
        if check is not None:
            assert proc.returncode == check, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def worker(self, concurrency: int = 4) -> subprocess.Popen:
        log = open(self.root / f"worker{len(self.workers)}.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "provisioner", "-v", "worker", "--concurrency",
                                 str(concurrency), "--stalled-after", STALLED_AFTER],
                                cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(proc)
        return proc

    def jobs(self) -> list[dict]:
        import psycopg
        from psycopg.rows import dict_row
        with psycopg.connect(self.url.replace("postgresql+psycopg://", "postgresql://"),
                             row_factory=dict_row) as conn:
            return conn.execute("SELECT id, task_name, lock, status::text AS status, attempts "
                                "FROM provisioner_fleet.procrastinate_jobs ORDER BY id").fetchall()

    def settled(self, applies: int) -> list[dict] | None:
        """The jobs once `applies` apply jobs exist and nothing is queued or running any more."""
        jobs = self.jobs()
        busy = [j for j in jobs if j["status"] in ("todo", "doing") and not j["task_name"].endswith("tick")]
        done = [j for j in jobs if j["task_name"] == "provisioner.fleet.apply"]
        return jobs if not busy and len(done) >= applies else None

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        return "\n".join((self.root / f"worker{n}.log").read_text() for n in range(len(self.workers)))


def until(condition, timeout=90.0, why=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not in time: {why}")


@pytest.fixture
def fleet(tmp_path, fleet_db):
    fleet = Fleet(tmp_path, fleet_db)
    yield fleet
    fleet.stop()


def writes(proxy: RecordingProxy) -> list:
    return [e for e in proxy.exchanges if e.method in ("POST", "PUT", "PATCH", "DELETE") and
            "/token" not in e.path and "oauth" not in e.path]


def assert_no_overlapping_applies(proxy: RecordingProxy) -> None:
    """Each connection's writes span an interval; two applies at once would show as two
    connections writing in the same stretch of time. Writes on one connection come from
    one job (each job opens its own client; a target's concurrency opens parallel ones,
    so the tests run the targets with concurrency 1 where they check this)."""
    spans: dict[tuple, list[float]] = {}
    for e in writes(proxy):
        span = spans.setdefault(e.client, [e.started, e.finished or e.started])
        span[0], span[1] = min(span[0], e.started), max(span[1], e.finished or e.started)
    ordered = sorted(spans.values())
    for (_, end), (start, _) in zip(ordered, ordered[1:]):
        assert end <= start, f"two applies to one target overlapped: {ordered}"


def user_names(proxy: RecordingProxy, created: list) -> list[str]:
    return [e.json().get("userName") for e in created]


def test_tenants_converge_in_one_fleet_cycle_and_a_down_target_fails_only_its_tenant(
        fleet, scim_server_factory, onecloud_factory, hook):
    proxies, emulators = [], []
    if True:
        for name in ("acme", "globex", "initech"):
            scim = RecordingProxy(scim_server_factory().base_url).__enter__()
            emulator = onecloud_factory()
            cloud = RecordingProxy(emulator.base_url).__enter__()
            proxies.append((name, scim, cloud))
            emulators.append(emulator)
            fleet.tenant(name, 6, scim.base_url, cloud.base_url, hook=hook, concurrency=1)
        fleet.tenant("umbrella", 3, f"{closed_port_url()}/v2", hook=hook)
        try:
            listed = json.loads(fleet.run("fleet", "list", "--json").stdout)
            assert [t["name"] for t in listed] == ["acme", "globex", "initech", "umbrella"]
            fleet.worker(concurrency=3)
            fleet.worker(concurrency=3)
            queued = fleet.run("fleet", "run").stdout
            assert queued.count("cycle queued") == 4
            jobs = until(lambda: fleet.settled(applies=6), why="the fleet cycle")
            by_status = {}
            for job in jobs:
                by_status.setdefault((job["task_name"].rsplit(".", 1)[1], job["lock"]), []).append(job["status"])
            for name, scim, cloud in proxies:
                assert by_status[("plan", name)] == ["succeeded"]
                for target, proxy in (("directory", scim), ("onecloud", cloud)):
                    assert by_status[("apply", f"{name}/{target}")] == ["succeeded"]
                    created = [e for e in writes(proxy) if e.method == "POST" and e.path.lower().endswith("/users")]
                    assert sorted(user_names(proxy, created)) == sorted(
                        f"{name}.p{n}@example.com" for n in range(6)), target
                    assert all(e.status == 201 for e in created)
                    assert_no_overlapping_applies(proxy)
            # the tenant whose target is down: its plan job failed, nothing else did
            assert by_status[("plan", "umbrella")] == ["failed"]
            assert [k for k, v in by_status.items() if "failed" in v] == [("plan", "umbrella")]
            events = {(d.get("tenant"), d["event"]) for d in bodies(hook)}
            assert events == {("umbrella", "blocked")}
            [doc] = bodies(hook)
            assert doc["text"].startswith("[umbrella] ") and "directory" in doc["unreadable"]

            # every command works on one tenant against the fleet database
            status = json.loads(fleet.run("--tenant", "acme", "status", "--json").stdout)
            assert status["directory"]["linked_accounts"] == status["onecloud"]["linked_accounts"] == 6
            assert status["directory"]["last_successful_run"] and status["onecloud"]["last_successful_run"]
            runs = json.loads(fleet.run("--tenant", "globex", "runs", "--json").stdout)
            assert sorted(r["kind"] for r in runs) == ["apply", "apply", "plan"]
            assert {r["trigger"] for r in runs} == {"fleet"}
            plan = json.loads(fleet.run("--tenant", "initech", "plan", "--json").stdout)
            assert [i for i in plan["items"] if i["op"] != "noop"] == []

            report = json.loads(fleet.run("fleet", "status", "--json").stdout)
            assert len(report["workers"]) == 2
            acme = report["tenants"]["acme"]["targets"]["directory"]
            assert acme["last_success"] and acme["pending_plans"] == [] and acme["jobs"]["running"] == 0
            assert report["tenants"]["umbrella"]["plan_jobs"]["failed"] == 1
            text = fleet.run("fleet", "status").stdout
            assert "tenant acme:" in text and "directory: last success 20" in text
        finally:
            for _, scim, cloud in proxies:
                scim.__exit__(None, None, None)
                cloud.__exit__(None, None, None)


def holder_of(fleet: Fleet, tenant: str, target: str) -> str | None:
    report = json.loads(fleet.run("fleet", "status", "--json").stdout)
    return report["tenants"][tenant]["targets"][target]["held_by"]


def test_a_sigkilled_workers_apply_is_finished_by_another_without_duplicates(fleet, scim_server):
    people = 12
    with RecordingProxy(scim_server.base_url, hold=lambda e: e.method == "POST") as proxy:
        fleet.tenant("acme", people, proxy.base_url, concurrency=1)
        first = fleet.worker(concurrency=2)
        fleet.run("fleet", "run", "acme")
        assert proxy.held.wait(60), fleet.logs()
        # the first create reached the server; its answer never comes back: kill the worker now
        assert f"pid {first.pid} " in holder_of(fleet, "acme", "directory")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        # its lock row stays behind (no other worker runs yet to take the lock over), but
        # PostgreSQL drops the lock with the session once it has seen the connection close
        until(lambda: holder_of(fleet, "acme", "directory") is None, timeout=30,
              why="the killed worker no longer shown as holding the apply")
        fleet.worker(concurrency=2)   # finds the stalled job and resumes it
        jobs = until(lambda: fleet.settled(applies=1), why="another worker finishing the apply")
        [apply] = [j for j in jobs if j["task_name"] == "provisioner.fleet.apply"]
        assert apply["status"] == "succeeded" and apply["attempts"] == 2
        created = [e for e in proxy.exchanges if e.method == "POST" and e.path.endswith("/Users")]
        names = user_names(proxy, created)
        assert sorted(set(names)) == sorted(f"acme.p{n}@example.com" for n in range(people))
        assert len(names) == people, "a create was sent twice"
        runs = json.loads(fleet.run("--tenant", "acme", "runs", "--json").stdout)
        assert any(r["kind"] == "apply" and r["status"] == "ok" for r in runs)
        audit = fleet.run("--tenant", "acme", "audit", "--format", "json").stdout
        assert "found on resume; linked" in audit
        plan = json.loads(fleet.run("--tenant", "acme", "plan", "--json").stdout)
        assert [i for i in plan["items"] if i["op"] != "noop"] == []


def test_tenant_mistakes_are_one_sentence_and_exit_2(fleet, tmp_path):
    no_db = {k: v for k, v in fleet.env.items() if k != "PROVISIONER_DB"}
    result = fleet.run("--tenant", "acme", "status", check=2, env=no_db)
    assert result.stderr.startswith("error: the fleet needs its PostgreSQL database: set PROVISIONER_DB")
    result = fleet.run("fleet", "list", check=2, env={**no_db, "PROVISIONER_DB": f"sqlite:///{tmp_path}/x.db"})
    assert result.stderr == "error: PROVISIONER_DB must be a PostgreSQL URL for the fleet (it is sqlite)\n"
    result = fleet.run("--tenant", "nobody", "runs", check=2)
    assert result.stderr == "error: no tenant named 'nobody' in the fleet (see: provisioner fleet list)\n"
    result = fleet.run("fleet", "add", "Bad-Name", "--config", "x.toml", check=2)
    assert "tenant name 'Bad-Name'" in result.stderr
    result = fleet.run("fleet", "run", "nobody", check=2)
    assert "no tenant named 'nobody'" in result.stderr
    # a config whose secrets live on the workers only; removed again with its state
    (tmp_path / "acme.toml").write_text('[source]\ntype = "csv"\npath = "people.csv"\n')
    fleet.run("fleet", "add", "acme", "--config", str(tmp_path / "acme.toml"), "--no-check")
    result = fleet.run("fleet", "add", "acme", "--config", str(tmp_path / "acme.toml"), "--no-check", check=2)
    assert result.stderr == "error: the fleet has a tenant named 'acme' already\n"
    assert "its state dropped" in fleet.run("fleet", "remove", "acme", "--drop-state").stdout
    assert json.loads(fleet.run("fleet", "list", "--json").stdout) == []


def test_sigterm_lets_the_items_in_flight_finish_and_another_worker_does_the_rest(fleet, scim_server):
    people = 12
    with RecordingProxy(scim_server.base_url, latency=0.3) as proxy:
        fleet.tenant("acme", people, proxy.base_url, concurrency=1)
        first = fleet.worker(concurrency=2)
        fleet.run("fleet", "run", "acme")
        until(lambda: len(proxy.sent("POST", r"/Users\Z")) >= 2, why="the apply under way")
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0
        stopped = json.loads(fleet.run("--tenant", "acme", "show", "latest", "--json").stdout)
        statuses = [i["status"] for i in stopped["items"]]
        assert "in_flight" not in statuses           # what was sent was recorded
        assert 2 <= statuses.count("done") < people  # and the rest left for later
        [apply] = [j for j in fleet.jobs() if j["task_name"] == "provisioner.fleet.apply"]
        assert apply["status"] == "todo"             # queued again, for whichever worker is next
        fleet.worker(concurrency=2)
        until(lambda: fleet.settled(applies=1), why="the second worker finishing the apply")
        names = user_names(proxy, proxy.sent("POST", r"/Users\Z"))
    assert sorted(names) == sorted(f"acme.p{n}@example.com" for n in range(people))


def test_each_tenants_cron_queues_its_cycle_a_plan_for_review_is_never_applied_and_one_target_applies_once_at_a_time(
        fleet, scim_server_factory, hook, monkeypatch):
    from datetime import datetime, timezone
    from provisioner.fleet.jobs import APPLY_TASK, _tick, make_app
    people = 4
    with RecordingProxy(scim_server_factory().base_url, latency=0.1) as two, \
            RecordingProxy(scim_server_factory().base_url) as three:
        fleet.tenant("twoam", people, two.base_url, hook=hook, cron="0 2 * * *", auto_apply=False, concurrency=1)
        fleet.tenant("threeam", 3, three.base_url, hook=hook, cron="0 3 * * *")
        monkeypatch.setenv("PROVISIONER_DB", fleet.url)
        monkeypatch.setenv("E2E_SCIM_TOKEN", SCIM_TOKEN)
        app = make_app(fleet.url, max_size=2)
        with app.open():   # the minute 02:00 UTC has come: what the periodic job does then
            _tick(app, int(datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc).timestamp()))
            _tick(app, int(datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc).timestamp()))
        assert [(j["task_name"], j["lock"]) for j in fleet.jobs()] == [("provisioner.fleet.plan", "twoam")]
        fleet.worker(concurrency=2)
        fleet.worker(concurrency=2)
        until(lambda: bodies(hook), why="the review notification")
        [doc] = bodies(hook)
        assert doc["tenant"] == "twoam" and doc["event"] == "review" and doc["counts"] == {"create": people}
        assert writes(two) == [] and three.exchanges == []   # stored for review, not applied
        assert doc["plan_id"] in fleet.run("--tenant", "twoam", "show", "latest").stdout
        # two apply jobs of one tenant's target, free workers for both: they run one after the other
        with app.open():
            for _ in range(2):
                app.configure_task(APPLY_TASK, lock="twoam/directory").defer(
                    tenant="twoam", plan_id=doc["plan_id"], target="directory")
        jobs = until(lambda: fleet.settled(applies=2), why="both apply jobs")
        assert [j["status"] for j in jobs if j["task_name"] == APPLY_TASK] == ["succeeded", "succeeded"]
        created = [e for e in writes(two) if e.method == "POST"]
        assert sorted(user_names(two, created)) == sorted(f"twoam.p{n}@example.com" for n in range(people))
        assert_no_overlapping_applies(two)
        # by hand on the tenant: everything is done already, nothing is sent again
        assert f"{people} done" in fleet.run("--tenant", "twoam", "apply", doc["plan_id"], "--yes").stdout
        assert len([e for e in writes(two) if e.method == "POST"]) == people


def test_items_failing_on_a_target_fail_that_apply_job_and_notify(fleet, hook):
    empty = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0,
             "startIndex": 1, "itemsPerPage": 0, "Resources": []}

    def refuse_creates(request):
        if request.method == "POST":
            return Reply(400, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400",
                               "detail": "no licences left"})
        return Reply(200, empty)

    with ScriptedServer(respond=refuse_creates) as target:
        fleet.tenant("acme", 2, f"{target.url}/v2", hook=hook)
        fleet.worker(concurrency=2)
        fleet.run("fleet", "run", "acme")
        jobs = until(lambda: fleet.settled(applies=1), why="the failing apply")
    assert [(j["task_name"].rsplit(".", 1)[1], j["status"]) for j in jobs if "tick" not in j["task_name"]] == [
        ("plan", "succeeded"), ("apply", "failed"), ("notify", "succeeded")]
    [doc] = bodies(hook)
    assert doc["tenant"] == "acme" and doc["event"] == "failed" and len(doc["failures"]) == 2
    assert "no licences left" in doc["failures"][0]["error"]
    report = json.loads(fleet.run("fleet", "status", "--json").stdout)
    directory = report["tenants"]["acme"]["targets"]["directory"]
    assert directory["jobs"]["failed"] == 1 and "no licences left" in directory["last_failure"]["outcome"]
    # the failed items wait in their plan, as after a failed apply on one machine
    assert directory["last_success"] is None and directory["pending_plans"] == [doc["plan_id"]]
    plan = json.loads(fleet.run("--tenant", "acme", "show", doc["plan_id"], "--json").stdout)
    assert plan["status"] == "partial" and {i["status"] for i in plan["items"]} == {"failed"}
