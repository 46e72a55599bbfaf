"""The planner as a pure function: no network, no database."""

from __future__ import annotations

import pytest

from provisioner.mapping import load_mapping
from provisioner.model import Account, Identity, Rejected, SourceResult, Upcoming
from provisioner.planner import PlanPolicy, TargetInput, make_plan

MAPPING = """
scope = 'department eq "Support"'
correlate = ["userName"]
[attributes]
userName = "email"
"name.givenName" = "given_name"
"name.familyName" = "family_name"
"emails[0].value" = "email"
title = "title"
active = { from = "status", equals = "active" }
"""


@pytest.fixture
def mapping(tmp_path):
    path = tmp_path / "directory.toml"
    path.write_text(MAPPING, encoding="utf-8")
    return load_mapping(path)


def person(key, given="Ada", family="Lovelace", email=None, dept="Support", title="Agent", status="active"):
    attrs = {"employee_id": key, "given_name": given, "family_name": family,
             "email": email or f"{key.lower()}@example.com", "department": dept, "title": title,
             "status": status}
    return Identity(key, {k: v for k, v in attrs.items() if v is not None})


def account_for(identity, account_id=None, active=True, **overrides):
    a = identity.attrs
    attrs = {"userName": a["email"], "name.givenName": a["given_name"], "name.familyName": a["family_name"],
             "emails[0].value": a["email"], "title": a.get("title"), "active": active}
    attrs.update(overrides)
    return Account(account_id or f"id-{identity.key}", attrs)


def plan_for(mapping, identities, accounts=(), links=None, *, rejected=(), policy=None, baseline=None,
             only=None, **target_kw):
    target = TargetInput(name="dir", mapping=mapping, accounts=list(accounts), links=links or {}, **target_kw)
    return make_plan(SourceResult(tuple(identities), tuple(rejected)), [target], policy or PlanPolicy(),
                     plan_id="p1", created_at="2026-01-01T00:00:00+00:00",
                     baseline_identities=baseline, only=only)


def ops(plan):
    return [(i.op, i.identity) for i in plan.items]


def test_new_person_in_scope_is_created_with_every_mapped_attribute(mapping):
    ada = person("E1", given="Zoë", family="Ōtsuka", email="Zoe@Example.com")
    plan = plan_for(mapping, [ada])
    assert ops(plan) == [("create", "E1")]
    item = plan.items[0]
    assert item.attrs == {"userName": "Zoe@Example.com", "name.givenName": "Zoë", "name.familyName": "Ōtsuka",
                          "emails[0].value": "Zoe@Example.com", "title": "Agent", "active": True}
    assert {p: c.after for p, c in item.changes.items()}["name.givenName"] == "Zoë"
    assert all(c.before is None for c in item.changes.values())
    assert item.lookup == (("userName", "Zoe@Example.com"),)
    assert plan.targets["dir"].counts["create"] == 1
    assert plan.to_dict()["targets"]["dir"]["create"] == 1


def test_out_of_scope_and_inactive_people_get_no_account(mapping):
    plan = plan_for(mapping, [person("E1", dept="Research"), person("E2", status="terminated")])
    assert plan.items == ()


def test_matching_linked_account_plans_nothing(mapping):
    ada = person("E1")
    plan = plan_for(mapping, [ada], [account_for(ada)], {"E1": "id-E1"})
    assert plan.items == () and plan.adopt == ()
    assert plan.targets["dir"].unmanaged == 0


def test_changed_attribute_is_an_update_with_from_and_to(mapping):
    ada = person("E1", title="Team Lead")
    plan = plan_for(mapping, [ada], [account_for(ada, title="Agent")], {"E1": "id-E1"})
    assert ops(plan) == [("update", "E1")]
    assert plan.items[0].to_dict()["changes"] == {"title": {"from": "Agent", "to": "Team Lead"}}
    assert plan.items[0].account_id == "id-E1"


def test_emails_compare_case_insensitively_but_names_do_not(mapping):
    ada = person("E1", email="ADA@example.COM", family="lovelace")
    acct = account_for(person("E1", email="ada@example.com", family="Lovelace"))
    plan = plan_for(mapping, [ada], [acct], {"E1": "id-E1"})
    assert ops(plan) == [("update", "E1")]
    assert list(plan.items[0].changes) == ["name.familyName"]


