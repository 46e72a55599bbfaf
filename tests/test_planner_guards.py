"""The planner's source guard (merged set and each source against the last
successful run), the person an item names, and the plan's head: pure
function checks, like tests/test_planner.py, kept apart so the two files do
not collide while the planner is being reworked."""

from __future__ import annotations

from provisioner.model import Account, Identity, SourceResult
from provisioner.planner import PlanPolicy, TargetInput, make_plan
from test_planner import account_for, mapping, person  # noqa: F401  (fixture)


def plan(mapping, source, *, baseline=None, baseline_sources=None, accounts=(), links=None, ratio=0.5):
    target = TargetInput(name="dir", mapping=mapping, accounts=list(accounts), links=links or {})
    return make_plan(source, [target], PlanPolicy(min_source_ratio=ratio), plan_id="p1",
                     created_at="2026-01-01T00:00:00+00:00", baseline_identities=baseline,
                     baseline_sources=baseline_sources)


def people(n, prefix="E"):
    return tuple(person(f"{prefix}{i}") for i in range(n))


def test_a_merged_set_below_the_ratio_of_its_baseline_blocks_every_target(mapping):
    summary = plan(mapping, SourceResult(people(4)), baseline=10).targets["dir"]
    assert summary.blocked
    assert summary.block_reason == ("the source yielded 4 identities, fewer than 50% of the 10 "
                                    "of the last successful run")
    assert not plan(mapping, SourceResult(people(5)), baseline=10).targets["dir"].blocked
    assert not plan(mapping, SourceResult(people(4)), baseline=10, ratio=0.4).targets["dir"].blocked


def test_one_source_shrunk_below_its_own_baseline_blocks_though_the_merge_is_whole(mapping):
    counts = {"hr": {"identities": 9, "rejected": 0}, "ldap": {"identities": 2, "rejected": 1}}
    source = SourceResult(people(9), counts=counts)
    summary = plan(mapping, source, baseline=9, baseline_sources={"hr": 9, "ldap": 8}).targets["dir"]
    assert summary.block_reason == ("source ldap yielded 2 identities (1 rejected), fewer than 50% of the 8 "
                                    "of the last successful run")
    # at the ratio, or without a baseline for that source, nothing blocks
    at_ratio = {"hr": {"identities": 9}, "ldap": {"identities": 4}}
    assert not plan(mapping, SourceResult(people(9), counts=at_ratio), baseline=9,
                    baseline_sources={"hr": 9, "ldap": 8}).targets["dir"].blocked
    assert not plan(mapping, source, baseline=9, baseline_sources={"hr": 9}).targets["dir"].blocked
    assert not plan(mapping, source, baseline=9).targets["dir"].blocked


def test_an_empty_source_beside_full_ones_blocks_naming_the_others(mapping):
    counts = {"hr": {"identities": 3, "rejected": 1}, "ldap": {"identities": 0},
              "csv": {"identities": 0, "held": 2}}
    summary = plan(mapping, SourceResult(people(3), counts=counts)).targets["dir"]
    assert summary.block_reason == (
        "source ldap returned no records, beside hr with 3 identities, csv with 0 identities: an empty source "
        "next to others is never normal (check its base_dn, filter or path)")


def test_both_guards_are_given_together(mapping):
    counts = {"hr": {"identities": 2}, "ldap": {"identities": 0}}
    reason = plan(mapping, SourceResult(people(2), counts=counts), baseline=10).targets["dir"].block_reason
    assert reason == ("the source yielded 2 identities, fewer than 50% of the 10 of the last successful run; "
                      "source ldap returned no records, beside hr with 2 identities: an empty source "
                      "next to others is never normal (check its base_dn, filter or path)")


def test_every_source_empty_or_a_single_source_is_not_the_empty_beside_full_case(mapping):
    counts = {"hr": {"identities": 0}, "ldap": {"identities": 0}}
    assert not plan(mapping, SourceResult((), counts=counts)).targets["dir"].blocked
    assert not plan(mapping, SourceResult((), counts={"hr": {"identities": 0}})).targets["dir"].blocked


def test_an_item_names_the_person_by_label_else_by_the_accounts_correlation_value(mapping):
    ada = Identity("uuid-1", person("E1").attrs, label="uid=ada,ou=people")
    gone = account_for(person("E9"), "acct-9")
    odd = Account("acct-8", {"userName": ["not", "a", "string"], "active": True})
    result = plan(mapping, SourceResult((ada,)), accounts=[gone, odd],
                  links={"E9": "acct-9", "E8": "acct-8"})
    named = {i.account_id or i.identity: i.person for i in result.items}
    assert named == {"uuid-1": "uid=ada,ou=people", "acct-9": "e9@example.com", "acct-8": None}


def test_the_plan_head_carries_its_time_and_counts(mapping):
    result = plan(mapping, SourceResult(people(3)))
    assert result.created_at == "2026-01-01T00:00:00+00:00"
    assert result.identities == 3
    assert result.to_dict()["source"]["identities"] == 3


def test_a_prehire_is_created_disabled_and_the_reason_says_so(mapping):
    hire = Identity("E1", person("E1", status="onboarding").attrs, create_inactive=True)
    [item] = plan(mapping, SourceResult((hire,)), links={"E1": "gone-1"}).items
    assert (item.op, item.attrs["active"]) == ("create", False)
    assert item.reason == ("E1 is in the source and has no account (created disabled until the start date) "
                           "(linked account gone-1 is no longer on the target)")
    [item] = plan(mapping, SourceResult((person("E2"),))).items
    assert item.reason == "E2 is in the source and has no account"
    # inactive and not a prehire: nothing to create
    assert plan(mapping, SourceResult((person("E3", status="terminated"),))).items == ()
