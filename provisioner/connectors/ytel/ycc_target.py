"""Ytel YCC agents (shared api-notes §2, seed 002: CCaaS API / YCC Agent Management).

Vendor facts this module owns, as the seed documents them:
- The API is https://ycc-api.ytel.com/api/v2/...; its bearer token is the
  CPaaS one from POST https://api.ytel.com/auth/v3/token, so the AMS token flow
  (auth.py: credentials, refresh, one renewal on a 401) is reused
  with a configurable `token_url`.
- GET get-agent-list names each agent (`user`, `full_name`) and nothing more:
  the fields come from GET agent-details?id= per agent, `concurrency` at a
  time, paced like every call by http.HeaderRateLimiter (in the client's
  transport); the order of the list
  is kept. The account id is the agent's `user`; `active` is "Y"/"N".
- A create is POST clone-agent-details from `template_agent`, with a strong
  random password made at send time (never logged, stored or printed). The
  clone inherits the template's settings: the new agent is read back, and one
  update-agent-details sets what the mapping wants and the clone did not give
  (a template is usually inactive, so mostly `active`).
- POST update-agent-details carries every field and finds the agent by
  `email` (and `name`): it is sent the agent's current values with the
  changes laid over them, so a field the mapping does not manage is never
  blanked. Disable and enable are the same call with `active` "N"/"Y".
- Changing the e-mail needs `new_email` plus an "admin password" (`pass`).
  With `admin_password` configured that is sent; without it `email` is
  declared immutable and the planner makes a changed e-mail a manual item.
- Agent groups (GET agentgroup-lists) are read once per run; a `user_group`
  YCC does not have is a conflict at plan time.
- A delete is POST delete-agent?user_id=, and `user_id` is the agent's
  *internal* id ("user_id: Internal user id" beside "User: User id associated
  with an agent", in the global API's agent fields), not its `user`: sending
  the user id there could delete another agent. Only POST global-api (case
  "agent") shows the internal id, so each delete first finds its agent there,
  by `User` exactly once, and refuses when it cannot; the template agent is
  never deleted.

Assumed, because the seed shows no answer at all (README.md, "Ytel YCC agents"):
- success is a 2xx status whose JSON body does not say otherwise: `status` or
  `success` false (or "error"/"fail"), or a non-empty `error`, is a failure
  even under HTTP 200; the item's error quotes `message`, `error` (a text or
  Ytel's [{code, message, moreInfo}]) and Laravel-style `errors`;
- lists are the body's `data` (or `data.data`, a paginated answer); the
  details' `user_info` is under `data` or at the top;
- a duplicate `new_agent` is HTTP 409 or a message saying "already"; a
  missing agent is HTTP 404 or a message saying "not found";
- global-api answers its lists under `data` by case (`data.agent`), each agent
  with `user_id` and `User` (or `user`);
- `name` in update-agent-details is the agent's current user id: user ids are
  never changed (`user` is read-only: it names a new agent and correlates);
- one page of 100000 agent groups holds them all;
- rate limits, if any, are announced in the same headers as the AMS API.
"""

from __future__ import annotations

import difflib
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping, Sequence

import httpx

from .auth import TOKEN_RATE_LIMIT, YtelTokenAuth, ytel_client
from ...errors import AlreadyExists, ConfigError, NotFound, TargetError
from ...http import RETRY_STATUSES, HeaderRateLimiter, acting, safe_url
from ...model import ACTIVE, Account, normalize, same_value
from ...secrets import Secret, redact, register
from . import envelope
from ...target import CREATE, DELETE, DISABLE, ENABLE, UPDATE, Target
from .ams_target import new_password

log = logging.getLogger(__name__)

