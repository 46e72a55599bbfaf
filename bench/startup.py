"""Benchmark: how long `provisioner --help` takes, beside a bare interpreter.

Not a test: it prints the best of several runs (wall and CPU time) of
`python -m provisioner --help` and of `python -c pass` (the floor: what no
code of ours can go below), and the heavy libraries `--help` imported
(`-X importtime`): it should import none of sqlalchemy, alembic, httpx, ldap3,
pydantic, rich.

    python bench/startup.py [--runs 7]

Goal (docs/performance.md): `provisioner --help` <= 0.3 s. On a machine
whose other work slows every process down, the CPU time and the floor say
how much of the wall time is ours.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("sqlalchemy", "sqlmodel", "alembic", "httpx", "ldap3", "pydantic", "rich")


def best(argv: list[str], runs: int) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds) of `runs` runs of argv."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(walls), min(cpus)


def heavy_imports(argv: list[str]) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=env, capture_output=True,
                          text=True, check=True)
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines()
             if line.startswith("import time:")}
    return sorted(n for n in names if n in HEAVY)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    python = sys.executable
    help_argv = [python, "-m", "provisioner", "--help"]
    floor_wall, floor_cpu = best([python, "-c", "pass"], runs)
    wall, cpu = best(help_argv, runs)
    heavy = heavy_imports(help_argv)
    print(f"provisioner --help: {wall:.3f} s wall ({cpu:.3f} s CPU) vs floor `python -c pass` "
          f"{floor_wall:.3f} s wall ({floor_cpu:.3f} s CPU); ours {wall - floor_wall:.3f} s "
          f"(goal --help <= 0.3 s: {'met' if wall <= 0.3 else 'NOT met'})")
    print(f"heavy libraries imported by --help: {', '.join(heavy) or 'none'}")
    return 0 if wall <= 0.3 and not heavy else 1


if __name__ == "__main__":
    sys.exit(main())
