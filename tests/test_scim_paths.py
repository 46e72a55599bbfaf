import pytest

from provisioner.scim_paths import (get_path, has_selector, parse, remove_path, set_path,
                               strip_selectors, top_level)

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

DOC = {
    "userName": "alice",
    "name": {"givenName": "Alice", "familyName": "Liddell"},
    "emails": [{"type": "home", "value": "a@home"}, {"type": "work", "value": "a@work"}],
    "active": False,
    ENT: {"department": "IT", "manager": {"value": "m-1"}},
}


@pytest.mark.parametrize("path,expected", [
    ("userName", "alice"),
    ("name.givenName", "Alice"),
    ("emails[0].value", "a@home"),
    ("emails[1].type", "work"),
    ('emails[type eq "work"].value', "a@work"),
    ("active", False),
    (f"{ENT}:department", "IT"),
    (f"{ENT}:manager.value", "m-1"),
    ("emails.value", ["a@home", "a@work"]),
    ("emails[0]", {"type": "home", "value": "a@home"}),
])
def test_get(path, expected):
    assert get_path(DOC, path) == expected


@pytest.mark.parametrize("path", [
    "title", "name.middleName", "emails[5].value", 'emails[type eq "other"].value',
    "userName.x", "name[0]", f"{ENT}:costCenter", "urn:other:ext:Thing:x",
    "phoneNumbers.value",
])
def test_get_missing_is_none(path):
    assert get_path(DOC, path) is None


def test_get_is_case_insensitive_on_names_and_filter_strings():
    assert get_path(DOC, "USERNAME") == "alice"
    assert get_path(DOC, "Name.GivenName") == "Alice"
    assert get_path(DOC, 'Emails[TYPE eq "Work"].Value') == "a@work"
    assert get_path(DOC, f"{ENT.upper()}:DEPARTMENT") == "IT"


def test_exact_key_wins_over_case_folded_one():
    assert get_path({"title": "a", "Title": "b"}, "Title") == "b"


def test_set_simple_and_nested_creates_dicts():
    doc: dict = {}
    set_path(doc, "userName", "bob")
    set_path(doc, "name.givenName", "Bob")
    set_path(doc, "name.familyName", "Smith")
    set_path(doc, f"{ENT}:manager.value", "m-2")
    assert doc == {"userName": "bob", "name": {"givenName": "Bob", "familyName": "Smith"},
                   ENT: {"manager": {"value": "m-2"}}}


def test_set_index_creates_and_pads_lists():
    doc: dict = {}
    set_path(doc, "emails[0].value", "x")
    set_path(doc, "phoneNumbers[1].value", "2")
    assert doc == {"emails": [{"value": "x"}], "phoneNumbers": [{}, {"value": "2"}]}
    set_path(doc, "phoneNumbers[0].value", "1")
    assert doc["phoneNumbers"] == [{"value": "1"}, {"value": "2"}]


def test_set_filter_updates_existing_element_or_appends_one():
    doc = {"emails": [{"type": "home", "value": "h"}]}
    set_path(doc, 'emails[type eq "home"].value', "h2")
    set_path(doc, 'emails[type eq "work"].value', "w")
    set_path(doc, 'emails[type eq "work"].primary', True)
    assert doc == {"emails": [{"type": "home", "value": "h2"},
                              {"type": "work", "value": "w", "primary": True}]}


def test_set_keeps_the_documents_own_key_case():
    doc = {"Name": {"GivenName": "a"}, "EMAILS": [{"Type": "work", "Value": "x"}]}
    set_path(doc, "name.givenName", "b")
    set_path(doc, 'emails[type eq "work"].value', "y")
    assert doc == {"Name": {"GivenName": "b"}, "EMAILS": [{"Type": "work", "Value": "y"}]}


