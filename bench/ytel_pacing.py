"""Benchmark: apply 500 Ytel creates against the emulator limited to 25 requests/s.

Not a test: it runs the real planner and executor (concurrency 4) against the
Ytel emulator on 127.0.0.1 and prints the items that failed, the 429s the
emulator answered, and the achieved requests/s as a fraction of the limit.

    python bench/ytel_pacing.py [--creates 500] [--limit 25] [--state-dir DIR]

Aim (docs/performance.md): no failed item, no 429, achieved/limit >= 0.9.

The state DB goes to a temporary directory on the ordinary disk, as a user
runs it (--state-dir to choose another).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from provisioner.executor import apply_plan  # noqa: E402
from provisioner.mapping import load_mapping  # noqa: E402
from provisioner.model import Identity, SourceResult  # noqa: E402
from provisioner.planner import PlanPolicy, TargetInput, make_plan  # noqa: E402
from provisioner.connectors.ytel.emulator import YtelEmulator, YtelOptions  # noqa: E402
from provisioner.secrets import Secret  # noqa: E402
from provisioner.state import StateDB  # noqa: E402
from provisioner.target_handle import TargetHandle  # noqa: E402
from provisioner.connectors import connector  # noqa: E402
from provisioner.connectors.ytel.ams_target import YtelTarget  # noqa: E402


@dataclass
class Pacing:
    counts: dict          # items by outcome
    failed: int
    throttled: int        # 429s the emulator answered
    requests: int
    elapsed: float        # seconds the apply took


def run(creates: int = 500, limit: int = 25, concurrency: int = 4,
        state_dir: Path | None = None) -> Pacing:
    """Plan and apply `creates` Ytel creates against an emulator allowing `limit` requests/s."""
    mapping = load_mapping(Path(str(connector("ytel").mapping_file())))
    paths = list(dict.fromkeys([*mapping.attributes, *mapping.correlate]))
    people = tuple(Identity(f"E{n:05d}", {"employee_id": f"E{n:05d}", "given_name": "Ada",
                                          "family_name": f"N{n}", "email": f"user{n}@example.com",
                                          "department": "Support", "role": "Agent", "status": "active"})
                   for n in range(creates))
    options = YtelOptions(username="bench@example.com", password="bench-password",
                          rate_limit=limit, token_rate_limit=limit)
    with tempfile.TemporaryDirectory(dir=state_dir) as tmp, \
            YtelEmulator(options).start() as emulator, \
            YtelTarget("ytel", emulator.base_url, paths=paths, username=options.username,
                       password=Secret(options.password, "env:BENCH"),
                       account_id=options.account_id) as target:
        state = StateDB(f"sqlite:///{tmp}/state.db")
        accounts = target.list_accounts()
        plan = make_plan(SourceResult(people), [TargetInput(
            name="ytel", mapping=mapping, accounts=accounts, links={},
            capabilities=target.capabilities, validate=target.validate, immutable=target.immutable)],
            PlanPolicy(), plan_id="bench", created_at="2026-01-01T00:00:00+00:00")
        state.save_plan(plan)
        handle = TargetHandle("ytel", target, mapping, concurrency=concurrency, rate_limit=None)
        before = len(emulator.requests)
        started = time.monotonic()
        result = apply_plan(plan, {"ytel": handle}, state, run_id="bench")
        elapsed = time.monotonic() - started
        state.close()
        return Pacing(dict(result.counts), result.failed, emulator.throttled,
                      len(emulator.requests) - before, elapsed)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--creates", type=int, default=500)
    parser.add_argument("--limit", type=int, default=25)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--state-dir", type=Path, default=None)
    args = parser.parse_args()
    got = run(args.creates, args.limit, args.concurrency, args.state_dir)
    achieved = got.requests / got.elapsed
    print(f"{args.creates} creates, limit {args.limit} req/s, concurrency {args.concurrency}, "
          f"state DB in {args.state_dir or 'the default temp dir'}")
    print(f"items: {got.counts}; 429 answers: {got.throttled}")
    print(f"{got.requests} requests in {got.elapsed:.1f} s: {achieved:.2f} req/s = "
          f"{achieved / args.limit:.2f} of the limit")
    return 0 if got.failed == 0 and got.throttled == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
