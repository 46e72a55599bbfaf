"""The lifecycle rules of the planner, as pure functions: delete after a grace period,
drift per attribute, orphans. No network, no database."""

from __future__ import annotations

from datetime import date

import pytest

from provisioner.mapping import load_mapping
from provisioner.model import Account, SourceResult
from provisioner.planner import PlanPolicy, TargetInput, make_plan
from test_planner import MAPPING, account_for, person

DAY = date(2026, 3, 1)
ALL = frozenset({"create", "update", "disable", "enable", "delete"})


def load(tmp_path, text):
    path = tmp_path / "directory.toml"
    path.write_text(text, encoding="utf-8")
    return load_mapping(path)


@pytest.fixture
def mapping(tmp_path):
    return load(tmp_path, MAPPING)


def plan_for(mapping, identities, accounts=(), links=None, *, today=DAY, held=(), **target_kw):
    target_kw.setdefault("capabilities", ALL)
    target = TargetInput(name="dir", mapping=mapping, accounts=list(accounts), links=links or {}, **target_kw)
    return make_plan(SourceResult(tuple(identities), held=tuple(held)), [target], PlanPolicy(),
                     plan_id="p1", created_at="2026-01-01T00:00:00+00:00", today=today)


def ops(plan):
    return [(i.op, i.identity or i.account_id) for i in plan.items]


# --- disable -> grace -> delete ----------------------------------------------------

def leaver(key):
    """A person gone from the source, whose account this tool disabled."""
    return account_for(person(key), active=False)


def test_an_account_this_tool_disabled_is_deleted_once_the_grace_period_is_over(mapping):
    accounts = [leaver("E1")]
    links = {"E1": "id-E1"}
    disabled = {"id-E1": date(2026, 1, 30)}   # 30 days before DAY
    assert ops(plan_for(mapping, [], accounts, links, delete_after_days=31, disabled_on=disabled)) == []
    plan = plan_for(mapping, [], accounts, links, delete_after_days=30, disabled_on=disabled)
    assert ops(plan) == [("delete", "E1")]
    assert "disabled by this tool on 2026-01-30" in plan.items[0].reason
    assert plan.targets["dir"].counts == {"delete": 1}


def test_delete_after_days_zero_deletes_on_the_first_run_after_the_disable(mapping):
    plan = plan_for(mapping, [], [leaver("E1")], {"E1": "id-E1"}, delete_after_days=0,
                    disabled_on={"id-E1": DAY})
    assert ops(plan) == [("delete", "E1")]


def test_no_delete_without_delete_after_days_or_without_this_tools_disable(mapping):
    accounts = [leaver("E1"), leaver("E2")]
    links = {"E1": "id-E1", "E2": "id-E2"}
    # off by default
    assert plan_for(mapping, [], accounts, links, disabled_on={"id-E1": date(2025, 1, 1)}).items == ()
    # E2 was disabled by someone else: nothing recorded, never deleted
    plan = plan_for(mapping, [], accounts, links, delete_after_days=1, disabled_on={"id-E1": date(2025, 1, 1)})
    assert ops(plan) == [("delete", "E1")]


def test_a_leaver_still_in_the_source_as_inactive_is_deleted_too(mapping):
    gone = person("E1", status="terminated")
    plan = plan_for(mapping, [gone], [account_for(gone, active=False)], {"E1": "id-E1"},
                    delete_after_days=30, disabled_on={"id-E1": date(2025, 12, 1)})
    assert ops(plan) == [("delete", "E1")]


def test_a_rehire_within_the_grace_period_is_enabled_and_after_it_created(mapping):
    back = person("E1")
    disabled = {"id-E1": date(2026, 2, 20)}
    plan = plan_for(mapping, [back], [account_for(back, active=False)], {"E1": "id-E1"},
                    delete_after_days=30, disabled_on=disabled)
    assert ops(plan) == [("enable", "E1")]
    # deleted meanwhile: the link went with it, so the person gets a new account
    assert ops(plan_for(mapping, [back], [], {}, delete_after_days=30)) == [("create", "E1")]


