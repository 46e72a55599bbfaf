"""Several sources joined into one identity: precedence, missing partners, and the whole way through."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from conftest import SCIM_TOKEN
from provisioner.config import load_config
from provisioner.errors import ConfigError
from provisioner.model import Identity, Rejected, SourceResult, Upcoming
from provisioner.sandbox.slapd import READER_DN, READER_PASSWORD, SUFFIX
from provisioner.sources.merge import merge_sources

REPO = Path(__file__).resolve().parent.parent
JOIN = {"hr": "employee_id", "ldap": "employeeNumber"}


def hr_person(key, **attrs):
    return Identity(key, {"employee_id": key, **attrs})


def ldap_entry(number, n, **attrs):
    return Identity(f"uuid-{n}", {"employeeNumber": number, **attrs}, row=n)


def test_precedence_per_attribute_and_partners_missing_on_either_side():
    hr = SourceResult((hr_person("E1", email="e1@hr.example", title="Agent", active="true"),
                       hr_person("E2", email="e2@hr.example", active="false"),
                       hr_person("E3", active="true")))       # no directory entry yet
    ldap = SourceResult((ldap_entry("e1", 1, email="e1@corp.example", mail="x", title="Boss", active="false"),
                         ldap_entry("E2", 2, mobile="+1 555"),  # no email in the directory
                         ldap_entry("E9", 3, email="e9@corp.example")))  # nobody in HR
    merged = merge_sources({"hr": hr, "ldap": ldap}, JOIN, "hr",
                           {"email": ["ldap", "hr"], "active": ["hr"]})
    people = {i.key: i.attrs for i in merged.identities}
    assert list(people) == ["E1", "E2", "E3"]
    # email: the directory first (join ignores case); title: [[sources]] order; active: HR only
    assert people["E1"] == {"employee_id": "E1", "email": "e1@corp.example", "title": "Agent",
                            "active": "true", "employeeNumber": "e1", "mail": "x"}
    assert people["E2"]["email"] == "e2@hr.example" and people["E2"]["mobile"] == "+1 555"
    assert people["E3"] == {"employee_id": "E3", "active": "true"}
    assert merged.unmatched == (Rejected(3, "E9", "ldap: only in ldap, not in hr (the authoritative "
                                                  "source); not provisioned"),)
    assert merged.counts == {"hr": {"identities": 3, "rejected": 0},
                             "ldap": {"identities": 3, "rejected": 0, "unmatched": 1}}


def test_a_source_not_in_the_precedence_list_never_supplies_the_attribute():
    hr = SourceResult((hr_person("E1", phone="hr-phone"),))
    ldap = SourceResult((ldap_entry("E1", 1, phone="ldap-phone"),))
    only_ldap = merge_sources({"hr": hr, "ldap": ldap}, JOIN, "hr", {"phone": ["ldap"]})
    assert only_ldap.identities[0].attrs["phone"] == "ldap-phone"
    ldap_without = SourceResult((ldap_entry("E1", 1),))
    merged = merge_sources({"hr": hr, "ldap": ldap_without}, JOIN, "hr", {"phone": ["ldap"]})
    assert "phone" not in merged.identities[0].attrs


def test_held_and_rejected_people_are_not_unmatched_and_ambiguous_joins_are_held():
    hr = SourceResult((hr_person("E1"), hr_person("E4")),
                      rejected=(Rejected(5, "E2", "invalid email 'x@'"),), held=("E3",),
                      upcoming=(Upcoming("E3", "starts", "2026-04-01", {"employee_id": "E3"}),))
    ldap = SourceResult((ldap_entry("E2", 1), ldap_entry("E3", 2, department="Support"),
                         ldap_entry("E4", 3), ldap_entry("e4", 4)),
                        rejected=(Rejected(9, "uuid-9", "invalid mail 'y@'"),
                                  Rejected(10, "uuid-10", "invalid mail 'z@'", attrs={"employeeNumber": "e1"})))
    merged = merge_sources({"hr": hr, "ldap": ldap}, JOIN, "hr", {})
    assert merged.unmatched == ()
    # the upcoming start is seen with its directory attributes (for target scopes)
    assert merged.upcoming[0].attrs == {"employee_id": "E3", "employeeNumber": "E3", "department": "Support"}
    # a record another source rejects is reported under the key of the person it joins
    assert [(r.row, r.key, r.source, r.reason.split(":")[0]) for r in merged.rejected] == [
        (5, "E2", "hr", "hr"), (3, "E4", "ldap", "ldap"), (4, "E4", "ldap", "ldap"),
        (9, "uuid-9", "ldap", "ldap"), (10, "E1", "ldap", "ldap")]
    assert "employeeNumber 'E4' is on several records (3, 4)" in merged.rejected[1].reason
    assert merged.held == ("E3",)
    # E1 and E4 are held: not merged from HR's values alone, so neither created nor updated
    assert [i.key for i in merged.identities] == []


# --- configuration -----------------------------------------------------------------

TARGET = """
[targets.dir]
type = "scim"
base_url = "http://127.0.0.1:9"
token = "env:HOME"
mapping = "m.toml"
"""


def config_error(tmp_path, text: str) -> str:
    (tmp_path / "m.toml").write_text('correlate = ["userName"]\n[attributes]\nuserName = "email"\n')
    (tmp_path / "config.toml").write_text(text + TARGET)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "config.toml")
    return str(info.value).split(": ", 1)[1]


HR = '[[sources]]\nname = "hr"\ntype = "hr"\npath = "hr.csv"\nkey = "employee_id"\n'
LDAP = ('[[sources]]\nname = "ldap"\ntype = "ldap"\nurl = "ldaps://127.0.0.1"\n'
        'base_dn = "dc=example,dc=org"\npreset = "openldap"\n')


@pytest.mark.parametrize("text, expected", [
    (HR + LDAP + '[merge]\nemail = ["ldap", "hrr"]\n', "merge.email: unknown source 'hrr' (sources: hr, ldap)"),
    (HR + LDAP + '[merge]\nemail = "ldap"\n', "merge.email: must be a list of source names, e.g. ['hr', 'ldap']"),
    (HR + LDAP + '[merge]\nauthoritative = "ad"\n', "merge.authoritative: unknown source 'ad' (sources: hr, ldap)"),
    (HR + LDAP + '[merge.join]\nad = "x"\n', "merge.join.ad: unknown source 'ad' (sources: hr, ldap)"),
    (HR + HR, "sources[1].name: 'hr' is used twice"),
    (HR.replace('name = "hr"\n', ""), "sources[0].name: is required when several sources are listed"),
    (HR + '[source]\ntype = "csv"\npath = "p.csv"\nkey = "k"\n', "sources: set either [source] or [[sources]], not both"),
    (HR + LDAP.replace('url = "ldaps://127.0.0.1"', 'url = "ldap://127.0.0.1"\nstart_tls = false'),
     "sources[1]: start_tls = false on ldap:// would send the bind unencrypted: use StartTLS or "
     "ldaps://, or set allow_insecure = true (line 6, column 3)"),
    (LDAP.replace('preset = "openldap"\n', ""), "sources[0]: key: is required unless a preset (\"openldap\" or \"ad\") supplies it (line 1, column 3)"),
    (HR + '[policy]\ntimezone = "Mars/Olympus"\n', "policy.timezone: unknown time zone 'Mars/Olympus' (use an IANA name such as 'Europe/Berlin') "
     "(line 7, column 1)"),
])
def test_merge_and_source_list_mistakes(tmp_path, text, expected):
    assert config_error(tmp_path, text) == expected


# --- HR + a real directory, through the CLI ----------------------------------------------

def test_hr_and_directory_merged_into_one_plan(tmp_path, slapd, scim_server):
    today = date.today()
    soon, later = today + timedelta(days=5), today + timedelta(days=60)
    (tmp_path / "hr.csv").write_text(
        "Personnel No,first,last,department,email,hire_date,termination_date\n"
        "E000001,Ann,One,Support,ann@hr.example,2020-01-01,\n"              # directory has p000001
        "E000002,Bob,Two,Support,bob@hr.example,2020-01-01,2020-06-30\n"    # left long ago
        "E000003,Cid,Three,Sales,cid@hr.example,2020-01-01,\n"              # out of the target's scope
        f"E000004,Dee,Four,Support,dee@hr.example,{soon},\n"                 # starts soon
        f"E000005,Eve,Five,Support,eve@hr.example,2020-01-01,{soon}\n"       # leaves soon
        f"E000006,Fay,Six,Support,fay@hr.example,{later},\n"                 # starts after the lookahead
        "X000001,Gus,Seven,Support,gus@hr.example,2020-01-01,\n")           # no directory entry
    (tmp_path / "dir.toml").write_text("""
