"""Benchmark: `provisioner show` of a 2,000-item plan as text, beside the same plan as --json.

Not a test: it stores a plan of creates, updates (two changed attributes
each) and disables in a SQLite state DB on the ordinary disk, then runs the
real CLI as a subprocess, its output going to a pipe, and prints the best of
`--runs` runs of each form and their ratio.

    python bench/show_plan.py [--items 2000] [--runs 3]

Goal (docs/performance.md): text <= 2x --json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from benchlib import disk_dir, report, write_config  # noqa: E402
from provisioner.model import Change, Plan, PlanItem, TargetSummary  # noqa: E402
from provisioner.state import StateDB  # noqa: E402


def make_plan(n: int) -> Plan:
    items, counts = [], {"create": 0, "update": 0, "disable": 0}
    for i in range(n):
        email = f"user{i}@example.com"
        if i % 10 < 5:
            op, changes, account = "create", {}, None
            reason = "in scope and not on the target"
        elif i % 10 < 8:
            op, account = "update", f"acct-{i}"
            changes = {"title": Change("Agent", "Lead"), "name.familyName": Change(f"Old{i}", f"Ōtsuka{i}")}
            reason = "attributes differ: title, name.familyName"
        else:
            op, changes, account = "disable", {"active": Change(True, False)}, f"acct-{i}"
            reason = "status is no longer active"
        counts[op] += 1
        items.append(PlanItem(
            id=f"item-{i}", target="directory", op=op, identity=f"E{i:07d}", account_id=account,
            changes=changes, reason=reason,
            attrs={"userName": email, "name.givenName": f"Zoë{i}", "name.familyName": f"Ōtsuka{i}",
                   "emails[0].value": email, "title": "Agent", "active": True} if op == "create" else {}))
    return Plan(plan_id="bench-show", created_at="2024-01-01T00:00:00+00:00", status="pending",
                identities=n, rejected=(), items=tuple(items),
                targets={"directory": TargetSummary(accounts=n, counts=counts, unmanaged=0)})


def best(argv: list[str], env: dict, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv[2:])} exited {done.returncode}: {done.stderr[-1000:]!r}")
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with disk_dir("bench-show-") as work:
        config = write_config(work, "http://127.0.0.1:9/scim/v2")
        state = StateDB(f"sqlite:///{work}/state.db")
        state.save_plan(make_plan(args.items))
        state.close()
        env = {**os.environ, "PYTHONPATH": str(REPO), "BENCH_SCIM_TOKEN": "unused"}
        cli = [sys.executable, "-m", "provisioner", "--config", str(config), "show", "bench-show"]
        as_json = best([*cli, "--json"], env, args.runs)
        as_text = best(cli, env, args.runs)
    print(f"show of a {args.items}-item plan (output to a pipe, best of {args.runs}):")
    return 0 if report("show as text", as_text, as_json, 2.0) else 1


if __name__ == "__main__":
    sys.exit(main())
