"""The LDAP source against a real slapd on 127.0.0.1 (the session fixture `slapd`)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ldap3 import Connection, Server

from conftest import SCIM_TOKEN
from ports import free_port
from provisioner.config import LdapSourceSettings, load_config
from provisioner.errors import ConfigError
from provisioner.sandbox.slapd import (LIMITED_DN, LIMITED_PAGE, LIMITED_TOTAL, READER_DN, READER_PASSWORD,
                                       SIZE_LIMIT, SUFFIX, ad_guid)
from provisioner.sources.ldap_source import read_ldap

REPO = Path(__file__).resolve().parent.parent
PASSWORD_ENV = "TEST_LDAP_READER_PASSWORD"


@pytest.fixture(autouse=True)
def reader_password(monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, READER_PASSWORD)


def settings(server, **overrides) -> LdapSourceSettings:
    values = dict(type="ldap", url=server.url, ca_file=str(server.ca_file), bind_dn=READER_DN,
                  password=f"env:{PASSWORD_ENV}", base_dn=f"ou=people,{SUFFIX}", preset="openldap")
    values.update(overrides)
    return LdapSourceSettings(**values)



def test_paged_search_reads_more_entries_than_the_size_limit(slapd, caplog):
    # without paging the reader gets at most SIZE_LIMIT entries: the server enforces it
    plain = Connection(Server("127.0.0.1", port=slapd.port), READER_DN, READER_PASSWORD, auto_bind=True)
    plain.search(f"ou=people,{SUFFIX}", "(objectClass=inetOrgPerson)", attributes=["uid"])
    assert plain.result["description"] == "sizeLimitExceeded" and len(plain.entries) == SIZE_LIMIT
    plain.unbind()

    with caplog.at_level(logging.INFO, logger="provisioner.sources.ldap_source"):
        result = read_ldap(settings(slapd, page_size=400, multi_valued=["mail"],
                                    attributes={"employeeNumber": "employee_id"}))
    assert "5000 entries in 13 pages" in caplog.text
    assert result.rejected == ()
    assert len(result.identities) == 5000
    keys = [i.key for i in result.identities]
    assert len(set(keys)) == 5000 and all(len(k) == 36 for k in keys)  # entryUUIDs
    by_employee = {i.attrs["employee_id"]: i for i in result.identities}
    tenth = by_employee["E000010"]
    assert tenth.attrs["mail"] == ["p000010@example.org", "p000010.alias@example.org"]
    assert tenth.attrs["uid"] == "p000010" and tenth.attrs["telephoneNumber"] == "+1 555 0000010"
    assert by_employee["E000011"].attrs["mail"] == ["p000011@example.org"]


def test_single_valued_attribute_keeps_the_first_value_and_key_can_be_mapped(slapd):
    result = read_ldap(settings(slapd, filter="(|(uid=p000010)(uid=p000011))",
                                attributes={"employeeNumber": "employee_id", "mail": "email"},
                                key="employee_id", emails=["email"]))
    assert [(i.key, i.attrs["email"]) for i in result.identities] == [
        ("E000010", "p000010@example.org"), ("E000011", "p000011@example.org")]
    assert [i.row for i in result.identities] == [1, 2]


def test_start_tls_is_accepted_with_the_right_ca_and_refused_without_it(slapd):
    assert len(read_ldap(settings(slapd, filter="(uid=p000001)")).identities) == 1
    with pytest.raises(ConfigError) as info:
        read_ldap(settings(slapd, ca_file=None))
    message = str(info.value)
    assert message.startswith(f"source: cannot start TLS with {slapd.url}: TLS failed")
    assert "ca_file" in message and "\n" not in message


def test_ldaps_and_explicitly_allowed_plain_binds(slapd):
    assert len(read_ldap(settings(slapd, url=slapd.ldaps_url, filter="(uid=p000002)")).identities) == 1
    plain = settings(slapd, start_tls=False, allow_insecure=True, ca_file=None, filter="(uid=p000003)")
    assert [i.attrs["uid"] for i in read_ldap(plain).identities] == ["p000003"]


def test_plain_bind_needs_allow_insecure(tmp_path, slapd):
    (tmp_path / "m.toml").write_text('correlate = ["userName"]\n[attributes]\nuserName = "uid"\n')
    (tmp_path / "config.toml").write_text(f"""
