"""A local CCC WebServices account: the signed POST /ws/{Resource}/{Action} API
with Ping and the agent actions the connector is configured with (shared
api-notes §5, seed 000).

Every request's token is verified exactly as CCC describes it: recomputed from
the Data received and the secret key known here. A wrong secret, a Data
changed after signing, a wrong AuthUsername or a RequestDateTime further than
`window` seconds from now (in the account's time zone) is answered 401.

The agent actions are not documented by CCC; their names, the id and active
fields and where the list sits in Data are options here, mirroring the
connector's configuration. `soft_errors` answers refusals as HTTP 200 with the
error in ResponseCode, which is how a CCC resource may answer too.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

from .auth import DATETIME_FORMAT, PARAMETERS, auth_token, decode_parameters
from .target import DEFAULT_ACTIONS, is_true
from ...sandbox.demo_targets import DemoTarget, SecretWriter
from ...sandbox.server import Emulator, Faults, HttpError, Request, faults_of


@dataclass
class CccOptions:
    client_id: str = "1001"
    username: str = "sandbox"
    secret_key: str = field(default="sandbox-secret", repr=False)
    time_zone: str | None = None            # the zone RequestDateTime is read in; None: the host's
    window: float = 300.0                   # seconds RequestDateTime may differ from now
    actions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    id_field: str = "AgentID"
    active_field: str = "Active"
    list_key: str = "Agents"
    unique_field: str = "Username"          # required on add, unique ignoring case
    first_id: int = 5001
    soft_errors: bool = False
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)


def _refusal(status: int, code: int, text: str) -> HttpError:
    return HttpError(status, text, {"ResponseCode": code, "ResponseText": text})


class CccEmulator(Emulator):
    name = "ccc"

    def __init__(self, options: CccOptions | None = None, faults: Faults | None = None, **kwargs):
        self.options = options or CccOptions()
        self.agents: dict[str, dict] = {}       # str(id) -> agent record
        self.next_id = self.options.first_id
        self._handlers = {"list": self.agent_list, "add": self.agent_add, "update": self.agent_update,
                          "disable": self.agent_disable, "enable": self.agent_enable, "ping": self.ping}
        super().__init__(faults, **kwargs)

    def routes(self):
        return [("POST", r"/ws/(?P<route>.+?)", self.ws)]

    def snapshot(self) -> Any:
        with self.lock:
            return {"agents": list(self.agents.values()), "next_id": self.next_id}

    def restore(self, data: Any) -> None:
        with self.lock:
            self.agents = {str(a[self.options.id_field]): a for a in data.get("agents", [])}
            self.next_id = int(data.get("next_id", self.options.first_id))

    # -- the signed envelope ---------------------------------------------------

    def ws(self, request: Request):
        route = request.params["route"].strip("/")
        action = next((a for a, r in self.options.actions.items() if r.strip("/") == route), None)
        if action is None:
            raise _refusal(404, 404, f"unknown resource {route}")
        data = self.verify(request)
        try:
            code, answer = self._handlers[action](data)
        except HttpError as exc:
            if self.options.soft_errors and exc.status not in (401, 500):
                return 200, exc.body
            raise
        return 200, {"ResponseCode": code, "Data": answer}

    def verify(self, request: Request) -> Any:
        """The request's Data (parsed) once its four parameters check out; 400/401 otherwise."""
        o = self.options
        params = decode_parameters(request.body, request.headers.get("Content-Type") or "")
        missing = [p for p in PARAMETERS if p not in params]
        if missing:
            raise _refusal(400, 400, f"missing parameter {missing[0]}")
        if params["AuthUsername"] != o.username:
            raise _refusal(401, 401, "unknown AuthUsername")
        try:
            sent = datetime.strptime(params["RequestDateTime"], DATETIME_FORMAT)
            # a naive time's astimezone() reads it as the host's local time
            sent = sent.replace(tzinfo=ZoneInfo(o.time_zone)) if o.time_zone else sent.astimezone()
        except ValueError:
            raise _refusal(400, 400, "RequestDateTime must be YYYY-MM-DD HH:MM:SS") from None
        skew = abs((o.clock() - sent).total_seconds())
        if skew > o.window:
            raise _refusal(401, 401, f"RequestDateTime is {skew:.0f} s from the server's time "
                                     f"(allowed: {o.window:g} s)")
        expected = auth_token(params["Data"].encode("utf-8"), o.client_id, o.username, o.secret_key,
                              params["RequestDateTime"])
        if not hmac.compare_digest(expected, params["AuthToken"]):
            raise _refusal(401, 401, "invalid AuthToken")
        try:
            return json.loads(params["Data"] or "null")
        except ValueError:
            raise _refusal(400, 400, "Data is not valid JSON") from None

    # -- actions -----------------------------------------------------------------

    def ping(self, data: Any):
        return 200, {"Pong": True}

    def agent_list(self, data: Any):
        with self.lock:
            agents = [dict(a) for a in self.agents.values()]
        return 200, {self.options.list_key: agents}

    def _fields(self, data: Any, *, needs_id: bool) -> dict:
        o = self.options
        if not isinstance(data, dict):
            raise _refusal(400, 400, "Data must be a JSON object")
        if needs_id and data.get(o.id_field) in (None, ""):
            raise _refusal(400, 400, f"{o.id_field} is required")
        return data

    def _agent(self, data: dict) -> dict:
        agent = self.agents.get(str(data[self.options.id_field]))
        if agent is None:
            raise _refusal(400, 404, "Agent not found")
        return agent

    def _check_unique(self, record: dict, other_than: str | None = None) -> None:
        o = self.options
        name = str(record.get(o.unique_field) or "").casefold()
        for agent_id, agent in self.agents.items():
            if agent_id != other_than and str(agent.get(o.unique_field) or "").casefold() == name:
                raise _refusal(400, 409, f"{o.unique_field} already exists")

    def agent_add(self, data: Any):
        o = self.options
        fields = self._fields(data, needs_id=False)
        if fields.get(o.id_field) is not None:
            raise _refusal(400, 400, f"{o.id_field} is assigned by CCC")
        if not str(fields.get(o.unique_field) or "").strip():
            raise _refusal(400, 400, f"{o.unique_field} is required")
        with self.lock:
            self._check_unique(fields)
            agent_id = self.next_id
            self.next_id += 1
            record = {o.id_field: agent_id, o.active_field: 1 if is_true(fields.get(o.active_field, True)) else 0,
                      **{k: v for k, v in fields.items() if k != o.active_field and v is not None}}
            self.agents[str(agent_id)] = record
        return 201, {o.id_field: agent_id}

    def agent_update(self, data: Any):
        o = self.options
        fields = self._fields(data, needs_id=True)
        if o.active_field in fields:
            raise _refusal(400, 400, f"{o.active_field} is changed only by disable and enable")
        with self.lock:
            agent = self._agent(fields)
            changed = {**agent, **{k: v for k, v in fields.items() if k != o.id_field}}
            changed = {k: v for k, v in changed.items() if v is not None}
            if not str(changed.get(o.unique_field) or "").strip():
                raise _refusal(400, 400, f"{o.unique_field} is required")
            self._check_unique(changed, other_than=str(agent[o.id_field]))
            self.agents[str(agent[o.id_field])] = changed
        return 200, {o.id_field: agent[o.id_field]}

    def _set_active(self, data: Any, active: bool):
        fields = self._fields(data, needs_id=True)
        with self.lock:
            agent = self._agent(fields)
            agent[self.options.active_field] = 1 if active else 0
        return 200, {self.options.id_field: agent[self.options.id_field]}

    def agent_disable(self, data: Any):
        return self._set_active(data, False)

    def agent_enable(self, data: Any):
        return self._set_active(data, True)

    def by_unique(self, value: str) -> dict | None:
        """The agent whose unique field (Username) is `value`, ignoring case (for tests)."""
        with self.lock:
            return next((dict(a) for a in self.agents.values()
                         if str(a.get(self.options.unique_field) or "").casefold() == value.casefold()), None)