scope = 'department eq "Support"'
correlate = ["userName"]
[attributes]
userName = "uid"
"name.givenName" = "first"
"emails[0].value" = "email"
active = { from = "active", equals = "true" }
""")
    (tmp_path / "config.toml").write_text(f"""
[state]
url = "sqlite:///state.db"

[[sources]]
name = "hr"
type = "hr"
path = "hr.csv"
key = "employee_id"
columns = {{ "Personnel No" = "employee_id" }}

[[sources]]
name = "ldap"
type = "ldap"
url = "{slapd.url}"
ca_file = "{slapd.ca_file}"
bind_dn = "{READER_DN}"
password = "env:T_MERGE_LDAP_PASSWORD"
base_dn = "ou=people,{SUFFIX}"
filter = "(|(uid=p000001)(uid=p000002)(uid=p000003)(uid=p000004)(uid=p000005)(uid=p000006)(uid=p000099))"
preset = "openldap"
attributes = {{ mail = "email" }}

[merge]
join = {{ hr = "employee_id", ldap = "employeeNumber" }}
email = ["ldap", "hr"]
active = ["hr"]

[targets.dir]
type = "scim"
base_url = "{scim_server.base_url}"
token = "env:T_MERGE_SCIM_TOKEN"
mapping = "dir.toml"

