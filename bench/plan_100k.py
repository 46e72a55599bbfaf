"""Benchmark: plan 100,000 identities against a target holding 100,000 accounts.

Not a test: it prints wall time and peak memory. Accounts are served from
memory as raw SCIM documents and flattened the way the SCIM target does,
so the figure covers CSV reading, scoping and mapping, correlation, the
diff and storing the plan in a SQLite state DB - everything but HTTP.

    python bench/plan_100k.py [--identities N]
Aim (README): under 20 s and under 1 GB on a 2-core machine.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from provisioner.config import CsvSourceSettings
from provisioner.mapping import load_mapping
from provisioner.planner import PlanPolicy, TargetInput, make_plan
from provisioner.sources.csv_source import read_csv
from provisioner.state import StateDB
from provisioner.targets.base import flatten
from provisioner.model import Account

REPO = Path(__file__).resolve().parent.parent
HEADER = "employee_id,given_name,family_name,email,department,title,status"


def make_source(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write(HEADER + "\n")
        for i in range(n):
            status = "inactive" if i % 100 == 7 else "active"          # 1% leavers -> disable
            title = "Lead" if i % 50 == 3 else "Agent"                  # 2% changed titles -> update
            f.write(f"E{i:07d},Zoë{i},Ōtsuka{i},user{i}@example.com,Support,{title},{status}\n")


def make_accounts(n: int) -> tuple[list[dict], dict[str, str]]:
    docs, links = [], {}
    for i in range(n):
        if i % 100 == 11:
            continue                                                    # 1% missing -> create
        docs.append({"id": f"acct-{i}", "userName": f"USER{i}@example.com", "active": True,
                     "name": {"givenName": f"Zoë{i}", "familyName": f"Ōtsuka{i}"},
                     "emails": [{"value": f"user{i}@example.com"}], "title": "Agent"})
        if i % 100 != 13:                                               # 1% unlinked -> correlated
            links[f"E{i:07d}"] = f"acct-{i}"
    return docs, links


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--identities", type=int, default=100_000)
    n = parser.parse_args().identities
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "people.csv"
        make_source(csv_path, n)
        docs, links = make_accounts(n)
        mapping = load_mapping(REPO / "mappings" / "directory.toml")
        state = StateDB(f"sqlite:///{tmp}/state.db")
        paths = list(dict.fromkeys([*mapping.attributes, *mapping.correlate]))

        started = time.perf_counter()
        source = read_csv(CsvSourceSettings(path=csv_path, key="employee_id"))
        read_done = time.perf_counter()
        accounts = [Account(d["id"], flatten(d, paths), d) for d in docs]
        flat_done = time.perf_counter()
        target = TargetInput(name="directory", mapping=mapping, accounts=accounts, links=links,
                             max_disable_percent=100, max_disable_count=n)
        plan = make_plan(source, [target], PlanPolicy(), plan_id="bench", created_at="now")
        plan_done = time.perf_counter()
        state.save_plan(plan)
        stored = time.perf_counter()

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = plan.targets["directory"].to_dict()
    print(f"identities {len(source.identities)}, accounts {len(accounts)}, items {len(plan.items)} "
          f"(create {counts['create']}, update {counts['update']}, disable {counts['disable']}), "
          f"adopted {len(plan.adopt)}")
    print(f"read csv {read_done - started:.2f}s, flatten accounts {flat_done - read_done:.2f}s, "
          f"plan {plan_done - flat_done:.2f}s, store plan {stored - plan_done:.2f}s")
    print(f"wall time {stored - started:.2f}s, peak memory (max RSS) {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