def test_held_people_and_accounts_enabled_again_are_never_deleted(mapping):
    disabled = {"id-E1": date(2025, 1, 1), "id-E2": date(2025, 1, 1)}
    accounts = [leaver("E1"), account_for(person("E2"), active=True)]
    plan = plan_for(mapping, [], accounts, {"E1": "id-E1", "E2": "id-E2"}, held=("E1",),
                    delete_after_days=1, disabled_on=disabled)
    # E1 is held (rejected row); E2 was enabled by hand since: disabled again, not deleted
    assert ops(plan) == [("disable", "E2")]


def test_deletes_come_first_and_have_their_own_guard(mapping):
    newcomer = person("E9")
    accounts = [leaver(f"E{n}") for n in range(1, 4)]
    links = {f"E{n}": f"id-E{n}" for n in range(1, 4)}
    disabled = {f"id-E{n}": date(2025, 1, 1) for n in range(1, 4)}
    plan = plan_for(mapping, [newcomer], accounts, links, delete_after_days=1, disabled_on=disabled)
    assert [i.op for i in plan.items] == ["delete", "delete", "delete", "create"]
    assert [i.id for i in plan.items] == ["000001", "000002", "000003", "000004"]
    assert not plan.targets["dir"].blocked
    blocked = plan_for(mapping, [newcomer], accounts, links, delete_after_days=1, disabled_on=disabled,
                       max_delete_count=2)
    assert blocked.targets["dir"].block_reason == "3 deletes exceed max_delete_count = 2"
    by_percent = plan_for(mapping, [], accounts, links, delete_after_days=1, disabled_on=disabled,
                          max_delete_percent=50, percent_floor=2)
    assert "3 deletes are 100.0% of 3 accounts, over max_delete_percent = 50" in \
        by_percent.targets["dir"].block_reason


def test_a_target_that_cannot_delete_says_what_to_do_or_nothing_when_disabled_is_final(mapping):
    common = dict(capabilities=ALL - {"delete"}, delete_after_days=1,
                  disabled_on={"id-E1": date(2025, 1, 1)})
    plan = plan_for(mapping, [], [leaver("E1")], {"E1": "id-E1"},
                    manual_delete=lambda a: f"remove {a.id} in the portal", **common)
    assert ops(plan) == [("manual", "E1")] and plan.items[0].reason.endswith("remove id-E1 in the portal")
    final = plan_for(mapping, [], [leaver("E1")], {"E1": "id-E1"}, manual_delete=lambda a: None, **common)
    assert final.items == ()


# --- drift -------------------------------------------------------------------------

def drift_mapping(tmp_path, policy):
    entry = f'title = {{ from = "title", on_drift = "{policy}" }}'
    return load(tmp_path, MAPPING.replace('title = "title"', entry))


def drifted(title_on_target="Boss", wrote="Agent", source_title="Agent"):
    ada = person("E1", title=source_title)
    account = account_for(ada, title=title_on_target)
    account = Account(account.id, account.attrs, raw={"meta": {"lastModified": "2026-02-27T10:00:00Z"}})
    return ada, account, {"id-E1": {"title": wrote}}


def test_revert_is_todays_behaviour_and_its_update_says_it_reverts_drift(tmp_path):
    ada, account, written = drifted()
    plan = plan_for(drift_mapping(tmp_path, "revert"), [ada], [account], {"E1": "id-E1"}, written=written)
    assert ops(plan) == [("update", "E1")] and plan.items[0].changes["title"].after == "Agent"
    assert "reverts drift (title was changed on dir to 'Boss'" in plan.items[0].reason


def test_a_source_change_under_revert_is_no_drift(tmp_path):
    ada, account, written = drifted(title_on_target="Agent", source_title="Team Lead")
    plan = plan_for(drift_mapping(tmp_path, "revert"), [ada], [account], {"E1": "id-E1"}, written=written)
    assert ops(plan) == [("update", "E1")] and "drift" not in plan.items[0].reason


def test_without_on_drift_nothing_is_tracked(tmp_path):
    assert load(tmp_path, MAPPING).drift_tracked == frozenset()
    assert drift_mapping(tmp_path, "revert").drift_tracked == {"title"}


def test_adopt_leaves_the_targets_value(tmp_path):
    ada, account, written = drifted()
    assert plan_for(drift_mapping(tmp_path, "adopt"), [ada], [account], {"E1": "id-E1"},
                    written=written).items == ()


