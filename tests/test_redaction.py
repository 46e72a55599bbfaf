"""No credential, in any spelling, leaves the process: servers on 127.0.0.1 that quote the
request's credentials back in their errors (scripted_server.echo), or break HTTP with a line
quoting them (scripted_server.protocol_breaker), against the real CLI and the HTTP layer.

Each secret holds characters that change when escaped or encoded (" \\ + / = & and, where it
travels in a body, a non-ASCII letter), so only a redaction that knows every spelling passes.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest

from conftest import bodies
from provisioner import http as H
from provisioner.connectors.clienttrack.auth import CtapiKeyAuth
from provisioner.errors import TargetError
from provisioner.secrets import RedactingFilter, Secret
from scripted_server import Reply, ScriptedServer, echo, protocol_breaker, quoted
from default_mappings import shipped_mapping

REPO = Path(__file__).resolve().parent.parent

BEARER = 'scim-bearer"tok\\en+/=&1'
BASIC_USER, BASIC_PASSWORD = "svc-usr", 'basic-pass"w\\rd+/=&2'
CT_SUBSCRIPTION, CT_API_KEY = 'ct-sub"key\\+/=&3', 'ct-api"key\\+/=&4'
CCC_SECRET = 'ccc-secret"kéy\\+/=&5'
YTEL_PASSWORD = 'ytel-pass"wörd\\+/=&6'
YTEL_ACCESS, YTEL_REFRESH = 'ytel-access"tok\\+/=7', 'ytel-refresh"tok\\+/=8'
ONECLOUD_SECRET = 'onecloud-secret"kéy\\+/= &9'


def spellings(secret: str) -> set[str]:
    """The ways error text can quote a secret (the spec; provisioner.secrets has its own list)."""
    raw = secret.encode("utf-8")
    return {secret, repr(secret)[1:-1], repr(raw)[2:-1], json.dumps(secret)[1:-1],
            json.dumps(secret, ensure_ascii=False)[1:-1], quote(secret), quote(secret, safe=""),
            quote_plus(secret),
            base64.b64encode(raw).decode("ascii")}


def basic_wire(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def assert_no_secret(text: str, secrets: list[str], *, extra: tuple[str, ...] = ()) -> None:
    for secret in secrets:
        for form in spellings(secret) | set(extra):
            assert form not in text, f"{form!r} (a spelling of a secret) leaked"


# --- targets answering with an echo --------------------------------------------------

def ytel_server_respond():
    """Ytel's token endpoint grants once; everything after is refused with an echo that also
    quotes the request before it (a server keeping a debug trace), so the refresh grant's
    refresh token shows up in the final error along with the password of the second login."""
    state = {"granted": False, "previous": None}

    def respond(seen):
        previous, state["previous"] = state["previous"], seen
        if seen.path == "/auth/v3/token" and not state["granted"]:
            state["granted"] = True
            return Reply(200, {"status": True, "payload": [
                {"accessToken": YTEL_ACCESS, "refreshToken": YTEL_REFRESH}]})
        reply = echo(401)(seen)
        text = quoted(seen) + (f" previous {quoted(previous)}" if previous else "")
        reply.body["error"] = [{"code": 401, "message": text}]
        return reply
    return respond


# name -> (config keys, environment, secrets, extra spellings, respond)
TARGETS = {
    "scim-bearer": ('type = "scim"\ntoken = "env:T_TOKEN"\nmapping = "directory.toml"',
                    # a trailing newline, as a Kubernetes secret made from a file has
                    {"T_TOKEN": BEARER + "\n"}, [BEARER], (), echo(400)),
    "scim-basic": (f'type = "scim"\nusername = "{BASIC_USER}"\npassword = "env:T_PASSWORD"\n'
                   'mapping = "directory.toml"', {"T_PASSWORD": BASIC_PASSWORD}, [BASIC_PASSWORD],
                   (basic_wire(BASIC_USER, BASIC_PASSWORD),), echo(422)),
    "clienttrack": ('type = "clienttrack"\nsubscription_key = "env:T_SUB"\napi_key = "env:T_KEY"\n'
                    'mapping = "clienttrack.toml"', {"T_SUB": CT_SUBSCRIPTION, "T_KEY": CT_API_KEY},
                    [CT_SUBSCRIPTION, CT_API_KEY], (), echo(400)),
    "ccc": ('type = "ccc"\nclient_id = 4242\nusername = "ws"\nsecret_key = "env:T_CCC"\nmapping = "ccc.toml"',
            {"T_CCC": CCC_SECRET}, [CCC_SECRET], (), echo(401)),
    "ytel": ('type = "ytel"\nusername = "api@example.com"\npassword = "env:T_YTEL"\n'
             'account_id = "acct-1"\nmapping = "ytel.toml"', {"T_YTEL": YTEL_PASSWORD},
             [YTEL_PASSWORD, YTEL_ACCESS, YTEL_REFRESH], (), None),
    "onecloud": ('type = "onecloud"\nclient_id = "admin"\nclient_secret = "env:T_OC"\nmapping = "onecloud.toml"',
                 {"T_OC": ONECLOUD_SECRET}, [ONECLOUD_SECRET], (), echo(401)),
}


class EchoWorkspace:
    def __init__(self, root: Path, kind: str, server: ScriptedServer, hook: ScriptedServer):
        keys, env, self.secrets, self.extra, _ = TARGETS[kind]
        mapping = keys.rsplit('mapping = "', 1)[1].rstrip('"')
        (root / mapping).write_text(shipped_mapping(mapping).read_text(encoding="utf-8"), encoding="utf-8")
        # the columns the shipped mappings read (a mapping naming a missing one is refused)
        (root / "people.csv").write_text(
            "employee_id,given_name,family_name,email,department,title,status,timezone,work_phone,mobile_phone,role\n"
            "E1,Ada,Lovelace,ada@example.com,Support,Agent,active,UTC,,,Agent\n", encoding="utf-8")
        (root / "config.toml").write_text(f"""
