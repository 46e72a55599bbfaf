"""Benchmark: `provisioner plan` of 100,000 identities against 100,000 SCIM accounts over HTTP.

Not a test: it prints the figure beside its floor, both measured in this run.

- the target: bench/scim_pages_server.py in its own process on 127.0.0.1,
  serving pre-rendered /Users pages (so the server costs next to nothing);
- the figure: the real CLI, `provisioner plan` (a subprocess, output to a
  pipe that is thrown away), with a fresh state DB in a temporary directory
  on the ordinary disk: read the CSV, list every account, correlate them
  (first run: no links yet), diff, store and print the plan. Wall time and
  the peak memory (max RSS) of that process;
- the floor: in this process, read the same CSV with the csv module and
  fetch and decode every /Users page at count=1000 with httpx.

    python bench/plan_100k_http.py [--identities 100000]

Goals (docs/performance.md): <= 2.5x the floor, <= 20 s wall, <= 1 GB peak.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import httpx  # noqa: E402

from benchlib import disk_dir, report, write_config, write_people  # noqa: E402


def start_server(accounts: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "scim_pages_server.py"),
                             "--accounts", str(accounts)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/scim/v2"


def floor(people: Path, base_url: str) -> float:
    started = time.perf_counter()
    with people.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    fetched, start = 0, 1
    with httpx.Client() as client:
        while True:
            body = client.get(base_url + "/Users", params={"startIndex": start, "count": 1000}).json()
            resources = body["Resources"]
            fetched += len(resources)
            start += len(resources)
            if not resources or start > body["totalResults"]:
                break
    elapsed = time.perf_counter() - started
    assert rows and fetched
    return elapsed


def cli_plan(config: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, the last lines printed) of `provisioner plan`."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "160"}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "provisioner", "--config", str(config), "plan"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    elapsed = time.perf_counter() - started
    # the child's own peak, not the largest of all children (the server is one too)
    peak_mb = proc.rusage_maxrss / 1024 if hasattr(proc, "rusage_maxrss") else float("nan")
    if proc.returncode != 0:
        raise SystemExit(f"plan exited {proc.returncode}: {err.decode()[-2000:]}")
    return elapsed, peak_mb, out.decode()


class _Popen(subprocess.Popen):
    """Popen that keeps the child's resource usage (os.wait4) when it is reaped."""

    def _try_wait(self, wait_flags):
        pid, status, usage = os.wait4(self.pid, wait_flags)
        if pid == self.pid:
            self.rusage_maxrss = usage.ru_maxrss
        return pid, status


subprocess.Popen = _Popen  # noqa: the plan subprocess above is made through it


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--identities", type=int, default=100_000)
    n = parser.parse_args().identities
    os.environ["BENCH_SCIM_TOKEN"] = "bench-token-plan"
    with disk_dir("bench-plan100k-") as work:
        write_people(work / "people.csv", n, leavers_every=100, promoted_every=50)
        server, base_url = start_server(n)
        try:
            config = write_config(work, base_url)
            floor_s = floor(work / "people.csv", base_url)
            wall, peak_mb, out = cli_plan(config)
        finally:
            server.stdin.close()
            server.wait(timeout=10)
    summary = [line for line in out.splitlines() if line.startswith(("│ directory", "| directory", "source:"))]
    print(f"plan of {n} identities against {n - n // 100} SCIM accounts over HTTP (first run, no links)")
    for line in summary:
        print("  " + line.strip())
    met = report("plan (CLI)", wall, floor_s, 2.5)
    print(f"plan wall time {wall:.1f} s (goal <= 20 s: {'met' if wall <= 20 else 'NOT met'}), "
          f"peak memory {peak_mb:.0f} MB (goal <= 1024 MB: {'met' if peak_mb <= 1024 else 'NOT met'})")
    return 0 if met and wall <= 20 and peak_mb <= 1024 else 1


if __name__ == "__main__":
    sys.exit(main())
