"""CCC WebServices: agents through the signed resource/action API.

Vendor facts this module owns (shared api-notes §5, seed 000):
- Every call is a POST to /ws/{Resource}/{Action} whose body carries the four
  signed parameters (auth.py); the request's Data is compact ASCII
  JSON, so the bytes hashed are the bytes sent whatever the server decodes.
- HTTP 200 answers {"ResponseCode": NNN, "Data": ...}; a ResponseCode outside
  `success_codes` is a refusal even with HTTP 200. 4xx/5xx answers carry a
  response code and text; both are quoted verbatim in the error.
- The agent actions and their field names are NOT documented: every one is
  configuration (`actions`, `id_field`, `active_field`, `list_key`) whose
  defaults are assumptions, listed as such in README.md.
- Nothing is ever deleted: disable and enable are their own actions.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import httpx

from .auth import CccSignedAuth
from ...errors import AlreadyExists, ConfigError, NotFound, TargetError
from ...http import RETRY_STATUSES, RateLimiter, acting, error_detail, make_client, safe_url
from ...model import ACTIVE, Account, normalize
from ...secrets import Secret, redact
from ...target import CREATE, DISABLE, ENABLE, UPDATE, Target, flatten

log = logging.getLogger(__name__)

# ASSUMED names (not documented by CCC): the configuration overrides each
DEFAULT_ACTIONS = {"list": "Agent/List", "add": "Agent/Add", "update": "Agent/Update",
                   "disable": "Agent/Disable", "enable": "Agent/Enable", "ping": "Ping"}
DEFAULT_SUCCESS_CODES = (200, 201)
# answers that mean "already exists" / "no such agent", as HTTP status or ResponseCode
DUPLICATE, MISSING = 409, 404
_TRUE = {"1", "true", "yes", "y", "active", "enabled", "on"}


def is_true(value: Any) -> bool:
    """An agent's active flag as CCC might spell it: true, 1, "1", "Y", "active"..."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE if value is not None else False


def answer_code_text(body: Any) -> tuple[Any, str | None]:
    """(ResponseCode, ResponseText) of an answer; the seed spells them with and without a space."""
    if not isinstance(body, dict):
        return None, None
    code = next((body[k] for k in ("ResponseCode", "Response Code") if k in body), None)
    text = next((body[k] for k in ("ResponseText", "Response Text") if body.get(k) not in (None, "")), None)
    if text is None and isinstance(body.get("Data"), str):
        text = body["Data"]
    return code, (redact(str(text)).strip()[:500] if text is not None else None)