[state]
url = "sqlite:///state.db"
[source]
type = "csv"
path = "people.csv"
key = "employee_id"
[targets.echoing]
base_url = "{server.url}"
{keys}
[notify]
webhooks = ["{hook.url}/hook"]
timeout = 5
""", encoding="utf-8")
        self.root = root
        self.env = {**os.environ, **env, "COLUMNS": "200"}
        self.env.pop("PROVISIONER_DB", None)

    def run(self, *args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "provisioner", *args], cwd=self.root, env=self.env,
                              capture_output=True, text=True, timeout=120)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc.stdout + proc.stderr

    def db_text(self) -> str:
        return (self.root / "state.db").read_bytes().decode("utf-8", "replace")


@pytest.mark.parametrize("kind", list(TARGETS))
def test_a_server_quoting_the_credentials_back_leaks_them_nowhere(tmp_path, kind, hook):
    respond = TARGETS[kind][4] or ytel_server_respond()
    with ScriptedServer(respond=respond) as server:
        ws = EchoWorkspace(tmp_path, kind, server, hook)
        outputs = [ws.run("-v", "--log-format", "json", "schedule", "--once"),
                   ws.run("-v", "check"),
                   ws.run("plan", "--json"),
                   ws.run("show", "latest", "--json")]
    notifications = json.dumps(bodies(hook), ensure_ascii=False)
    everything = "\n".join([*outputs, notifications, ws.db_text()])
    # the echo did reach every place looked at: it is what they would leak
    for place in (*outputs, notifications, ws.db_text()):
        assert "ECHO" in place
    assert_no_secret(everything, ws.secrets, extra=ws.extra)
    assert "***" in everything


# --- the HTTP layer on its own: exceptions and log lines --------------------------------

class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


AUTHS = {
    "bearer": (lambda: H.BearerAuth(Secret(BEARER, "env:B")), [BEARER], ()),
    "basic": (lambda: H.BasicAuth(BASIC_USER, Secret(BASIC_PASSWORD, "env:P")), [BASIC_PASSWORD],
              (basic_wire(BASIC_USER, BASIC_PASSWORD),)),
    "clienttrack": (lambda: CtapiKeyAuth(Secret(CT_SUBSCRIPTION, "env:S"), Secret(CT_API_KEY, "env:K")),
                    [CT_SUBSCRIPTION, CT_API_KEY], ()),
}


@pytest.mark.parametrize("kind", list(AUTHS))
@pytest.mark.parametrize("server", ["echo-500", "protocol-breaker"])
def test_errors_and_log_lines_quote_no_credential(kind, server, caplog):
    make_auth, secrets, extra = AUTHS[kind]
    respond = echo(500) if server == "echo-500" else protocol_breaker
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RedactingFilter())   # as the CLI's log handler does
    with ScriptedServer(respond=respond) as srv, \
            H.make_client(auth=make_auth(), retries=1, sleep=Sleeps()) as client:
        url = f"{srv.url}/Users?filter=x&password={quote_plus(secrets[0])}"
        try:
            response = client.get(url)
            error = H.error_for("crm", "list accounts", response)
        except TargetError as exc:
            error = exc
    text = str(error)
    assert "ECHO" in text or "Echo" in text          # what the server said is in the error
    log_text = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert_no_secret(text + log_text, secrets, extra=extra)


# --- each layer on its own: the readers of error bodies, and the exceptions ---------------

def _echoed(status: int, secret: str) -> httpx.Response:
    """An answer quoting a request that carried `secret` as a header, a query and a JSON body."""
    request = httpx.Request("POST", f"http://127.0.0.1/x?key={quote_plus(secret)}",
                            headers={"Authorization": f"Bearer {secret}"}, json={"password": secret})
    seen_headers = {"Authorization": request.headers["Authorization"]}
    from scripted_server import Seen
    seen = Seen("POST", "/x", {}, seen_headers, request.read(), str(request.url.raw_path, "ascii"))
    reply = echo(status)(seen)
    return httpx.Response(status, json=reply.body, request=request)


def _readers():
    from provisioner.connectors.ccc import target as ccc
    from provisioner.connectors.ytel import envelope as ytel_envelope
    from provisioner.connectors.ytel import ycc_target as ytel_ycc
    return {
        "http.error_detail": lambda r: H.error_detail(r)[0],
        "ytel_envelope.error_text": lambda r: ytel_envelope.error_text(r, r.json()),
        "ytel_ycc.message": lambda r: ytel_ycc.message(r, r.json()),
        "ccc.answer_code_text": lambda r: ccc.answer_code_text(r.json())[1],
    }


@pytest.mark.parametrize("reader", ["http.error_detail", "ytel_envelope.error_text", "ytel_ycc.message",
                                    "ccc.answer_code_text"])
def test_every_reader_of_an_error_body_redacts_what_it_quotes(reader):
    secret = 'reader-secret"x\\+/=&9'   # it travels in a header too: ASCII
    Secret(secret, "env:R")    # resolved, so known to redaction
    text = _readers()[reader](_echoed(400, secret))
    assert "ECHO" in text
    assert_no_secret(text, [secret])


def test_an_exception_message_is_redacted_as_it_is_made():
    from provisioner.errors import ConfigError, NotFound
    secret = 'exception-secret"x\\+/=&é'
    Secret(secret, "env:E")
    for error in (TargetError(f"refused: {json.dumps(secret)} {secret!r}", 400),
                  NotFound(f"gone: {quote(secret)}"), ConfigError(f"bad: {secret.encode()!r}")):
        assert "***" in str(error)
        assert_no_secret(str(error), [secret])