[source]
type = "ldap"
url = "{slapd.url}"
start_tls = false
base_dn = "{SUFFIX}"
preset = "openldap"
[targets.t]
type = "scim"
base_url = "http://127.0.0.1:1"
token = "env:{PASSWORD_ENV}"
mapping = "m.toml"
""")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "config.toml")
    assert str(info.value) == (
        f"{tmp_path / 'config.toml'}: source: start_tls = false on ldap:// would send the bind "
        "unencrypted: use StartTLS or ldaps://, or set allow_insecure = true (line 2, column 2)")


def test_active_directory_preset_on_ad_shaped_entries(slapd):
    # msuser.schema has no equality rule for objectCategory, so the preset's
    # AD filter cannot match in slapd; the class alone selects the entries here
    result = read_ldap(settings(slapd, preset="ad", base_dn=f"ou=ad,{SUFFIX}", filter="(objectClass=user)",
                                attributes={"sAMAccountName": "login"}))
    assert result.rejected == ()
    people = {i.attrs["login"]: i for i in result.identities}
    assert len(people) == 20
    fourth, fifth = people["aduser4"], people["aduser5"]
    assert fourth.key == str(ad_guid(4)) == fourth.attrs["objectGUID"]
    assert (fourth.attrs["userAccountControl"], fourth.attrs["active"]) == ("514", "false")
    assert (fifth.attrs["userAccountControl"], fifth.attrs["active"]) == ("512", "true")
    assert fifth.attrs["mail"] == "aduser5@corp.example.org"
    assert sum(i.attrs["active"] == "false" for i in result.identities) == 5


def test_invalid_email_rejects_the_entry_naming_its_dn(slapd):
    result = read_ldap(settings(slapd, filter="(|(uid=p000001)(uid=p000002))",
                                emails=["telephoneNumber"]))
    assert result.identities == ()
    assert [r.reason for r in result.rejected] == [
        f"uid=p000001,ou=people,{SUFFIX}: invalid telephoneNumber '+1 555 0000001'",
        f"uid=p000002,ou=people,{SUFFIX}: invalid telephoneNumber '+1 555 0000002'"]


def test_bad_values_reject_the_entry_naming_its_dn(slapd):
    from provisioner.sandbox.slapd import ROOT_DN, ROOT_PASSWORD
    unit = f"ou=odd-values,{SUFFIX}"
    entries = {"odd1": {"title": "Agent\nAdmin"}, "odd2": {"description": "x" * 1025},
               "odd3": {"title": "Agent"}, "odd4": {"mail": ["odd4@example.org", "odd4@example.org x"]}}
    admin = Connection(Server("127.0.0.1", port=slapd.port), ROOT_DN, ROOT_PASSWORD, auto_bind=True)
    try:
        admin.add(unit, "organizationalUnit", {"ou": "odd-values"})
        for uid, attrs in entries.items():
            assert admin.add(f"uid={uid},{unit}", "inetOrgPerson",
                             {"cn": uid, "sn": uid, "employeeNumber": uid.upper(), **attrs}), admin.result
        result = read_ldap(settings(slapd, base_dn=unit, key="employee_id", multi_valued=["mail"],
                                    attributes={"employeeNumber": "employee_id", "description": "notes",
                                                "title": "title"}))
        relaxed = read_ldap(settings(slapd, base_dn=unit, key="employee_id", multiline=["title"],
                                     max_value_length=2000, attributes={"employeeNumber": "employee_id",
                                                                        "description": "notes"}))
    finally:
        for uid in entries:
            admin.delete(f"uid={uid},{unit}")
        admin.delete(unit)
        admin.unbind()
    assert [i.key for i in result.identities] == ["ODD3"]
    assert sorted(r.reason for r in result.rejected) == [
        f"uid=odd1,{unit}: title holds a line break (list it in the source's multiline if it may)",
        f"uid=odd2,{unit}: notes is 1025 characters long, over the source's max_value_length of 1024",
        f"uid=odd4,{unit}: invalid mail 'odd4@example.org x'"]
    assert sorted(i.key for i in relaxed.identities) == ["ODD1", "ODD2", "ODD3", "ODD4"]


@pytest.mark.parametrize("overrides, expected", [
    (lambda s: {"url": f"ldap://127.0.0.1:{free_port()}"}, "cannot connect to ldap://127.0.0.1:"),
    (lambda s: {"filter": "(cn=a)(cn=b))"}, "source.filter: '(cn=a)(cn=b))' is not a valid LDAP filter"),
    (lambda s: {"base_dn": f"ou=nowhere,{SUFFIX}"}, f"source.base_dn: 'ou=nowhere,{SUFFIX}' does not exist"),
    (lambda s: {"ca_file": str(s.ca_file) + ".missing"}, "source: ca_file: cannot read CA file /"),
])
def test_connection_and_search_problems_are_one_sentence(slapd, overrides, expected):
    with pytest.raises(ConfigError) as info:
        read_ldap(settings(slapd, **overrides(slapd)))
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_server_search_limits_say_which_limit_to_raise_or_which_page_size_to_lower(slapd):
    # pages larger than the server's size.pr are refused outright
    with pytest.raises(ConfigError) as info:
        read_ldap(settings(slapd, bind_dn=LIMITED_DN, page_size=LIMITED_PAGE + 100))
    assert str(info.value) == (
        f"source: the server refused pages of {LIMITED_PAGE + 100} entries under 'ou=people,{SUFFIX}' "
        f"(adminLimitExceeded: illegal pagedResults page size): lower page_size, or raise the server's "
        f"page limit for {LIMITED_DN} (OpenLDAP: size.pr in its limits)")
    # pages the server takes, but more entries in all than its size.prtotal
    with pytest.raises(ConfigError) as info:
        read_ldap(settings(slapd, bind_dn=LIMITED_DN, page_size=100))
    assert str(info.value) == (
        f"source: the server stopped the search under 'ou=people,{SUFFIX}' at its size limit after "
        f"{LIMITED_TOTAL} entries (sizeLimitExceeded): raise the limit for {LIMITED_DN} on the server "
        "(OpenLDAP: size.prtotal, or size.hard when that is unset), or narrow base_dn or filter")


def test_a_certificate_for_another_host_name_is_one_sentence(slapd):
    # 127.1 reaches 127.0.0.1, but the certificate names only 127.0.0.1 and localhost
    for url in (slapd.ldaps_url.replace("127.0.0.1", "127.1"), slapd.url.replace("127.0.0.1", "127.1")):
        with pytest.raises(ConfigError) as info:
            read_ldap(settings(slapd, url=url))
        message = str(info.value)
        assert message.endswith(
            "TLS failed: the server's certificate is for 127.0.0.1, localhost, not 127.1 (use one of "
            "those names in url, or have the certificate reissued for 127.1)"), message
        assert "{" not in message and "\n" not in message


def test_refused_bind_never_shows_the_password(slapd, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "wrong-password-123")
    with pytest.raises(ConfigError) as info:
        read_ldap(settings(slapd))
    assert str(info.value) == f"source: bind as {READER_DN} to {slapd.url} was refused: invalidCredentials"


# --- through the CLI --------------------------------------------------------

def write_workspace(root: Path, slapd, scim_url: str, search_filter: str) -> None:
    (root / "directory.toml").write_text("""