def test_set_does_not_touch_the_input_of_other_paths():
    doc = {"name": {"givenName": "a", "familyName": "b"}}
    set_path(doc, "name.givenName", "c")
    assert doc["name"]["familyName"] == "b"


def test_set_through_a_scalar_raises():
    with pytest.raises(ValueError, match="userName"):
        set_path({"userName": "x"}, "userName.first", "y")
    with pytest.raises(ValueError, match="not a list"):
        set_path({"name": {}}, "name[0].x", "y")


def test_set_then_get_round_trips():
    doc: dict = {}
    paths = {"a": 1, "b.c": "2", "d[0].e": "3", 'f[type eq "x"].value': "4",
             f"{ENT}:department": "5", f"{ENT}:manager.value": "6"}
    for path, value in paths.items():
        set_path(doc, path, value)
    assert {p: get_path(doc, p) for p in paths} == paths


def test_remove():
    doc = {"title": "t", "name": {"givenName": "a"}, ENT: {"department": "IT"},
           "emails": [{"type": "home", "value": "h"}, {"type": "work", "value": "w"}]}
    remove_path(doc, "title")
    remove_path(doc, "name.givenName")
    remove_path(doc, f"{ENT}:department")
    remove_path(doc, 'emails[type eq "home"]')
    remove_path(doc, "nothing.here")
    remove_path(doc, "emails[7]")
    assert doc == {"name": {}, ENT: {}, "emails": [{"type": "work", "value": "w"}]}


@pytest.mark.parametrize("path,top", [
    ("emails[0].value", "emails"),
    ("name.givenName", "name"),
    ("active", "active"),
    ('emails[type eq "work"].value', "emails"),
    (f"{ENT}:manager.value", ENT),
    (f"{ENT}:department", ENT),
])
def test_top_level(path, top):
    assert top_level(path) == top


def test_selectors():
    assert has_selector("emails[0].value") and has_selector('emails[type eq "w"].value')
    assert not has_selector("name.givenName") and not has_selector(f"{ENT}:department")
    assert strip_selectors("emails[0].value") == "emails.value"
    assert strip_selectors('emails[type eq "w"].value') == "emails.value"
    assert strip_selectors(f"{ENT}:manager.value") == f"{ENT}:manager.value"


def test_filter_literals_are_json():
    assert parse('a[v eq "x.y]\\"z"].b')[0].match == ("v", 'x.y]"z')
    assert parse("a[primary eq true].value")[0].match == ("primary", True)
    assert parse("a[n EQ 3].value")[0].match == ("n", 3)
    doc = {"a": [{"primary": False, "value": 1}, {"primary": True, "value": 2}]}
    assert get_path(doc, "a[primary eq true].value") == 2


@pytest.mark.parametrize("bad", [
    "", "  ", "a..b", ".a", "a.", "a[", "a[]", "a[x]", "a[type ne \"w\"]", "a[0]b",
    "a[type eq nope]", "1abc", "urn:x:y:", "a b",
])
def test_malformed_paths_raise(bad):
    with pytest.raises(ValueError, match="invalid attribute path"):
        parse(bad)


GETTER_DOC = {
    "userName": "u", "Title": "t", "name": {"givenName": "G"}, "nothing": None,
    "emails": [{"type": "home", "value": "h"}, {"type": "Work", "value": "w"}, "junk"],
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m"}},
}


@pytest.mark.parametrize("path", [
    "userName", "title", "TITLE", "name.givenName", "NAME.GIVENNAME", "name.missing", "missing.x",
    "nothing", "nothing.x", "userName.x", "emails[0].value", "emails[5].value", "emails.value",
    'emails[type eq "work"].value', 'emails[type eq "other"].value', "emails[1]",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
])
def test_compiled_getter_reads_what_get_path_reads(path):
    from provisioner.scim_paths import _get, getter
    assert getter(path)(GETTER_DOC) == _get(GETTER_DOC, parse(path))
    assert getter(path) is getter(path)  # parsed once per path
