"""A generic SCIM 2.0 (RFC 7643/7644) target: the /Users endpoint of any compliant server."""

from __future__ import annotations

import copy
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote

import httpx

from ... import scim_paths as P
from ...errors import AlreadyExists, ConfigError, NotFound, TargetError
from ...http import (BasicAuth, BearerAuth, RateLimiter, accepted, acting, error_for, json_of, make_client,
                     safe_url, unauthorized_error)
from ...model import Account
from ...secrets import Secret
from ...target import CREATE, DELETE, DISABLE, ENABLE, UPDATE, Target, flatten

log = logging.getLogger(__name__)

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_JSON = "application/scim+json"
# Listing pages when page_size is not configured: the server's filter.maxResults
# (ServiceProviderConfig), at most this many (one answer stays a few MB), or
# DEFAULT_PAGE_SIZE when it announces none.
MAX_AUTO_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
# rounds of concurrent requests timed for the apply estimate (the median counts)
_TIMING_ROUNDS = 5


class ScimTarget(Target):
    capabilities = frozenset({CREATE, UPDATE, DISABLE, ENABLE, DELETE})
    # RFC 7643 §3.1 and §4.1: id and meta are the server's; a User's groups are readOnly
    server_owned = frozenset({"id", "meta", "groups"})
    # RFC 7643 §4.1.1: userName is the one attribute a User must have
    required_paths = frozenset({"userName"})
    # the Users endpoint under base_url (vendors that spell it otherwise override it)
    users_path = "/Users"

    def __init__(self, name: str, base_url: str, *, paths: Sequence[str],
                 token: Secret | None = None, username: str | None = None,
                 password: Secret | None = None, update_method: str = "patch",
                 page_size: int | None = None, timeout: float = 30, tls_verify: bool = True,
                 ca_file: Path | None = None, rate_limit: float | None = None,
                 client: httpx.Client | None = None):
        if update_method not in ("patch", "put"):
            raise ConfigError(f"{name}: update_method must be \"patch\" or \"put\", not {update_method!r}")
        if page_size is not None and page_size < 1:
            raise ConfigError(f"{name}: page_size must be at least 1")
        if rate_limit is not None and rate_limit <= 0:
            raise ConfigError(f"{name}: rate_limit must be a positive number of requests per second")
        if token is not None and username is not None:
            raise ConfigError(f"{name}: give either a token or a username and password, not both")
        if (username is None) != (password is None):
            raise ConfigError(f"{name}: basic authentication needs both a username and a password")
        for path in paths:
            try:
                P.parse(path)
            except ValueError as exc:
                raise ConfigError(f"{name}: {exc}") from None
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.paths = tuple(paths)
        self.update_method = update_method
        self.page_size = page_size
        self._credential = ("token" if token is not None else "username and password"
                            if username is not None else "credentials (none are configured)")
        self._auth = (BearerAuth(token) if token is not None
                      else BasicAuth(username, password) if username is not None else None)
        self._limiter = RateLimiter(rate_limit)
        # a client given (tests watch requests with one) is used as it is
        self._owns_client = client is None
        self._client = client or make_client(
            self.base_url, headers={"Accept": SCIM_JSON}, timeout=timeout,
            tls_verify=tls_verify, ca_file=ca_file, limiter=self._limiter)
        self._per_request: dict[int, float] = {}

    # -- reading ---------------------------------------------------------

    def list_accounts(self) -> list[Account]:
        accounts = self._search({}, "list accounts")
        log.info("%s: read %d accounts from %s", self.name, len(accounts), safe_url(self.base_url))
        return accounts

    def get_account(self, account_id: str) -> Account | None:
        response = self._request("GET", self._user_url(account_id), "read account", ok=(200, 404))
        if response.status_code == 404:
            return None
        return self._account(self._json(response, "read account"))

    def find_accounts(self, path: str, value: Any) -> list[Account]:
        if value is None:
            return []  # an absent value identifies nobody
        return self._search({"filter": filter_for(path, value)}, f"find accounts by {path}")

    def _search(self, params: dict, action: str) -> list[Account]:
        """All pages of GET /Users (RFC 7644 §3.4.2.4), each account once."""
        found: dict[str, Account] = {}
        start = 1
        count = self._page_size()
        while True:
            response = self._request("GET", self.base_url + self.users_path, action, params={
                **params, "startIndex": start, "count": count})
            body = self._json(response, action)
            resources = body.get("Resources") or body.get("resources") or []
            before = len(found)
            for doc in resources:
                if isinstance(doc, dict) and doc.get("id") is not None:
                    found.setdefault(str(doc["id"]), self._account(doc))
            total = _int(body.get("totalResults"))
            start += len(resources)
            # a server that ignores startIndex repeats itself: no new ids ends the loop
            if not resources or len(found) == before or (total is not None and start > total):
                return list(found.values())

    def _page_size(self) -> int:
        """The configured page size, else the largest the server allows (asked once)."""
        if self.page_size is None:
            self.page_size = self._announced_page_size()
        return self.page_size

    def _announced_page_size(self) -> int:
        spc = self._request("GET", f"{self.base_url}/ServiceProviderConfig", "read the "
                            "ServiceProviderConfig", ok=range(200, 600))
        try:
            announced = _int((spc.json().get("filter") or {}).get("maxResults"))
        except (ValueError, AttributeError):
            announced = None
        if spc.status_code != 200 or announced is None or announced < 1:
            log.info("%s: no filter.maxResults in the ServiceProviderConfig; listing %d accounts "
                     "a page", self.name, DEFAULT_PAGE_SIZE)
            return DEFAULT_PAGE_SIZE
        size = min(announced, MAX_AUTO_PAGE_SIZE)
        log.info("%s: listing %d accounts a page (the server allows %d)", self.name, size, announced)
        return size

    # -- writing ---------------------------------------------------------

    def create(self, attrs: Mapping[str, Any]) -> Account:
        doc = user_document(attrs)
        response = self._request("POST", self.base_url + self.users_path, "create", json_body=doc,
                                 ok=(200, 201), errors={409: AlreadyExists})
        body = self._json(response, "create")
        if body.get("id") is None:
            raise TargetError(f"{self.name}: create answered {response.status_code} "
                              "without the new account's id")
        return self._account(body)

    def modify(self, account: Account, changes: Mapping[str, Any]) -> None:
        if not changes:
            return
        url = self._user_url(account.id)
        errors = {404: NotFound}
        if self.update_method == "put":
            doc = copy.deepcopy(dict(account.raw))
            doc.pop("meta", None)
            doc.setdefault("id", account.id)
            doc.setdefault("schemas", [USER_SCHEMA])
            apply_changes(doc, changes)
            _declare_extensions(doc)
            self._request("PUT", url, "update", json_body=doc, ok=(200, 204), errors=errors)
        else:
            operations = patch_operations(account.raw, changes)
            if operations:
                body = {"schemas": [PATCH_SCHEMA], "Operations": operations}
                self._request("PATCH", url, "update", json_body=body, ok=(200, 204), errors=errors)

    def delete(self, account: Account) -> None:
        # RFC 7644 3.6: 204 No Content; 404 (gone already) is the caller's "done"
        self._request("DELETE", self._user_url(account.id), "delete", ok=(200, 204), errors={404: NotFound})

    # -- other -----------------------------------------------------------

    def check(self) -> str:
        notes = []
        spc = self._request("GET", f"{self.base_url}/ServiceProviderConfig", "check",
                            ok=range(200, 600))
        if spc.status_code == 401:
            raise self._auth_error()
        if spc.status_code == 200:
            try:
                patch = spc.json().get("patch", {}).get("supported")
            except (ValueError, AttributeError):
                patch = None
            if patch is False and self.update_method == "patch":
                notes.append("the server says it does not support PATCH: set update_method to put")
                log.warning("%s: %s", self.name, notes[-1])
        # ServiceProviderConfig may be public (RFC 7644 §4): /Users proves the credentials
        body = self._json(self._request("GET", self.base_url + self.users_path, "check",
                                        params={"startIndex": 1, "count": 1}), "check")
        total = _int(body.get("totalResults"))
        users = f"{total} users" if total is not None else "users endpoint reachable"
        return "; ".join([f"SCIM 2.0 at {safe_url(self.base_url)}: {users}", *notes])

    def seconds_per_request(self, concurrency: int) -> float | None:
        # rounds of `concurrency` searches at once for a userName nobody has: a server that
        # answers one request at a time takes `concurrency` round trips for a round, one that
        # answers them side by side about one. A search goes through the server's user store
        # as a create does (which checks the name is free); the static ServiceProviderConfig
        # timed before cost a third of a create on scim2-server. The median round counts:
        # one round alone swung the estimate by half on a busy machine.
        if concurrency not in self._per_request:
            params = {"filter": filter_for("userName", "provisioner-timing-probe-no-such-user"),
                      "startIndex": 1, "count": 1}

            def one(_: int) -> None:
                self._request("GET", self.base_url + self.users_path, "time requests", params=params,
                              ok=range(200, 600))
            rounds = []
            try:
                with ThreadPoolExecutor(max_workers=concurrency) as pool:
                    for _ in range(_TIMING_ROUNDS):
                        started = time.perf_counter()
                        list(pool.map(one, range(concurrency)))
                        rounds.append((time.perf_counter() - started) / concurrency)
            except TargetError:
                return None
            self._per_request[concurrency] = sorted(rounds)[len(rounds) // 2]
        return self._per_request[concurrency]

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    # -- plumbing --------------------------------------------------------

    def _user_url(self, account_id: str) -> str:
        return f"{self.base_url}{self.users_path}/{quote(str(account_id), safe='')}"

    def _account(self, doc: dict) -> Account:
        return Account(id=str(doc["id"]), attrs=flatten(doc, self.paths), raw=doc)

    def _request(self, method: str, url: str, action: str, *, params: dict | None = None,
                 json_body: Any = None, ok: Sequence[int] = (200,),
                 errors: Mapping[int, type[TargetError]] | None = None,
                 content_type: str = SCIM_JSON) -> httpx.Response:
        content = json.dumps(json_body, ensure_ascii=False).encode() if json_body is not None else None
        headers = {"Content-Type": content_type} if content is not None else None
        with acting(self.name, action):
            response = self._client.request(method, url, params=params, content=content,
                                            headers=headers, auth=self._auth)
        return accepted(response, self.name, action, ok=ok, errors=errors,
                        unauthorized=f"check the {self._credential}",
                        refusal=lambda _, act, answer, cls: self._error(act, answer, cls))

    def _error(self, action: str, response: httpx.Response, cls: type[TargetError]) -> TargetError:
        """The error for a refused request (a vendor's subclass says what to fix)."""
        return error_for(self.name, action, response, cls)

    def _auth_error(self) -> TargetError:
        return unauthorized_error(self.name, f"check the {self._credential}")

    def _json(self, response: httpx.Response, action: str, expect: type = dict,
              what: str = "a SCIM JSON object") -> Any:
        return json_of(response, self.name, action, expect=expect, what=what)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def filter_for(path: str, value: Any) -> str:
    """A SCIM filter for "attribute at `path` equals `value`".

    `emails[type eq "work"].value` becomes a value path filter,
    `emails[type eq "work" and value eq "x"]`; an index cannot be filtered on,
    so `emails[0].value` becomes `emails.value eq "x"`.
    """
    literal = json.dumps(value if isinstance(value, (str, bool, int, float)) else str(value),
                         ensure_ascii=False)
    segs = P.parse(path)
    if len(segs) >= 2 and segs[-2].match is not None and not segs[-1].selects \
            and not any(s.selects for s in segs[:-2]):
        attr, wanted = segs[-2].match
        outer = P.strip_selectors(path).rsplit(".", 1)[0]
        inner = f"{attr} eq {json.dumps(wanted, ensure_ascii=False)}"
        return f"{outer}[{inner} and {segs[-1].name} eq {literal}]"
    return f"{P.strip_selectors(path)} eq {literal}"


def apply_changes(doc: dict, changes: Mapping[str, Any]) -> None:
    """Apply {path: value} to `doc`; None removes the value (and a list entry's whole element)."""
    doomed = []
    for path, value in changes.items():
        if value is None:
            element = _entry(path)
            if element:
                target = P.get_path(doc, element)
                if isinstance(target, dict):
                    doomed.append(target)
                    continue
            P.remove_path(doc, path)
    for path, value in changes.items():
        if value is not None:
            P.set_path(doc, path, value)
    # removed by identity after the sets, so indices in other changes still mean what they said
    for target in doomed:
        _drop(doc, target)


def _drop(node: Any, target: dict) -> None:
    if isinstance(node, dict):
        for value in node.values():
            _drop(value, target)
    elif isinstance(node, list):
        node[:] = [x for x in node if x is not target]
        for x in node:
            _drop(x, target)


def _entry(path: str) -> str | None:
    """`emails[0]` for `emails[0].value`: the list element a value path stands for."""
    segs = P.parse(path)
    if len(segs) >= 2 and segs[-2].selects and segs[-1].name.lower() == "value":
        head, _, _ = path.rpartition(".")
        return head
    return None


def patch_operations(raw: Mapping[str, Any], changes: Mapping[str, Any]) -> list[dict]:
    """PatchOp operations: replace/remove per simple path; a path with a selector
    replaces its whole top-level attribute, so the other list entries are kept."""
    ops: list[dict] = []
    grouped: dict[str, dict[str, Any]] = {}
    for path, value in changes.items():
        if P.has_selector(path):
            grouped.setdefault(P.top_level(path), {})[path] = value
        elif value is None:
            # some servers answer 400 noTarget to removing what is not there
            if P.get_path(raw, path) is not None:
                ops.append({"op": "remove", "path": path})
        else:
            ops.append({"op": "replace", "path": path, "value": value})
    for top, group in grouped.items():
        holder = {top: copy.deepcopy(P.get_path(raw, top))}
        apply_changes(holder, group)
        value = holder[top]
        if value in (None, [], {}):
            if P.get_path(raw, top) is not None:
                ops.append({"op": "remove", "path": top})
        elif value != P.get_path(raw, top):
            ops.append({"op": "replace", "path": top, "value": value})
    return ops


def user_document(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The SCIM User a create sends for flat {path: value} attributes (None: left out)."""
    doc: dict[str, Any] = {"schemas": [USER_SCHEMA]}
    for path, value in attrs.items():
        if value is not None:
            P.set_path(doc, path, value)
    _declare_extensions(doc)
    return doc


def _declare_extensions(doc: dict) -> None:
    # RFC 7643 §3: every extension a resource carries must be listed in "schemas"
    schemas = doc.setdefault("schemas", [USER_SCHEMA])
    known = {s.lower() for s in schemas}
    for key in doc:
        if key.lower().startswith("urn:") and key.lower() not in known:
            schemas.append(key)
            known.add(key.lower())
