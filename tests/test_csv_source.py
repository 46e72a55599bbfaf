import unicodedata
from pathlib import Path

import pytest

from provisioner.config import CsvSourceSettings, load_config
from provisioner.errors import ConfigError
from provisioner.model import Identity, Rejected
from provisioner.sources.csv_source import read_csv


def source(tmp_path: Path, content: str | bytes, **options) -> CsvSourceSettings:
    path = tmp_path / "people.csv"
    if isinstance(content, str):
        content = content.encode(options.get("encoding", "utf-8"))
    path.write_bytes(content)
    options.setdefault("key", "employee_id")
    return CsvSourceSettings(path=path, **options)


def read(tmp_path, content, **options):
    result = read_csv(source(tmp_path, content, **options))
    return list(result.identities), list(result.rejected)


def error(tmp_path, content, **options) -> str:
    with pytest.raises(ConfigError) as info:
        read_csv(source(tmp_path, content, **options))
    return str(info.value)


def test_clean_file(tmp_path):
    identities, rejected = read(tmp_path, (
        "employee_id,given_name,email\n"
        "E1,Ann,ann@example.com\n"
        "E2,Bob,bob@example.com\n"))
    assert rejected == []
    assert identities == [
        Identity("E1", {"employee_id": "E1", "given_name": "Ann", "email": "ann@example.com"}, 2),
        Identity("E2", {"employee_id": "E2", "given_name": "Bob", "email": "bob@example.com"}, 3),
    ]


def test_bom_crlf_stray_spaces_and_empty_cells(tmp_path):
    content = ("\ufeff employee_id , given_name ,email,phone\r\n"
               "  E1 ,  Ann  , Ann.Lee@Example.COM ,\r\n"
               "E2,\t,bob@example.com,   \r\n").encode("utf-8")
    identities, rejected = read(tmp_path, content)
    assert rejected == []
    # trimmed values, empty cells absent (never ""), e-mail case kept
    assert [i.attrs for i in identities] == [
        {"employee_id": "E1", "given_name": "Ann", "email": "Ann.Lee@Example.COM"},
        {"employee_id": "E2", "email": "bob@example.com"},
    ]
    assert [i.key for i in identities] == ["E1", "E2"]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters(tmp_path, delimiter):
    content = delimiter.join(["employee_id", "name", "email"]) + "\n" + \
        delimiter.join(["E1", "Doe, Jane", "jane@example.com"]) + "\n"
    identities, rejected = read(tmp_path, content, delimiter=delimiter)
    assert rejected == []
    assert identities[0].attrs["name"] == "Doe, Jane"


def test_latin1_encoding(tmp_path):
    content = "employee_id;name\nE1;José Müller\n".encode("latin-1")
    identities, _ = read(tmp_path, content, encoding="latin-1", delimiter=";")
    assert identities[0].attrs["name"] == "José Müller"


def test_undecodable_bytes_name_file_and_line(tmp_path):
    content = "employee_id,name\nE1,Ann\nE2,Jos".encode() + b"\xe9\nE3,Zo\n"
    message = error(tmp_path, content)
    assert message == (f"{tmp_path}/people.csv: line 3: byte 0xe9 is not valid utf-8 text "
                       "(set source.encoding to the file's encoding)")


def test_blank_lines_skipped_and_rows_are_physical_lines(tmp_path):
    identities, rejected = read(tmp_path, (
        "employee_id,name\n"
        "\n"
        "E1,Ann\n"
        "  ,  \n"
        ",\n"
        "\n"
        "E2,Bob\n"
        "\n"))
    assert rejected == []
    assert [(i.key, i.row) for i in identities] == [("E1", 3), ("E2", 7)]


