"""CCS (Contact Center Services): extensions and their agent settings.

Vendor facts this module owns (shared api-notes §3, seed 004):
- The API lives at https://{domain}/6/v2/api/. Its REST auth scheme is not
  documented: the token goes in a configurable header (Bearer by default).
- Extensions are listed at /extensions (a tenant-level user) or
  /tenants/{tenant}/extensions (a telco user); `mode` picks one. They are
  updated only with PUT /tenants/{tenant}/extensions/{uuid}/ and can be
  neither created nor deleted: a person without an extension is manual work.
- Every value is a string: "true"/"false", max_chats "0".."6", recording_type
  "None" / "Mandatory" / "On Demand". model.normalize compares true with
  "true" and 3 with "3", so the plan shows no false differences.
- An extension is "active" while it is an agent (is_agent "true"). Disabling
  signs the agent out (when `signout_presence` is set) and clears is_agent.
- The documented list answer carries only uuid, firstname, lastname and
  extension, and no documented call reads an extension's agent settings:
  they and `active` are write-only. The engine plans them against the values
  it last wrote (the state DB's `written` table), and hands them back in
  `account.attrs` to `modify`, which sends them again with each PUT.
  `fullname` is firstname and lastname joined by a space, for correlating by name.
- The list is the only read, and it shows only what the API cannot change, so
  it is read once per target object (a plan, an apply): get_account and
  find_accounts answer from that copy instead of reading every extension per item.
- A 500 answers {"success": true, "reason": ...}: the status code decides,
  never `success`. A 400's `reason` is shown as CCS wrote it.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote

import httpx

from .auth import HeaderTokenAuth
from ...errors import ConfigError, NotFound, TargetError
from ...http import RateLimiter, accepted, acting, json_of, make_client, safe_url
from ...model import ACTIVE, FOLD, Account, normalize
from ...secrets import Secret
from ...target import DISABLE, ENABLE, UPDATE, Target

log = logging.getLogger(__name__)

API_PATH = "/6/v2/api"
MODES = ("tenant", "telco")
IS_AGENT = "is_agent"
SETTINGS = (IS_AGENT, "recording_type", "monitor", "max_chats", "is_multimedia_enabled")
FLAGS = (IS_AGENT, "monitor", "is_multimedia_enabled")
RECORDING_TYPES = ("None", "Mandatory", "On Demand")
MAX_CHATS = 6
# read from the list, never written: CCS has no way to change them over the API
READ_ONLY = ("extension", "firstname", "lastname", "fullname")
KNOWN_PATHS = (*READ_ONLY, *SETTINGS, ACTIVE)
SIGN_OUT = "sign_out"


class CcsTarget(Target):
    capabilities = frozenset({UPDATE, DISABLE, ENABLE})
    # correlate only: the planner never plans a change to them
    read_only = frozenset(READ_ONLY)
    # written with PUT, never shown by the list: planned against the last value written
    write_only = frozenset({*SETTINGS, ACTIVE})

    def __init__(self, name: str, base_url: str, *, paths: Sequence[str], token: Secret,
                 tenant_uuid: str, mode: str = "telco", api_path: str = API_PATH,
                 auth_header: str = "Authorization", auth_scheme: str = "Bearer",
                 signout_presence: str | None = None, timeout: float = 30,
                 tls_verify: bool = True, ca_file: Path | None = None,
                 rate_limit: float | None = None, retries: int = 5,
                 client: httpx.Client | None = None):
        if mode not in MODES:
            raise ConfigError(f"{name}: mode must be one of {', '.join(MODES)}, not {mode!r}")
        unknown = [p for p in paths if p not in KNOWN_PATHS]
        if unknown:
            raise ConfigError(f"{name}: CCS extensions have no attribute {', '.join(map(repr, unknown))} "
                              f"(known: {', '.join(KNOWN_PATHS)})")
        self.name = name
        self.api_url = base_url.rstrip("/") + "/" + api_path.strip("/")
        self.paths = tuple(paths)
        self.tenant_uuid = tenant_uuid
        self.mode = mode
        self.signout_presence = signout_presence
        self._auth = HeaderTokenAuth(token, auth_header, auth_scheme)
        self._owns_client = client is None
        self._client = client or make_client(self.api_url, headers={"Accept": "application/json"},
                                             timeout=timeout, tls_verify=tls_verify, ca_file=ca_file,
                                             limiter=RateLimiter(rate_limit), retries=retries)
        self._listed: list[Account] | None = None
        self._list_lock = threading.Lock()    # apply workers share the one list read

    # -- reading ---------------------------------------------------------

    def list_accounts(self) -> list[Account]:
        # checked once per plan: a wrong name blocks this target with a sentence
        if self.signout_presence:
            self._check_presence()
        with self._list_lock:
            self._listed = self._read_all()
        log.info("%s: read %d extensions from %s", self.name, len(self._listed), safe_url(self.api_url))
        return list(self._listed)

    def get_account(self, account_id: str) -> Account | None:
        # CCS documents no single-extension read: the list is the only source
        return next((a for a in self._listed_once() if a.id == account_id), None)

    def find_accounts(self, path: str, value: Any) -> list[Account]:
        if value is None:
            return []
        wanted = normalize(value, FOLD)
        return [a for a in self._listed_once() if normalize(a.attrs.get(path), FOLD) == wanted]

    def _listed_once(self) -> list[Account]:
        with self._list_lock:
            if self._listed is None:
                self._listed = self._read_all()
            return self._listed

    def _read_all(self) -> list[Account]:
        items = self._items(self._get(self._list_path(), "list extensions"), "list extensions")
        return [self._account(doc) for doc in items if isinstance(doc, dict) and doc.get("uuid") is not None]

    def _list_path(self) -> str:
        return "/extensions" if self.mode == "tenant" else f"/tenants/{self._tenant()}/extensions"

    def _account(self, doc: Mapping[str, Any]) -> Account:
        # the write-only paths are unknown here: the engine fills them from what it wrote
        attrs: dict[str, Any] = {p: None if p in self.write_only else _text(doc.get(p))
                                 for p in self.paths if p != "fullname"}
        if "fullname" in self.paths:
            names = [_text(doc.get(k)) for k in ("firstname", "lastname")]
            attrs["fullname"] = " ".join(n.strip() for n in names if n and n.strip()) or None
        attrs[ACTIVE] = None
        return Account(id=str(doc["uuid"]), attrs=attrs, raw=dict(doc))

    def _presence_options(self) -> list[dict]:
        items = self._items(self._get(f"/tenants/{self._tenant()}/presence_options",
                                      "read presence options"), "read presence options")
        return [i for i in items if isinstance(i, dict)]

    def _check_presence(self) -> None:
        """signout_presence must name a sign-out presence option of the tenant."""
        options = self._presence_options()
        names = [o.get("name") for o in options if o.get("type") == SIGN_OUT]
        if self.signout_presence not in names:
            raise TargetError(f"{self.name}: signout_presence {self.signout_presence!r} is not a "
                              f"sign-out presence option of tenant {self.tenant_uuid} (sign-out options: "
                              f"{', '.join(map(str, names)) or 'none'}): correct signout_presence",
                              retryable=False)

    # -- plan-time checks -------------------------------------------------

    def validate(self, want: Mapping[str, Any]) -> str | None:
        """A sentence when a wanted agent setting is not a value CCS accepts."""
        for path in FLAGS:
            value = want.get(path)
            if value is not None and _wire(value).lower() not in ("true", "false"):
                return f"{path} = {value!r}: CCS takes true or false"
        chats = want.get("max_chats")
        if chats is not None:
            text = _wire(chats)
            if not (text.isdigit() and 0 <= int(text) <= MAX_CHATS):
                return f"max_chats = {chats!r}: CCS takes a whole number from 0 to {MAX_CHATS}"
        recording = want.get("recording_type")
        if recording is not None and recording not in RECORDING_TYPES:
            return (f"recording_type = {recording!r}: CCS takes "
                    f"{', '.join(map(repr, RECORDING_TYPES))}")
        return None

    def manual_delete(self, account: Account) -> str | None:
        # the CCS API document has no call that removes an extension (api-notes, section 3)
        return (f"CCS cannot delete extensions through its API: remove extension "
                f"{account.attrs.get('extension') or account.id} in the CCS portal, or keep it as "
                "it is (no longer an agent)")

    def manual_create(self, key: str, want: Mapping[str, Any]) -> str:
        """What a person must set up in CCS for someone who has no extension."""
        who = want.get("fullname") or key
        number = f" {want['extension']}" if want.get("extension") else ""
        settings = [f"{p} {_wire(want[p])}" for p in SETTINGS if want.get(p) is not None]
        if want.get(ACTIVE, True) is not False and want.get(IS_AGENT) is None:
            settings.insert(0, f"{IS_AGENT} true")
        return (f"{key} ({who}) has no CCS extension and CCS cannot create one over its API: "
                f"create extension{number} for {who} in CCS by hand with {', '.join(settings)}; "
                "the next run links it")

    # -- writing ---------------------------------------------------------

    def create(self, attrs: Mapping[str, Any]) -> Account:
        raise TargetError(f"{self.name}: CCS cannot create extensions over its API", retryable=False)

    def modify(self, account: Account, changes: Mapping[str, Any]) -> None:
        # whether a PUT keeps the settings it leaves out is not documented: every
        # setting known (last written, in account.attrs) is sent again with the changes
        known = {**account.attrs, **changes}
        body = {p: _wire(known[p]) for p in SETTINGS if known.get(p) is not None}
        if known.get(ACTIVE) is not None:
            body[IS_AGENT] = _wire(known[ACTIVE])
        if ACTIVE in changes and not changes[ACTIVE] and self.signout_presence:
            self._sign_out(account)
        if body:
            self._send("PUT", f"/tenants/{self._tenant()}/extensions/{_seg(account.id)}/",
                       "update extension", body)
        fixed = [p for p in changes if p in READ_ONLY]
        if fixed:
            raise TargetError(f"{self.name}: {', '.join(fixed)} of extension {account.id} cannot be "
                              "changed over the CCS API: correct it in CCS or in the source"
                              + (" (the agent settings were set)" if body else ""), retryable=False)

    def _sign_out(self, account: Account) -> None:
        base = f"/tenants/{self._tenant()}/extensions/{_seg(account.id)}"
        state = self._json(self._get(base + "/agent_state", "read agent state"), "read agent state")
        current = (state.get("agent_state") or {}).get("state") or {}
        if isinstance(current, dict) and current.get("type") == SIGN_OUT:
            return  # already signed out: nothing to do
        where = base if self.mode == "telco" else f"/extensions/{_seg(account.id)}"
        self._send("POST", where, "sign the agent out",
                   {"request": "updateAgentState", "name": self.signout_presence})

    # -- other -----------------------------------------------------------

    def check(self) -> str:
        body = self._json(self._get(self._list_path(), "check"), "check")
        total = body.get("total")
        notes = [f"CCS at {safe_url(self.api_url)} ({self.mode} mode): {total} extensions"]
        if self.signout_presence:
            self._check_presence()
            notes.append(f"sign-out presence {self.signout_presence!r} exists")
        return "; ".join(notes)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    # -- plumbing --------------------------------------------------------

    def _tenant(self) -> str:
        return _seg(self.tenant_uuid)

    def _get(self, path: str, action: str) -> httpx.Response:
        return self._send("GET", path, action)

    def _send(self, method: str, path: str, action: str, body: Any = None) -> httpx.Response:
        content = json.dumps(body).encode() if body is not None else None
        with acting(self.name, action):
            response = self._client.request(method, self.api_url + path, content=content, auth=self._auth,
                                            headers={"Content-Type": "application/json"} if content else None)
        # a 500 claims success: the status code is what counts; a 400's reason is shown as written
        return accepted(response, self.name, action, errors={404: NotFound},
                        unauthorized="check the token, auth_header and auth_scheme")

    def _json(self, response: httpx.Response, action: str) -> dict:
        return json_of(response, self.name, action, server="CCS")

    def _items(self, response: httpx.Response, action: str) -> list:
        items = self._json(response, action).get("items")
        if not isinstance(items, list):
            raise TargetError(f"{self.name}: {action}: the answer has no list of items")
        return items


def _text(value: Any) -> Any:
    return None if value is None else str(value)


def _wire(value: Any) -> str:
    """A value as CCS writes it: "true"/"false" for booleans, digits for numbers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text.lower() if text.lower() in ("true", "false") else text


def _seg(value: str) -> str:
    return quote(str(value), safe="")

