"""Ytel AMS users (shared api-notes §2, seed 002: Authentication, User Management).

Vendor facts this module owns:
- Tokens: resource-owner credentials then the refresh_token grant (auth.py).
- Every answer is an envelope; `status: false` under HTTP 200 is a failure whose
  error code/message/moreInfo become the item's error (envelope.py).
- Rate limits: 150 requests/s on AMS calls and, separately, 25/s on the token
  endpoint (the seed's X-RateLimit-Limit-Second). Requests are paced to these
  from the first one, and to what each answer's headers announce after that
  (http.HeaderRateLimiter, one per endpoint, chosen by the client's transport
  for each request); a request repeated after a token renewal takes its own slot.
- `username` is an e-mail and can never change: it is declared `immutable`, so
  the planner makes a rename a manual item (or, with the target's rename =
  "recreate", default "manual"; a create plus a disable of the old account).
- `roles` must be sent in full on every update; they are validated at plan time
  against GET /ams/v2/roles/all, read once per run.
- A create needs a password: a strong random one is generated here, at send
  time, and never logged, stored or printed (password_mode = "none" sends none,
  for accounts that sign in through SSO).
- The account state is `userStatus` ("active"/"inactive"), changed only through
  PUT /ams/v3/users/status/{clientId}. A delete is DELETE /ams/v3/users/{clientId}
  (the seed shows no answer: it is taken to be the envelope like every other one).
- Work-group membership is the optional `workgroups` attribute (workgroups.py).
"""

from __future__ import annotations

import difflib
import logging
import secrets
import string
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote

from .auth import TOKEN_RATE_LIMIT, YtelTokenAuth, ytel_client
from ...errors import AlreadyExists, ConfigError, NotFound, TargetError
from ...http import RETRY_STATUSES, HeaderRateLimiter, acting, safe_url
from ...model import ACTIVE, Account, normalize
from ...secrets import Secret, register
from . import envelope
from ...target import CREATE, DELETE, DISABLE, ENABLE, UPDATE, Target, flatten
from ..onecloud.target import roles_list, roles_text
from .workgroups import WORKGROUPS, WorkGroups

log = logging.getLogger(__name__)

USERS = "/ams/v3/users"
USERNAME, ROLES = "username", "roles"
PASSWORD_MODES = ("generate", "none")
AMS_RATE_LIMIT = 150        # requests/s on every AMS call (the token endpoint has its own)
_SYMBOLS = "!#$%&*+-=?@^_"