DEMO_CLIENT_ID = "1001"
DEMO_USERNAME = "demo-ws"


def demo_target(secret: SecretWriter) -> DemoTarget:
    """The CCC emulator for `provisioner demo`, holding two agents from before the first run:
    Ada (matched to her HR row by Username and linked) and a supervisor HR does not know (left alone)."""
    import secrets as random_secrets

    key = random_secrets.token_hex(16)
    emulator = CccEmulator(CccOptions(client_id=DEMO_CLIENT_ID, username=DEMO_USERNAME, secret_key=key))
    for username, first, last in (("ada.lovelace@example.com", "Ada", "Lovelace"),
                                  ("floor.supervisor@example.com", "Floor", "Supervisor")):
        emulator.agent_add({"Username": username, "FirstName": first, "LastName": last, "Email": username})
    reference = secret("ccc_secret_key", key)

    def config(base_url: str) -> str:
        return f'''
[targets.ccc]
type = "ccc"
base_url = "{base_url}"
client_id = "{DEMO_CLIENT_ID}"
username = "{DEMO_USERNAME}"
secret_key = "{reference}"
mapping = "mappings/ccc.toml"
'''

    return DemoTarget(name="ccc", label="CCC WebServices emulator", emulator=emulator, config=config)


def build(settings) -> Emulator:
    """The emulator a [sandbox.ccc] table describes (`provisioner sandbox serve`)."""
    options = CccOptions(client_id=settings.client_id, username=settings.username,
                         secret_key=settings.secret_key.reveal(), time_zone=settings.timezone,
                         window=settings.window, actions=settings.actions.model_dump(),
                         id_field=settings.id_field, active_field=settings.active_field,
                         list_key=settings.list_key, soft_errors=settings.soft_errors)
    return CccEmulator(options, faults_of(settings), state_file=settings.state_file)
