"""A local CCS (Contact Center Services) API: extensions listed in both modes,
their agent settings updated with PUT, agent state, presence options, in the
answer shapes of the vendor's document (shared seed 004), quirks included:
`total` is a string, every value is a string, a 400 carries a `reason`, a 401
is {"status": 401, "reason": "Unauthorized"} and a 500 claims success.

The extension list answers exactly the fields of the document's example
(uuid, lastname, firstname, extension): the agent settings a PUT writes are
kept here but no documented call reads them back. Tests look at them in
`extensions` (in process) or in the state file (`sandbox serve`).

What the document leaves open is a knob here: the auth header and scheme.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ...sandbox.server import Emulator, Faults, HttpError, Request, faults_of

API = "/6/v2/api"
RECORDING_TYPES = ("None", "Mandatory", "On Demand")
PRESENCE_OPTIONS = (("sign_out", "Holiday In Bahamas"), ("sign_out", "Sign Out"), ("away", "Coffee Break"))
_SETTINGS = ("is_agent", "recording_type", "monitor", "max_chats", "is_multimedia_enabled")
_FLAGS = ("is_agent", "monitor", "is_multimedia_enabled")
# what the document's list example shows of an extension, in its order
_LISTED = ("uuid", "lastname", "firstname", "extension")


@dataclass
class CcsOptions:
    token: str = "sandbox-token"
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    tenant_uuid: str = "81bf95ea-53d6-48e2-85cd-f8d6bde10fd9"
    presence_options: tuple[tuple[str, str], ...] = PRESENCE_OPTIONS
    extensions: list[dict] = field(default_factory=list)   # seeded extensions


def _bad(reason: str) -> HttpError:
    return HttpError(400, reason, {"success": False, "reason": reason})


class CcsEmulator(Emulator):
    name = "ccs"

    def __init__(self, options: CcsOptions | None = None, faults: Faults | None = None, **kwargs):
        self.options = options or CcsOptions()
        self.extensions: dict[str, dict] = {}      # uuid -> record
        self.fail_next_puts = 0                    # PUTs still to answer the 500 quirk
        self.presence = [{"uuid": str(uuid.uuid4()), "type": t, "name": n}
                         for t, n in self.options.presence_options]
        super().__init__(faults, **kwargs)
        for record in self.options.extensions:
            self.add_extension(**record)

    def routes(self):
        ext = r"/tenants/(?P<tenant>[^/]+)/extensions"
        return [
            ("GET", f"{API}/extensions", self.list_tenant_level),
            ("GET", f"{API}{ext}", self.list_telco),
            ("PUT", f"{API}{ext}/(?P<id>[^/]+)", self.update),
            ("POST", f"{API}{ext}/(?P<id>[^/]+)", self.post_telco),
            ("POST", f"{API}/extensions/(?P<id>[^/]+)", self.post_tenant_level),
            ("GET", f"{API}{ext}/(?P<id>[^/]+)/agent_state", self.agent_state),
            ("GET", f"{API}/tenants/(?P<tenant>[^/]+)/presence_options", self.presence_list),
            ("GET", f"{API}/tenants", self.tenants),
        ]

    # -- state -----------------------------------------------------------------

    def add_extension(self, firstname: str, lastname: str, extension: str, **settings: Any) -> dict:
        record = {"uuid": settings.pop("uuid", None) or str(uuid.uuid4()), "firstname": firstname,
                  "lastname": lastname, "extension": str(extension), "is_agent": "false",
                  "recording_type": "None", "monitor": "false", "max_chats": "0",
                  "is_multimedia_enabled": "false", "agent_state": "Sign Out"}
        record.update({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in settings.items()})
        with self.lock:
            self.extensions[record["uuid"]] = record
        return record

    def by_number(self, extension: str) -> dict | None:
        with self.lock:
            return next((e for e in self.extensions.values() if e["extension"] == str(extension)), None)

    def snapshot(self) -> Any:
        with self.lock:
            return {"extensions": self.extensions}

    def restore(self, data: Any) -> None:
        with self.lock:
            self.extensions = dict(data.get("extensions") or {})

    # -- answers in the vendor's shapes --------------------------------------------

    def dispatch(self, request: Request):
        status, body, headers = super().dispatch(request)
        if status == 500:   # the documented quirk: a failure that says it succeeded
            body = {"success": True, "reason": "Internal Server Error"}
        elif status == 401:
            body = {"status": 401, "reason": "Unauthorized"}
        elif status >= 400 and not (isinstance(body, dict) and "reason" in body):
            detail = body.get("detail") if isinstance(body, dict) else None
            body = {"success": False, "reason": detail or "Bad Request"}
        return status, body, headers

    def _auth(self, request: Request) -> None:
        value = (request.headers.get(self.options.auth_header) or "").strip()
        scheme = self.options.auth_scheme
        expected = f"{scheme} {self.options.token}" if scheme else self.options.token
        if value != expected:
            raise HttpError(401, "Unauthorized")

    def _tenant(self, request: Request) -> None:
        if request.params.get("tenant") != self.options.tenant_uuid:
            raise _bad("Invalid tenant")

    def _extension(self, request: Request) -> dict:
        record = self.extensions.get(request.params["id"])
        if record is None:
            raise _bad("Extension not found")
        return record

    def _items(self, items: list) -> tuple[int, dict]:
        return 200, {"total": str(len(items)), "success": True, "items": items}

    # -- handlers ----------------------------------------------------------------

    def _list(self) -> tuple[int, dict]:
        with self.lock:
            items = [{k: e[k] for k in _LISTED}
                     for e in sorted(self.extensions.values(), key=lambda e: e["extension"])]
        return self._items(items)

    def list_tenant_level(self, request: Request):
        self._auth(request)
        return self._list()

    def list_telco(self, request: Request):
        self._auth(request)
        self._tenant(request)
        return self._list()

    def update(self, request: Request):
        self._auth(request)
        self._tenant(request)
        body = request.json()
        if not isinstance(body, dict):
            raise _bad("Invalid request body")
        with self.lock:
            if self.fail_next_puts > 0:
                self.fail_next_puts -= 1
                return 500, {}
            record = self._extension(request)
            changed = dict(record)
            for key, value in body.items():
                if key not in _SETTINGS:
                    raise _bad(f"Invalid field: {key}")
                if not isinstance(value, str):
                    raise _bad(f"{key} must be a string")
                if key in _FLAGS and value not in ("true", "false"):
                    raise _bad(f"Invalid value for {key}")
                if key == "recording_type" and value not in RECORDING_TYPES:
                    raise _bad("Invalid recording type")
                if key == "max_chats" and not (value.isdigit() and 0 <= int(value) <= 6):
                    raise _bad("max_chats must be between 0 and 6")
                changed[key] = value
            self.extensions[record["uuid"]] = changed
        return 200, {"success": True}

    def _update_state(self, request: Request):
        body = request.json()
        if not isinstance(body, dict) or body.get("request") != "updateAgentState":
            raise _bad("Invalid request")
        name = body.get("name")
        with self.lock:
            record = self._extension(request)
            if name != "Ready" and name not in {p["name"] for p in self.presence}:
                raise _bad(f"Invalid presence: {name}")
            record["agent_state"] = name
        return 200, {"success": True}

    def post_telco(self, request: Request):
        self._auth(request)
        self._tenant(request)
        return self._update_state(request)

    def post_tenant_level(self, request: Request):
        self._auth(request)
        return self._update_state(request)

    def agent_state(self, request: Request):
        self._auth(request)
        self._tenant(request)
        with self.lock:
            name = self._extension(request)["agent_state"]
        kind = next((p["type"] for p in self.presence if p["name"] == name), "ready")
        return 200, {"success": True, "queue_state": {"state": "None", "queue": "", "duration": "0"},
                     "phone_state": {"state": "Idle", "duration": "0:00:00"}, "consecutive_missed": 0,
                     "agent_state": {"state": {"type": kind, "name": name}, "duration": "0:00:00"}}

    def presence_list(self, request: Request):
        self._auth(request)
        self._tenant(request)
        return self._items(list(self.presence))

    def tenants(self, request: Request):
        self._auth(request)
        return self._items([{"uuid": self.options.tenant_uuid, "status": "enable", "name": "Sandbox"}])


# -- `provisioner demo` --------------------------------------------------------

# The demo's Support people as CCS holds them before the first run: extensions
# made by hand, none an agent yet, names written without accents.
_DEMO_EXTENSIONS = ("Ada Lovelace", "Grace Hopper", "ZOE Otsuka", "Jose Nunez", "Katherine Johnson",
                    "Edsger Dijkstra", "Barbara Liskov", "Donald Knuth", "Frances Allen",
                    "Tim Berners-Lee", "Margaret Hamilton", "Linus Torvalds", "Radia Perlman")


def demo_target(secret):
    from ...sandbox.demo_targets import DemoTarget
    token = secrets_token()
    options = CcsOptions(token=token, extensions=[
        dict(firstname=name.split(" ", 1)[0], lastname=name.split(" ", 1)[1], extension=str(101 + n))
        for n, name in enumerate(_DEMO_EXTENSIONS)])
    reference = secret("ccs_token", token)

    def config(base_url: str) -> str:
        return (f'[targets.ccs]\ntype = "ccs"\nbase_url = "{base_url}"\ntoken = "{reference}"\n'
                f'tenant_uuid = "{options.tenant_uuid}"\nsignout_presence = "Sign Out"\n'
                'mapping = "mappings/ccs.toml"\n')
    return DemoTarget(name="ccs", label="CCS emulator", emulator=CcsEmulator(options),
                      config=config)


def secrets_token() -> str:
    import secrets
    return secrets.token_hex(16)


def build(settings) -> Emulator:
    """The emulator a [sandbox.ccs] table describes (`provisioner sandbox serve`)."""
    options = CcsOptions(token=settings.token.reveal(), tenant_uuid=settings.tenant_uuid)
    return CcsEmulator(options, faults_of(settings), state_file=settings.state_file)