class YtelTarget(Target):
    capabilities = frozenset({CREATE, UPDATE, DISABLE, ENABLE, DELETE})
    immutable = frozenset({USERNAME})
    rate_limits = {"AMS calls": AMS_RATE_LIMIT, "token endpoint": TOKEN_RATE_LIMIT}

    def __init__(self, name: str, base_url: str, *, paths: Sequence[str], username: str,
                 password: Secret, account_id: str, password_mode: str = "generate",
                 refresh_minutes: int = 120, timeout: float = 30,
                 tls_verify: bool = True, ca_file: Path | None = None,
                 rate_limit: float | None = None, workgroups: Sequence[str] = (),
                 workgroup_remove_path: str | None = None):
        if password_mode not in PASSWORD_MODES:
            raise ConfigError(f"{name}: password_mode must be one of {', '.join(PASSWORD_MODES)}, "
                              f"not {password_mode!r}")
        if USERNAME not in paths:
            raise ConfigError(f"{name}: the mapping must set username (the user's e-mail)")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.paths = tuple(paths)
        self.account_id = account_id
        self.password_mode = password_mode
        token_url = self.base_url + "/auth/v3/token"
        self._limiter = HeaderRateLimiter(rate_limit, assumed=AMS_RATE_LIMIT)
        # the token endpoint has its own, lower limit (25/s against 150/s)
        self._client = ytel_client(self.base_url, token_url, self._limiter, rate_limit, timeout=timeout,
                                   tls_verify=tls_verify, ca_file=ca_file)
        self.auth = YtelTokenAuth(token_url, username, password, refresh_minutes=refresh_minutes,
                                  client=self._client)
        self._roles: list[str] | None = None
        self._groups = (WorkGroups(name, workgroups, workgroup_remove_path, self._call)
                        if WORKGROUPS in self.paths else None)

    # -- reading ---------------------------------------------------------

    def list_accounts(self) -> list[Account]:
        users = self._call("GET", USERS + "/", "list accounts")
        if self._groups is not None:
            self._groups.read()
        accounts = [self._account(u) for u in users if u.get("clientId")]
        if ROLES in self.paths and self._roles is None:
            self._roles = self._fetch_roles()   # rarely changes: once per run
        log.info("%s: read %d accounts from %s", self.name, len(accounts), safe_url(self.base_url))
        return accounts

    def get_account(self, account_id: str) -> Account | None:
        try:
            users = self._call("GET", f"{USERS}/{quote(account_id, safe='')}", "read account")
        except NotFound:
            return None
        return self._account(users[0]) if users else None

    def find_accounts(self, path: str, value: Any) -> list[Account]:
        if value is None:
            return []
        if path == USERNAME:
            try:
                users = self._call("GET", f"{USERS}/usernames/{quote(str(value), safe='@')}",
                                   "find account by username")
            except NotFound:
                return []
            return [self._account(u) for u in users if u.get("clientId")]
        wanted = normalize(value, case_insensitive=True)
        return [a for a in self.list_accounts() if normalize(a.attrs.get(path), True) == wanted]

    def _fetch_roles(self) -> list[str]:
        roles = self._call("GET", "/ams/v2/roles/all", "read roles")
        return [r["name"] for r in roles if isinstance(r.get("name"), str)]

    def _account(self, user: Mapping[str, Any]) -> Account:
        attrs = flatten(user, self.paths)
        if ROLES in attrs:
            attrs[ROLES] = roles_text(user.get(ROLES))
        if self._groups is not None:
            attrs[WORKGROUPS] = self._groups.of(str(user["clientId"]))
        attrs[ACTIVE] = str(user.get("userStatus") or user.get("status") or "active").lower() == "active"
        return Account(id=str(user["clientId"]), attrs=attrs, raw=dict(user))

    # -- plan-time checks -------------------------------------------------

    def validate(self, want: Mapping[str, Any]) -> str | None:
        """A sentence when a wanted role or work group cannot be given (a conflict in the plan)."""
        if self._groups is not None:
            problem = self._groups.problem(want.get(WORKGROUPS))
            if problem:
                return problem
        if self._roles is None or want.get(ROLES) is None:
            return None
        unknown = [r for r in roles_list(want[ROLES]) if r not in self._roles]
        if not unknown:
            return None
        close = difflib.get_close_matches(unknown[0], self._roles, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return (f"role {', '.join(map(repr, unknown))} does not exist in Ytel{hint}: correct the "
                "role in the source or the mapping (known roles: GET /ams/v2/roles/all)")

    def partial_change(self, path: str, have: Any, want: Any) -> tuple[Any, str] | None:
        """A work-group removal Ytel has no call for is left to a person (planner hook)."""
        if path != WORKGROUPS or self._groups is None:
            return None
        return self._groups.partial(have, want)

    # -- writing ---------------------------------------------------------

    def create(self, attrs: Mapping[str, Any]) -> Account:
        body: dict[str, Any] = {"belongAcctId": self.account_id, "clientId": None,
                                **self._fields(attrs, keep_none=False)}
        body.setdefault(ROLES, [])
        body["status"] = "inactive" if attrs.get(ACTIVE) is False else "active"
        if self.password_mode == "generate":
            # made here, at send time: never in the plan, the audit log or a log line
            password = new_password()
            register(password)
            body["password"] = password
        users = self._call("POST", USERS, "create", body)
        if users and users[0].get("clientId"):
            account = self._account(users[0])
        else:
            found = self.find_accounts(USERNAME, attrs.get(USERNAME))
            if len(found) != 1:
                raise TargetError(f"{self.name}: create answered without the new user's clientId")
            account = found[0]
        if self._groups is not None and attrs.get(WORKGROUPS):
            try:
                self._groups.change(account.id, None, attrs[WORKGROUPS])
            except TargetError as exc:
                # the user exists now: a retry would find it (the executor's lookup) and the
                # next plan adds the missing membership
                raise TargetError(f"{exc} (user {account.id} was created; the next run adds the "
                                  "work group)", exc.status, exc.retryable) from exc
            account.attrs[WORKGROUPS] = self._groups.of(account.id)
        return account

    def modify(self, account: Account, changes: Mapping[str, Any]) -> None:
        fields = self._fields({p: v for p, v in changes.items() if p not in (ACTIVE, WORKGROUPS)},
                              keep_none=True)
        current = account.raw.get(USERNAME) or account.attrs.get(USERNAME)
        if USERNAME in fields and normalize(fields[USERNAME], True) != normalize(current, True):
            raise TargetError(f"{self.name}: Ytel usernames cannot change ({current!r} to "
                              f"{fields[USERNAME]!r}); make a new plan", retryable=False)
        url = f"{USERS}/{quote(account.id, safe='')}"
        if fields:
            # fields given replace, others keep; roles must be sent every time, in full
            body = {USERNAME: current, ROLES: roles_list(account.raw.get(ROLES) or []), **fields}
            self._call("PUT", url, "update", body)
        if WORKGROUPS in changes and self._groups is not None:
            self._groups.change(account.id, account.attrs.get(WORKGROUPS), changes[WORKGROUPS])
        if ACTIVE in changes:
            status = "inactive" if changes[ACTIVE] is False else "active"
            self._call("PUT", f"{USERS}/status/{quote(account.id, safe='')}",
                       "disable" if status == "inactive" else "enable", {"status": status})

    def delete(self, account: Account) -> None:
        """DELETE /ams/v3/users/{clientId}; NotFound (404) when the user is gone already."""
        self._call("DELETE", f"{USERS}/{quote(account.id, safe='')}", "delete")

    def _fields(self, values: Mapping[str, Any], *, keep_none: bool) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for path, value in values.items():
            if path == ACTIVE or (value is None and not keep_none):
                continue
            body[path] = roles_list(value) if path == ROLES and value is not None else value
        if ROLES in body and body[ROLES] is None:
            body[ROLES] = []
        return body

    # -- other -----------------------------------------------------------

    def check(self) -> str:
        users = self._call("GET", USERS + "/", "check")
        return f"Ytel AMS at {safe_url(self.base_url)}: token accepted; {len(users)} users in the account"

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, action: str, body: Any = None) -> list[dict]:
        """The envelope's payload; TargetError (NotFound, AlreadyExists) with its error otherwise."""
        with acting(self.name, action):
            response = self._client.request(method, self.base_url + path, auth=self.auth, json=body)
        answer = envelope.body_of(response)
        if envelope.succeeded(response, answer):
            return envelope.payload(answer)
        code = envelope.error_code(response, answer)
        text = envelope.error_text(response, answer)
        if response.status_code == 401 or code == 401:
            raise TargetError(f"{self.name}: {action} refused (401 {text}): check username and "
                              "password", 401)
        cls = NotFound if 404 in (code, response.status_code) else \
            AlreadyExists if code == 409 or "already exist" in text.lower() else TargetError
        verb = "failed" if response.status_code >= 500 else "refused"
        where = "" if response.status_code == 200 else f"HTTP {response.status_code}, "
        raise cls(f"{self.name}: {action} {verb} ({where}status false): {text}", response.status_code,
                  retryable=response.status_code in RETRY_STATUSES)


def new_password(length: int = 24) -> str:
    """A random password with upper and lower case letters, digits and symbols."""
    alphabet = string.ascii_letters + string.digits + _SYMBOLS
    classes = (string.ascii_lowercase, string.ascii_uppercase, string.digits, _SYMBOLS)
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(c in group for c in password) for group in classes):
            return password
