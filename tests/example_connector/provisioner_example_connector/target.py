"""The example directory as a provisioner target.

Retries, backoff, pacing and redaction are not here: the client from provisioner's
make_client does them for every request. This module says what the API means.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import httpx

from provisioner.errors import AlreadyExists, ConfigError, NotFound, TargetError
from provisioner.http import BearerAuth, RateLimiter, accepted, acting, json_of, make_client, safe_url
from provisioner.model import ACTIVE, Account, normalize
from provisioner.secrets import Secret
from provisioner.target import CREATE, DELETE, DISABLE, ENABLE, UPDATE, Target

log = logging.getLogger(__name__)

API = "/api/v1"
FIELDS = ("email", "given_name", "family_name", "title")
WRITE_ONLY = ("pin",)


class ExampleDirectoryTarget(Target):
    capabilities = frozenset({CREATE, UPDATE, DISABLE, ENABLE, DELETE})
    server_owned = frozenset({"id"})
    required_paths = frozenset({"email", "given_name", "family_name"})
    write_only = frozenset(WRITE_ONLY)

    def __init__(self, name: str, base_url: str, *, paths: Sequence[str], token: Secret,
                 page_size: int = 100, timeout: float = 30, tls_verify: bool = True,
                 ca_file: Path | None = None, rate_limit: float | None = None):
        unknown = [p for p in paths if p not in (*FIELDS, *WRITE_ONLY, ACTIVE)]
        if unknown:
            raise ConfigError(f"{name}: the example directory has no field {', '.join(map(repr, unknown))} "
                              f"(known: {', '.join((*FIELDS, *WRITE_ONLY))})")
        self.name, self.paths, self.page_size = name, tuple(paths), page_size
        self.users_url = base_url.rstrip("/") + API + "/users"
        self._client = make_client(base_url, auth=BearerAuth(token), headers={"Accept": "application/json"},
                                   timeout=timeout, tls_verify=tls_verify, ca_file=ca_file,
                                   limiter=RateLimiter(rate_limit))

    # -- reading -------------------------------------------------------------

    def list_accounts(self) -> list[Account]:
        accounts = self._pages({}, "list users")
        log.info("%s: read %d users from %s", self.name, len(accounts), safe_url(self.users_url))
        return accounts

    def get_account(self, account_id: str) -> Account | None:
        response = self._request("GET", f"{self.users_url}/{account_id}", "read user", ok=(200, 404))
        return None if response.status_code == 404 else self._account(self._json(response, "read user"))

    def find_accounts(self, path: str, value: Any) -> list[Account]:
        if value is None:
            return []
        if path == "email":   # the API filters by e-mail itself
            return self._pages({"email": value}, "find users by email")
        wanted = normalize(value, True)
        return [a for a in self.list_accounts() if normalize(a.attrs.get(path), True) == wanted]

    def _pages(self, params: dict, action: str) -> list[Account]:
        found: dict[str, Account] = {}
        offset = 0
        while True:
            body = self._json(self._request("GET", self.users_url, action, params={
                **params, "offset": offset, "limit": self.page_size}), action)
            users = [u for u in body.get("users") or [] if isinstance(u, dict) and u.get("id")]
            for user in users:
                found.setdefault(str(user["id"]), self._account(user))
            offset += len(users)
            if len(users) < self.page_size:
                return list(found.values())

    def _account(self, user: Mapping[str, Any]) -> Account:
        attrs = {p: None if p in WRITE_ONLY else user.get(p) for p in self.paths if p != ACTIVE}
        attrs[ACTIVE] = user.get("enabled") is not False
        return Account(id=str(user["id"]), attrs=attrs, raw=dict(user))

    # -- writing -------------------------------------------------------------

    def create(self, attrs: Mapping[str, Any]) -> Account:
        body = self._body(attrs)
        response = self._request("POST", self.users_url, "create user", json=body, ok=(201,),
                                 errors={409: AlreadyExists})
        return self._account(self._json(response, "create user"))

    def modify(self, account: Account, changes: Mapping[str, Any]) -> None:
        if changes:
            self._request("PATCH", f"{self.users_url}/{account.id}", "update user", json=self._body(changes),
                          errors={404: NotFound, 409: AlreadyExists})

    def delete(self, account: Account) -> None:
        # 204 once gone; a 404 (deleted already) is NotFound, which the executor counts as done
        self._request("DELETE", f"{self.users_url}/{account.id}", "delete user", ok=(204,),
                      errors={404: NotFound})

    @staticmethod
    def _body(attrs: Mapping[str, Any]) -> dict:
        body = {p: v for p, v in attrs.items() if p != ACTIVE}
        if ACTIVE in attrs and attrs[ACTIVE] is not None:
            body["enabled"] = bool(attrs[ACTIVE])
        return body

    # -- other ---------------------------------------------------------------

    def check(self) -> str:
        body = self._json(self._request("GET", self.users_url, "check", params={"limit": 1}), "check")
        return f"example directory at {safe_url(self.users_url)}: {body.get('total', '?')} users"

    def close(self) -> None:
        self._client.close()

    def _request(self, method: str, url: str, action: str, *, ok: Sequence[int] = (200,),
                 errors: Mapping[int, type[TargetError]] | None = None, **kwargs: Any) -> httpx.Response:
        with acting(self.name, action):   # a request that fails for good names this target and action
            response = self._client.request(method, url, **kwargs)
        return accepted(response, self.name, action, ok=ok, errors=errors, unauthorized="check the token")

    def _json(self, response: httpx.Response, action: str) -> dict:
        return json_of(response, self.name, action)