class CccTarget(Target):
    capabilities = frozenset({CREATE, UPDATE, DISABLE, ENABLE})

    def __init__(self, name: str, base_url: str, *, paths: Sequence[str], client_id: str, username: str,
                 secret_key: Secret, time_zone: str | None = None, body_format: str = "text",
                 actions: Mapping[str, str] | None = None, id_field: str = "AgentID",
                 active_field: str = "Active", list_key: str = "Agents",
                 success_codes: Sequence[int] = DEFAULT_SUCCESS_CODES, timeout: float = 30,
                 tls_verify: bool = True, ca_file: Path | None = None, rate_limit: float | None = None,
                 client: httpx.Client | None = None, clock: Callable[[], datetime] | None = None):
        unknown = set(actions or {}) - set(DEFAULT_ACTIONS)
        if unknown:
            raise ConfigError(f"{name}: actions: unknown action {sorted(unknown)[0]!r} "
                              f"(known: {', '.join(DEFAULT_ACTIONS)})")
        for path in paths:
            if path in (id_field, active_field):
                raise ConfigError(f"{name}: the mapping may not set {path!r}: it is the agent's "
                                  f"{'id' if path == id_field else 'active flag'} (use `active` for the latter)")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.paths = tuple(paths)
        self.actions = {**DEFAULT_ACTIONS, **(actions or {})}
        self.id_field, self.active_field, self.list_key = id_field, active_field, list_key
        self.server_owned = frozenset({id_field})   # CCC assigns the AgentID on create
        self.success_codes = frozenset(success_codes)
        extra = {"clock": clock} if clock is not None else {}
        try:
            self._auth = CccSignedAuth(client_id, username, secret_key, time_zone=time_zone,
                                       body_format=body_format, **extra)
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None
        self._owns_client = client is None
        self._client = client or make_client(self.base_url, headers={"Accept": "application/json"},
                                             timeout=timeout, tls_verify=tls_verify, ca_file=ca_file,
                                             limiter=RateLimiter(rate_limit))

    # -- reading ---------------------------------------------------------

    def list_accounts(self) -> list[Account]:
        data = self._call("list", {}, "list accounts")
        agents = data.get(self.list_key) if isinstance(data, dict) else data
        if not isinstance(agents, list):
            raise TargetError(f"{self.name}: list accounts: the Data of {self.actions['list']} is neither "
                              f"a list nor an object with {self.list_key!r}: set list_key")
        found: dict[str, Account] = {}
        for doc in agents:
            if isinstance(doc, dict) and doc.get(self.id_field) not in (None, ""):
                found.setdefault(str(doc[self.id_field]), self._account(doc))
        log.info("%s: read %d agents from %s", self.name, len(found), safe_url(self.base_url))
        return list(found.values())

    def get_account(self, account_id: str) -> Account | None:
        # no "get one agent" action is known: the list is read and searched
        return next((a for a in self.list_accounts() if a.id == str(account_id)), None)

    def find_accounts(self, path: str, value: Any) -> list[Account]:
        if value is None:
            return []
        wanted = normalize(value, case_insensitive=True)
        return [a for a in self.list_accounts() if normalize(a.attrs.get(path), True) == wanted]

    def _account(self, doc: Mapping[str, Any]) -> Account:
        attrs = flatten(doc, self.paths)
        attrs[ACTIVE] = is_true(doc.get(self.active_field))
        return Account(id=str(doc[self.id_field]), attrs=attrs, raw=dict(doc))

    # -- writing ---------------------------------------------------------

    def create(self, attrs: Mapping[str, Any]) -> Account:
        fields = {p: v for p, v in attrs.items() if p != ACTIVE and v is not None}
        data = self._call("add", fields, "create")
        answer = data if isinstance(data, dict) else {}
        new_id = answer.get(self.id_field) if answer else data
        if new_id in (None, "") or isinstance(new_id, (dict, list, bool)):
            raise TargetError(f"{self.name}: create: {self.actions['add']} answered without the new "
                              f"agent's {self.id_field}: set id_field to the name CCC uses")
        doc = {self.active_field: True, **fields, **answer, self.id_field: new_id}
        if attrs.get(ACTIVE) is False:
            try:
                self._set_active(new_id, False)
            except TargetError as exc:
                raise TargetError(f"{exc} (agent {new_id} was created enabled; the next plan "
                                  "disables it)", exc.status, exc.retryable) from exc
            doc[self.active_field] = False
        return self._account(doc)

    def modify(self, account: Account, changes: Mapping[str, Any]) -> None:
        fields = {p: v for p, v in changes.items() if p != ACTIVE}
        if fields:
            self._call("update", {self.id_field: self._id_of(account), **fields}, "update")
        if ACTIVE in changes:
            self._set_active(self._id_of(account), changes[ACTIVE] is not False)

    def _set_active(self, agent_id: Any, active: bool) -> None:
        action = "enable" if active else "disable"
        self._call(action, {self.id_field: agent_id}, action)

    def _id_of(self, account: Account) -> Any:
        """The id as CCC gave it (a number stays a number)."""
        return account.raw.get(self.id_field, account.id)

    # -- other -----------------------------------------------------------

    def check(self) -> str:
        data = self._call("ping", {}, "check")
        detail = f": {redact(json.dumps(data))[:80]}" if data not in (None, "", {}, []) else ""
        return (f"CCC WebServices at {safe_url(self.base_url)}: {self.actions['ping']} accepted "
                f"the signed request as {self._auth.username!r}{detail}")

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    # -- plumbing --------------------------------------------------------

    def _call(self, action: str, data: Any, what: str) -> Any:
        """POST Data to the action's resource; the answer's Data, or TargetError quoting CCC."""
        route = self.actions[action]
        # compact ASCII JSON: one line in a text/plain body, the same bytes on both sides
        content = json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode("ascii")
        with acting(self.name, what):
            response = self._client.post(f"{self.base_url}/ws/{route}", content=content,
                                         headers={"Content-Type": "application/json"}, auth=self._auth)
        try:
            body = response.json()
        except ValueError:
            body = None
        code, text = answer_code_text(body)
        status = response.status_code
        said = f"ResponseCode {code}: {text or 'no text given'}" if code is not None \
            else (text or error_detail(response)[0] or response.reason_phrase or "no detail given")
        if status == 401:
            raise TargetError(f"{self.name}: {what} ({route}): authentication refused (401, {said}): check "
                              "client_id, username, secret_key and timezone (RequestDateTime must be the "
                              "server's idea of now)", 401)
        if status != 200:
            cls = _error_class(status, code, what)
            verb = "failed" if status >= 500 else "refused"
            raise cls(f"{self.name}: {what} ({route}) {verb} (HTTP {status}, {said})", status,
                      retryable=status in RETRY_STATUSES)
        if not isinstance(body, dict) or code is None:
            raise TargetError(f"{self.name}: {what} ({route}): the server answered 200 without a "
                              "ResponseCode: is base_url the CCC WebServices host?", status)
        if _int(code) not in self.success_codes:
            raise _error_class(None, code, what)(f"{self.name}: {what} ({route}) refused ({said})", status)
        return body.get("Data")

    def manual_delete(self, account: Account) -> str | None:
        # the CCC WebServices document names no agent action that removes an agent
        return f"delete agent {account.id} in the CCC portal by hand: CCC WebServices document no delete"


def _error_class(status: int | None, code: Any, what: str) -> type[TargetError]:
    if what == "create" and DUPLICATE in (status, _int(code)):
        return AlreadyExists
    if MISSING in (status, _int(code)) and what != "create":
        return NotFound
    return TargetError


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