def test_quoted_newlines_and_delimiters(tmp_path):
    identities, rejected = read(tmp_path, (
        "employee_id,name,address,email\n"
        'E1,"Doe, Jane","Main St 1\nFlat 2\n12345 Town",jane@example.com\n'
        'E2,"Say ""hi""",,bob@example.com\n'
        "E3,x@,,not-an-email\n"), multiline=["address"])
    assert [(i.key, i.row) for i in identities] == [("E1", 2), ("E2", 5)]
    assert identities[0].attrs["address"] == "Main St 1\nFlat 2\n12345 Town"
    assert identities[0].attrs["name"] == "Doe, Jane"
    assert identities[1].attrs["name"] == 'Say "hi"'
    # the row after a multi-line cell is reported on its own physical line
    assert rejected == [Rejected(6, "E3", "invalid email 'not-an-email'")]


def test_unicode_kept_exactly_nfc_and_nfd(tmp_path):
    nfc = unicodedata.normalize("NFC", "José")
    nfd = unicodedata.normalize("NFD", "José")
    assert nfc != nfd
    identities, rejected = read(tmp_path, (
        "employee_id,given_name,family_name\n"
        f"E1,{nfc},Ōtsuka\n"
        f"E2,{nfd},Zoë\n"
        "E3,李,Nguyễn\n"))
    assert rejected == []
    assert identities[0].attrs["given_name"] == nfc
    assert identities[1].attrs["given_name"] == nfd
    assert [i.attrs["family_name"] for i in identities] == ["Ōtsuka", "Zoë", "Nguyễn"]


@pytest.mark.parametrize("email", [
    "x@", "@example.com", "a b@example.com", "ann@example", "ann@@example.com",
    "ann@exa mple.com", "ann@.com", "ann@example.", "ann.example.com",
])
def test_invalid_emails_rejected(tmp_path, email):
    identities, rejected = read(tmp_path, f"employee_id,email\nE1,a@b.co\nE2,{email}\n")
    assert [i.key for i in identities] == ["E1"]
    assert rejected == [Rejected(3, "E2", f"invalid email {email!r}")]


@pytest.mark.parametrize("email", [
    "ann@example.com", "First.Last+tag@sub.Example.co.uk", "o'brien@example.ie", "zoë@exämple.de",
    "иван@пример.рф", "山田@例え.jp", "a@xn--mnchen-3ya.de",
])
def test_valid_emails_accepted(tmp_path, email):
    identities, rejected = read(tmp_path, f'employee_id,email\nE1,"{email}"\n')
    assert rejected == [] and identities[0].attrs["email"] == email


@pytest.mark.parametrize("email", [
    # trailing junk: a second address, a comment, markup
    "ann@example.com x", "a@b.co;c@d.co", "a@b.co,c@d.co", "ann@example.com;", "ann@example.com,",
    "ann@example.com>", "ann@example.com (Ann)",
    # leading junk
    "x ann@example.com", "<ann@example.com>", "mailto:ann@example.com", "Ann <ann@example.com>",
    # Unicode look-alikes: Cyrillic а, Greek ο, full-width ａ, an invisible zero-width space
    "ann@exаmple.com", "аnn@example.com", "ann@example.cοm", "ａnn@example.com", "ann\u200b@example.com",
    # malformed dots, hyphens and host names
    "ann@example..com", ".ann@example.com", "ann.@example.com", "an..n@example.com",
    "ann@-example.com", "ann@example-.com", "ann@example.123", "ann@exam_ple.com",
])
def test_emails_with_junk_or_look_alikes_are_rejected(tmp_path, email):
    identities, rejected = read(tmp_path, f'employee_id,email\nE1,a@b.co\nE2,"{email}"\n')
    assert [i.key for i in identities] == ["E1"]
    assert rejected == [Rejected(3, "E2", f"invalid email {email!r}")]


def test_an_email_empty_after_trimming_is_absent_not_invalid(tmp_path):
    identities, rejected = read(tmp_path, 'employee_id,email\nE1,"   "\nE2," ann@example.com\t"\n')
    assert rejected == [] and [i.attrs for i in identities] == [
        {"employee_id": "E1"}, {"employee_id": "E2", "email": "ann@example.com"}]
    identities, rejected = read(tmp_path, 'employee_id,email\nE1,"   "\n', required=["email"])
    assert identities == [] and rejected == [Rejected(2, "E1", "missing required value 'email'")]


