"""The conformance suite: what every connector must do, proven against its emulator over HTTP.

Run it for every installed connector that names a testkit, from a test module of your own:

    # tests/test_conformance.py
    from provisioner.testing.conformance import *   # noqa: F401,F403
    CONNECTORS = ["mytype"]      # optional: these types only (default: every installed one)

or without a file: PROVISIONER_CONNECTORS=mytype pytest --pyargs provisioner.testing.conformance

Each connector gets one emulator, with a FaultProxy in front, for all its cases (they use
people of their own). A case a connector's capabilities rule out is skipped, saying why.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets as _random
import subprocess

import pytest

from ..errors import NotFound, TargetError
from ..model import ACTIVE, normalize, same_value
from ..target import CREATE, DELETE, DISABLE, ENABLE, UPDATE
from .bench import Bench
from .registry import testkit_for as _kit_for, testkit_types as _kit_types

__all__ = ["pytest_generate_tests", "bench", "test_create_read_find_update_disable_enable",
           "test_list_reads_every_page", "test_a_duplicate_create_is_found_and_linked",
           "test_429_waits_the_retry_after", "test_5xx_is_retried",
           "test_a_killed_apply_resumes_without_duplicates", "test_secrets_never_in_errors_or_logs",
           "test_a_second_plan_is_empty", "test_a_disabled_account_is_deleted_once"]

RETRY_AFTER = 1   # seconds: the smallest whole-second Retry-After every client must honour
HELD = 3          # the create whose answer is withheld when the apply is killed


def pytest_generate_tests(metafunc):
    if "connector_type" not in metafunc.fixturenames:
        return
    types = getattr(metafunc.module, "CONNECTORS", None)
    if types is None and os.environ.get("PROVISIONER_CONNECTORS"):
        types = [t.strip() for t in os.environ["PROVISIONER_CONNECTORS"].split(",") if t.strip()]
    metafunc.parametrize("connector_type", types if types is not None else _kit_types(), scope="module")


@pytest.fixture(scope="module")
def bench(connector_type, tmp_path_factory):
    bench = Bench(_kit_for(connector_type), tmp_path_factory.mktemp(f"conformance-{connector_type}"))
    try:
        with bench.workspace([]).target() as bench.handle:
            yield bench
    finally:
        bench.close()


# -- helpers ---------------------------------------------------------------------------


def _capabilities(bench) -> frozenset[str]:
    return frozenset(bench.handle.target.capabilities)


def _require(bench, *needed: str) -> None:
    missing = [c for c in needed if c not in _capabilities(bench)]
    if missing:
        pytest.skip(f"{bench.kit.type} does not declare {', '.join(missing)}")


def _want(bench, row) -> dict:
    return bench.handle.mapping.render({k: v for k, v in row.items() if v not in (None, "")})


def _correlate(bench) -> str:
    return bench.kit.correlate or bench.handle.mapping.correlate[0]


def _account_for(bench, row):
    """A new account for `row`: created by the target, or seeded by hand when it cannot create."""
    target, want = bench.handle.target, _want(bench, row)
    if CREATE in _capabilities(bench):
        return target.create(want), want
    if bench.kit.seed is None:
        pytest.skip(f"{bench.kit.type} cannot create and its testkit has no seed()")
    bench.seed(row)
    found = target.find_accounts(_correlate(bench), want[_correlate(bench)])
    assert len(found) == 1, f"the seeded account was found {len(found)} times"
    return found[0], want


def _assert_shows(bench, account, want, paths) -> None:
    target, mapping = bench.handle.target, bench.handle.mapping
    hidden = set(target.write_only)
    for path in paths:
        if path in hidden or path == ACTIVE or want.get(path) is None:
            continue
        assert same_value(account.attrs.get(path), want[path], mapping.case_insensitive(path)), (
            f"{path}: the target shows {account.attrs.get(path)!r}, {want[path]!r} was written")


def _creates(bench, since: int) -> list:
    method, pattern = bench.kit.create_request
    return bench.proxy.sent(method, pattern, since)


# -- the cases -------------------------------------------------------------------------


def test_create_read_find_update_disable_enable(bench):
    target = bench.handle.target
    row = bench.kit.row(bench.person())
    account, want = _account_for(bench, row)
    assert account.id, "an account needs an id"

    read = target.get_account(account.id)
    assert read is not None and read.id == account.id
    _assert_shows(bench, read, want, want)

    path = _correlate(bench)
    found = target.find_accounts(path, want[path])
    assert [a.id for a in found] == [account.id], f"find_accounts({path!r}, {want[path]!r})"

    if UPDATE in _capabilities(bench):
        changed = {**row, **{k: v.format(n=row_number(row)) for k, v in bench.kit.update.items()}}
        new = _want(bench, changed)
        changes = {p: v for p, v in new.items() if p != ACTIVE and not same_value(v, want.get(p))}
        assert changes, f"the testkit's update {dict(bench.kit.update)} changes no mapped attribute"
        target.modify(target.get_account(account.id), changes)
        _assert_shows(bench, target.get_account(account.id), new, changes)

    for capability, active in ((DISABLE, False), (ENABLE, True)):
        if capability in _capabilities(bench):
            target.modify(target.get_account(account.id), {ACTIVE: active})
            if ACTIVE not in target.write_only:   # else only the second-plan case can tell
                assert target.get_account(account.id).active is active, f"after {capability}"


def row_number(row) -> int:
    """The person number a standard row was made from (the update's {n})."""
    digits = re.sub(r"\D", "", str(row.get("employee_id", "")))
    return int(digits or 0)


def test_list_reads_every_page(bench):
    if bench.kit.page_size is None:
        pytest.skip(f"{bench.kit.type}: one answer holds every account (the testkit declares no page size)")
    rows = bench.rows(bench.kit.page_size + 1)
    for row in rows:
        if bench.kit.seed is not None:   # quicker than a create request each
            bench.seed(row)
        else:
            _account_for(bench, row)
    mark = bench.proxy.mark()
    listed = bench.handle.target.list_accounts()
    path, ci = _correlate(bench), bench.handle.mapping.case_insensitive(_correlate(bench))
    shown = {normalize(a.attrs.get(path), ci) for a in listed}
    missing = [r for r in rows if normalize(_want(bench, r)[path], ci) not in shown]
    assert not missing, f"{len(missing)} accounts beyond the first page are missing"
    assert len(listed) == len({a.id for a in listed}), "an account was listed twice"
    assert len(bench.proxy.sent("GET", "", mark)) >= 2, "the accounts were listed in one request"


def test_a_disabled_account_is_deleted_once(bench):
    """The end of an account's life: disabled, then deleted; gone from reads and lists, and a
    second delete is NotFound (the executor's "gone already", so a resumed apply is done)."""
    _require(bench, DELETE)
    target = bench.handle.target
    account, _ = _account_for(bench, bench.kit.row(bench.person()))
    if DISABLE in _capabilities(bench):   # the executor deletes only what this tool disabled
        target.modify(target.get_account(account.id), {ACTIVE: False})
    target.delete(target.get_account(account.id))
    assert target.get_account(account.id) is None, "the deleted account can still be read"
    assert account.id not in {a.id for a in target.list_accounts()}, "the deleted account is still listed"
    with pytest.raises(NotFound):
        target.delete(account)


def test_a_duplicate_create_is_found_and_linked(bench):
    _require(bench, CREATE)
    if not bench.kit.refuses_duplicates:
        pytest.skip(f"{bench.kit.type}'s API accepts a second account with the same login")
    row = bench.kit.row(bench.person())
    space = bench.workspace([row])
    plan = space.plan()
    assert [i.op for i in plan.items] == ["create"], plan.items
    bench.handle.target.create(_want(bench, row))   # made by someone else after the plan
    assert not space.apply(plan.plan_id).failed
    assert space.query("select outcome from audit where identity = ?", row["employee_id"]) == [
        ("already existed; linked",)]
    want = _want(bench, row)
    assert len(bench.handle.target.find_accounts(_correlate(bench), want[_correlate(bench)])) == 1


def _warmed_up(bench) -> None:
    """One listing first, so the target holds its token and the next request is the list's."""
    bench.handle.target.list_accounts()


def test_429_waits_the_retry_after(bench):
    _warmed_up(bench)
    mark = bench.proxy.mark()
    bench.proxy.fail_next(1, 429, retry_after=RETRY_AFTER)
    bench.handle.target.list_accounts()
    throttled, retry, *_ = bench.proxy.since(mark)
    assert (throttled.status, throttled.injected) == (429, True)
    assert retry.path == throttled.path and retry.status == 200, "the throttled request was not sent again"
    # the proxy stamps its answer before sending it: the client cannot have waited less
    assert retry.started - throttled.answered >= RETRY_AFTER, "the Retry-After was not waited"


def test_5xx_is_retried(bench):
    _warmed_up(bench)
    mark = bench.proxy.mark()
    bench.proxy.fail_next(1, 503)
    bench.handle.target.list_accounts()
    failed, retry, *_ = bench.proxy.since(mark)
    assert (failed.status, failed.injected) == (503, True)
    assert retry.path == failed.path and retry.status == 200, "the failed request was not sent again"


def test_a_killed_apply_resumes_without_duplicates(bench):
    _require(bench, CREATE)
    assert bench.kit.create_request, "a connector that creates must give its testkit's create_request"
    rows = bench.rows(5)
    space = bench.workspace(rows)
    plan_id = space.plan().plan_id
    method, pattern = bench.kit.create_request
    seen = []

    def third_create(exchange) -> bool:
        if exchange.method == method and re.search(pattern, exchange.path):
            seen.append(exchange)
            return len(seen) == HELD
        return False

    mark = bench.proxy.mark()
    bench.proxy.held.clear()
    bench.proxy.hold = third_create
    apply = subprocess.Popen(space.command("apply", plan_id, "--yes"), cwd=space.root, env=space.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert bench.proxy.held.wait(60), "the apply never sent its third create"
    finally:
        apply.kill()
        apply.wait()
        bench.proxy.hold = None
        bench.proxy.release()
    assert _creates(bench, mark)[HELD - 1].status in (200, 201), "the held create made no account"
    assert "in_flight" in {s for (s,) in space.query("select status from plan_items")}

    assert not space.apply(plan_id).failed
    assert len(_creates(bench, mark)) == len(rows), "a create was sent twice"
    target, path = bench.handle.target, _correlate(bench)
    for row in rows:
        assert len(target.find_accounts(path, _want(bench, row)[path])) == 1, f"{row['employee_id']}"
    assert space.query("select count(distinct account_id), count(*) from links") == [(5, 5)]
    assert space.query("select distinct status from plan_items") == [("done",)]


def test_secrets_never_in_errors_or_logs(bench, caplog):
    if not bench.kit.env:
        pytest.skip(f"{bench.kit.type}'s testkit passes no secret through env: references")
    real = [v for v in bench.kit.env.values() if v]
    # a wrong credential of the same shape: refused, and never shown either
    wrong = {k: f"wrong-{_random.token_hex(8)}" for k in bench.kit.env}
    space = bench.workspace(bench.rows(1), env=wrong)
    proc = space.run("-v", "check", check=None)
    assert proc.returncode != 0, f"check passed with a wrong credential\n{proc.stdout}{proc.stderr}"
    shown = proc.stdout + proc.stderr
    with caplog.at_level(logging.DEBUG), space.target() as handle:
        with pytest.raises(TargetError) as refused:
            handle.target.check()
            handle.target.list_accounts()
    shown += str(refused.value) + caplog.text
    for secret in [*real, *wrong.values()]:
        assert secret not in shown, "a secret is in an error or a log line"

    # the right credential, every log line at DEBUG: a plan and its apply
    caplog.clear()
    space = bench.workspace(bench.rows(2))
    with caplog.at_level(logging.DEBUG):
        plan = space.plan()
        result = space.apply(plan.plan_id)
    assert not result.failed
    shown = caplog.text + json.dumps(plan.to_dict(), default=str) + repr([i.attrs for i in plan.items])
    stored = (space.root / "state.db").read_bytes()
    for secret in real:
        assert secret not in shown, "a secret is in a log line or the plan"
        assert secret.encode() not in stored, "a secret is in the state DB"


def test_a_second_plan_is_empty(bench):
    """Converges, write-only attributes included: after an apply nothing is left to change."""
    rows = bench.rows(2)
    if CREATE not in _capabilities(bench):
        if bench.kit.seed is None:
            pytest.skip(f"{bench.kit.type} cannot create and its testkit has no seed()")
        for row in rows:
            bench.seed(row)
    space = bench.workspace(rows)
    first = space.plan()
    ops = [i.op for i in first.items]
    assert ops and "manual" not in ops and "conflict" not in ops, first.items
    result = space.apply(first.plan_id)
    assert not result.failed, result
    second = space.plan()
    assert not second.items, f"the second plan still changes something: {second.items}"