API = "/api/v2"
TOKEN_URL = "https://api.ytel.com/auth/v3/token"
USER, EMAIL, FULL_NAME, GROUP = "user", "email", "full_name", "user_group"
FLAGS = ("agent_choose_ingroups", "agentcall_manual", "agentonly_callbacks", "closer_default_blended")
YES_NO = ("force_change_password",)
OPTIONAL = ("voicemail_id", "custom_one", "custom_two", "custom_three", "custom_four", "custom_five")
# what update-agent-details sets, besides the agent's identification (email, name, new_email, pass)
UPDATE_FIELDS = (FULL_NAME, GROUP, ACTIVE, *FLAGS, *OPTIONAL, *YES_NO)
KNOWN_PATHS = (USER, EMAIL, *UPDATE_FIELDS)
# clone-agent-details needs them; every one must have a value once mapped
REQUIRED = (USER, FULL_NAME, EMAIL)
ALL = frozenset({CREATE, UPDATE, DISABLE, ENABLE, DELETE})
_FAILED = ("false", "error", "fail", "failed")


class YccTarget(Target):
    capabilities = ALL          # CREATE is dropped for a run whose list lacks the template agent
    rate_limits = {"token endpoint": TOKEN_RATE_LIMIT}
    read_only = frozenset({USER})

    def __init__(self, name: str, base_url: str, *, paths: Sequence[str], username: str,
                 password: Secret, template_agent: str, token_url: str = TOKEN_URL,
                 admin_password: Secret | None = None, refresh_minutes: int = 120,
                 concurrency: int = 4, timeout: float = 30, tls_verify: bool = True,
                 ca_file: Path | None = None, rate_limit: float | None = None):
        unknown = [p for p in paths if p not in KNOWN_PATHS]
        if unknown:
            raise ConfigError(f"{name}: YCC agents have no field {', '.join(map(repr, unknown))} "
                              f"(known: {', '.join(KNOWN_PATHS)})")
        missing = [p for p in REQUIRED if p not in paths]
        if missing:
            raise ConfigError(f"{name}: the mapping must set {', '.join(missing)} (clone-agent-details "
                              "needs user, full_name and email)")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.paths = tuple(paths)
        self.template_agent = template_agent
        self.concurrency = max(1, concurrency)
        self._admin_password = admin_password
        # YCC's own limit is not documented: paced to what its answers announce
        self._limiter = HeaderRateLimiter(rate_limit)
        # the token endpoint is on the CPaaS host, with its own documented limit
        self._client = ytel_client(self.base_url, token_url, self._limiter, rate_limit, timeout=timeout,
                                   tls_verify=tls_verify, ca_file=ca_file)
        self.auth = YtelTokenAuth(token_url, username, password, refresh_minutes=refresh_minutes,
                                  client=self._client)
        self.capabilities = ALL
        self._groups: list[str] | None = None

    @property
    def immutable(self) -> frozenset[str]:
        # an e-mail change needs the admin password; without one a person makes it
        return frozenset() if self._admin_password is not None else frozenset({EMAIL})

    @property
    def rename_hint(self) -> str | None:
        """What a person does about a changed e-mail the connector may not send (planner hook)."""
        if self._admin_password is not None:
            return None
        return (f"change it in YCC by hand, or set admin_password for target {self.name} so "
                "provisioner can send it (update-agent-details needs new_email and an admin password)")

    # -- reading ---------------------------------------------------------

    def list_accounts(self) -> list[Account]:
        ids = self._agent_ids("list agents")
        present = self.template_agent in ids
        self.capabilities = ALL if present else ALL - {CREATE}
        if not present:
            log.warning("%s: template_agent %r is not among the agents: creates become manual items",
                        self.name, self.template_agent)
        # the template is never correlated, changed or disabled
        ids = [i for i in ids if i != self.template_agent]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(ids))),
                                thread_name_prefix=f"read-{self.name}") as pool:
            found = list(pool.map(self._read_listed, ids))   # map keeps the list's order
        if GROUP in self.paths and self._groups is None:
            self._groups = self._fetch_groups()   # rarely changes: once per run
        log.info("%s: read %d agents from %s", self.name, len(found), safe_url(self.base_url))
        return found

    def get_account(self, account_id: str) -> Account | None:
        try:
            body = self._call("GET", "/agent-details", f"read agent {account_id}", params={"id": account_id})
        except NotFound:
            return None
        info = user_info(body)
        return self._account(info, account_id) if info else None

    def find_accounts(self, path: str, value: Any) -> list[Account]:
        if value is None:
            return []
        if path == USER:
            found = self.get_account(str(value)) if str(value) != self.template_agent else None
            return [found] if found else []
        wanted = normalize(value, True)
        return [a for a in self.list_accounts() if normalize(a.attrs.get(path), True) == wanted]

    def _agent_ids(self, action: str) -> list[str]:
        rows = rows_of(self._call("GET", "/get-agent-list", action))
        return list(dict.fromkeys(str(r[USER]) for r in rows if r.get(USER) not in (None, "")))

    def _read_listed(self, account_id: str) -> Account:
        account = self.get_account(account_id)
        if account is None:
            # a listed agent without details would be created again: stop the read instead
            raise TargetError(f"{self.name}: agent {account_id} is listed but agent-details answers "
                              "no user_info for it; try again, or look at the agent in YCC")
        return account

    def _fetch_groups(self) -> list[str]:
        body = self._call("GET", "/agentgroup-lists", "read agent groups", params={"limit": 100000, "page": 1})
        return [str(r[GROUP]) for r in rows_of(body) if r.get(GROUP) not in (None, "")]

    def _account(self, info: Mapping[str, Any], account_id: str) -> Account:
        attrs: dict[str, Any] = {p: _wire(info.get(p)) for p in self.paths if p != ACTIVE}
        attrs[ACTIVE] = str(info.get(ACTIVE) or "").strip().upper() == "Y"
        return Account(id=str(info.get(USER) or account_id), attrs=attrs, raw=dict(info))

    # -- plan-time checks -------------------------------------------------

    def validate(self, want: Mapping[str, Any]) -> str | None:
        """A sentence when YCC would refuse what the mapping wants (a conflict in the plan)."""
        for path in (*REQUIRED, GROUP):
            if path in self.paths and _wire(want.get(path)) is None:
                return (f"{path} has no value: every YCC agent needs one; fill it in the source "
                        "or the mapping")
        if _wire(want.get(USER)) == self.template_agent:
            return (f"user {self.template_agent!r} is the template_agent, which is never changed: "
                    "give this person another user id")
        for path, allowed in [*((p, ("0", "1")) for p in FLAGS), *((p, ("Y", "N")) for p in YES_NO)]:
            value = _wire(want.get(path))
            if value is not None and value not in allowed:
                return f"{path} = {want[path]!r}: YCC takes {' or '.join(map(repr, allowed))}"
        group = _wire(want.get(GROUP))
        if self._groups is None or group is None or group in self._groups:
            return None
        close = difflib.get_close_matches(group, self._groups, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return (f"user_group {group!r} is not an agent group in YCC{hint}: correct it in the source "
                "or the mapping (known groups: GET /api/v2/agentgroup-lists)")

    def manual_create(self, key: str, want: Mapping[str, Any]) -> str:
        """The sentence for a person this run cannot clone an agent for (no template agent)."""
        who = want.get(FULL_NAME) or key
        return (f"{key} ({who}) has no YCC agent and none can be cloned: template_agent "
                f"{self.template_agent!r} is not among the agents at {safe_url(self.base_url)}; "
                "correct template_agent in the config (or create that agent in YCC), or create agent "
                f"{want.get(USER)!r} for {who} by hand; the next run links it")

    # -- writing ---------------------------------------------------------

    def create(self, attrs: Mapping[str, Any]) -> Account:
        if CREATE not in self.capabilities:
            raise TargetError(f"{self.name}: template_agent {self.template_agent!r} is not among the "
                              "agents: nothing to clone", retryable=False)
        user = _wire(attrs.get(USER))
        # made here, at send time: never in the plan, the audit log or a log line
        password = new_password()
        register(password)
        self._call("POST", "/clone-agent-details", f"create (clone of {self.template_agent})", json={
            "from_agent": self.template_agent, "full_name": _wire(attrs.get(FULL_NAME)),
            "new_agent": user, "pass": password, "email": _wire(attrs.get(EMAIL))})
        account = self.get_account(user)
        if account is None:
            raise TargetError(f"{self.name}: agent {user} was cloned but agent-details does not find it")
        # the clone inherited the template's settings; the user id and e-mail it was given
        wanted = {p: v for p, v in attrs.items() if p in UPDATE_FIELDS and p != ACTIVE}
        wanted[ACTIVE] = attrs.get(ACTIVE, True) is not False
        differ = {p: v for p, v in wanted.items()
                  if not same_value(account.active if p == ACTIVE else account.attrs.get(p), v)}
        if not differ:
            return account
        self.modify(account, differ)
        sent = {p: ("Y" if v else "N") if p == ACTIVE else _wire(v) for p, v in differ.items()}
        return Account(account.id, {**account.attrs, **differ}, raw={**account.raw, **sent})

    def modify(self, account: Account, changes: Mapping[str, Any]) -> None:
        info = account.raw
        email = _wire(info.get(EMAIL))
        if not email:
            raise TargetError(f"{self.name}: agent {account.id} has no e-mail in YCC, and "
                              "update-agent-details finds agents by e-mail: set one in YCC by hand",
                              retryable=False)
        if USER in changes and _wire(changes[USER]) != account.id:
            raise TargetError(f"{self.name}: YCC user ids are never changed ({account.id!r} to "
                              f"{changes[USER]!r})", retryable=False)
        # the call sets every field: what is not changed is sent as it is now
        body: dict[str, Any] = {f: _wire(info.get(f)) for f in UPDATE_FIELDS}
        body.update({"email": email, "new_email": None, "name": account.id, "pass": None})
        for path, value in changes.items():
            if path == ACTIVE:
                body[ACTIVE] = "N" if value is False else "Y"
            elif path == EMAIL and not same_value(value, email, True):
                body["new_email"], body["pass"] = self._email_change(account, value)
            elif path in UPDATE_FIELDS:
                body[path] = _wire(value)
        action = ("disable" if changes.get(ACTIVE) is False else
                  "enable" if changes.get(ACTIVE) is True else "update")
        self._call("POST", "/update-agent-details", f"{action} agent {account.id}", json=body)

    def delete(self, account: Account) -> None:
        """POST delete-agent with the agent's internal user_id; NotFound when it is gone already."""
        if account.id == self.template_agent:
            raise TargetError(f"{self.name}: agent {account.id} is the template_agent, which is never "
                              "deleted", retryable=False)
        user_id = self._internal_id(account.id)
        try:
            self._call("POST", "/delete-agent", f"delete agent {account.id}", params={"user_id": user_id})
        except NotFound:
            self._gone(account.id, f"delete-agent answered \"not found\" for its user_id {user_id}")
            raise

    def _internal_id(self, user: str) -> str:
        """The agent's internal user_id, which only global-api shows (delete-agent takes it)."""
        try:
            body = self._call("POST", "/global-api", f"look up agent {user}'s user_id",
                              json={"case": ["agent"]})
        except NotFound as exc:   # the call missing is not the agent gone
            raise TargetError(str(exc), exc.status, retryable=False) from exc
        found = [a for a in agents_of(body) if _wire(a.get("User", a.get(USER))) == user]
        if not found:
            self._gone(user, "global-api does not list it")
            raise NotFound(f"{self.name}: agent {user} is gone already", 404)
        user_ids = {_wire(a.get("user_id")) for a in found}
        if len(user_ids) != 1 or None in user_ids:
            raise TargetError(f"{self.name}: global-api lists agent {user} {len(found)} times or without "
                              "a user_id, so it cannot be deleted safely: delete it in YCC by hand",
                              retryable=False)
        return user_ids.pop()

    def _gone(self, user: str, why: str) -> None:
        """Nothing, when agent-details no longer finds `user`; else a TargetError saying `why`
        (a lookup that went wrong must never pass for a delete done)."""
        if self.get_account(user) is not None:
            raise TargetError(f"{self.name}: agent {user} cannot be deleted: {why}, yet agent-details "
                              "still finds it; delete it in YCC by hand", retryable=False)

    def _email_change(self, account: Account, value: Any) -> tuple[str, str]:
        if _wire(value) is None:
            raise TargetError(f"{self.name}: agent {account.id}'s e-mail cannot be cleared",
                              retryable=False)
        if self._admin_password is None:
            raise TargetError(f"{self.name}: changing agent {account.id}'s e-mail needs the admin "
                              "password: set admin_password, or change it in YCC by hand",
                              retryable=False)
        return _wire(value), self._admin_password.reveal()

    # -- other -----------------------------------------------------------

    def check(self) -> str:
        ids = self._agent_ids("check")
        template = ("present" if self.template_agent in ids
                    else "NOT among them: creates will be manual items until it exists")
        return (f"Ytel YCC at {safe_url(self.base_url)}: token accepted; {len(ids)} agents; "
                f"template agent {self.template_agent!r} {template}")

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, action: str, **kwargs: Any) -> Any:
        """The answer's JSON; TargetError (NotFound, AlreadyExists) quoting YCC's message otherwise."""
        with acting(self.name, action):
            response = self._client.request(method, self.base_url + API + path, auth=self.auth, **kwargs)
        body = _json(response)
        status = response.status_code
        if 200 <= status < 300 and not refused(body):
            return body
        text = message(response, body)
        if status == 401:
            raise TargetError(f"{self.name}: {action} refused (401 {text}): check username, password "
                              "and token_url", 401)
        lowered = text.lower()
        cls = (NotFound if status == 404 or "not found" in lowered else
               AlreadyExists if status == 409 or "already" in lowered else TargetError)
        verb = "failed" if status >= 500 else "refused"
        where = "HTTP 200, status false" if status < 300 else f"HTTP {status}"
        raise cls(f"{self.name}: {action} {verb} ({where}): {text}", status,
                  retryable=status in RETRY_STATUSES)