def test_alert_reports_ours_theirs_and_when_it_changed_and_applies_nothing(tmp_path):
    ada, account, written = drifted()
    plan = plan_for(drift_mapping(tmp_path, "alert"), [ada], [account], {"E1": "id-E1"}, written=written)
    assert ops(plan) == [("drift", "E1")]
    item = plan.items[0]
    assert item.changes["title"].before == "Agent" and item.changes["title"].after == "Boss"
    assert "last modified 2026-02-27T10:00:00Z" in item.reason
    assert plan.targets["dir"].counts == {"drift": 1}


@pytest.mark.parametrize("policy", ["adopt", "alert"])
def test_a_source_change_always_wins(tmp_path, policy):
    ada, account, written = drifted(source_title="Team Lead")
    plan = plan_for(drift_mapping(tmp_path, policy), [ada], [account], {"E1": "id-E1"}, written=written)
    assert ops(plan) == [("update", "E1")]
    assert plan.items[0].changes["title"].before == "Boss" and plan.items[0].changes["title"].after == "Team Lead"


@pytest.mark.parametrize("policy", ["adopt", "alert"])
def test_with_nothing_written_yet_a_difference_is_reverted(tmp_path, policy):
    ada, account, _ = drifted()
    plan = plan_for(drift_mapping(tmp_path, policy), [ada], [account], {"E1": "id-E1"})
    assert ops(plan) == [("update", "E1")]


def test_on_drift_is_checked_when_the_mapping_loads(tmp_path):
    from provisioner.errors import ConfigError
    with pytest.raises(ConfigError, match=r"attributes.title.on_drift: must be one of revert, adopt, alert"):
        drift_mapping(tmp_path, "ignore")


# --- orphans -----------------------------------------------------------------------

def orphans_case():
    ada = person("E1")
    accounts = [account_for(ada), Account("o1", {"userName": "svc-backup", "active": True}),
                Account("o2", {"userName": "stray@example.com", "active": True}),
                Account("o3", {"userName": "old@example.com", "active": False})]
    return [ada], accounts, {"E1": "id-E1"}


def test_unmanaged_ignore_is_todays_plan(mapping):
    people, accounts, links = orphans_case()
    plan = plan_for(mapping, people, accounts, links)
    assert plan.items == () and plan.targets["dir"].unmanaged == 3
    assert "orphans" not in plan.to_dict()["targets"]["dir"]


def test_unmanaged_report_lists_every_orphan(mapping):
    people, accounts, links = orphans_case()
    plan = plan_for(mapping, people, accounts, links, unmanaged="report", keep={"userName": ["svc-.*"]})
    assert plan.items == ()
    assert plan.to_dict()["targets"]["dir"]["orphans"] == [
        {"account_id": "o1", "person": "svc-backup", "active": True, "kept": "userName ~ svc-.*"},
        {"account_id": "o2", "person": "stray@example.com", "active": True, "kept": None},
        {"account_id": "o3", "person": "old@example.com", "active": False, "kept": None}]


def test_unmanaged_disable_disables_active_orphans_not_kept_under_the_guard(mapping):
    people, accounts, links = orphans_case()
    plan = plan_for(mapping, people, accounts, links, unmanaged="disable", keep={"userName": ["svc-.*"]})
    assert ops(plan) == [("disable", "o2")] and plan.items[0].identity is None
    blocked = plan_for(mapping, people, accounts, links, unmanaged="disable", max_disable_count=0)
    assert blocked.targets["dir"].blocked and "2 disables exceed max_disable_count = 0" in \
        blocked.targets["dir"].block_reason


def test_no_orphan_is_disabled_on_a_target_that_could_not_be_read(mapping):
    people, _, links = orphans_case()
    plan = plan_for(mapping, people, [], links, unmanaged="disable", unreadable="could not read its accounts: x")
    assert plan.items == () and plan.targets["dir"].blocked


def test_a_plan_records_the_day_it_was_made_for(mapping):
    target = TargetInput(name="dir", mapping=mapping, accounts=[], links={})
    plan = make_plan(SourceResult(()), [target], PlanPolicy(), plan_id="p1", created_at="t",
                     today=date(2026, 4, 1), as_of="2026-04-01")
    assert plan.to_dict()["as_of"] == "2026-04-01"
