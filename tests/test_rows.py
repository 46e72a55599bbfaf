"""sources/rows.py directly, for what the CSV source does not reach: a source's
own check, multi-valued attributes (LDAP), the record kept with a rejection,
and non-ASCII e-mail addresses with dots, several labels or trailing junk."""

from __future__ import annotations

import pytest

from provisioner.model import Rejected
from provisioner.sources.rows import valid_email, validate_rows


def test_a_sources_own_check_adds_to_the_other_problems():
    result = validate_rows([(1, {"id": "E1", "mail": "bad"}), (2, {"id": "E2"})], "id", emails=["mail"],
                           check=lambda attrs: [f"no badge for {attrs['id']}"])
    assert result.identities == ()
    assert result.rejected == (Rejected(1, "E1", "invalid mail 'bad'; no badge for E1"),
                               Rejected(2, "E2", "no badge for E2"))


def test_a_rejected_record_keeps_its_attributes():
    attrs = {"id": "E1", "mail": "bad"}
    [rejected] = validate_rows([(4, attrs)], "id", emails=["mail"]).rejected
    assert rejected.attrs == attrs


def test_each_value_of_a_multi_valued_attribute_is_checked():
    result = validate_rows([(1, {"id": "E1", "mail": ["ann@example.com", "bad"]}),
                            (2, {"id": "E2", "mail": ["ann@example.com", "b@example.com"]}),
                            (3, {"id": "E3", "title": ["Agent", "Lead\x00"]})], "id", emails=["mail"])
    assert [i.key for i in result.identities] == ["E2"]
    assert [(r.row, r.reason) for r in result.rejected] == [(1, "invalid mail 'bad'"),
                                                            (3, "title holds a NUL byte")]


@pytest.mark.parametrize("email", ["zoë.ann@exämple.de", "first.zoë.last@mail.exämple.co.uk",
                                   "zoë@a.1.exämple.com"])
def test_non_ascii_addresses_with_dots_and_several_labels_are_valid(email):
    assert valid_email(email)


@pytest.mark.parametrize("email", ["zoë@exämple.123", "zoë@exämple.de x", "zoë@exämple.de;c@d.co",
                                   "zoë@exämple.de,", "zoë@b@exämple.de", "@exämple.de", "zoë.exämple.de"])
def test_non_ascii_addresses_with_junk_or_a_numeric_top_label_are_invalid(email):
    assert not valid_email(email)
