"""Benchmark: apply N SCIM creates through the real CLI, beside the same POSTs sent straight.

Not a test: it prints each figure beside its floor, measured in the same run.

1. floor: the POST bodies the connector would send, sent by `concurrency`
   threads with httpx to a fresh scim2-server;
2. figure: `provisioner apply PLAN --yes` (a subprocess, as a user runs it,
   start-up included) with concurrency 8 and the state DB in a temporary
   directory on the ordinary disk (/tmp here, not /dev/shm; --state-base to
   choose), against another
   fresh scim2-server; the plan is made beforehand by `provisioner -v plan`, and
   the estimate it prints ("est. apply"; its log line to 0.01 s) is compared with
   the actual time;
3. pacing: `--rate-items` creates against a target configured with
   `rate_limit = R` (through the flow, so start-up is not counted): the
   requests per second sustained, as a share of R.

    python bench/apply_scim.py [--creates 1728] [--concurrency 8] [--rate 40] [--rate-items 300]

Goals (docs/performance.md): apply <= 1.5x the floor; sustained >= 0.9 R;
estimate within +-30 % of the actual apply time.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import httpx  # noqa: E402

from benchlib import disk_dir, report, write_config, write_people  # noqa: E402
from provisioner import flow  # noqa: E402
from provisioner.config import load_config  # noqa: E402
from provisioner.mapping import load_mapping  # noqa: E402
from provisioner.sandbox.scim_server import start_scim_server  # noqa: E402
from provisioner.sources import read_source  # noqa: E402
from provisioner.state import StateDB  # noqa: E402
from provisioner.connectors.scim.target import SCIM_JSON, user_document  # noqa: E402

TOKEN = "bench-token-apply"


def post_bodies(people: Path, config: Path) -> list[bytes]:
    """The create bodies the connector sends for every person of the CSV."""
    import json
    settings = load_config(config)
    mapping = load_mapping(REPO / "mappings" / "directory.toml")
    source = read_source(settings)
    return [json.dumps(user_document(mapping.render(i.attrs)), ensure_ascii=False).encode()
            for i in source.identities if mapping.in_scope(i.attrs)]


def direct_posts(base_url: str, bodies: list[bytes], threads: int) -> float:
    """Seconds for `threads` threads to POST every body, each thread on its own connection."""
    failures: list[int] = []

    def worker(chunk: list[bytes]) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}",
                                   "Content-Type": SCIM_JSON}) as client:
            for body in chunk:
                response = client.post(base_url + "/Users", content=body)
                if response.status_code != 201:
                    failures.append(response.status_code)

    chunks = [bodies[n::threads] for n in range(threads)]
    workers = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"floor: {len(failures)} POSTs failed ({failures[:3]})")
    return elapsed


def total_users(base_url: str) -> int:
    response = httpx.get(base_url + "/Users", params={"count": 0},
                         headers={"Authorization": f"Bearer {TOKEN}"})
    return int(response.json()["totalResults"])


def make_plan(config: Path) -> tuple[str, float, int]:
    """(plan id, the estimate `plan` prints for the target, applicable items), via the flow."""
    settings = load_config(config)
    state = StateDB(settings.state.url)
    try:
        with flow.open_targets(settings) as handles:
            outcome = flow.build_plan(settings, state, handles)
            handle = handles["directory"]
            estimate = flow.estimate_seconds(outcome.plan, "directory", handle.rate_limit,
                                             handle.concurrency, handle=handle)
    finally:
        state.close()
    return outcome.plan.plan_id, estimate, sum(1 for i in outcome.plan.items if i.op == "create")


def cli_plan(config: Path) -> tuple[str, float, int]:
    """(plan id, the estimate `provisioner plan` printed for the target, creates), as a user
    gets them: the CLI in its own process (its log line has the estimate to 0.01 s; the
    table rounds it to whole seconds)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "160"}
    done = subprocess.run([sys.executable, "-m", "provisioner", "--config", str(config), "-v", "plan"],
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"plan exited {done.returncode}: {done.stderr[-2000:]}")
    found = re.search(r"target directory: apply estimate ([0-9.]+) s \(of it ([0-9.]+) s", done.stderr)
    estimate = float(found.group(1))
    print(f"  the estimate: {estimate:.2f} s, of it {float(found.group(2)):.2f} s start-up and plan loading")
    plan_id = re.search(r"provisioner apply (\w+)", done.stdout).group(1)
    state = StateDB(load_config(config).state.url)
    try:
        creates = sum(1 for i in state.load_plan(plan_id).items if i.op == "create")
    finally:
        state.close()
    return plan_id, estimate, creates