def test_nul_bytes_line_breaks_and_overlong_values_reject_the_row(tmp_path):
    long = "x" * 1025
    identities, rejected = read(tmp_path, (
        "employee_id,title,email\n"
        "E1,Agent\x00Admin,e1@example.com\n"
        'E2,"Agent\nrole=admin",e2@example.com\n'
        'E3,"Agent\rAdmin",e3@example.com\n'
        f"E4,{long},e4@example.com\n"
        f"E5,{long[:1024]},e5@example.com\n"
        "E6\x00,Agent,e6@example.com\n"
        'E7,Agent,"e7@example.com\nBcc: all@example.com"\n'
        "E8,Agent\u2028Admin,e8@example.com\n"))
    assert [i.key for i in identities] == ["E5"]
    assert rejected == [
        Rejected(2, "E1", "title holds a NUL byte"),
        Rejected(3, "E2", "title holds a line break (list it in the source's multiline if it may)"),
        Rejected(5, "E3", "title holds a line break (list it in the source's multiline if it may)"),
        Rejected(7, "E4", "title is 1025 characters long, over the source's max_value_length of 1024"),
        Rejected(9, None, "employee_id holds a NUL byte"),
        Rejected(10, "E7", "email holds a line break (list it in the source's multiline if it may)"),
        Rejected(12, "E8", "title holds a line break (list it in the source's multiline if it may)"),
    ]


def test_the_value_rules_are_configurable(tmp_path):
    content = 'employee_id,title,notes\nE1,Agent,"two\nlines"\nE2,Senior Agent,\n'
    identities, rejected = read(tmp_path, content, multiline=["notes"], max_value_length=9)
    assert [i.key for i in identities] == ["E1"] and identities[0].attrs["notes"] == "two\nlines"
    assert rejected == [Rejected(4, "E2", "title is 12 characters long, over the source's "
                                          "max_value_length of 9")]


def test_several_email_attributes_checked(tmp_path):
    identities, rejected = read(tmp_path, (
        "employee_id,email,private_email\n"
        "E1,a@example.com,\n"
        "E2,b@example.com,nope\n"), emails=["email", "private_email", "not_a_column"])
    assert [i.key for i in identities] == ["E1"]
    assert rejected == [Rejected(3, "E2", "invalid private_email 'nope'")]


def test_emails_differing_in_case_are_not_duplicates(tmp_path):
    identities, rejected = read(tmp_path, (
        "employee_id,email\n"
        "E1,Ann@Example.com\n"
        "E2,ann@example.com\n"))
    assert rejected == []
    assert [i.attrs["email"] for i in identities] == ["Ann@Example.com", "ann@example.com"]


def test_missing_required_values_and_key(tmp_path):
    identities, rejected = read(tmp_path, (
        "employee_id,email,family_name\n"
        "E1,a@example.com,Lee\n"
        "E2,,Kim\n"
        ",c@example.com,Park\n"
        "E4,,\n"
        "E5,x@,\n"), required=["email", "family_name"])
    assert [i.key for i in identities] == ["E1"]
    assert rejected == [
        Rejected(3, "E2", "missing required value 'email'"),
        Rejected(4, None, "missing key 'employee_id'"),
        Rejected(5, "E4", "missing required value 'email'; missing required value 'family_name'"),
        Rejected(6, "E5", "missing required value 'family_name'; invalid email 'x@'"),
    ]


