import os
import re
import uuid
from pathlib import Path

import pytest

from provisioner.config import CsvSourceSettings, PolicySettings, Settings, load_config
from provisioner.connectors.scim.settings import ScimTargetSettings
from provisioner.errors import ConfigError
from provisioner.secrets import Secret

TOKEN_ENV = "PROV_TEST_SCIM_TOKEN"

SOURCE = """
[source]
type = "csv"
path = "people.csv"
key = "employee_id"
"""

TARGET = """
[targets.directory]
type = "scim"
base_url = "http://127.0.0.1:8080/scim/v2/"
token = "env:PROV_TEST_SCIM_TOKEN"
mapping = "mappings/directory.toml"
"""


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch):
    """Run in the config's directory with a known token and no DB override."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROVISIONER_DB", raising=False)
    token = f"tok-{uuid.uuid4().hex}"
    monkeypatch.setenv(TOKEN_ENV, token)
    return token


def write(tmp_path: Path, *parts: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(parts), encoding="utf-8")
    return path


def error_of(path="config.toml", located=False) -> str:
    """The ConfigError's message; without `located`, less the '(line N, column C)' each sentence
    ends with where the key is written (test_the_line_and_column_of_a_key_are_named checks those)."""
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    # never pydantic's own wording, never a traceback
    for leak in ("validation error", "Input should", "pydantic", "Traceback", "Value error"):
        assert leak not in message
    return message if located else re.sub(r" \(line \d+, column \d+\)$", "", message, flags=re.M)


# --- a valid file ------------------------------------------------------------

def test_minimal_config_gets_defaults_and_absolute_paths(tmp_path, env):
    write(tmp_path, SOURCE, TARGET)
    settings = load_config("config.toml")

    assert isinstance(settings, Settings)
    assert settings.config_path == tmp_path / "config.toml"
    assert settings.config_path.is_absolute()
    assert settings.config_dir == tmp_path
    assert settings.state.url == f"sqlite:///{tmp_path}/state/provisioner.db"

    source = settings.source
    assert isinstance(source, CsvSourceSettings)
    assert source.path == tmp_path / "people.csv"
    assert source.key == "employee_id"
    assert (source.delimiter, source.encoding) == (",", "utf-8")
    assert source.required == [] and source.emails == ["email"] and source.columns == {}

    target = settings.targets["directory"]
    assert isinstance(target, ScimTargetSettings)
    assert target.base_url == "http://127.0.0.1:8080/scim/v2"
    assert isinstance(target.token, Secret) and target.token.reveal() == env
    assert target.username is None and target.password is None
    assert target.mapping == tmp_path / "mappings" / "directory.toml"
    assert target.update_method == "patch"
    assert (target.page_size, target.concurrency) == (None, 4)  # None: the page size the server announces
    assert target.rate_limit is None and target.timeout == 30.0
    assert target.tls_verify is True and target.ca_file is None

    assert settings.policy == PolicySettings()
    assert settings.policy.missing == "disable"
    assert settings.policy.max_disable_percent == 10
    assert settings.policy.max_disable_count == 50
    assert settings.policy.min_source_ratio == 0.5
    assert target.disable_limits(settings.policy) == (10, 50)


def test_full_config(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "scim").write_text("basic-pass-123\n", encoding="utf-8")
    write(tmp_path, """
[state]
url = "sqlite:////var/lib/provisioner/state.db"

[source]
type = "csv"
path = "../exports/people.csv"
key = "employee_id"
delimiter = "\\t"
encoding = "latin-1"
required = ["email", "family_name"]
emails = ["email", "private_email"]
[source.columns]
" Employee ID " = "employee_id"
"E-Mail" = "email"