def test_source_value_removed_clears_the_managed_attribute(mapping):
    ada = person("E1", title=None)
    plan = plan_for(mapping, [ada], [account_for(ada, title="Agent")], {"E1": "id-E1"})
    assert plan.items[0].to_dict()["changes"] == {"title": {"from": "Agent", "to": None}}


def test_inactive_person_with_active_account_is_disabled(mapping):
    ada = person("E1", status="leaver")
    plan = plan_for(mapping, [ada], [account_for(ada)], {"E1": "id-E1"})
    assert ops(plan) == [("disable", "E1")]
    assert plan.items[0].to_dict()["changes"] == {"active": {"from": True, "to": False}}


def test_rehire_is_an_enable_carrying_attribute_changes(mapping):
    ada = person("E1", title="Lead")
    plan = plan_for(mapping, [ada], [account_for(ada, active=False, title="Agent")], {"E1": "id-E1"})
    assert ops(plan) == [("enable", "E1")]
    assert plan.items[0].to_dict()["changes"] == {"title": {"from": "Agent", "to": "Lead"},
                                                  "active": {"from": False, "to": True}}


def test_disabled_account_of_inactive_person_is_left_alone(mapping):
    ada = person("E1", status="leaver", title="changed")
    assert plan_for(mapping, [ada], [account_for(ada, active=False)], {"E1": "id-E1"}).items == ()


def test_person_gone_from_source_is_disabled_or_ignored_per_policy(mapping):
    gone = person("E9")
    accounts, links = [account_for(gone)], {"E9": "id-E9"}
    plan = plan_for(mapping, [], accounts, links, max_disable_percent=100)
    assert ops(plan) == [("disable", "E9")]
    assert "no longer in the source" in plan.items[0].reason
    ignored = plan_for(mapping, [], accounts, links, policy=PlanPolicy(missing="ignore"))
    assert ignored.items == ()
    assert ignored.targets["dir"].unmanaged == 0


def test_person_who_left_the_scope_is_disabled(mapping):
    moved = person("E1", dept="Sales")
    plan = plan_for(mapping, [moved], [account_for(moved)], {"E1": "id-E1"}, max_disable_percent=100)
    assert ops(plan) == [("disable", "E1")]
    assert "scope" in plan.items[0].reason


def test_rejected_row_never_disables_its_account(mapping):
    bad = person("E1")
    plan = plan_for(mapping, [], [account_for(bad)], {"E1": "id-E1"},
                    rejected=[Rejected(3, "E1", "invalid email 'x@'")], max_disable_percent=100)
    assert plan.items == ()
    assert plan.to_dict()["source"]["rejected"] == [{"row": 3, "key": "E1", "reason": "invalid email 'x@'"}]


def test_accounts_of_held_people_are_counted_as_held_not_unmanaged(mapping):
    linked, unlinked, stranger = person("E1"), person("E2"), person("E3")
    accounts = [account_for(linked), account_for(unlinked), account_for(stranger)]
    # E2 was never linked: its account is found by correlating the rejected row's values
    rejected = [Rejected(3, "E1", "invalid email 'x@'"),
                Rejected(4, "E2", "invalid title", attrs=unlinked.attrs)]
    plan = plan_for(mapping, [], accounts, {"E1": "id-E1"}, rejected=rejected, max_disable_percent=100)
    assert plan.items == ()
    summary = plan.to_dict()["targets"]["dir"]
    assert (summary["held"], summary["unmanaged"]) == (2, 1)


def test_unlinked_account_found_by_correlation_is_adopted_or_updated(mapping):
    ada, grace = person("E1"), person("E2", title="Lead")
    accounts = [account_for(ada, "a1", userName="E1@EXAMPLE.com"), account_for(grace, "a2", title="Agent")]
    plan = plan_for(mapping, [ada, grace], accounts)
    assert ops(plan) == [("update", "E2")]
    assert plan.items[0].account_id == "a2"
    assert [(l.identity, l.account_id) for l in plan.adopt] == [("E1", "a1")]


def test_several_candidates_are_a_conflict(mapping):
    ada = person("E1")
    plan = plan_for(mapping, [ada], [account_for(ada, "a1"), account_for(ada, "a2")])
    assert ops(plan) == [("conflict", "E1")]
    assert "a1" in plan.items[0].reason and "a2" in plan.items[0].reason
    assert plan.targets["dir"].unmanaged == 2