def test_duplicate_keys_reject_every_row_case_insensitively(tmp_path):
    identities, rejected = read(tmp_path, (
        "employee_id,name\n"
        "E0001,Ann\n"
        "E0007,Bob\n"
        "E0002,Cid\n"
        "e0007,Bob again\n"
        "E0003,Dee\n"
        "  E0007 ,Bob thrice\n"
        "E0002,Cid again\n"))
    assert [i.key for i in identities] == ["E0001", "E0003"]
    assert rejected == [
        Rejected(3, "E0007", "duplicate key 'E0007' (also on rows 5, 7)"),
        Rejected(4, "E0002", "duplicate key 'E0002' (also on row 8)"),
        Rejected(5, "e0007", "duplicate key 'e0007' (also on rows 3, 7)"),
        Rejected(7, "E0007", "duplicate key 'E0007' (also on rows 3, 5)"),
        Rejected(8, "E0002", "duplicate key 'E0002' (also on row 4)"),
    ]


def test_duplicate_of_an_otherwise_rejected_row_still_counts(tmp_path):
    identities, rejected = read(tmp_path, (
        "employee_id,email\n"
        "E1,bad@\n"
        "E1,good@example.com\n"))
    assert identities == []
    assert rejected == [
        Rejected(2, "E1", "invalid email 'bad@'; duplicate key 'E1' (also on row 3)"),
        Rejected(3, "E1", "duplicate key 'E1' (also on row 2)"),
    ]


def test_too_many_cells_rejected_fewer_cells_padded(tmp_path):
    identities, rejected = read(tmp_path, (
        "employee_id,name,email\n"
        "E1,Doe, Jane,jane@example.com\n"
        "E2,Bob\n"
        "E3\n"
        "E4,Kim,kim@example.com,,\n"), required=["name"])
    assert [i.attrs for i in identities] == [{"employee_id": "E2", "name": "Bob"}]
    assert rejected == [
        Rejected(2, "E1", "row has 4 cells, the header has 3"),
        Rejected(4, "E3", "missing required value 'name'"),
        Rejected(5, "E4", "row has 5 cells, the header has 3"),
    ]


def test_bad_quoting_rejects_the_row_only(tmp_path):
    identities, rejected = read(tmp_path, (
        "employee_id,name\n"
        'E1,"Ann" Lee\n'
        "E2,Bob\n"
        'E3,"Cid\n'))
    assert [i.key for i in identities] == ["E2"]
    assert [(r.row, r.reason) for r in rejected] == [
        (2, "cannot parse the row: ',' expected after '\"'"),
        (4, "cannot parse the row: a quoted cell is never closed"),
    ]


def test_column_mapping(tmp_path):
    identities, rejected = read(tmp_path, (
        "Employee ID,E-Mail,Dept\n"
        "E1,a@example.com,IT\n"), columns={"Employee ID": "employee_id", "E-Mail": "email"},
        required=["email"])
    assert rejected == []
    assert identities[0].attrs == {"employee_id": "E1", "email": "a@example.com", "Dept": "IT"}


def test_columns_without_a_header_are_ignored(tmp_path):
    identities, rejected = read(tmp_path, "employee_id,name,,\nE1,Ann,,\nE2,Bob,x,\n")
    assert rejected == []
    assert [i.attrs for i in identities] == [
        {"employee_id": "E1", "name": "Ann"}, {"employee_id": "E2", "name": "Bob"}]


def test_header_only(tmp_path):
    assert read(tmp_path, "employee_id,email\n") == ([], [])


# --- whole-file problems -----------------------------------------------------------

def test_missing_key_column(tmp_path):
    assert error(tmp_path, "id,name,email\nE1,Ann,a@example.com\n") == (
        f"{tmp_path}/people.csv: no column 'employee_id' (the key); the header has: id, name, email")


def test_missing_required_column(tmp_path):
    assert error(tmp_path, "employee_id,name\nE1,Ann\n", required=["email"]) == (
        f"{tmp_path}/people.csv: no column 'email' (listed in source.required); "
        "the header has: employee_id, name")


