"""flow.build_plan reads every target's accounts at the same time, each failure kept to its target."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from provisioner import flow
from provisioner.config import load_config
from provisioner.state import StateDB

REPO = Path(__file__).resolve().parent.parent


def _config(tmp_path: Path, url: str, names: tuple[str, ...]) -> Path:
    (tmp_path / "people.csv").write_text(
        "employee_id,given_name,family_name,email,department,title,status\n"
        "E1,Ada,Lovelace,ada@example.com,Support,Agent,active\n", encoding="utf-8")
    targets = "".join(f"""
[targets.{name}]
type = "scim"
base_url = "{url}/{name}"
token = "env:LISTING_TEST_TOKEN"
mapping = "{REPO}/mappings/directory.toml"
""" for name in names)
    config = tmp_path / "config.toml"
    config.write_text(f"""
[state]
url = "sqlite:///{tmp_path}/state.db"

[source]
type = "csv"
path = "people.csv"
key = "employee_id"
{targets}""", encoding="utf-8")
    return config


def test_targets_are_listed_at_the_same_time_and_fail_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("LISTING_TEST_TOKEN", "t" * 12)
    # each listing of `a` and `b` waits until the other one has arrived: read one after
    # the other, the first would give up after 10 s and its target be unreadable
    both = threading.Barrier(2, timeout=10)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (the http.server name)
            path = self.path.split("?")[0]
            status, body = 200, {"totalResults": 0, "Resources": []}
            if path.endswith("ServiceProviderConfig"):
                status, body = 404, {}
            elif path == "/broken/Users":
                status, body = 400, {"detail": "no listing today"}
            else:
                try:
                    both.wait()
                except threading.BrokenBarrierError:
                    status, body = 400, {"detail": "listed alone"}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/scim+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        settings = load_config(_config(tmp_path, url, ("a", "broken", "b")))
        state = StateDB(settings.state.url)
        with flow.open_targets(settings) as handles:
            outcome = flow.build_plan(settings, state, handles)
        state.close()
    finally:
        server.shutdown()
        server.server_close()
    assert list(outcome.unreadable) == ["broken"]
    assert "no listing today" in outcome.unreadable["broken"]
    assert {i.target for i in outcome.plan.items} == {"a", "b"}


def test_estimate_counts_each_request_at_the_time_the_target_measured():
    from provisioner.model import Plan, PlanItem, TargetSummary
    from provisioner.target_handle import TargetHandle

    class Timed:
        asked: list[int] = []

        def seconds_per_request(self, concurrency):
            self.asked.append(concurrency)
            return 0.25

    items = tuple(PlanItem(id=str(n), target="t", op=op, identity=f"E{n}", account_id=None,
                           changes={}, reason="r") for n, op in enumerate(["create", "update", "disable"]))
    plan = Plan(plan_id="p", created_at="now", status="pending", identities=3, rejected=(), items=items,
                targets={"t": TargetSummary(accounts=0, counts={}, unmanaged=0)})
    handle = TargetHandle(name="t", target=Timed(), mapping=None, concurrency=8, rate_limit=None)
    # 1 + 2 + 2 requests at 0.25 s each, measured with 8 at once; each item's one write
    # (the create's POST, the others' PATCH) weighs as flow._WRITE_COST reads
    assert flow.estimate_seconds(plan, "t", None, 8, handle) == pytest.approx((2 + 3 * flow._WRITE_COST) * 0.25)
    assert Timed.asked == [8]
    # what every apply pays besides its requests is added as it is
    assert flow.estimate_seconds(plan, "t", None, 8, handle, fixed_seconds=2.0) == \
        pytest.approx(2.0 + (2 + 3 * flow._WRITE_COST) * 0.25)
    # a rate limit slower than that wins
    assert flow.estimate_seconds(plan, "t", 1.0, 8, handle) == 5.0
    # a timing that only saw the limiter's pacing (0.25 s a request at 4 a second) is not weighted
    assert flow.estimate_seconds(plan, "t", 4.0, 8, handle) == pytest.approx(5 * 0.25)


def test_scim_target_times_concurrent_searches_of_its_users(scim_server):
    from conftest import SCIM_TOKEN
    from provisioner.secrets import Secret
    from provisioner.connectors.scim.target import ScimTarget
    import httpx

    seen = []
    with httpx.Client(event_hooks={"request": [seen.append]}) as client:
        target = ScimTarget("d", scim_server.base_url, paths=["userName"],
                            token=Secret(SCIM_TOKEN, "env:T"), client=client)
        first = target.seconds_per_request(4)
        assert target.seconds_per_request(4) == first > 0  # measured once per concurrency
    # five rounds of four searches at once for a name nobody has; the median round counts
    assert [(r.url.path.rsplit("/", 1)[-1], r.url.params["filter"]) for r in seen] == \
        [("Users", 'userName eq "provisioner-timing-probe-no-such-user"')] * 20


def test_apply_estimate_adds_start_up_and_loading_the_plan_twice():
    from provisioner.model import Plan
    plan = Plan(plan_id="p", created_at="now", status="pending", identities=0, rejected=(), items=(),
                targets={})
    outcome = flow.PlanOutcome(plan=plan, unreadable={}, save_seconds=0.5)
    # a separate `provisioner apply` starts up again, loads the plan, and loads it again for its result
    assert flow.apply_fixed_seconds(outcome, 1.25) == 2.25
    # reconcile applies in the process that planned: no second start-up
    assert flow.apply_fixed_seconds(outcome, None) == 1.0


def test_process_age_is_read_on_linux():
    age = flow.process_age()
    assert age is not None and age >= 0


def test_the_cycle_collector_is_switched_back_on_after_planning_even_on_failure():
    import gc
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with flow.collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("a source that cannot be read")
    assert gc.isenabled()
    # nested (the CLI's plan command turns it off itself): left as the caller had it
    gc.disable()
    try:
        with flow.collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
