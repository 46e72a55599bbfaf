"""A local Ytel YCC agent API (CCaaS, `/api/v2/...`) on top of the AMS emulator:
the token endpoint, the "Bad token" answer and the per-second rate limits are
the parent's (emulator.py), as YCC takes the CPaaS token.

It implements the calls of the seed's "YCC Agent Management" folder the
ytel_ycc target uses - get-agent-list, agent-details, clone-agent-details,
update-agent-details, delete-agent, agentgroup-lists - and the "agent" and
"agentgroup" cases of the "YCC Global API" (global-api), in the answer shape
that target assumes (the seed shows none):
- success: HTTP 200 `{"status": true, "message": ..., "data": ...}`; the
  details' `user_info` sits under `data`;
- refusal: `{"status": false, "message": ..., "errors": {field: [...]}}`
  under HTTP 422 (a bad field), 404 (no such agent) or 403, or under HTTP 200
  with `soft_errors`.
It refuses an unknown template (`from_agent`), a duplicate `new_agent` or
e-mail, an unknown `user_group`, an e-mail change without the admin password,
an unknown agent, and an update that leaves out a required field. An update
sets every documented field: an optional one left out is cleared, as a
whole-record update would.

Every agent has an internal `user_id` besides its `user` (seed: the global
API's agent fields "user_id: Internal user id" and "User: User id associated
with an agent"), numbered from 1000 as agents are added, so an internal id is
usually another agent's user; only global-api shows it. POST
delete-agent?user_id= ("Delete an agent by its id") takes that internal id,
with no body; an unknown one is a 404 "Agent not found".

Passwords given to clones are kept in memory only (`agent_passwords`, for the
tests that prove they never leak); the state file never holds them.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...sandbox.server import Emulator, HttpError, Request, faults_of
from .emulator import YtelEmulator, YtelOptions, options_of

if TYPE_CHECKING:
    from ...sandbox.demo_targets import DemoTarget, SecretWriter

API = "/api/v2"
GROUPS = (("AGENTS", "Agents"), ("SUPERVISORS", "Supervisors"), ("ADMIN", "Administrators"))
FLAGS = ("agent_choose_ingroups", "agentcall_manual", "agentonly_callbacks", "closer_default_blended")
OPTIONAL = ("voicemail_id", "custom_one", "custom_two", "custom_three", "custom_four", "custom_five")
REQUIRED = ("full_name", "user_group", "active", *FLAGS, "force_change_password")
# what a clone copies from its template
INHERITED = ("user_group", "active", *FLAGS, *OPTIONAL, "force_change_password", "closer_campaigns",
             "scheduled_callbacks", "agent_call_log_view_override", "agent_lead_search_override")
_USER_ID = re.compile(r"[A-Za-z0-9_-]{2,20}\Z")


@dataclass
class YccOptions(YtelOptions):
    template_agent: str = "9999"
    groups: tuple[tuple[str, str], ...] = GROUPS
    admin_password: str | None = None     # the `pass` an e-mail change needs; None: the API user's password
    soft_errors: bool = False             # refusals under HTTP 200 with status false


class YccEmulator(YtelEmulator):
    name = "ytel_ycc"

    def __init__(self, options: YccOptions | None = None, faults=None, **kwargs):
        options = options or YccOptions()
        self.agents: dict[str, dict] = {}          # user id -> user_info
        self.groups: dict[str, str] = dict(options.groups)
        self.agent_passwords: dict[str, str] = {}  # user id -> password given to the clone (memory only)
        self.user_ids: dict[str, int] = {}         # user id -> internal user_id (global-api, delete-agent)
        self._last_user_id = 999                   # internal ids are never given twice, as a database's
        super().__init__(options, faults, **kwargs)
        self.add_agent(options.template_agent, "Template Agent", "ycc-template@example.com", active="N")

    def routes(self):
        return [*super().routes(),
                ("GET", API + "/get-agent-list", self.agent_list),
                ("GET", API + "/agent-details", self.agent_details),
                ("POST", API + "/clone-agent-details", self.clone_agent),
                ("POST", API + "/update-agent-details", self.update_agent),
                ("POST", API + "/delete-agent", self.delete_agent),
                ("POST", API + "/global-api", self.global_api),
                ("GET", API + "/agentgroup-lists", self.group_list)]

    # -- state -----------------------------------------------------------------

    def add_agent(self, user: str, full_name: str, email: str, *, user_group: str = "AGENTS",
                  active: str = "Y", **extra: Any) -> dict:
        """Put an agent in YCC as if made by hand (for seeding and tests)."""
        info = {"user": user, "full_name": full_name, "user_group": user_group, "active": active,
                "email": email, "agent_choose_ingroups": "0", "closer_campaigns": "",
                "scheduled_callbacks": "1", "agentonly_callbacks": "0", "agentcall_manual": "1",
                "closer_default_blended": "1", "voicemail_id": None,
                **{f"custom_{n}": None for n in ("one", "two", "three", "four", "five")},
                "agent_call_log_view_override": "DISABLED", "force_change_password": "N",
                "agent_lead_search_override": "NOT_ACTIVE", "failed_login_count": "0",
                "last_login_date": None, "last_ip": "", "modify_stamp": _now(), **extra}
        with self.lock:
            self.agents[user] = info
            if user not in self.user_ids:
                self._last_user_id += 1
                self.user_ids[user] = self._last_user_id
        return info

    def snapshot(self) -> Any:
        with self.lock:
            return {**super().snapshot(), "agents": self.agents, "groups": self.groups,
                    "user_ids": self.user_ids}

    def restore(self, data: Any) -> None:
        super().restore(data)
        with self.lock:
            self.agents = dict(data.get("agents") or self.agents)
            self.groups = dict(data.get("groups") or self.groups)
            self.user_ids = {u: i for u, i in (data.get("user_ids") or {}).items() if u in self.agents}
            self._last_user_id = max([self._last_user_id, *self.user_ids.values()])
            for user in self.agents:   # a state file from before internal ids numbers them now
                if user not in self.user_ids:
                    self._last_user_id += 1
                    self.user_ids[user] = self._last_user_id

    # -- answers ---------------------------------------------------------------

    @staticmethod
    def _ok(data: Any = None, message: str = "Success") -> tuple[int, dict]:
        return 200, {"status": True, "message": message, "data": data}

    def _refusal(self, status: int, text: str, field: str | None = None) -> HttpError:
        body: dict[str, Any] = {"status": False, "message": text}
        if field:
            body["errors"] = {field: [text]}
        return HttpError(200 if self.options.soft_errors else status, text, body)

    # -- agents ----------------------------------------------------------------

    def agent_list(self, request: Request):
        self._authorized(request)
        with self.lock:
            return self._ok([{"user": a["user"], "full_name": a["full_name"]} for a in self.agents.values()])

    def agent_details(self, request: Request):
        self._authorized(request)
        with self.lock:
            info = self.agents.get(request.query.get("id", ""))
            if info is None:
                raise self._refusal(404, "Agent not found")
            return self._ok({"user_info": dict(info), "manual_dial_cid": {"outbound_cid": ""},
                             "admin_user_group_list": self._group_rows(), "voicemail": [], "dids": []})

    def clone_agent(self, request: Request):
        self._authorized(request)
        body = self._body(request)
        for key in ("from_agent", "full_name", "new_agent", "pass", "email"):
            if not str(body.get(key) or "").strip():
                raise self._refusal(422, f"The {key.replace('_', ' ')} field is required.", key)
        new, email, password = str(body["new_agent"]), str(body["email"]), str(body["pass"])
        if not _USER_ID.match(new):
            raise self._refusal(422, "The new agent must be 2 to 20 letters, digits, - or _.", "new_agent")
        if len(password) < 8 or password.isalnum():
            raise self._refusal(422, "The pass is too weak.", "pass")
        with self.lock:
            template = self.agents.get(str(body["from_agent"]))
            if template is None:
                raise self._refusal(422, f"The selected from agent {body['from_agent']} is invalid.", "from_agent")
            if new in self.agents:
                raise self._refusal(422, f"The new agent {new} has already been taken.", "new_agent")
            self._email_free(email)
            self.add_agent(new, str(body["full_name"]), email,
                           **{k: template.get(k) for k in INHERITED})
            self.agent_passwords[new] = password
        return self._ok({"user": new}, "Agent cloned")

    def update_agent(self, request: Request):
        self._authorized(request)
        body = self._body(request)
        missing = [k for k in ("email", "name", *REQUIRED) if body.get(k) in (None, "")]
        if missing:
            raise self._refusal(422, f"The {missing[0].replace('_', ' ')} field is required.", missing[0])
        if body["user_group"] not in self.groups:
            raise self._refusal(422, f"The selected user group {body['user_group']} is invalid.", "user_group")
        if body["active"] not in ("Y", "N") or body["force_change_password"] not in ("Y", "N"):
            raise self._refusal(422, "active and force_change_password take Y or N.", "active")
        if any(str(body[k]) not in ("0", "1") for k in FLAGS):
            raise self._refusal(422, f"{', '.join(FLAGS)} take 0 or 1.", FLAGS[0])
        with self.lock:
            info = self._agent_by_email(str(body["email"]))
            if str(body["name"]) != info["user"]:
                raise self._refusal(422, f"The name {body['name']} is not the agent with this email.", "name")
            new_email = body.get("new_email")
            if new_email and str(new_email).casefold() != info["email"].casefold():
                admin = self.options.admin_password or self.options.password
                if body.get("pass") != admin:
                    raise self._refusal(403, "The admin password is required to change the email.", "pass")
                self._email_free(str(new_email))
                info["email"] = str(new_email)
            for key in (*REQUIRED, *OPTIONAL):
                info[key] = body.get(key)     # the call sets every field; one left out is cleared
            info["modify_stamp"] = _now()
            return self._ok({"user": info["user"]}, "Agent updated")

    def delete_agent(self, request: Request):
        """POST delete-agent?user_id=: the internal id, not the agent's `user`."""
        self._authorized(request)
        wanted = request.query.get("user_id", "").strip()
        with self.lock:
            found = [u for u, i in self.user_ids.items() if str(i) == wanted and u in self.agents]
            if not found:
                raise self._refusal(404, "Agent not found")
            del self.agents[found[0]], self.user_ids[found[0]]
            self.agent_passwords.pop(found[0], None)
        return self._ok(None, "Agent deleted")

    def global_api(self, request: Request):
        """The lists `case` names; this emulator holds agents and agent groups (others are empty)."""
        self._authorized(request)
        cases = self._body(request).get("case")
        if not isinstance(cases, list) or not cases:
            raise self._refusal(422, "The case field is required.", "case")
        with self.lock:
            lists = {"agent": [{"user_id": self.user_ids[u], "User": u, "full_name": a["full_name"],
                                "user_group": a["user_group"]} for u, a in self.agents.items()],
                     "agentgroup": self._group_rows()}
        return self._ok({str(c): lists.get(str(c), []) for c in cases})

    def group_list(self, request: Request):
        self._authorized(request)
        limit, page = _number(request.query.get("limit"), 10), _number(request.query.get("page"), 1)
        rows = self._group_rows()
        return self._ok(rows[(page - 1) * limit: page * limit])

    # -- helpers ---------------------------------------------------------------

    def _body(self, request: Request) -> dict:
        body = request.json()
        if not isinstance(body, dict):
            raise self._refusal(422, "The body must be a JSON object.")
        return body

    def _group_rows(self) -> list[dict]:
        return [{"user_group": g, "group_name": n} for g, n in self.groups.items()]

    def _agent_by_email(self, email: str) -> dict:
        found = [a for a in self.agents.values() if (a.get("email") or "").casefold() == email.casefold()]
        if not found:
            raise self._refusal(404, "Agent not found")
        return found[0]

    def _email_free(self, email: str) -> None:
        if any((a.get("email") or "").casefold() == email.casefold() for a in self.agents.values()):
            raise self._refusal(422, f"The email {email} has already been taken.", "email")


