from pathlib import Path

import pytest

from provisioner.errors import ConfigError
from provisioner.mapping import load_mapping

ROOT = Path(__file__).resolve().parent.parent

FULL = '''
scope = 'department eq "Support"'
correlate = ["emails[0].value", "userName"]

[attributes]
userName = "email"
"name.givenName" = { from = "given_name" }
"emails[0].value" = { from = "email", transform = "lower" }
displayName = { template = "{given_name} {family_name}" }
title = { from = "title", default = "Agent" }
active = { from = "status", equals = "active" }
locale = { constant = "en-US" }
department = { from = "dept", lookup = { SUP = "Support", OPS = "Operations" }, default = "Other" }
nickName = { from = "nick", transform = ["trim", "upper"] }
'''

ADA = {"email": "Ada@Example.COM", "given_name": "Ada", "family_name": "Lovelace",
       "title": "Engineer", "status": "Active", "dept": "SUP", "nick": "countess",
       "department": "support"}


def write(tmp_path, text, name="target.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path, text):
    return load_mapping(write(tmp_path, text))


def attrs_only(tmp_path, body):
    return load(tmp_path, "[attributes]\n" + body)


def test_full_mapping(tmp_path):
    m = load(tmp_path, FULL)
    assert m.name == "target"
    assert m.path == tmp_path / "target.toml"
    assert m.attributes == ("userName", "name.givenName", "emails[0].value", "displayName",
                            "title", "active", "locale", "department", "nickName")
    assert m.correlate == ("emails[0].value", "userName")
    assert m.render(ADA) == {
        "userName": "Ada@Example.COM",
        "name.givenName": "Ada",
        "emails[0].value": "ada@example.com",
        "displayName": "Ada Lovelace",
        "title": "Engineer",
        "active": True,
        "locale": "en-US",
        "department": "Support",
        "nickName": "COUNTESS",
    }
    assert m.render({}) == {
        "userName": None, "name.givenName": None, "emails[0].value": None, "displayName": None,
        "title": "Agent", "active": False, "locale": "en-US", "department": "Other",
        "nickName": None,
    }


def test_scope(tmp_path):
    m = load(tmp_path, FULL)
    assert m.in_scope(ADA)
    assert not m.in_scope({**ADA, "department": "Sales"})
    assert not m.in_scope({})
    assert attrs_only(tmp_path, 'a = "b"').in_scope({})


def test_correlate_defaults_to_first_attribute(tmp_path):
    m = attrs_only(tmp_path, 'externalId = "id"\nuserName = "email"\n')
    assert m.correlate == ("externalId",)


def test_from_shorthand_and_table(tmp_path):
    m = attrs_only(tmp_path, 'a = "x"\nb = { from = "x" }\n')
    assert m.render({"x": "v"}) == {"a": "v", "b": "v"}
    assert m.render({"x": ""}) == {"a": None, "b": None}
    assert m.sources_of("a") == ("x",) and m.sources_of("b") == ("x",)


@pytest.mark.parametrize("transform, value, expected", [
    ("lower", "ÀBC", "àbc"),
    ("upper", "straße", "STRASSE"),
    ("trim", "  x  ", "x"),
    (["trim", "lower"], "  AbC ", "abc"),
    ([], " a ", " a "),
    ("trim", "   ", None),
])
def test_transforms(tmp_path, transform, value, expected):
    spec = '"' + transform + '"' if isinstance(transform, str) else str(transform).replace("'", '"')
    m = attrs_only(tmp_path, f'a = {{ from = "x", transform = {spec} }}\n')
    assert m.render({"x": value}) == {"a": expected}


def test_transform_leaves_non_text_alone(tmp_path):
    m = attrs_only(tmp_path, 'a = { from = "x", transform = "upper" }\n')
    assert m.render({"x": 42}) == {"a": 42}


def test_lookup_and_default(tmp_path):
    m = attrs_only(tmp_path, '''
with_default = { from = "d", lookup = { SUP = "Support" }, default = "Other" }
no_default = { from = "d", lookup = { SUP = "Support" } }
after_transform = { from = "d", transform = "upper", lookup = { SUP = "Support" } }
to_number = { from = "d", lookup = { SUP = 7 } }
''')
    assert m.render({"d": "SUP"}) == {"with_default": "Support", "no_default": "Support",
                                      "after_transform": "Support", "to_number": 7}
    assert m.render({"d": "sup"}) == {"with_default": "Other", "no_default": "sup",
                                      "after_transform": "Support", "to_number": "sup"}
    assert m.render({}) == {"with_default": "Other", "no_default": None,
                            "after_transform": None, "to_number": None}


def test_default(tmp_path):
    m = attrs_only(tmp_path, 'a = { from = "x", default = "none" }\nb = { from = "x", default = 3 }\n')
    assert m.render({"x": "v"}) == {"a": "v", "b": "v"}
    assert m.render({"x": ""}) == {"a": "none", "b": 3}
    assert m.render({}) == {"a": "none", "b": 3}


def test_equals(tmp_path):
    m = attrs_only(tmp_path, '''
active = { from = "status", equals = "active" }
staff = { from = "kind", equals = ["employee", "Intern"] }
defaulted = { from = "status", default = "active", equals = "active" }
''')
    assert m.render({"status": "ACTIVE", "kind": "intern"}) == {"active": True, "staff": True, "defaulted": True}
    assert m.render({"status": "terminated", "kind": "contractor"}) == {
        "active": False, "staff": False, "defaulted": False}
    assert m.render({}) == {"active": False, "staff": False, "defaulted": True}


def test_constants(tmp_path):
    m = attrs_only(tmp_path, 'a = { constant = "en-US" }\nb = { constant = 3 }\nactive = { constant = true }\n')
    assert m.render({}) == {"a": "en-US", "b": 3, "active": True}
    assert m.sources_of("a") == ()


def test_active_via_bool_lookup(tmp_path):
    m = attrs_only(tmp_path, 'active = { from = "s", lookup = { A = true, T = false }, default = false }\n')
    assert [m.render({"s": s})["active"] for s in ("A", "T", "x")] == [True, False, False]
    assert m.render({})["active"] is False


def test_template_with_unicode(tmp_path):
    m = attrs_only(tmp_path, '''
display = { template = "{given_name} {family_name}" }
mail = { template = "{given_name}.{family_name}@example.com", transform = "lower" }
braces = { template = "{{{given_name}}}" }
''')
    out = m.render({"given_name": "Zoë", "family_name": "Ångström-李"})
    assert out == {"display": "Zoë Ångström-李", "mail": "zoë.ångström-李@example.com", "braces": "{Zoë}"}
    assert m.sources_of("display") == ("given_name", "family_name")


def test_template_with_missing_part_has_no_value(tmp_path):
    m = attrs_only(tmp_path, 'mail = { template = "{given}.{family}", default = "n/a" }\nx = { template = "{given}." }\n')
    assert m.render({"given": "Ada"}) == {"mail": "n/a", "x": "Ada."}
    assert m.render({"given": "Ada", "family": " "}) == {"mail": "n/a", "x": "Ada."}
    assert m.render({"family": "L"}) == {"mail": "n/a", "x": None}


def test_source_values_are_not_re_expanded(tmp_path):
    m = attrs_only(tmp_path, 'd = { template = "{a} {b}" }\n')
    hostile = {"a": "{b}", "b": "{__class__.__init__.__globals__}"}
    assert m.render(hostile) == {"d": "{b} {__class__.__init__.__globals__}"}


@pytest.mark.parametrize("template, shown", [
    ("{__class__}", "{__class__}"),
    ("{a.__dict__}", "{a.__dict__}"),
    ("{a[0]}", "{a[0]}"),
    ("{0}", "{0}"),
    ("{}", "{}"),
    ("{a!r}", "{a!r}"),
    ("{a:>10}", "{a:>10}"),
    ("{a!s:{b}}", "{a!s:{b}}"),
])
def test_template_injection_refused_at_load(tmp_path, template, shown):
    with pytest.raises(ConfigError) as info:
        attrs_only(tmp_path, f'x = {{ template = "{template}" }}\n')
    assert str(info.value) == (f"{tmp_path / 'target.toml'}: attributes.x: template field {shown} is not "
                               "allowed: only {attribute} with a name starting with a letter "
                               "(line 2, column 1)")


def test_case_insensitive(tmp_path):
    m = attrs_only(tmp_path, '''
userName = "email"
"emails[0].value" = "email"
title = "title"
externalId = { from = "id", case_insensitive = true }
displayName = { from = "n", case_insensitive = false }
''')
    assert m.case_insensitive("userName")
    assert m.case_insensitive("emails[0].value")
    assert not m.case_insensitive("title")
    assert m.case_insensitive("externalId")
    assert not m.case_insensitive("displayName")
    m2 = attrs_only(tmp_path, 'userName = { from = "email", case_insensitive = false }\n')
    assert not m2.case_insensitive("userName")


def test_sources_of_unknown_path(tmp_path):
    assert attrs_only(tmp_path, 'a = "x"\n').sources_of("nope") == ()


def test_directory_mapping():
    m = load_mapping(ROOT / "mappings" / "directory.toml")
    assert m.name == "directory"
    assert m.attributes == ("userName", "name.givenName", "name.familyName", "emails[0].value",
                            "title", "active")
    assert m.correlate == ("userName",)
    row = {"email": "ada@example.com", "given_name": "Ada", "family_name": "Lovelace",
           "title": "Agent", "status": "active", "department": "Support"}
    assert m.in_scope(row)
    assert not m.in_scope({**row, "department": "Sales"})
    assert m.render(row) == {
        "userName": "ada@example.com", "name.givenName": "Ada", "name.familyName": "Lovelace",
        "emails[0].value": "ada@example.com", "title": "Agent", "active": True,
    }
    assert m.render({**row, "status": "terminated"})["active"] is False
    assert m.case_insensitive("userName") and not m.case_insensitive("title")
    assert m.sources_of("active") == ("status",)


# --- every ConfigError names the file and the key -------------------------

@pytest.mark.parametrize("text, expected", [
    ('[attributes]\ntitle = { from = "t", transform = "titlecase" }\n',
     "attributes.title: unknown transform 'titlecase' (known: lower, trim, upper)"),
    ('[attributes]\ntitle = { from = "t", transform = ["trim", 3] }\n',
     "attributes.title: transform must be a name or a list of names"),
    ('[attributes]\ntitle = { form = "t" }\n',
     "attributes.title: unknown key 'form'; did you mean 'from'?"),
    ('[attributes]\ntitle = { from = "t", colour = "red" }\n',
     "attributes.title: unknown key 'colour' (known: case_insensitive, constant, default, "
     "equals, fold_accents, from, lookup, matching, on_drift, pick, separator, template, transform)"),
    ('[attributes]\ntitle = { default = "x" }\n',
     "attributes.title: needs exactly one of 'from', 'template' or 'constant'"),
    ('[attributes]\ntitle = { from = "t", constant = "x" }\n',
     "attributes.title: needs exactly one of 'from', 'template' or 'constant', not from and constant"),
    ('[attributes]\ntitle = { from = "" }\n', "attributes.title: 'from' must name a source attribute"),
    ('[attributes]\ntitle = 3\n',
     'attributes.title: must be a source attribute name or a table such as { from = "..." }'),
    ('[attributes]\ntitle = { template = 3 }\n', "attributes.title: template must be a string"),
    ('[attributes]\ntitle = { template = "{a" }\n', "attributes.title: bad template"),
    ('[attributes]\ntitle = { template = "fixed" }\n',
     "attributes.title: template references no attribute: use 'constant' for fixed text"),
    ('[attributes]\ntitle = { constant = 2024-01-01 }\n',
     "attributes.title: constant must be a string, number or boolean"),
    ('[attributes]\ntitle = { constant = "x", transform = "lower" }\n',
     "attributes.title: a constant cannot have 'transform'"),
    ('[attributes]\ntitle = { from = "t", lookup = "x" }\n',
     "attributes.title: lookup must be a table of source value = target value"),
    ('[attributes]\ntitle = { from = "t", default = [1] }\n',
     "attributes.title: default must be a string, number or boolean"),
    ('[attributes]\ntitle = { from = "t", equals = [] }\n',
     "attributes.title: equals must be a string or a list of strings"),
    ('[attributes]\ntitle = { from = "t", case_insensitive = "yes" }\n',
     "attributes.title: case_insensitive must be true or false"),
    ('[attributes]\n"name.givenName" = { from = "t", transform = "x" }\n',
     "attributes.\"name.givenName\": unknown transform 'x'"),
    ('[attributes]\n" " = "t"\n', 'attributes." ": a target attribute path must not be blank'),
    ('[attributes]\nactive = "status"\n', "attributes.active: active must be boolean"),
    ('[attributes]\nactive = { constant = "yes" }\n', "attributes.active: active must be boolean"),
    ('[attributes]\nactive = { from = "s", lookup = { A = true } }\n', "attributes.active: active must be boolean"),
    ('scope = \'department eq\'\n[attributes]\na = "b"\n',
     "scope: invalid scope filter 'department eq': the filter ends too early"),
    ('scope = \'emails[type eq "work"]\'\n[attributes]\na = "b"\n',
     "scope: invalid scope filter"),
    ('scope = 3\n[attributes]\na = "b"\n', "scope: must be a SCIM filter string"),
    ('correlate = ["mail"]\n[attributes]\na = "b"\n',
     "correlate: 'mail' is not a mapped attribute (mapped: a)"),
    ('correlate = []\n[attributes]\na = "b"\n', "correlate: must be a non-empty list of attribute names"),
    ('scope = "a pr"\n', "attributes: missing"),
    ('[attributes]\n', "attributes: must be a non-empty table of target attributes"),
    ('attributes = "x"\n', "attributes: must be a non-empty table of target attributes"),
    ('scop = "a pr"\n[attributes]\na = "b"\n', "scop: unknown key 'scop'; did you mean 'scope'?"),
    ('target = "x"\n[attributes]\na = "b"\n',
     "target: unknown key 'target' (known: attributes, correlate, scope)"),
    ('[attributes\na = "b"\n', "line 1: invalid TOML: "),
    ('[attributes]\na = "b"\na = "c"\n', "line 3: invalid TOML: "),
])
def test_config_errors(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_mapping(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {expected}")
    assert "\n" not in message


def test_missing_file_uses_path_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^mappings/nope\.toml: file not found$"):
        load_mapping(Path("mappings/nope.toml"))


def test_unreadable_and_non_utf8(tmp_path):
    with pytest.raises(ConfigError, match="is a directory, not a mapping file"):
        load_mapping(tmp_path)
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('[attributes]\na = "Zo\xeb"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_mapping(bad)


def test_fold_accents_and_dotted_source_names(tmp_path):
    from provisioner.model import FOLD, same_value
    m = attrs_only(tmp_path, '''
fullname = { template = "{given_name} {family_name}", fold_accents = true }
extension = { from = "links.onecloud.extension" }
''')
    assert m.case_insensitive("fullname") == FOLD
    out = m.render({"given_name": "Zoë", "family_name": "Ōtsuka", "links.onecloud.extension": "2002"})
    assert out == {"fullname": "Zoë Ōtsuka", "extension": "2002"}
    assert same_value(out["fullname"], "ZOE OTSUKA", m.case_insensitive("fullname"))
    assert not same_value(out["fullname"], "ZOE OTSUKA", True)
    with pytest.raises(ConfigError, match="fold_accents must be true or false"):
        attrs_only(tmp_path, 'a = { from = "x", fold_accents = "yes" }\n')
    with pytest.raises(ConfigError, match="fold_accents = true ignores case too"):
        attrs_only(tmp_path, 'a = { from = "x", fold_accents = true, case_insensitive = false }\n')


def test_text_from_the_source_equals_a_targets_booleans_and_numbers():
    from provisioner.model import same_value
    assert same_value("true", True) and same_value("3", 3) and same_value(False, "false")
    assert not same_value("3", 4) and not same_value("True", True)


# --- lists (LDAP multi_valued) and what the sources provide ---------------------

LISTS = '''
[attributes]
userName = { from = "mail", pick = "first" }
work = { from = "mail", matching = "*@EXAMPLE.com" }
groups = { from = "memberOf", pick = "join", separator = "; " }
some = { from = "memberOf", pick = "join", matching = "a*" }
label = { template = "{cn} <{mail}>", pick = "first" }
'''


def test_a_list_becomes_one_value_as_the_entry_says(tmp_path):
    m = load(tmp_path, LISTS)
    attrs = {"mail": ["ada@lab.org", "Ada@Example.com", "ada2@example.com"], "cn": "Ada",
             "memberOf": ["agents", "admins", "billing"]}
    assert m.render(attrs) == {"userName": "ada@lab.org", "work": "Ada@Example.com",
                               "groups": "agents; admins; billing", "some": "agents, admins",
                               "label": "Ada <ada@lab.org>"}
    # a plain value is a list of one; nothing matching is no value
    assert m.render({"mail": "ada@lab.org", "memberOf": "x", "cn": "Ada"}) == {
        "userName": "ada@lab.org", "work": None, "groups": "x", "some": None, "label": "Ada <ada@lab.org>"}


@pytest.mark.parametrize("entry, message", [
    ('{ from = "mail", pick = "last" }', "pick must be one of first, join, not 'last'"),
    ('{ from = "mail", separator = "," }', 'separator goes with pick = "join"'),
    ('{ from = "mail", matching = "" }', "matching must be a glob pattern"),
    ('{ constant = "x", pick = "first" }', "a constant cannot have 'pick'"),
])
def test_bad_list_choices_are_config_errors(tmp_path, entry, message):
    with pytest.raises(ConfigError, match="attributes.userName: " + message.replace("(", r"\(")):
        load(tmp_path, f"[attributes]\nuserName = {entry}\n")


def test_source_problems_name_the_file_the_attribute_and_a_close_match(tmp_path):
    m = load(tmp_path, FULL.replace('{ from = "title", default = "Agent" }', '{ from = "titel" }'))
    provided = ["email", "given_name", "family_name", "title", "status", "dept", "nick", "department"]
    assert m.source_problems(provided) == [
        f"{m.path}: attributes.title: no source provides 'titel'; did you mean 'title'?"]
    problems = load(tmp_path, FULL).source_problems(["email", "status"])
    assert f"{m.path}: attributes.\"name.givenName\": no source provides 'given_name' " \
           "(the sources provide: email, status)" in problems
    assert f"{m.path}: scope: no source provides 'department' (the sources provide: email, status)" in problems
    # scope names match ignoring case, as the filter reads them
    scoped = load(tmp_path, "scope = 'EMAIL pr'\n[attributes]\nuserName = \"email\"\n").source_problems(["email"])
    assert scoped == []


def test_a_multi_valued_source_attribute_needs_a_list_choice(tmp_path):
    m = load(tmp_path, '[attributes]\nuserName = "mail"\nother = { from = "mail", pick = "first" }\n')
    assert m.source_problems(["mail"], multi_valued=["mail"]) == [
        f"{m.path}: attributes.userName: source attribute 'mail' is multi-valued and userName takes "
        "one value: add pick = \"first\" (the first value), pick = \"join\" (all, joined with ', ') "
        "or matching = \"*@example.com\" (the first that matches)"]
    assert m.source_problems(["mail"]) == []


def test_a_mapping_error_names_the_line_and_column_of_its_key(tmp_path):
    path = write(tmp_path, 'scope = \'department pr\'\n\n[attributes]\nuserName = "email"\n'
                           '  title = { form = "t" }\n')
    with pytest.raises(ConfigError) as info:
        load_mapping(path)
    assert str(info.value) == (f"{path}: attributes.title: unknown key 'form'; did you mean 'from'? "
                               "(line 5, column 3)")
