"""Benchmark: a fleet cycle of many tenants with 1 worker process, then with 4, then with 4
of which one is SIGKILLed mid-run.

Each tenant has its own scim2-server behind a recording proxy that adds `--latency`
to every answer (a distant SaaS), and `--people` people to create. A round starts the
worker processes (`provisioner worker --concurrency 1` each: the comparison is of
processes), queues one cycle of every tenant, and times until every plan and apply job
has finished; every round has a fresh fleet database and fresh servers.

    python bench/fleet.py [--tenants 40] [--people 150] [--latency 0.04] [--target-concurrency 4]

Goal (docs/performance.md): >= 3x faster with 4 workers than with 1, as the work waits on
the network; with one of the 4 SIGKILLed: 0 duplicate creates, every tenant converged.
Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust), as the tests do.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import psycopg  # noqa: E402

from provisioner.sandbox.scim_server import start_scim_server  # noqa: E402
from recording_proxy import RecordingProxy  # noqa: E402

TOKEN = "bench-fleet-token-1d2e"
ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
HEADER = "employee_id,given_name,family_name,email,department,title,status"


def tenant_config(folder: Path, name: str, people: int, base_url: str, concurrency: int) -> Path:
    folder.mkdir()
    (folder / "people.csv").write_text(HEADER + "\n" + "".join(
        f"E{n:05d},Given{n},Family{n},{name}.p{n}@example.com,Support,Agent,active\n" for n in range(people)))
    (folder / "directory.toml").write_text((REPO / "mappings" / "directory.toml").read_text())
    config = folder / "config.toml"
    config.write_text(f"""
[source]
type = "csv"
path = "people.csv"
key = "employee_id"

[targets.directory]
type = "scim"
base_url = "{base_url}"
token = "env:BENCH_SCIM_TOKEN"
mapping = "directory.toml"
concurrency = {concurrency}

[schedule]
auto_apply = true
""")
    return config


def jobs(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT task_name, status::text FROM provisioner_fleet.procrastinate_jobs "
                            "WHERE task_name <> 'provisioner.fleet.tick'").fetchall()


def workers_alive(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM provisioner_fleet.procrastinate_workers").fetchone()[0]


def one_round(args, root: Path, workers: int, kill_one: bool) -> dict:
    admin = psycopg.connect(ADMIN, autocommit=True)
    db = f"provisioner_bench_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{db}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
    dsn = f"postgresql://postgres@127.0.0.1:5432/{db}"
    env = {**os.environ, "PROVISIONER_DB": url, "BENCH_SCIM_TOKEN": TOKEN,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    os.environ.update(PROVISIONER_DB=url, BENCH_SCIM_TOKEN=TOKEN)
    with ThreadPoolExecutor(8) as pool:
        servers = list(pool.map(lambda _: start_scim_server(TOKEN), range(args.tenants)))
    proxies = [RecordingProxy(s.base_url, latency=args.latency).__enter__() for s in servers]
    procs: list[subprocess.Popen] = []
    try:
        from provisioner.fleet.jobs import defer_plan, ensure_schema, make_app
        from provisioner.fleet.tenants import Registry
        ensure_schema(url)
        registry = Registry(url)
        run_dir = root / db
        run_dir.mkdir()
        for n, proxy in enumerate(proxies):
            name = f"t{n:03d}"
            registry.add(name, str(tenant_config(run_dir / name, name, args.people, proxy.base_url,
                                                 args.target_concurrency)))
        registry.close()
        for n in range(workers):
            log = open(run_dir / f"worker{n}.log", "w")
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "provisioner", "worker", "--concurrency", "1", "--stalled-after", "5"],
                cwd=run_dir, env=env, stdout=log, stderr=subprocess.STDOUT))
        while workers_alive(dsn) < workers:
            if any(p.poll() is not None for p in procs):
                raise SystemExit(f"a worker exited; see {run_dir}/worker*.log")
            time.sleep(0.2)
        app = make_app(url, max_size=2)
        started = time.monotonic()
        with app.open():
            for n in range(args.tenants):
                defer_plan(app, f"t{n:03d}", "bench")
        killed = False
        while True:
            states = jobs(dsn)
            applies_done = sum(1 for t, s in states if t.endswith("apply") and s == "succeeded")
            if kill_one and not killed and applies_done >= args.tenants // 2:
                procs[0].send_signal(signal.SIGKILL)
                killed = True
            if sum(1 for t, s in states if t.endswith("apply") and s in ("succeeded", "failed")) >= args.tenants \
                    and not any(s in ("todo", "doing") for _, s in states):
                break
            time.sleep(0.2)
        wall = time.monotonic() - started
        failed = sum(1 for _, s in states if s == "failed")
        duplicates = 0
        converged = 0
        for proxy in proxies:
            names = [e.json().get("userName") for e in proxy.exchanges
                     if e.method == "POST" and e.path.endswith("/Users") and e.status in (201, 409)]
            duplicates += len(names) - len(set(names))
            converged += len(set(names)) == args.people
        return {"wall": wall, "failed": failed, "duplicates": duplicates, "converged": converged}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for proxy in proxies:
            proxy.__exit__(None, None, None)
        for server in servers:
            server.stop()
        admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=40)
    parser.add_argument("--people", type=int, default=150)
    parser.add_argument("--latency", type=float, default=0.04)
    parser.add_argument("--target-concurrency", type=int, default=4)
    args = parser.parse_args()
    import tempfile
    root = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    creates = args.tenants * args.people
    print(f"{args.tenants} tenants x {args.people} people = {creates} creates; {args.latency * 1000:.0f} ms "
          f"added to each answer; target concurrency {args.target_concurrency}; worker --concurrency 1")
    one = one_round(args, root, 1, kill_one=False)
    print(f"1 worker:  {one['wall']:6.1f} s  ({creates / one['wall']:.0f} creates/s), converged "
          f"{one['converged']}/{args.tenants}, duplicates {one['duplicates']}, failed jobs {one['failed']}")
    four = one_round(args, root, 4, kill_one=False)
    print(f"4 workers: {four['wall']:6.1f} s  ({creates / four['wall']:.0f} creates/s), converged "
          f"{four['converged']}/{args.tenants}, duplicates {four['duplicates']}, failed jobs {four['failed']}; "
          f"speed-up {one['wall'] / four['wall']:.2f}x (goal >= 3x)")
    killed = one_round(args, root, 4, kill_one=True)
    print(f"4 workers, one SIGKILLed at half the applies: {killed['wall']:6.1f} s, converged "
          f"{killed['converged']}/{args.tenants}, duplicates {killed['duplicates']} (goal 0), "
          f"failed jobs {killed['failed']}")


if __name__ == "__main__":
    main()