def test_two_people_correlating_to_one_account_are_both_conflicts(mapping):
    a, b = person("E1", email="same@example.com"), person("E2", email="SAME@example.com")
    plan = plan_for(mapping, [a, b], [account_for(a, "a1")])
    assert ops(plan) == [("conflict", "E1"), ("conflict", "E2")]


def test_two_new_people_wanting_the_same_username_are_conflicts_not_creates(mapping):
    a, b, c = person("E1", email="x@example.com"), person("E2", email="X@example.com"), person("E3")
    plan = plan_for(mapping, [a, b, c])
    assert ops(plan) == [("conflict", "E1"), ("conflict", "E2"), ("create", "E3")]


def test_account_linked_to_another_current_person_is_a_conflict(mapping):
    a, b = person("E1", email="x@example.com"), person("E2", email="x@example.com")
    plan = plan_for(mapping, [a, b], [account_for(a, "a1")], {"E1": "a1"})
    assert ops(plan) == [("conflict", "E2")]
    assert "linked to E1" in plan.items[0].reason


def test_accounts_matching_nobody_are_unmanaged_and_left_alone(mapping):
    ada = person("E1")
    stranger = account_for(person("X1"), "s1")
    plan = plan_for(mapping, [ada], [account_for(ada), stranger], {"E1": "id-E1"})
    assert plan.items == ()
    assert plan.targets["dir"].unmanaged == 1


def test_linked_account_deleted_on_target_is_created_again(mapping):
    ada = person("E1")
    plan = plan_for(mapping, [ada], [], {"E1": "gone"})
    assert ops(plan) == [("create", "E1")]
    assert "no longer on the target" in plan.items[0].reason


def test_target_without_create_gets_a_manual_item(mapping):
    plan = plan_for(mapping, [person("E1")], capabilities=frozenset({"update", "disable", "enable"}))
    assert ops(plan) == [("manual", "E1")]
    assert "by hand" in plan.items[0].reason


def test_person_without_a_correlation_value_is_manual_and_says_which_column(mapping):
    nobody = Identity("E1", {"employee_id": "E1", "given_name": "A", "department": "Support", "status": "active"})
    plan = plan_for(mapping, [nobody])
    assert ops(plan) == [("manual", "E1")]
    assert "userName has no value (from email)" in plan.items[0].reason


def test_disables_over_the_count_limit_block_the_target(mapping):
    people = [person(f"E{n}") for n in range(5)]
    accounts = [account_for(p) for p in people]
    links = {p.key: f"id-{p.key}" for p in people}
    plan = plan_for(mapping, people[:2], accounts, links, max_disable_count=2, max_disable_percent=100)
    summary = plan.targets["dir"]
    assert summary.counts["disable"] == 3 and summary.blocked
    assert "max_disable_count" in summary.block_reason
    assert plan.status == "blocked"
    at_limit = plan_for(mapping, people[:3], accounts, links, max_disable_count=2, max_disable_percent=100)
    assert not at_limit.targets["dir"].blocked and at_limit.status == "pending"


def test_disables_over_the_percent_limit_block_the_target(mapping):
    # 100 accounts: the counts (10, 15) are past the percent_floor of 5
    people = [person(f"E{n}") for n in range(100)]
    accounts = [account_for(p) for p in people]
    links = {p.key: f"id-{p.key}" for p in people}
    ten = plan_for(mapping, people[10:], accounts, links, max_disable_percent=10)
    assert not ten.targets["dir"].blocked  # 10.0% is not over 10
    fifteen = plan_for(mapping, people[15:], accounts, links, max_disable_percent=10)
    assert fifteen.targets["dir"].blocked and "15.0%" in fifteen.targets["dir"].block_reason


def test_a_percentage_counts_only_past_the_floor(mapping):
    people = [person(f"E{n}") for n in range(5)]
    accounts = [account_for(p) for p in people]
    links = {p.key: f"id-{p.key}" for p in people}
    one_leaver = plan_for(mapping, people[1:], accounts, links)  # 20% of 5, but one person
    assert ops(one_leaver) == [("disable", "E0")] and one_leaver.status == "pending"
    strict = plan_for(mapping, people[1:], accounts, links, percent_floor=0)
    assert strict.targets["dir"].block_reason == (
        "1 disables are 20.0% of 5 accounts, over max_disable_percent = 10")
    # the count limit has no floor
    assert plan_for(mapping, people[1:], accounts, links, max_disable_count=0).status == "blocked"


