"""A large, realistic plan built in-process (planner + state DB), for the report tests."""

from __future__ import annotations

from provisioner.mapping import load_mapping
from provisioner.model import Account, Identity, Rejected, SourceResult
from provisioner.planner import PlanPolicy, TargetInput, make_plan
from provisioner.state import StateDB

MAPPING = """
correlate = ["userName"]
[attributes]
userName = "email"
"name.givenName" = "given_name"
"name.familyName" = "family_name"
title = "title"
active = { from = "status", equals = "active" }
"""
HOSTILE = "<script>document.title='pwned'</script>"
FORMULA = "=HYPERLINK(\"http://evil.example\",\"x\")"


def person(n: int, **extra) -> Identity:
    attrs = {"employee_id": f"E{n:05d}", "given_name": f"Given{n}", "family_name": f"Family{n}",
             "email": f"p{n}@example.com", "title": "Agent", "status": "active", **extra}
    return Identity(f"E{n:05d}", attrs)


def account(identity: Identity, **overrides) -> Account:
    a = identity.attrs
    attrs = {"userName": a["email"], "name.givenName": a["given_name"], "name.familyName": a["family_name"],
             "title": "Agent", "active": True, **overrides}
    return Account(f"id-{identity.key}", attrs)


def big_plan(tmp_path, *, creates=1200, updates=700, crm_manual=150, plan_id="big1"):
    """About 2,100 items over three targets: creates and updates (hostile titles among them) and a
    conflict; manual items (crm cannot disable); a blocked target (portal); two rejected rows."""
    path = tmp_path / "directory.toml"
    path.write_text(MAPPING, encoding="utf-8")
    mapping = load_mapping(path)
    people = [person(n) for n in range(creates + updates)]
    people[creates] = person(creates, title=HOSTILE)
    people[creates + 1] = person(creates + 1, title=FORMULA)
    people[creates + 2] = person(creates + 2, title="Lead | Ops\nnight shift")
    accounts = [account(p, title="Old title") for p in people[creates:]]
    # two accounts with the first person's e-mail: a conflict
    accounts += [Account("dup-a", {"userName": "p0@example.com"}), Account("dup-b", {"userName": "p0@example.com"})]
    directory = TargetInput(name="directory", mapping=mapping, accounts=accounts, links={})
    # crm (Sales only) cannot disable: its leavers are manual items; so many that it is blocked
    crm_path = tmp_path / "crm.toml"
    crm_path.write_text("scope = 'department eq \"Sales\"'\n" + MAPPING, encoding="utf-8")
    sales = [person(n, department="Sales") for n in range(creates + updates, creates + updates + 5)]
    people += sales
    leavers = [Account(f"crm-{n}", {"userName": f"gone{n}@example.com", "active": True}) for n in range(crm_manual)]
    crm = TargetInput(name="crm", mapping=load_mapping(crm_path),
                      accounts=leavers + [account(p) for p in sales],
                      links={**{p.key: f"id-{p.key}" for p in sales},
                             **{f"X{n}": f"crm-{n}" for n in range(crm_manual)}},
                      capabilities=frozenset({"create", "update"}), max_disable_count=10)
    # portal: 20 leavers to disable, over its max_disable_count: blocked
    portal = TargetInput(name="portal", mapping=load_mapping(crm_path),
                         accounts=[Account(f"pt-{n}", {"userName": f"left{n}@example.com", "active": True})
                                   for n in range(20)],
                         links={f"L{n}": f"pt-{n}" for n in range(20)}, max_disable_count=10)
    rejected = (Rejected(7, "E7", f"invalid email {HOSTILE}"), Rejected(9, None, "no employee_id"))
    source = SourceResult(tuple(people), rejected)
    plan = make_plan(source, [directory, crm, portal], PlanPolicy(), plan_id=plan_id,
                     created_at="2026-03-01T02:00:00.000+00:00", baseline_identities=None)
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    db.save_plan(plan)
    stored = db.load_plan(plan_id)
    db.close()
    return stored