def test_missing_file(tmp_path):
    settings = CsvSourceSettings(path=tmp_path / "people.csv", key="employee_id")
    with pytest.raises(ConfigError, match=r"people\.csv: file not found$"):
        read_csv(settings)


@pytest.mark.parametrize("content", ["", "\n\n", " , \n"])
def test_empty_file(tmp_path, content):
    assert error(tmp_path, content) == f"{tmp_path}/people.csv: the file is empty (expected a header row)"


def test_duplicate_header(tmp_path):
    assert error(tmp_path, "employee_id,email,name, email\nE1,a,b,c\n") == (
        f"{tmp_path}/people.csv: the header has column 'email' twice (columns 2 and 4)")


def test_duplicate_header_after_mapping(tmp_path):
    message = error(tmp_path, "employee_id,Mail,email\n", columns={"Mail": "email"})
    assert message == (f"{tmp_path}/people.csv: the header has column 'email' twice "
                       "(columns 2 ('Mail') and 3 ('email'))")


# --- through the config ------------------------------------------------------------

def test_config_and_reader_together(tmp_path, monkeypatch):
    monkeypatch.setenv("PROV_TEST_CSV_TOKEN", "csv-test-token-1")
    monkeypatch.delenv("PROVISIONER_DB", raising=False)
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "people.csv").write_bytes(
        "Personalnummer;Vorname;E-Mail\nP1;Zoë;zoe@example.de\n".encode("cp1252"))
    (tmp_path / "config.toml").write_text("""
[source]
type = "csv"
path = "exports/people.csv"
key = "employee_id"
delimiter = ";"
encoding = "cp1252"
required = ["email"]
[source.columns]
Personalnummer = "employee_id"
"E-Mail" = "email"

[targets.directory]
type = "scim"
base_url = "http://127.0.0.1:8080/scim/v2"
token = "env:PROV_TEST_CSV_TOKEN"
mapping = "directory.toml"
""", encoding="utf-8")
    monkeypatch.chdir("/")
    result = read_csv(load_config(tmp_path / "config.toml").source)
    assert result.identities == (
        Identity("P1", {"employee_id": "P1", "Vorname": "Zoë", "email": "zoe@example.de"}, 2),)


def test_100k_rows_all_read_with_their_line_numbers(tmp_path):
    # the timing goal lives in bench/plan_100k.py; this checks nothing is lost at size
    lines = ["employee_id,given_name,family_name,email,department,title,manager"]
    lines += [f'E{i:06d},Zoë {i},"Ōtsuka, Jr",user{i}@example.com,Dept {i % 50},Engineer,E{i // 10:06d}'
              for i in range(100_000)]
    settings = source(tmp_path, "\n".join(lines) + "\n", required=["email"])
    result = read_csv(settings)
    assert len(result.identities) == 100_000 and result.rejected == ()
    assert result.identities[-1].row == 100_001


@pytest.mark.parametrize("email, valid", [
    # the same structural rules on the path for non-ASCII addresses (an all-ASCII one takes a
    # regular expression): one-letter and 63-letter labels, hyphens, dots, digits-only top level
    ("änn@example.com", True), ("änn@a.de", True), ("änn@x-y.de", True), ("änn@sub.example.co.uk", True),
    ("änn@" + "a" * 63 + ".de", True), ("ä+tag@example.com", True),
    ("änn@" + "a" * 64 + ".de", False), ("änn@example..com", False), (".änn@example.com", False),
    ("änn.@example.com", False), ("ä..n@example.com", False), ("änn@-example.com", False),
    ("änn@example-.com", False), ("änn@example.123", False), ("änn@exam_ple.com", False),
    ("änn@example", False), ("änn@.com", False), ("änn@example.", False), ("ä n@example.com", False),
    ("änn@@example.com", False), ("@exämple.com", False), ("änn", False),
])
def test_non_ascii_addresses_follow_the_same_rules(email, valid):
    from provisioner.sources.rows import valid_email
    assert valid_email(email) is valid