[policy]
lookahead_days = 14
""")
    env = {**os.environ, "T_MERGE_SCIM_TOKEN": SCIM_TOKEN, "T_MERGE_LDAP_PASSWORD": READER_PASSWORD,
           "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    env.pop("PROVISIONER_DB", None)

    def cli(*args):
        proc = subprocess.run([sys.executable, "-m", "provisioner", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    check = cli("check", "--offline")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "source hr: readable, 7 rows read, 0 rejected" in check.stdout
    assert "source ldap: reachable, 7 entries read, 0 rejected" in check.stdout

    proc = cli("plan", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plan = json.loads(proc.stdout)
    creates = {i["identity"]: i["changes"] for i in plan["items"] if i["op"] == "create"}
    # Ann: login and e-mail from the directory, first name from HR; Bob left, Cid is out of scope,
    # Dee and Fay have not started; Gus has no directory entry, so no login: a manual item
    assert sorted(creates) == ["E000001", "E000005"]
    assert creates["E000001"]["userName"]["to"] == "p000001"
    assert creates["E000001"]["emails[0].value"]["to"] == "p000001@example.org"
    assert creates["E000001"]["name.givenName"]["to"] == "Ann"
    assert [(i["op"], i["identity"]) for i in plan["items"] if i["op"] != "create"] == [("manual", "X000001")]
    source = plan["source"]
    assert source["identities"] == 5
    assert source["sources"] == {"hr": {"identities": 5, "rejected": 0, "held": 2},
                                 "ldap": {"identities": 7, "rejected": 0, "unmatched": 1}}
    assert source["upcoming"] == [
        {"identity": "E000004", "change": "starts", "date": soon.isoformat(), "targets": ["dir"]},
        {"identity": "E000005", "change": "leaves", "date": soon.isoformat(), "targets": ["dir"]}]
    # Dee's and Fay's directory entries wait with them: only E000099 is the directory's alone
    assert [u["key"] for u in source["unmatched"]] == ["E000099"]

    shown = cli("show", "latest")
    assert f"starts {soon.isoformat()}" in shown.stdout and "E000004" in shown.stdout
