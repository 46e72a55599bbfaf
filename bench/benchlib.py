"""What the benches share: a work directory on the ordinary disk, the example
config written for a target, peak memory, and one line per figure beside its floor.

Not a test module: the benches print timings, the test suite never asserts them.
"""

from __future__ import annotations

import resource
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent
HEADER = "employee_id,given_name,family_name,email,department,title,status"


@contextmanager
def disk_dir(prefix: str, base: str = "/tmp") -> Iterator[Path]:
    """A temporary directory under /tmp, which is the ordinary disk here (not /dev/shm):
    the state DB's commits cost what they cost a user."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_people(path: Path, n: int, *, leavers_every: int = 0, promoted_every: int = 0) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write(HEADER + "\n")
        for i in range(n):
            status = "inactive" if leavers_every and i % leavers_every == 7 else "active"
            title = "Lead" if promoted_every and i % promoted_every == 3 else "Agent"
            f.write(f"E{i:07d},Zoë{i},Ōtsuka{i},user{i}@example.com,Support,{title},{status}\n")


def write_config(directory: Path, base_url: str, *, concurrency: int = 8,
                 rate_limit: float | None = None, extra: str = "") -> Path:
    """config.toml for one SCIM target fed by people.csv, state DB beside it."""
    shutil.copy(REPO / "mappings" / "directory.toml", directory / "directory.toml")
    rate = f"rate_limit = {rate_limit}\n" if rate_limit else ""
    config = directory / "config.toml"
    config.write_text(f"""
[state]
url = "sqlite:///{directory}/state.db"

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
{rate}{extra}
[policy]
missing = "disable"
max_disable_percent = 100
max_disable_count = 1000000
# the benches measure whole plans and applies: no mass-change guard stops them
max_update_percent = 100
max_update_count = 1000000
max_clear_percent = 100
max_clear_count = 1000000
""", encoding="utf-8")
    return config


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def report(what: str, figure: float, floor: float, goal: float, unit: str = "s") -> bool:
    """One line: the figure, its floor, their ratio and the goal; True when the goal is met."""
    ratio = figure / floor if floor else float("inf")
    met = ratio <= goal
    print(f"{what}: {figure:.2f} {unit} vs floor {floor:.2f} {unit} = {ratio:.2f}x "
          f"(goal <= {goal}x: {'met' if met else 'NOT met'})")
    return met