def test_mass_updates_and_clears_block_the_target(mapping):
    people = [person(f"E{n}") for n in range(40)]
    accounts = [account_for(p) for p in people]
    links = {p.key: f"id-{p.key}" for p in people}
    retitled = [person(p.key, title="Lead") if n < 13 else p for n, p in enumerate(people)]
    plan = plan_for(mapping, retitled, accounts, links)
    assert plan.targets["dir"].block_reason == (
        "13 updates are 32.5% of 40 accounts, over max_update_percent = 30")
    assert plan_for(mapping, retitled, accounts, links, max_update_percent=50).status == "pending"
    assert "exceed max_update_count = 12" in plan_for(
        mapping, retitled, accounts, links, max_update_percent=100, max_update_count=12
    ).targets["dir"].block_reason

    wiped = [person(p.key, title=None) if n < 6 else p for n, p in enumerate(people)]
    plan = plan_for(mapping, wiped, accounts, links)
    assert [i.changes["title"].after for i in plan.items] == [None] * 6
    assert plan.targets["dir"].block_reason == (
        "6 updates emptying a value that is set (title: 6) are 15.0% of 40 accounts, "
        "over max_clear_percent = 5")
    assert plan_for(mapping, wiped, accounts, links, max_clear_percent=20).status == "pending"
    # a value set where there was none is no clear
    unset = [Account(a.id, {**a.attrs, "title": None}) for a in accounts]
    assert plan_for(mapping, people, unset, links).targets["dir"].block_reason == (
        "40 updates are 100.0% of 40 accounts, over max_update_percent = 30")


def test_a_required_attribute_left_empty_is_a_manual_item(mapping):
    ada = person("E1")
    account = account_for(ada)
    no_email = Identity("E1", {k: v for k, v in person("E1", title="Lead").attrs.items() if k != "email"})
    plan = plan_for(mapping, [no_email], [account], {"E1": account.id}, required=frozenset({"userName"}))
    assert ops(plan) == [("manual", "E1")]
    item = plan.items[0]
    assert item.changes["userName"].after is None and item.changes["title"].after == "Lead"
    assert item.reason == ("not sent: userName is required on dir and would have no value "
                           "(from email); fill it in the source")
    # a create missing a required attribute that is not the correlation one
    corr = plan_for(mapping, [person("E2", given=None)], required=frozenset({"name.givenName"}))
    assert ops(corr) == [("manual", "E2")]
    assert "name.givenName is required on dir" in corr.items[0].reason


def test_a_shrunken_source_blocks_the_whole_plan(mapping):
    people = [person(f"E{n}") for n in range(4)]
    plan = plan_for(mapping, people, baseline=10)
    assert plan.status == "blocked" and plan.targets["dir"].blocked
    assert "fewer than 50% of the 10" in plan.targets["dir"].block_reason
    assert plan_for(mapping, people, baseline=8).status == "pending"
    assert plan_for(mapping, people, baseline=None).status == "pending"


def test_unreadable_target_is_blocked_and_others_still_planned(mapping):
    good = TargetInput(name="good", mapping=mapping, accounts=[], links={})
    bad = TargetInput(name="bad", mapping=mapping, accounts=[], links={}, unreadable="connection refused")
    plan = make_plan(SourceResult((person("E1"),)), [bad, good], PlanPolicy(), plan_id="p", created_at="t")
    assert plan.targets["bad"].blocked and plan.targets["bad"].block_reason == "connection refused"
    assert ops(plan) == [("create", "E1")] and plan.items[0].target == "good"


def test_only_limits_items_to_the_named_identities(mapping):
    plan = plan_for(mapping, [person("E1"), person("E2")], only=["e2"])
    assert ops(plan) == [("create", "E2")]


def test_same_inputs_give_the_same_plan(mapping):
    people = [person(f"E{n}", title=str(n)) for n in range(30)]
    accounts = [account_for(p, title="old") for p in people[:10]] + [account_for(person("Z"), "z")]
    links = {p.key: f"id-{p.key}" for p in people[:10]} | {"Z": "z"}
    first = plan_for(mapping, people, accounts, links, max_disable_percent=100)
    second = plan_for(mapping, list(people), list(accounts), dict(links), max_disable_percent=100)
    assert first.to_dict() == second.to_dict()
    assert [i.id for i in first.items] == [f"{n:06d}" for n in range(1, 32)]


