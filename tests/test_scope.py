import pytest

from provisioner.scope import compile_filter

ADA = {
    "department": "Support", "title": "Senior Agent", "level": "10",
    "hired": "2021-03-15", "contractor": "no", "name.givenName": "Ada",
}


def match(text, attrs=ADA):
    return compile_filter(text)(attrs)


@pytest.mark.parametrize("text, expected", [
    ('department eq "Support"', True),
    ('department eq "Sales"', False),
    ('department ne "Sales"', True),
    ('department ne "support"', False),
    ('title co "agent"', True),
    ('title co "boss"', False),
    ('title sw "senior"', True),
    ('title sw "agent"', False),
    ('title ew "AGENT"', True),
    ('title ew "senior"', False),
    ('title pr', True),
    ('manager pr', False),
    ('level gt 9', True),
    ('level gt 10', False),
    ('level ge 10', True),
    ('level lt 10', False),
    ('level le 10', True),
    ('level lt 11', True),
])
def test_operators(text, expected):
    assert match(text) is expected


def test_comparisons_are_numeric_when_both_sides_are_numbers():
    # as strings "10" < "9"; as numbers it is the other way round
    assert match('level gt 9') and match('level gt "9"')
    assert match("level eq 10.0") and match("level lt 1e2") and match("level gt -3.5")
    assert match('level eq 10', {"level": 10})
    assert not match('level eq "10.0"')     # a string literal compares text


def test_text_comparisons_fall_back_to_strings():
    assert match('department gt "R"') and not match('department gt "T"')
    assert match('title gt 5')              # "senior agent" > "5" as text


def test_iso_dates_order_as_strings():
    assert match('hired ge "2021-01-01" and hired lt "2021-04-01"')
    assert not match('hired gt "2021-03-15"')
    assert match('hired le "2021-03-15T00:00:00Z"')


def test_attribute_names_and_values_are_case_insensitive():
    assert match('DEPARTMENT eq "SUPPORT"')
    assert match('Title Co "AGENT"')
    assert match('department EQ "support" AND title PR')
    # an exact key wins over a case-folded one
    assert match('dept eq "a"', {"Dept": "b", "dept": "a"})
    assert match('dept eq "b"', {"Dept": "b"})


def test_unicode_case_folding():
    assert match('city eq "STRASSE"', {"city": "straße"})
    assert match('name co "ÉL"', {"name": "Hélène"})


def test_sub_attribute_looks_up_dotted_key():
    assert match('name.givenName eq "ada"')
    assert match('NAME.GIVENNAME sw "a"')
    assert not match('name.familyName pr')


@pytest.mark.parametrize("op", ["eq", "co", "sw", "ew", "gt", "ge", "lt", "le"])
def test_absent_attribute_fails_every_comparison(op):
    assert not match(f'missing {op} "x"')
    assert not match(f'missing {op} "x"', {"missing": ""})


def test_absent_attribute_ne_and_null():
    assert match('missing ne "x"')
    assert match("missing eq null")
    assert not match("missing ne null")
    assert not match("missing pr")
    assert not match("department eq null")
    assert match("department ne null")
    assert match("blank eq null", {"blank": "   "})
    assert not match("blank pr", {"blank": "   "})
    assert not match("none pr", {"none": None})


@pytest.mark.parametrize("value, true, false", [
    ("true", True, False), ("TRUE", True, False), ("Yes", True, False), ("1", True, False),
    ("false", False, True), ("No", False, True), ("0", False, True),
    ("maybe", False, False), (True, True, False), (False, False, True),
])
def test_bool_literals(value, true, false):
    attrs = {"flag": value}
    assert match("flag eq true", attrs) is true
    assert match("flag eq false", attrs) is false
    assert match("flag ne true", attrs) is (not true)
    assert match("flag eq True", attrs) is true   # literal case is forgiven


def test_bool_literal_vs_string_literal():
    # the stock lexer hands both to the parser as 'true'; they must differ
    assert match('flag eq "true"', {"flag": "yes"}) is False
    assert match('flag eq true', {"flag": "yes"}) is True
    assert match('flag eq "null"', {"flag": "null"}) is True
    assert match('flag eq null', {"flag": "null"}) is False
    assert not match("flag eq true", {})


def test_attribute_names_starting_with_keywords():
    assert match('trueName eq "x"', {"trueName": "x"})
    assert match('nullable pr', {"nullable": "y"})
    assert match('falsePositive pr and notes pr and order pr',
                 {"falsePositive": "1", "notes": "n", "order": "o"})


def test_string_escapes():
    assert match(r'nick eq "the \"boss\""', {"nick": 'the "boss"'})
    assert match(r'path eq "a\\b"', {"path": "a\\b"})
    assert match('s eq "Zoë"', {"s": "zoë"})


def test_and_binds_tighter_than_or():
    # a or (b and c), not (a or b) and c
    assert match('department eq "Support" or title eq "x" and level eq 0')
    assert match('title eq "x" and level eq 0 or department eq "Support"')
    assert not match('(department eq "Support" or title eq "x") and level eq 0')
    assert not match('department eq "x" or title eq "x" and level eq 10')
    assert match('department eq "x" or title co "agent" and level eq 10')
    assert match('level eq 0 and title eq "x" or level eq 0 or department pr')


def test_not_and_parentheses():
    assert match('not (department eq "Sales")')
    assert not match('not (department eq "Support")')
    assert match('not (department eq "Support") or title pr')
    assert not match('not (department eq "Support" or title pr)')
    assert match('not (not (title pr))')
    assert not match('not (title pr) and department pr')
    assert match('((department pr) and (not (manager pr)))')


def test_compiled_predicate_is_reusable():
    pred = compile_filter('department eq "Support"')
    assert [pred({"department": d}) for d in ("Support", "Ops", "support")] == [True, False, True]


@pytest.mark.parametrize("text, why", [
    ("", "empty"),
    ("   ", "empty"),
    ("department eq", "ends too early"),
    ('(department pr', "ends too early"),
    ('department pr)', "unexpected ')' at position 13"),
    ('department eq "Support', "unterminated string"),
    ('department ~ "x"', "unexpected character '~'"),
    ('department is "x"', "unexpected 'is'"),
    ('department eq "x" title pr', "unexpected 'title'"),
    ('department eq 42abc', "unexpected character '4'"),
    (r'department eq "\q"', "bad escape"),
    ('emails[type eq "work"]', "complex attribute filters"),
    ('emails[type eq "work"].value pr', "complex attribute filters"),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"', "schema URIs"),
    ("level gt true", "'gt' cannot compare with true"),
    ("title co null", "'co' cannot compare with null"),
])
def test_bad_filters(text, why):
    with pytest.raises(ValueError) as info:
        compile_filter(text)
    message = str(info.value)
    assert message.startswith(f"invalid scope filter '{text}': ")
    assert why in message
    assert "\n" not in message


def test_a_multi_valued_attribute_matches_when_any_value_does():
    agent = {"groups": ["staff", "Agents", ""], "level": ["3", "12"]}
    assert match('groups eq "agents"', agent)
    assert not match('groups eq "admins"', agent)
    assert match('groups ne "admins"', agent) and not match('groups ne "agents"', agent)
    assert match('groups sw "ag"', agent) and match('level gt 10', agent) and match('groups pr', agent)
    assert not match('groups pr', {"groups": ["", None]}) and match('groups eq null', {"groups": []})


def test_filter_attributes_lists_every_name_read():
    from provisioner.scope import filter_attributes
    assert filter_attributes('department eq "S" and not (title co "x") or groups pr or title pr') == (
        "department", "title", "groups")