# -- YCC's answers (shapes assumed: the seed has no example) -----------------

def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def refused(body: Any) -> bool:
    """A 2xx answer whose body says it failed."""
    if not isinstance(body, dict):
        return False
    for key in ("status", "success"):
        flag = body.get(key)
        if flag is False or (isinstance(flag, str) and flag.strip().lower() in _FAILED):
            return True
    return bool(body.get("error"))


def message(response: httpx.Response, body: Any) -> str:
    """What YCC said went wrong, secrets redacted: message, error, errors; else the HTTP reason."""
    parts: list[str] = []
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            parts.append(body["message"])
        error = body.get("error")
        if isinstance(error, str):
            parts.append(error)
        elif error:
            parts.append(envelope.error_text(response, body))   # Ytel's [{code, message, moreInfo}]
        errors = body.get("errors")
        if isinstance(errors, dict):
            for field, texts in errors.items():
                text = " ".join(map(str, texts if isinstance(texts, list) else [texts]))
                if text not in parts:   # Laravel repeats the first one as `message`
                    parts.append(f"{field}: {text}")
    text = "; ".join(dict.fromkeys(p.strip() for p in parts if p and p.strip()))
    return redact(text or response.reason_phrase or "no detail given")[:400]


def rows_of(body: Any) -> list[dict]:
    """The list in `data` (or in a paginated `data.data`, or the body itself)."""
    rows = body.get("data") if isinstance(body, dict) else body
    if isinstance(rows, dict):
        rows = rows.get("data")
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def agents_of(body: Any) -> list[dict]:
    """global-api's agent list: `data.agent` (or `agent` at the top)."""
    if not isinstance(body, dict):
        return []
    for holder in (body.get("data"), body):
        agents = holder.get("agent") if isinstance(holder, dict) else None
        if isinstance(agents, list):
            return [a for a in agents if isinstance(a, dict)]
    return []


def user_info(body: Any) -> dict | None:
    """agent-details' `user_info`, found under `data` or at the top of the answer."""
    if not isinstance(body, dict):
        return None
    for holder in (body.get("data"), body):
        info = holder.get("user_info") if isinstance(holder, dict) else None
        if isinstance(info, dict) and info:
            return info
    return None


def _wire(value: Any) -> str | None:
    """A value as YCC writes it: text, None for blank."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None