def test_a_target_check_turns_the_item_into_a_conflict(mapping):
    def validate(want):
        return f"unknown title {want['title']!r}" if want.get("title") == "Wizard" else None
    ok, bad, leaver = person("E1"), person("E2", title="Wizard"), person("E3", title="Wizard", status="x")
    accounts = [account_for(person("E3", title="Wizard"))]
    plan = plan_for(mapping, [ok, bad, leaver], accounts, {"E3": "id-E3"}, validate=validate)
    assert ops(plan) == [("create", "E1"), ("conflict", "E2"), ("disable", "E3")]
    assert plan.items[1].reason == "unknown title 'Wizard'"


def test_a_target_may_word_its_manual_create_item(mapping):
    seen = []

    def manual_create(key, want):
        seen.append((key, want["title"]))
        return f"ask the admin to set up {want['userName']} as {want['title']}"
    plan = plan_for(mapping, [person("E1"), person("E2", status="left")],
                    capabilities=frozenset({"update", "disable", "enable"}), manual_create=manual_create)
    # an inactive person needs no account, so nobody is asked to make one
    assert [(i.op, i.identity, i.reason) for i in plan.items] == [
        ("manual", "E1", "ask the admin to set up e1@example.com as Agent")]
    assert seen == [("E1", "Agent")]


def test_read_only_paths_correlate_but_are_never_diffed(mapping):
    ada = person("E1", title="Lead")
    account = account_for(ada, title="Agent")
    assert ops(plan_for(mapping, [ada], [account])) == [("update", "E1")]
    plan = plan_for(mapping, [ada], [account], read_only=frozenset({"title"}))
    assert ops(plan) == [] and [(l.identity, l.account_id) for l in plan.adopt] == [("E1", "id-E1")]


# -- immutable paths (Ytel's username) ---------------------------------------

def test_change_of_an_immutable_path_is_a_manual_item_that_says_why(mapping):
    ada = person("E1", email="new@example.com", title="Lead")
    old = account_for(person("E1", email="old@example.com"), "acct-1")
    plan = plan_for(mapping, [ada], [old], {"E1": "acct-1"}, immutable=frozenset({"userName"}))
    assert ops(plan) == [("manual", "E1")]
    item = plan.items[0]
    assert item.account_id == "acct-1" and set(item.changes) == {"userName"}
    assert "userName cannot change on dir" in item.reason
    assert "'old@example.com' to 'new@example.com'" in item.reason and 'rename = "recreate"' in item.reason


def test_change_of_an_immutable_path_with_recreate_creates_new_and_disables_old(mapping):
    ada = person("E1", email="new@example.com")
    old = account_for(person("E1", email="old@example.com"), "acct-1")
    plan = plan_for(mapping, [ada], [old], {"E1": "acct-1"}, immutable=frozenset({"userName"}),
                    rename="recreate")
    assert ops(plan) == [("create", "E1"), ("disable", "E1")]
    create, disable = plan.items
    assert create.attrs["userName"] == "new@example.com" and create.account_id is None
    assert create.lookup == (("userName", "new@example.com"),)   # not the old account's value
    assert "replaces account acct-1" in create.reason
    assert disable.account_id == "acct-1" and disable.changes["active"].after is False


def test_recreate_keeps_the_old_account_when_the_new_one_is_a_conflict(mapping):
    ada = person("E1", email="new@example.com")
    old = account_for(person("E1", email="old@example.com"), "acct-1")
    plan = plan_for(mapping, [ada], [old], {"E1": "acct-1"}, immutable=frozenset({"userName"}),
                    rename="recreate", validate=lambda want: "role 'x' is unknown")
    assert ops(plan) == [("conflict", "E1")]


def test_immutable_paths_do_not_stop_a_leaver_being_disabled_or_other_updates(mapping):
    gone = person("E1", email="new@example.com", status="terminated")
    old = account_for(person("E1", email="old@example.com"), "acct-1")
    plan = plan_for(mapping, [gone], [old], {"E1": "acct-1"}, immutable=frozenset({"userName"}))
    assert ops(plan) == [("disable", "E1")]
    same = person("E2", title="Lead")
    plan = plan_for(mapping, [same], [account_for(person("E2"), "acct-2")], {"E2": "acct-2"},
                    immutable=frozenset({"userName"}))
    assert ops(plan) == [("update", "E2")]


# -- changes a target can make only in part (Ytel's work-group removals) ------

def _titles_only_grow(path, have, want):
    """A stand-in target that can add to `title` but never take away from it."""
    if path != "title" or not have or (want or "").startswith(have):
        return None
    return f"{have}+{want}", f"take {have!r} off by hand"


