"""secrets.py in process: references, the short-value floor, every spelling a
server or library may quote a secret in, longest-first redaction, redact_tree
and the log filter. tests/test_redaction.py checks the same end to end
through targets and the CLI; these are the fast checks mutation testing runs.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from urllib.parse import quote, quote_plus

import pytest

from provisioner.secrets import (RedactingFilter, Secret, SecretReferenceError, redact, redact_tree,
                                 register, resolve)


def fresh(prefix: str = "") -> str:
    """A value no other test has registered (redaction state is process-wide)."""
    return prefix + uuid.uuid4().hex[:12]


def test_a_non_string_reference_is_refused_with_the_two_forms():
    with pytest.raises(SecretReferenceError) as err:
        resolve(42)
    assert str(err.value) == 'must be a string of the form "env:NAME" or "file:PATH"'


def test_an_unknown_kind_is_refused_not_read_as_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "thing").write_text("not-to-be-read")
    with pytest.raises(SecretReferenceError) as err:
        resolve("vault:thing")
    assert str(err.value) == ('secrets are never written in the config: use "env:NAME" or "file:PATH"')


def test_env_reference_keeps_its_reference_for_display(monkeypatch):
    value = fresh("env-")
    monkeypatch.setenv("PROV_TEST_SECRET", f"  {value}\n")
    secret = resolve("env:PROV_TEST_SECRET")
    assert secret.reveal() == value
    assert repr(secret) == str(secret) == "Secret('env:PROV_TEST_SECRET')"


def test_file_reference_with_a_colon_in_its_path(tmp_path):
    # only the first colon separates the kind: a path may hold more
    folder = tmp_path / "a:b"
    folder.mkdir()
    value = fresh("file-")
    (folder / "token").write_text(value + "\n", encoding="utf-8")
    secret = resolve(f"file:{folder}/token")
    assert secret.reveal() == value
    assert secret.reference == f"file:{folder}/token"


def test_relative_file_reference_without_base_dir_is_read_from_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    value = fresh("rel-")
    (tmp_path / "tok").write_text(value, encoding="utf-8")
    assert resolve("file:tok").reveal() == value


def test_relative_file_reference_is_read_next_to_the_config(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "tok").write_text("from-base-dir", encoding="utf-8")
    (tmp_path / "tok").write_text("from-cwd", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert resolve("file:tok", base_dir=tmp_path / "conf").reveal() == "from-base-dir"


def test_non_ascii_secret_file_is_read_as_utf8(tmp_path):
    (tmp_path / "tok").write_bytes("pässwörd-ü".encode("utf-8"))
    assert resolve(f"file:{tmp_path}/tok").reveal() == "pässwörd-ü"


def test_blank_secret_file_is_refused_naming_the_file(tmp_path):
    (tmp_path / "tok").write_text("  \n", encoding="utf-8")
    with pytest.raises(SecretReferenceError) as err:
        resolve(f"file:{tmp_path}/tok")
    assert str(err.value) == f"secret file {tmp_path}/tok is empty"


def test_values_shorter_than_four_characters_are_not_redacted_but_four_are():
    register("ab1")     # nor its longer spellings: base64 "YWIx"
    assert redact("tab1e ab1 YWIx") == "tab1e ab1 YWIx"
    four = fresh()[:4]
    register(four)
    assert redact(f"<{four}>") == "<***>"


# A secret with a quote, a double quote, a backslash, a space, a slash, a plus
# and a non-ASCII letter: each way of quoting it spells it differently.
def _awkward() -> str:
    return "K'y\"\\ p/ö+" + fresh()


SPELLINGS = {
    "str repr": lambda s: repr(s)[1:-1],
    "bytes repr": lambda s: repr(s.encode("utf-8"))[2:-1],
    "JSON": lambda s: json.dumps(s)[1:-1],
    "JSON, non-ASCII kept": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    "URL path": lambda s: quote(s),
    "URL query": lambda s: quote(s, safe=""),
    "form body": lambda s: quote_plus(s),
    "base64": lambda s: base64.b64encode(s.encode("utf-8")).decode("ascii"),
    "base64url": lambda s: base64.urlsafe_b64encode(s.encode("utf-8")).decode("ascii"),
}


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_each_spelling_of_a_secret_is_redacted_whole(spelling):
    value = _awkward()
    Secret(value, "env:X")
    quoted = SPELLINGS[spelling](value)
    assert quoted != value or spelling == "JSON, non-ASCII kept"
    assert redact(f"server said <{quoted}>.") == "server said <***>."


def test_base64_spellings_cover_the_url_safe_alphabet():
    # bytes chosen so that standard base64 has '+' and '/', which the URL-safe form replaces
    value = "\u00fb\u00ef\u00bf" + fresh()
    Secret(value, "env:X")
    standard = base64.b64encode(value.encode("utf-8")).decode("ascii")
    urlsafe = base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii")
    assert standard != urlsafe
    assert redact(f"[{standard}] [{urlsafe}]") == "[***] [***]"


def test_a_secret_containing_another_is_redacted_whole():
    # replacing the inner one first would leave the outer one's ends in the text
    inner = "zzzz" + fresh()
    outer = "a" + inner + "b"
    register(inner)
    register(outer)
    assert redact(f"({outer})") == "(***)"
    assert redact(f"({inner})") == "(***)"


def test_redact_tree_redacts_keys_values_and_lists():
    value = fresh("tree-")
    register(value)
    doc = {f"k-{value}": [f"v {value}", 3, None, (value,)], "n": {"deep": value}, "ok": "plain"}
    assert redact_tree(doc) == {"k-***": ["v ***", 3, None, ["***"]], "n": {"deep": "***"}, "ok": "plain"}
    assert redact_tree(7) == 7


def _logged(*args) -> str:
    logger = logging.getLogger("test_secrets." + fresh())
    logger.propagate = False
    logger.setLevel(logging.INFO)
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.info(*args)
    return "\n".join(lines)


def test_log_filter_redacts_an_argument():
    value = fresh("log-")
    register(value)
    assert _logged("token %s sent", value) == "token *** sent"


def test_log_filter_redacts_a_message_without_arguments():
    value = fresh("log-")
    register(value)
    assert _logged(f"token {value} sent") == "token *** sent"


def test_log_filter_lets_harmless_lines_through_unchanged():
    assert _logged("count %d of %s", 3, "users") == "count 3 of users"
    assert _logged("plain line") == "plain line"