def cli_apply(config: Path, plan_id: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "provisioner", "--config", str(config), "apply",
                           plan_id, "--yes"], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"apply exited {done.returncode}: {done.stderr[-2000:]}")
    return elapsed


def flow_apply(config: Path, plan_id: str) -> float:
    settings = load_config(config)
    state = StateDB(settings.state.url)
    try:
        with flow.open_targets(settings) as handles:
            plan = state.load_plan(plan_id)
            started = time.perf_counter()
            result = flow.run_apply(settings, state, handles, plan)
            elapsed = time.perf_counter() - started
    finally:
        state.close()
    if result.failed:
        raise SystemExit(f"paced apply: {result.failed} items failed")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--creates", type=int, default=1728)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=40.0, help="requests/s of the paced target")
    parser.add_argument("--rate-items", type=int, default=300)
    parser.add_argument("--state-base", default="/tmp",
                        help="where the state DB's directory goes (default /tmp, the ordinary disk; "
                             "/dev/shm shows the apply without the disk's commit cost)")
    args = parser.parse_args()
    os.environ["BENCH_SCIM_TOKEN"] = TOKEN
    met = True

    with disk_dir("bench-apply-", args.state_base) as work:
        write_people(work / "people.csv", args.creates)
        floor_server = start_scim_server(TOKEN)
        try:
            config = write_config(work, floor_server.base_url, concurrency=args.concurrency)
            bodies = post_bodies(work / "people.csv", config)
            floor = direct_posts(floor_server.base_url, bodies, args.concurrency)
        finally:
            floor_server.stop()

        server = start_scim_server(TOKEN)
        try:
            config = write_config(work, server.base_url, concurrency=args.concurrency)
            plan_id, estimate, creates = cli_plan(config)
            actual = cli_apply(config, plan_id)
            made = total_users(server.base_url)
        finally:
            server.stop()
        if made != creates:
            raise SystemExit(f"apply made {made} accounts, the plan had {creates} creates")
        print(f"{creates} creates, concurrency {args.concurrency}, state DB in {work}")
        print(f"  direct POSTs: {creates / floor:.0f} items/s; provisioner apply: {creates / actual:.0f} items/s")
        met &= report("apply (CLI)", actual, floor, 1.5)
        off = (estimate - actual) / actual
        within = abs(off) <= 0.30
        met &= within
        print(f"estimate before apply: {estimate:.1f} s vs actual {actual:.1f} s = {off:+.0%} "
              f"(goal within +-30 %: {'met' if within else 'NOT met'}); vs the floor "
              f"{floor:.1f} s: {(estimate - floor) / floor:+.0%}")

    with disk_dir("bench-paced-", args.state_base) as work:
        write_people(work / "people.csv", args.rate_items)
        server = start_scim_server(TOKEN)
        try:
            config = write_config(work, server.base_url, concurrency=args.concurrency,
                                  rate_limit=args.rate)
            plan_id, estimate, creates = make_plan(config)
            elapsed = flow_apply(config, plan_id)
        finally:
            server.stop()
        achieved = creates / elapsed  # a create is one POST
        share = achieved / args.rate
        met &= share >= 0.9
        print(f"paced: {creates} creates against rate_limit {args.rate:g} req/s: {achieved:.1f} req/s "
              f"sustained = {share:.2f} of the limit (goal >= 0.9: {'met' if share >= 0.9 else 'NOT met'}); "
              f"estimate {estimate:.1f} s vs actual {elapsed:.1f} s")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