[targets.zeta]
type = "scim"
base_url = "https://scim.example.com/v2"
username = "svc"
password = "file:secrets/scim"
mapping = "/etc/provisioner/zeta.toml"
update_method = "put"
page_size = 1000
concurrency = 64
rate_limit = 2.5
timeout = 5
tls_verify = false
ca_file = "ca.pem"
max_disable_percent = 2.5
max_disable_count = 0

[targets.alpha-1]
type = "scim"
base_url = "http://localhost/scim"
token = "env:PROV_TEST_SCIM_TOKEN"
mapping = "m.toml"
max_disable_count = 7

[policy]
missing = "ignore"
max_disable_percent = 0
max_disable_count = 1000
min_source_ratio = 1
""")
    settings = load_config(tmp_path / "config.toml")
    assert settings.state.url == "sqlite:////var/lib/provisioner/state.db"
    source = settings.source
    assert source.path == tmp_path.parent / "exports" / "people.csv"
    assert source.delimiter == "\t" and source.encoding == "latin-1"
    assert source.required == ["email", "family_name"]
    assert source.emails == ["email", "private_email"]
    assert source.columns == {"Employee ID": "employee_id", "E-Mail": "email"}

    assert list(settings.targets) == ["zeta", "alpha-1"]  # file order
    zeta = settings.targets["zeta"]
    assert zeta.token is None and zeta.username == "svc"
    assert zeta.password.reveal() == "basic-pass-123"
    assert zeta.mapping == Path("/etc/provisioner/zeta.toml")
    assert zeta.ca_file == tmp_path / "ca.pem"
    assert (zeta.update_method, zeta.page_size, zeta.concurrency) == ("put", 1000, 64)
    assert (zeta.rate_limit, zeta.timeout, zeta.tls_verify) == (2.5, 5.0, False)
    assert zeta.disable_limits(settings.policy) == (2.5, 0)
    assert settings.targets["alpha-1"].disable_limits(settings.policy) == (0, 7)
    assert settings.policy.missing == "ignore"
    assert settings.policy.min_source_ratio == 1.0


# --- state URL ---------------------------------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("sqlite:///db/p.db", "sqlite:///{dir}/db/p.db"),
    ("sqlite:///../p.db?timeout=5", "sqlite:///{parent}/p.db?timeout=5"),
    ("sqlite+pysqlite:///p.db", "sqlite+pysqlite:///{dir}/p.db"),
    ("sqlite:////abs/p.db", "sqlite:////abs/p.db"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("sqlite://", "sqlite://"),
    ("postgresql://db.example.com/prov", "postgresql://db.example.com/prov"),
])
def test_state_url_relative_sqlite_path_is_relative_to_config_dir(tmp_path, monkeypatch, url, expected):
    conf = tmp_path / "etc"
    write(conf, f'[state]\nurl = "{url}"\n', SOURCE, TARGET)
    monkeypatch.chdir(tmp_path)  # not the config dir on purpose
    settings = load_config("etc/config.toml")
    assert settings.state.url == expected.format(dir=conf, parent=tmp_path)


def test_provisioner_db_env_overrides_config(tmp_path, monkeypatch):
    write(tmp_path, '[state]\nurl = "sqlite:///from-file.db"\n', SOURCE, TARGET)
    monkeypatch.setenv("PROVISIONER_DB", "sqlite:////srv/state.db")
    assert load_config("config.toml").state.url == "sqlite:////srv/state.db"


def test_provisioner_db_env_applies_without_state_table(tmp_path, monkeypatch):
    write(tmp_path / "etc", SOURCE, TARGET)
    monkeypatch.setenv("PROVISIONER_DB", "sqlite:///here.db")
    # a relative path typed into the environment is relative to the shell's directory
    assert load_config("etc/config.toml").state.url == f"sqlite:///{tmp_path}/here.db"


def test_empty_provisioner_db_is_ignored(tmp_path, monkeypatch):
    write(tmp_path, SOURCE, TARGET)
    monkeypatch.setenv("PROVISIONER_DB", "")
    assert load_config("config.toml").state.url == f"sqlite:///{tmp_path}/state/provisioner.db"


def test_bad_provisioner_db_says_where_it_came_from(tmp_path, monkeypatch):
    write(tmp_path, SOURCE, TARGET)
    monkeypatch.setenv("PROVISIONER_DB", "state.db")
    assert error_of() == ("config.toml: state.url: must be a database URL such as "
                          "'sqlite:///state/provisioner.db', got 'state.db' (from PROVISIONER_DB)")


# --- file-level errors ---------------------------------------------------------

def test_missing_file_named_as_given(tmp_path):
    assert error_of("config.toml") == "config.toml: file not found"
    assert error_of("nowhere/prov.toml") == "nowhere/prov.toml: file not found"


def test_directory_instead_of_file(tmp_path):
    (tmp_path / "conf.d").mkdir()
    assert error_of("conf.d") == "conf.d: is a directory, not a config file"


def test_invalid_toml_names_the_line(tmp_path):
    write(tmp_path, SOURCE, TARGET, "\n[policy]\nmissing disable\n")
    message = error_of()
    line = (SOURCE + TARGET + "\n[policy]\nmissing disable").count("\n") + 1
    assert message == (f"config.toml: line {line}: invalid TOML: "
                       "Expected '=' after a key in a key/value pair (column 9)")


def test_the_line_and_column_of_a_key_are_named(tmp_path):
    write(tmp_path, SOURCE, TARGET, "  tls_verfy = false\n[policy]\nmax_disable_percent = 150\n")
    line = (SOURCE + TARGET).count("\n") + 1
    assert error_of(located=True).split("\n") == [
        f"config.toml: targets.directory: unknown key 'tls_verfy'; did you mean 'tls_verify'? "
        f"(line {line}, column 3)",
        "config.toml: policy.max_disable_percent: must be a number between 0 and 100, got 150 "
        f"(line {line + 2}, column 1)"]
    write(tmp_path, SOURCE.replace('key = "employee_id"', ""), TARGET)
    header = SOURCE[:SOURCE.index("[source]")].count("\n") + 1
    assert error_of(located=True) == f"config.toml: source.key: is required (line {header}, column 2)"  # its table


def test_duplicate_toml_key_is_invalid_toml(tmp_path):
    write(tmp_path, SOURCE, 'key = "again"\n', TARGET)
    assert error_of().startswith("config.toml: line 6: invalid TOML: ")


def test_config_not_utf8(tmp_path):
    (tmp_path / "config.toml").write_bytes(b'[source]\npath = "caf\xe9.csv"\n')
    assert error_of() == "config.toml: line 2: invalid TOML: the file is not UTF-8 text"


def test_config_with_utf8_bom_is_accepted(tmp_path):
    (tmp_path / "config.toml").write_bytes(b"\xef\xbb\xbf" + (SOURCE + TARGET).encode())
    assert load_config("config.toml").source.key == "employee_id"


# --- one sentence per mistake, naming file and key ---------------------------------

@pytest.mark.parametrize("extra, expected", [
    ('base_url = "ftp://x"',
     "targets.directory.base_url: must be an http:// or https:// URL, got 'ftp://x'"),
    ('base_url = "http://"', "targets.directory.base_url: must be an http:// or https:// URL, got 'http://'"),
    ("base_url = 8080", "targets.directory.base_url: must be a string, got 8080"),
    ('tokn = "x"', "targets.directory: unknown key 'tokn'; did you mean 'token'?"),
    ('update_method = "post"', "targets.directory.update_method: must be 'patch' or 'put', got 'post'"),
    ("page_size = 0", "targets.directory.page_size: must be a whole number between 1 and 1000, got 0"),
    ("page_size = 1001", "targets.directory.page_size: must be a whole number between 1 and 1000, got 1001"),
    ('page_size = "100"', "targets.directory.page_size: must be a whole number between 1 and 1000, got '100'"),
    ("page_size = 10.5", "targets.directory.page_size: must be a whole number between 1 and 1000, got 10.5"),
    ("concurrency = 65", "targets.directory.concurrency: must be a whole number between 1 and 64, got 65"),
    ("rate_limit = 0", "targets.directory.rate_limit: must be a number greater than 0, got 0"),
    ("timeout = -1", "targets.directory.timeout: must be a number greater than 0, got -1"),
    ("timeout = true", "targets.directory.timeout: must be a number greater than 0, got true"),
    ('tls_verify = "yes"', "targets.directory.tls_verify: must be true or false, got 'yes'"),
    ("ca_file = 3", "targets.directory.ca_file: must be a file path, got 3"),
    ("max_disable_percent = 101",
     "targets.directory.max_disable_percent: must be a number between 0 and 100, got 101"),
    ("max_disable_count = -1",
     "targets.directory.max_disable_count: must be a whole number of 0 or more, got -1"),
])
def test_target_errors(tmp_path, extra, expected):
    key = extra.split(" =")[0]
    target = "\n".join(l for l in TARGET.splitlines() if not l.startswith(f"{key} ="))
    write(tmp_path, SOURCE, target, "\n", extra, "\n")
    assert error_of() == f"config.toml: {expected}"


@pytest.mark.parametrize("extra, expected", [
    ("max_disable_percent = 150", "policy.max_disable_percent: must be a number between 0 and 100, got 150"),
    ("max_disable_count = 1.5", "policy.max_disable_count: must be a whole number of 0 or more, got 1.5"),
    ("min_source_ratio = 2", "policy.min_source_ratio: must be a number between 0 and 1, got 2"),
    ('missing = "delete"', "policy.missing: must be 'disable' or 'ignore', got 'delete'"),
    ("dry_run = true", "policy: unknown key 'dry_run'"),
    ("mising = 'disable'", "policy: unknown key 'mising'; did you mean 'missing'?"),
])
def test_policy_errors(tmp_path, extra, expected):
    write(tmp_path, SOURCE, TARGET, "[policy]\n", extra, "\n")
    assert error_of() == f"config.toml: {expected}"


@pytest.mark.parametrize("extra, expected", [
    ('delimiter = ";;"', "source.delimiter: must be a single character (not a quote or newline), got ';;'"),
    ('delimiter = ""', "source.delimiter: must be a single character (not a quote or newline), got ''"),
    ('encoding = "klingon"', "source.encoding: unknown text encoding 'klingon'"),
    ('encoding = "base64"', "source.encoding: unknown text encoding 'base64'"),
    ('required = "email"', "source.required: must be a list, got 'email'"),
    ('emails = ["email", 5]', "source.emails[1]: must be a string, got 5"),
    ('columns = { "E-Mail" = "email", "Mail" = "email" }', "source.columns: 'E-Mail' and 'Mail' both map to 'email'"),
    ('columns = { "Employee ID" = "" }', 'source.columns."Employee ID": must not be empty'),
    ("paht = 'x'", "source: unknown key 'paht'; did you mean 'path'?"),
])
def test_source_errors(tmp_path, extra, expected):
    write(tmp_path, SOURCE, extra, "\n", TARGET)
    assert error_of() == f"config.toml: {expected}"


def test_tab_delimiter_allowed(tmp_path):
    write(tmp_path, SOURCE, 'delimiter = "\\t"\n', TARGET)
    assert load_config("config.toml").source.delimiter == "\t"


def test_source_key_is_required(tmp_path):
    write(tmp_path, '[source]\ntype = "csv"\npath = "p.csv"\n', TARGET)
    assert error_of() == "config.toml: source.key: is required"


def test_missing_source_table(tmp_path):
    write(tmp_path, TARGET)
    assert error_of() == "config.toml: source: the [source] table is missing"


def test_unknown_source_type(tmp_path):
    write(tmp_path, SOURCE.replace('"csv"', '"x"'), TARGET)
    assert error_of() == "config.toml: source.type: unknown source type 'x' (known: csv, ldap, hr)"


def test_source_type_required(tmp_path):
    write(tmp_path, SOURCE.replace('type = "csv"', ""), TARGET)
    assert error_of() == "config.toml: source.type: is required (known: csv, ldap, hr)"


def test_unknown_target_type(tmp_path):
    write(tmp_path, SOURCE, TARGET.replace('"scim"', '"ldap"'))
    # every installed connector is known (.ci/run installs tests/example_connector beside the built-ins)
    from provisioner.connectors import connectors
    assert {"ccc", "ccs", "clienttrack", "onecloud", "scim", "ytel", "ytel_ycc"} <= set(connectors())
    assert error_of() == ("config.toml: targets.directory.type: unknown target type 'ldap' "
                          f"(known: {', '.join(connectors())})")


def test_no_targets(tmp_path):
    write(tmp_path, SOURCE)
    assert error_of() == "config.toml: targets: no target is configured"
    write(tmp_path, SOURCE, "[targets]\n")
    assert error_of() == "config.toml: targets: no target is configured"


def test_target_must_be_a_table(tmp_path):
    write(tmp_path, SOURCE, '[targets]\ndirectory = "scim"\n')
    assert error_of() == "config.toml: targets.directory: must be a table, got 'scim'"


def test_invalid_target_name(tmp_path):
    write(tmp_path, SOURCE, TARGET.replace("[targets.directory]", '[targets."my dir"]'))
    assert error_of() == ("config.toml: targets: invalid target name 'my dir': "
                          "use letters, digits, '-' and '_'")


def test_unknown_top_level_key(tmp_path):
    write(tmp_path, "dry_run = true\n", SOURCE, TARGET)
    assert error_of() == "config.toml: unknown key 'dry_run'"


def test_several_errors_one_sentence_per_line(tmp_path):
    write(tmp_path, SOURCE, 'encoding = "nope"\n', TARGET, "page_size = 0\n",
          "[policy]\nmax_disable_percent = 150\n")
    lines = error_of().split("\n")
    assert lines == [
        "config.toml: source.encoding: unknown text encoding 'nope'",
        "config.toml: targets.directory.page_size: must be a whole number between 1 and 1000, got 0",
        "config.toml: policy.max_disable_percent: must be a number between 0 and 100, got 150",
    ]


# --- auth and secrets -----------------------------------------------------------

def test_literal_secret_refused_and_not_echoed(tmp_path):
    write(tmp_path, SOURCE, TARGET.replace("env:PROV_TEST_SCIM_TOKEN", "hunter2-literal"))
    message = error_of()
    assert message == ('config.toml: targets.directory.token: secrets are never written '
                       'in the config: use "env:NAME" or "file:PATH"')
    assert "hunter2" not in message


def test_literal_password_refused(tmp_path):
    target = TARGET.replace('token = "env:PROV_TEST_SCIM_TOKEN"',
                            'username = "svc"\npassword = "pa55word-literal"')
    write(tmp_path, SOURCE, target)
    message = error_of()
    assert message.startswith("config.toml: targets.directory.password: secrets are never written")
    assert "pa55word" not in message


def test_non_string_secret_not_echoed(tmp_path):
    write(tmp_path, SOURCE, TARGET.replace('"env:PROV_TEST_SCIM_TOKEN"', "987654321"))
    message = error_of()
    assert message.startswith("config.toml: targets.directory.token: must be a string")
    assert "987654321" not in message


def test_unset_env_secret(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV)
    write(tmp_path, SOURCE, TARGET)
    assert error_of() == f"config.toml: targets.directory.token: environment variable {TOKEN_ENV} is not set"


def test_file_secret_relative_to_config_dir(tmp_path, monkeypatch):
    conf = tmp_path / "etc"
    (conf / "run").mkdir(parents=True)
    (conf / "run" / "token").write_text("file-token-value\n", encoding="utf-8")
    write(conf, SOURCE, TARGET.replace("env:PROV_TEST_SCIM_TOKEN", "file:run/token"))
    target = load_config("etc/config.toml").targets["directory"]
    assert target.token.reveal() == "file-token-value"
    assert target.token.reference == "file:run/token"
    assert "file-token-value" not in repr(target)


def test_missing_secret_file(tmp_path):
    write(tmp_path, SOURCE, TARGET.replace("env:PROV_TEST_SCIM_TOKEN", "file:nope"))
    message = error_of()
    assert message.startswith(f"config.toml: targets.directory.token: cannot read secret file {tmp_path}/nope")


def test_resolved_secret_never_in_error_messages(tmp_path, env):
    # the safety net: even when a secret's value turns up elsewhere in the file
    target = TARGET.replace('base_url = "http://127.0.0.1:8080/scim/v2/"', f'base_url = "{env}"')
    write(tmp_path, SOURCE, target, f'username = "{env}"\n')
    message = error_of()
    assert env not in message
    assert "targets.directory.base_url: must be an http:// or https:// URL, got '***'" in message


def test_credentials_in_base_url_refused_without_echo(tmp_path):
    write(tmp_path, SOURCE, TARGET.replace("http://127.0.0.1", "http://svc:s3cretpw@127.0.0.1"))
    message = error_of()
    assert message == ("config.toml: targets.directory.base_url: must not contain credentials: "
                       "use token, or username and password")


@pytest.mark.parametrize("auth, expected", [
    ("", "set token (bearer) or username and password (basic)"),
    ('username = "svc"', "username is set but password is missing"),
    ('password = "env:PROV_TEST_SCIM_TOKEN"', "password is set but username is missing"),
    ('token = "env:PROV_TEST_SCIM_TOKEN"\nusername = "svc"\npassword = "env:PROV_TEST_SCIM_TOKEN"',
     "set either token (bearer) or username and password (basic), not both"),
])
def test_exactly_one_auth_form(tmp_path, auth, expected):
    target = TARGET.replace('token = "env:PROV_TEST_SCIM_TOKEN"\n', auth + "\n")
    write(tmp_path, SOURCE, target)
    assert error_of() == f"config.toml: targets.directory: {expected}"


def test_basic_auth(tmp_path, env):
    target = TARGET.replace('token = "env:PROV_TEST_SCIM_TOKEN"',
                            'username = "svc"\npassword = "env:PROV_TEST_SCIM_TOKEN"')
    write(tmp_path, SOURCE, target)
    directory = load_config("config.toml").targets["directory"]
    assert directory.username == "svc" and directory.password.reveal() == env


def test_messages_are_single_sentences(tmp_path):
    write(tmp_path, SOURCE, TARGET.replace("[targets.directory]", "[targets.directory]\ntokn = 1"))
    message = error_of()
    assert message.count("\n") == 0 and message.startswith("config.toml: ")
    assert os.fspath(tmp_path) not in message  # the path as the user gave it


# --- OneCloud target and sandbox ----------------------------------------------

ONECLOUD = """
[targets.onecloud]
type = "onecloud"
base_url = "https://example.cx.onecloud.com/"
client_id = "api-user"
client_secret = "env:PROV_TEST_SCIM_TOKEN"
mapping = "mappings/onecloud.toml"
"""


def test_onecloud_target_defaults(tmp_path, env):
    write(tmp_path, SOURCE, ONECLOUD)
    target = load_config("config.toml").targets["onecloud"]
    assert target.base_url == "https://example.cx.onecloud.com"
    assert target.tenant_domain == "example.cx.onecloud.com" and target.list_mode == "auto"
    assert target.client_secret.reveal() == env and target.concurrency == 4
    write(tmp_path, SOURCE, ONECLOUD, 'tenant = "other.cx.onecloud.com"\nlist_mode = "directory"\n')
    target = load_config("config.toml").targets["onecloud"]
    assert (target.tenant_domain, target.list_mode) == ("other.cx.onecloud.com", "directory")


def test_onecloud_target_mistakes_name_the_key(tmp_path, env):
    write(tmp_path, SOURCE, ONECLOUD.replace('client_id = "api-user"\n', ""))
    assert error_of() == "config.toml: targets.onecloud.client_id: is required"
    write(tmp_path, SOURCE, ONECLOUD, 'list_mode = "all"\n')
    assert error_of() == ("config.toml: targets.onecloud.list_mode: "
                          "must be 'auto', 'scim' or 'directory', got 'all'")
    write(tmp_path, SOURCE, ONECLOUD.replace('"env:PROV_TEST_SCIM_TOKEN"', '"plain-secret-value"'))
    message = error_of()
    assert message.startswith("config.toml: targets.onecloud.client_secret: secrets are never written")
    assert "plain-secret-value" not in message
    write(tmp_path, SOURCE, ONECLOUD.replace("https://", "https://u:p@"))
    assert "use client_id and client_secret" in error_of()


def test_sandbox_section(tmp_path, env):
    write(tmp_path, SOURCE, ONECLOUD, '\n[sandbox.onecloud]\nclient_secret = "env:PROV_TEST_SCIM_TOKEN"\n'
                                      'error_rate = 0.25\nstate_file = "sandbox.json"\n')
    sandbox = load_config("config.toml").sandbox.onecloud
    assert (sandbox.port, sandbox.error_rate, sandbox.tenant) == (9101, 0.25, "127.0.0.1")
    assert sandbox.state_file == tmp_path / "sandbox.json"
    write(tmp_path, SOURCE, ONECLOUD, '\n[sandbox.onecloud]\nclient_secret = "env:PROV_TEST_SCIM_TOKEN"\n'
                                      'throttle_rate = 2\n')
    assert error_of() == ("config.toml: sandbox.onecloud.throttle_rate: "
                          "must be a number between 0 and 1, got 2")


# --- ClientTrack target and sandbox -------------------------------------------

CLIENTTRACK = """
[targets.ct]
type = "clienttrack"
subscription_key = "env:PROV_TEST_SCIM_TOKEN"
api_key = "env:PROV_TEST_SCIM_TOKEN"
mapping = "mappings/clienttrack.toml"
"""


def test_clienttrack_target_defaults(tmp_path, env):
    write(tmp_path, SOURCE, CLIENTTRACK)
    target = load_config("config.toml").targets["ct"]
    assert target.base_url == "https://api.clienttrack.net" and target.org_id is None
    assert (target.table, target.key_column, target.status_field) == ("Users", "UserID", "ActiveStatus")
    assert (target.active_value, target.inactive_value, target.paging, target.page_size) == (
        "Active", "Inactive", "top", 100)
    assert (target.create_path, target.update_path) == ("/cto/{table}", "/cto/{table}/{id}")
    assert target.api_key.reveal() == env


def test_clienttrack_target_mistakes_name_the_key(tmp_path, env):
    write(tmp_path, SOURCE, CLIENTTRACK, 'page_size = 600\n')
    assert error_of() == "config.toml: targets.ct.page_size: must be a whole number between 1 and 500, got 600"
    write(tmp_path, SOURCE, CLIENTTRACK, 'paging = "offset"\n')
    assert error_of() == "config.toml: targets.ct.paging: must be 'top' or 'keyset', got 'offset'"
    write(tmp_path, SOURCE, CLIENTTRACK, 'columns = { UserName = "User Name" }\n')
    assert error_of() == ("config.toml: targets.ct.columns.UserName: must be a column or table name "
                          "(letters, digits and _), got 'User Name'")
    write(tmp_path, SOURCE, CLIENTTRACK.replace('"env:PROV_TEST_SCIM_TOKEN"\nmapping', '"plain-api-key"\nmapping'))
    message = error_of()
    assert message.startswith("config.toml: targets.ct.api_key: secrets are never written")
    assert "plain-api-key" not in message


def test_clienttrack_sandbox_section(tmp_path, env):
    keys = 'subscription_key = "env:PROV_TEST_SCIM_TOKEN"\napi_key = "env:PROV_TEST_SCIM_TOKEN"\n'
    write(tmp_path, SOURCE, CLIENTTRACK, '\n[sandbox.clienttrack]\n' + keys + 'paging_quirk = "top_first"\n')
    sandbox = load_config("config.toml").sandbox.clienttrack
    assert (sandbox.port, sandbox.paging_quirk, sandbox.bad_gateway_rate) == (9104, "top_first", 0.0)
    write(tmp_path, SOURCE, CLIENTTRACK, '\n[sandbox.clienttrack]\n' + keys + 'paging_quirk = "odd"\n')
    assert error_of().startswith("config.toml: sandbox.clienttrack.paging_quirk: must be")


# --- credentials never in cleartext to another machine ----------------------------

@pytest.mark.parametrize("url", ["http://scim.example.com/v2", "http://10.0.0.5:8080/scim",
                                 "http://[2001:db8::1]/scim", "http://127.0.0.1.example.com/scim"])
def test_http_base_url_to_another_host_is_refused(tmp_path, url):
    write(tmp_path, SOURCE, TARGET.replace("http://127.0.0.1:8080/scim/v2/", url))
    host = url.split("//")[1].split("/")[0].rsplit(":", 1)[0] if "[" not in url else "2001:db8::1"
    assert error_of() == (f"config.toml: targets.directory: base_url is http:// to {host}, not this "
                          "machine, and would send the credentials unencrypted: use https://, or set "
                          "allow_insecure = true")
    write(tmp_path, SOURCE, TARGET.replace("http://127.0.0.1:8080/scim/v2/", url), "allow_insecure = true\n")
    assert load_config("config.toml").targets["directory"].allow_insecure is True


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/scim", "http://127.9.9.9/scim", "http://[::1]:8080/scim",
                                 "http://localhost/scim", "http://LOCALHOST:9/scim", "https://scim.example.com"])
def test_loopback_or_https_needs_no_allow_insecure(tmp_path, url):
    write(tmp_path, SOURCE, TARGET.replace("http://127.0.0.1:8080/scim/v2/", url))
    assert load_config("config.toml").targets["directory"].base_url == url


def test_a_token_url_over_http_to_another_host_is_refused_too(tmp_path):
    (tmp_path / "pw").write_text("ycc-password\n")
    write(tmp_path, SOURCE, """
[targets.ycc]
type = "ytel_ycc"
base_url = "https://ycc-api.example.com"
token_url = "http://auth.example.com/auth/v3/token"
username = "api@example.com"
password = "file:pw"
template_agent = "9999"
mapping = "m.toml"
""")
    assert error_of() == ("config.toml: targets.ycc: token_url is http:// to auth.example.com, not this "
                          "machine, and would send the credentials unencrypted: use https://, or set "
                          "allow_insecure = true")


def test_an_env_secret_is_trimmed_like_a_file_secret(tmp_path, monkeypatch):
    # a Kubernetes secret made from a file ends in a newline
    monkeypatch.setenv(TOKEN_ENV, "tok-from-a-file\n")
    write(tmp_path, SOURCE, TARGET)
    assert load_config("config.toml").targets["directory"].token.reveal() == "tok-from-a-file"
    monkeypatch.setenv(TOKEN_ENV, " \n")
    assert error_of() == f"config.toml: targets.directory.token: environment variable {TOKEN_ENV} is empty"