def test_a_partial_change_splits_into_what_the_target_can_do_and_a_manual_item(mapping):
    ada, bob = person("E1", title="Lead"), person("E2", title="Agent", given="Robert")
    accounts = [account_for(person("E1", title="Agent")),
                account_for(person("E2", title="Clerk"), active=False)]
    plan = plan_for(mapping, [ada, bob], accounts, {"E1": "id-E1", "E2": "id-E2"},
                    partial_change=_titles_only_grow)
    assert [(i.op, i.identity) for i in plan.items] == \
        [("update", "E1"), ("manual", "E1"), ("enable", "E2"), ("manual", "E2")]
    update, manual, enable, manual2 = plan.items
    assert update.changes["title"].after == "Agent+Lead" and update.reason == "attributes differ: title"
    assert (manual.changes["title"].before, manual.changes["title"].after) == ("Agent", "Lead")
    assert manual.reason == "take 'Agent' off by hand" and manual.account_id == "id-E1"
    # an enable keeps its other changes and its own reason
    assert enable.changes["title"].after == "Clerk+Agent" and enable.changes["name.givenName"].after == "Robert"
    assert enable.reason == "E2 is active in the source again" and manual2.reason == "take 'Clerk' off by hand"


def test_an_update_the_target_can_make_none_of_is_only_a_manual_item(mapping):
    ada = person("E1", title="Lead")
    plan = plan_for(mapping, [ada], [account_for(person("E1", title="Agent"))], {"E1": "id-E1"},
                    partial_change=lambda path, have, want: (have, "by hand") if path == "title" else None)
    assert [(i.op, i.reason) for i in plan.items] == [("manual", "by hand")]


def test_a_rename_item_names_every_path_that_cannot_change_and_how_to_proceed(mapping):
    ada = person("E1", email="new@example.com")
    old = account_for(person("E1", email="old@example.com"), "acct-1")
    both = frozenset({"userName", "emails[0].value"})
    (item,) = plan_for(mapping, [ada], [old], {"E1": "acct-1"}, immutable=both).items
    assert item.reason == (
        "userName, emails[0].value cannot change on dir: "
        "E1's userName changed from 'old@example.com' to 'new@example.com'; "
        "E1's emails[0].value changed from 'old@example.com' to 'new@example.com'; "
        'create the new account by hand, or set rename = "recreate" for target dir to create it and '
        "disable the old one")
    create, disable = plan_for(mapping, [ada], [old], {"E1": "acct-1"}, immutable=frozenset({"userName"}),
                               rename="recreate").items
    assert disable.reason == ("replaced by a new account for E1: "
                              "E1's userName changed from 'old@example.com' to 'new@example.com'")


def test_a_recreate_whose_new_account_the_target_refuses_is_a_conflict_saying_why(mapping):
    ada = person("E1", email="new@example.com")
    old = account_for(person("E1", email="old@example.com"), "acct-1")
    plan = plan_for(mapping, [ada], [old], {"E1": "acct-1"}, immutable=frozenset({"userName"}),
                    rename="recreate", validate=lambda want: f"{want['userName']} is reserved")
    (item,) = plan.items
    assert (item.op, item.reason, item.account_id) == ("conflict", "new@example.com is reserved", None)
    assert item.changes["userName"].after == "new@example.com"


def test_a_partial_change_that_reaches_the_old_value_ignoring_case_leaves_only_the_manual_item(mapping):
    ada = person("E1", email="new@example.com")
    account = account_for(person("E1", email="old@example.com"))
    plan = plan_for(mapping, [ada], [account], {"E1": "id-E1"},
                    partial_change=lambda path, have, want: (have.upper(), "e-mail by hand")
                    if path == "emails[0].value" else None)
    assert [(i.op, sorted(i.changes)) for i in plan.items] == [
        ("update", ["userName"]), ("manual", ["emails[0].value"])]
    assert plan.items[0].reason == "attributes differ: userName"   # not the path left to a person