correlate = ["userName"]
[attributes]
userName = "mail"
"name.familyName" = "sn"
""")
    (root / "config.toml").write_text(f"""
[state]
url = "sqlite:///state.db"
[source]
type = "ldap"
name = "directory"
url = "{slapd.url}"
ca_file = "{slapd.ca_file}"
bind_dn = "{READER_DN}"
password = "env:{PASSWORD_ENV}"
base_dn = "ou=people,{SUFFIX}"
filter = "{search_filter}"
preset = "openldap"
[targets.dir]
type = "scim"
base_url = "{scim_url}"
token = "env:T_SCIM_TOKEN"
mapping = "directory.toml"
""")


def cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "T_SCIM_TOKEN": SCIM_TOKEN, PASSWORD_ENV: READER_PASSWORD, "COLUMNS": "200",
           "PYTHONPATH": str(REPO)}
    env.pop("PROVISIONER_DB", None)
    proc = subprocess.run([sys.executable, "-m", "provisioner", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_zero_entries_after_a_successful_run_are_blocked_by_the_source_ratio(tmp_path, slapd, scim_server):
    write_workspace(tmp_path, slapd, scim_server.base_url, "(|(uid=p000001)(uid=p000002)(uid=p000003))")
    check = cli(tmp_path, "check")
    assert check.returncode == 0, check.stderr
    assert "source directory: reachable, 3 entries read, 0 rejected" in check.stdout
    planned = json.loads(cli(tmp_path, "plan", "--json").stdout)
    # an entryUUID tells nobody who this is: each item names the entry
    assert sorted(i["person"] for i in planned["items"]) == [
        f"uid=p00000{n},ou=people,{SUFFIX}" for n in (1, 2, 3)]
    assert all(len(i["identity"]) == 36 for i in planned["items"])
    shown = cli(tmp_path, "show", "latest")
    assert f"(uid=p000001,ou=people,{SUFFIX})" in shown.stdout
    first = cli(tmp_path, "reconcile", "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    assert cli(tmp_path, "plan", "--detailed-exitcode").returncode == 0  # a baseline of 3 exists now

    write_workspace(tmp_path, slapd, scim_server.base_url, "(uid=nobody-matches)")
    blocked = cli(tmp_path, "plan", "--json")
    assert blocked.returncode == 3, blocked.stdout + blocked.stderr
    plan = json.loads(blocked.stdout)
    assert plan["source"]["identities"] == 0
    assert plan["source"]["sources"] == {"directory": {"identities": 0, "rejected": 0}}
    assert plan["targets"]["dir"]["blocked"] is True
    assert "fewer than 50% of the 3" in plan["targets"]["dir"]["block_reason"]


def test_unreachable_directory_is_one_line_and_exit_2(tmp_path, slapd, scim_server):
    write_workspace(tmp_path, slapd, scim_server.base_url, "(uid=p000001)")
    config = (tmp_path / "config.toml").read_text().replace(slapd.url, f"ldap://127.0.0.1:{free_port()}")
    (tmp_path / "config.toml").write_text(config)
    for args in (["plan"], ["check", "--offline"]):
        proc = cli(tmp_path, *args)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and "source directory: cannot connect to ldap://127.0.0.1:" in lines[0]
        assert READER_PASSWORD not in proc.stdout + proc.stderr