def _number(value: Any, default: int) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return default


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def demo_target(secret: "SecretWriter") -> "DemoTarget":
    """The YCC emulator for `provisioner demo`: the template agent, and Ada's agent made by hand
    under another user id (found by her e-mail and linked, her user id left as it is)."""
    from ...sandbox.demo_targets import DemoTarget
    options = YccOptions(username="demo-api@example.com", password=secrets.token_hex(16))
    emulator = YccEmulator(options)
    emulator.add_agent("1001", "Ada Lovelace", "ada.lovelace@example.com")
    reference = secret("ytel_ycc_password", options.password)

    def config(base_url: str) -> str:
        return (f'[targets.ytel_ycc]\ntype = "ytel_ycc"\nbase_url = "{base_url}"\n'
                f'token_url = "{base_url}/auth/v3/token"\nmapping = "mappings/ytel_ycc.toml"\n'
                f'username = "{options.username}"\npassword = "{reference}"\n'
                f'template_agent = "{options.template_agent}"\n')

    return DemoTarget(name="ytel_ycc", label="Ytel YCC emulator", emulator=emulator, config=config)


def build(settings) -> Emulator:
    """The emulator a [sandbox.ytel_ycc] table describes (`provisioner sandbox serve`)."""
    admin = settings.admin_password.reveal() if settings.admin_password else None
    options = options_of(settings, YccOptions, template_agent=settings.template_agent,
                         admin_password=admin, soft_errors=settings.soft_errors)
    return YccEmulator(options, faults_of(settings), state_file=settings.state_file)