def test_a_partial_change_keeps_the_plans_from_value_and_the_correlation_note(mapping):
    ada = person("E1", title="Lead", given="Augusta")
    unlinked = account_for(person("E1", title="Agent"))
    plan = plan_for(mapping, [ada], [unlinked], {}, partial_change=lambda path, have, want: (
        f"{have}+{want}", f"{path}: by hand") if path in ("title", "name.givenName") else None)
    update, manual = plan.items
    # the executor compares the account with `from`: the reduced change still says what it was
    assert (update.changes["title"].before, update.changes["title"].after) == ("Agent", "Agent+Lead")
    assert update.reason == ("existing account found by correlation; "
                             "attributes differ: name.givenName, title")
    assert manual.reason == "name.givenName: by hand; title: by hand"


def test_a_target_that_cannot_disable_or_enable_gets_manual_items_that_say_what_to_do(mapping):
    leaver, rehire = person("E1", status="leaver"), person("E2")
    accounts = [account_for(leaver), account_for(rehire, active=False)]
    plan = plan_for(mapping, [leaver, rehire], accounts, {"E1": "id-E1", "E2": "id-E2"},
                    capabilities=frozenset({"create", "update"}))
    assert [(i.op, i.reason) for i in plan.items] == [
        ("manual", "disable account id-E1 by hand (E1 is inactive in the source): "
                   "this target cannot disable accounts"),
        ("manual", "enable account id-E2 by hand (E2 is active in the source again): "
                   "this target cannot enable accounts")]
    assert [i.to_dict()["changes"] for i in plan.items] == [
        {"active": {"from": True, "to": False}}, {"active": {"from": False, "to": True}}]


def test_a_manual_item_for_a_missing_correlation_value_is_a_complete_plan_item(mapping):
    nobody = Identity("E1", {"employee_id": "E1", "given_name": "A", "department": "Support", "status": "active"})
    (item,) = plan_for(mapping, [nobody]).items
    assert item.to_dict()["changes"] == {} and item.account_id is None


def test_conflict_reasons_name_the_value_the_accounts_and_the_people(mapping):
    ada = person("E1")
    assert plan_for(mapping, [ada], [account_for(ada, "a1"), account_for(ada, "a2")]).items[0].reason == \
        "userName = 'e1@example.com' matches 2 accounts (a1, a2); link the right one by hand"
    a, b = person("E1", email="x@example.com"), person("E2", email="x@example.com")
    assert plan_for(mapping, [a, b], [account_for(a, "a1")], {"E1": "a1"}).items[0].reason == \
        "userName = 'x@example.com' matches account a1, which is linked to E1"
    assert [i.reason for i in plan_for(mapping, [a, b], [account_for(a, "a1")]).items] == [
        "E1, E2 all correlate to account a1; fix the source so only one person matches"] * 2


def test_the_plan_says_what_it_counted_and_keeps_its_id(mapping):
    ada, bob = person("E1"), person("E2")
    plan = plan_for(mapping, [ada, bob], [account_for(ada), account_for(person("Z"), "z")], only=["E2"])
    assert plan.plan_id == "p1" and plan.targets["dir"].accounts == 2
    assert [l.identity for l in plan.adopt] == []   # Ada's adoption is outside `only`
    assert [l.identity for l in plan_for(mapping, [ada], [account_for(ada)], only=["e1"]).adopt] == ["E1"]
    unreadable = TargetInput(name="bad", mapping=mapping, accounts=[], links={}, unreadable="refused")
    summary = make_plan(SourceResult((ada,)), [unreadable], PlanPolicy(), plan_id="p", created_at="t").targets
    assert summary["bad"].to_dict()["accounts"] == 0


def test_the_plan_carries_source_counts_upcoming_changes_and_unmatched_records(mapping):
    source = SourceResult((person("E1"),), counts={"hr": {"identities": 1}},
                          upcoming=(Upcoming("E3", "starts", "2026-02-01", {"department": "Support"}),
                                    Upcoming("E2", "leaves", "2026-01-15", {"department": "Research"})),
                          unmatched=(Rejected(4, "X9", "only in the directory"),))
    target = TargetInput(name="dir", mapping=mapping, accounts=[], links={})
    plan = make_plan(source, [target], PlanPolicy(), plan_id="p1", created_at="t")
    assert plan.source_info == {
        "sources": {"hr": {"identities": 1}},
        "upcoming": [{"identity": "E2", "change": "leaves", "date": "2026-01-15", "targets": []},
                     {"identity": "E3", "change": "starts", "date": "2026-02-01", "targets": ["dir"]}],
        "unmatched": [{"row": 4, "key": "X9", "reason": "only in the directory"}]}
    assert plan_for(mapping, [person("E1")]).source_info == {}   # a plain single source adds nothing
