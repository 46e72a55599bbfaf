"""ClientTrack (Eccovia CTAPI): staff accounts as rows of one table, read with
CRQL and written through CTObjects.

Vendor facts this module owns (shared api-notes §4, seed 003):
- Every request carries a subscription key and an API key (auth.py);
  a 401 is never retried, 500/502/503/504 are (the client's transport, with backoff).
- CRQL reads: `GET /crql?q=SELECT TOP n cols FROM table&pageNo=&pageSize=`,
  rows in `data.Table1`, an empty result is a bare `{}`, `recordCount` is not
  trusted (pages are counted by rows), pageSize is at most 500, and the
  URL-encoded query at most 2048 characters. There is no ORDER BY or OFFSET.
- Whether `TOP n` binds before paging is not documented. `paging = "top"`
  pages with pageNo and checks itself: a page repeating the previous page's
  rows, or a full page followed by an empty one while a row with a greater key
  still exists (one `WHERE key > last` probe), is a TargetError advising
  `paging = "keyset"`, so the plan blocks this target instead of creating
  duplicates of the accounts it did not see; `check` reads two one-row pages
  to find such a server before a plan does. `paging = "keyset"` asks for
  `WHERE key > last` each time and requires rows in key order.
- CTObjects: `GET /cto/{table}/{id}` reads one record; insert `POST /cto/{table}`
  and update `PUT /cto/{table}/{id}` are assumed (paths are configuration).
  There is no delete: disable writes `status_field = inactive_value`.
- Which table holds staff, its key column and the status field are unknown:
  configuration with defaults (Users, UserID, ActiveStatus Active/Inactive).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote

import httpx

from .auth import CtapiKeyAuth
from ...errors import ConfigError, NotFound, TargetError
from ...http import RateLimiter, accepted, acting, error_detail, error_for, json_of, make_client, safe_url
from ...model import ACTIVE, Account
from ...secrets import Secret, redact
from ...target import CREATE, DISABLE, ENABLE, UPDATE, Target

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 500
MAX_QUERY = 2048            # URL-encoded characters CTAPI accepts in `q`
KEY_ROOM = 40               # characters reserved for a key value in the keyset query (a GUID is 36)
PAGING_MODES = ("top", "keyset")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
JSON = "application/json"


def encoded_length(query: str) -> int:
    """The length of `q` once URL-encoded (spaces as %20: the longer of the two spellings)."""
    return len(quote(query, safe=""))


def literal(value: Any) -> str:
    """A CRQL literal: numbers bare, anything else 'quoted' with '' for a quote."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _order(value: Any) -> tuple:
    """Sort key for key values: numbers numerically, then text ignoring case."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, str(value).casefold())


class ClientTrackTarget(Target):
    capabilities = frozenset({CREATE, UPDATE, DISABLE, ENABLE})
    required_paths = frozenset()    # not SCIM's userName: the staff table's rules are not published

    def __init__(self, name: str, base_url: str, *, paths: Sequence[str], subscription_key: Secret,
                 api_key: Secret, org_id: str | None = None, table: str = "Users",
                 key_column: str = "UserID", columns: Mapping[str, str] | None = None,
                 status_field: str = "ActiveStatus", active_value: str = "Active",
                 inactive_value: str = "Inactive", paging: str = "top", page_size: int = 100,
                 create_path: str = "/cto/{table}", update_path: str = "/cto/{table}/{id}",
                 timeout: float = 30, tls_verify: bool = True, ca_file: Path | None = None,
                 rate_limit: float | None = None, client: httpx.Client | None = None):
        where = f"targets.{name}"
        if paging not in PAGING_MODES:
            raise ConfigError(f"{where}.paging: must be \"top\" or \"keyset\", not {paging!r}")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigError(f"{where}.page_size: CRQL pages hold 1 to {MAX_PAGE_SIZE} rows, not {page_size}")
        if rate_limit is not None and rate_limit <= 0:
            raise ConfigError(f"{name}: rate_limit must be a positive number of requests per second")
        if active_value.casefold() == inactive_value.casefold():
            raise ConfigError(f"{where}.active_value and inactive_value must differ")
        for key, template in (("create_path", create_path), ("update_path", update_path)):
            if not template.startswith("/") or (key == "update_path" and "{id}" not in template):
                raise ConfigError(f"{where}.{key}: must start with \"/\""
                                  + (" and contain {id}" if key == "update_path" else ""))
        self.columns = {p: (columns or {}).get(p, p) for p in paths if p != ACTIVE}
        for key, value in [("table", table), ("key_column", key_column), ("status_field", status_field),
                           *((f"columns.{p}" if p in (columns or {}) else "the mapping's attribute", c)
                             for p, c in self.columns.items())]:
            if not IDENTIFIER.fullmatch(value):
                hint = (f": map it to a column in {where}.columns" if key == "the mapping's attribute" else "")
                raise ConfigError(f"{where}: {key} {value!r} is not a ClientTrack column or table name "
                                  f"(letters, digits and _){hint}")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.paths = tuple(paths)
        self.page_size = page_size
        self._owns_client = client is None
        self._client = client or make_client(self.base_url, headers={"Accept": JSON}, timeout=timeout,
                                             tls_verify=tls_verify, ca_file=ca_file,
                                             limiter=RateLimiter(rate_limit))
        self._auth = CtapiKeyAuth(subscription_key, api_key, org_id)
        self._credential = "subscription_key and api_key" + (" (and org_id)" if org_id else "")
        self.table, self.key_column, self.paging = table, key_column, paging
        self.server_owned = frozenset({key_column})   # ClientTrack numbers new rows itself
        self.status_field, self.active_value, self.inactive_value = status_field, active_value, inactive_value
        self.create_path = create_path.replace("{table}", quote(table, safe=""))
        self.read_path = f"/cto/{quote(table, safe='')}/{{id}}"      # published, not assumed
        self.update_path = update_path.replace("{table}", quote(table, safe=""))
        self._select = list(dict.fromkeys([key_column, *self.columns.values(), status_field]))
        longest = self._query(page_size, f"{key_column} > '{'x' * KEY_ROOM}'")
        if encoded_length(longest) > MAX_QUERY:
            raise ConfigError(
                f"{where}: the CRQL list query would be {encoded_length(longest)} characters URL-encoded, "
                f"over CTAPI's {MAX_QUERY}: manage fewer attributes in the mapping or use shorter "
                f"column names in {where}.columns")

    # -- reading ---------------------------------------------------------

    def list_accounts(self) -> list[Account]:
        rows = self._list_keyset() if self.paging == "keyset" else self._list_top()
        log.info("%s: read %d accounts from %s (%s paging)", self.name, len(rows),
                 safe_url(self.base_url), self.paging)
        return [self._account(r) for r in rows]

    def _list_top(self) -> list[dict]:
        found: dict[str, dict] = {}
        previous: list[str] | None = None
        page_no = 1
        while True:
            rows = self._crql(self._query(self.page_size), page_no, "list accounts")
            keys = [self._key(r) for r in rows]
            if keys and keys == previous:
                raise self._paging_error(f"page {page_no} repeated page {page_no - 1}")
            before = len(found)
            for key, row in zip(keys, rows):
                found.setdefault(key, row)
            if rows and len(found) == before:
                raise self._paging_error(f"page {page_no} brought only rows already read")
            if len(rows) < self.page_size:
                break
            previous, page_no = keys, page_no + 1
        if page_no > 1 and not rows:
            # a full page, then nothing: the end of the table, or TOP bound before paging
            last = max((r[self._key_name(r)] for r in found.values()), key=_order)
            probe = self._crql(self._query(1, f"{self.key_column} > {literal(last)}"), 1,
                               "list accounts", page_size=1, cache=False)
            if probe:
                raise self._paging_error(f"page {page_no} was empty although rows after "
                                         f"{self.key_column} {last} exist")
        return list(found.values())

    def _list_keyset(self) -> list[dict]:
        found: dict[str, dict] = {}
        last: Any = None
        while True:
            where = None if last is None else f"{self.key_column} > {literal(last)}"
            rows = self._crql(self._query(self.page_size, where), 1, "list accounts")
            keys = [r[self._key_name(r)] for r in rows]
            if keys != sorted(keys, key=_order) or (last is not None and keys
                                                    and _order(keys[0]) <= _order(last)):
                raise TargetError(f"{self.name}: list accounts: CRQL answered rows out of "
                                  f"{self.key_column} order, so keyset paging would miss some: "
                                  "set paging = \"top\" or a key_column the table is ordered by")
            for row in rows:
                found.setdefault(self._key(row), row)
            if len(rows) < self.page_size:
                return list(found.values())
            last = keys[-1]

    def get_account(self, account_id: str) -> Account | None:
        response = self._request("GET", self._object_url(self.read_path, account_id), "read account",
                                 ok=(200, 404))
        if response.status_code == 404:
            return None
        row = self._json(response, "read account", what="a CTObject JSON object")
        return self._account({self.key_column: account_id, **row})

    def find_accounts(self, path: str, value: Any) -> list[Account]:
        if value is None:
            return []
        column = self.status_field if path == ACTIVE else self.columns.get(path, path)
        action = f"find accounts by {path}"
        # not cached: a look-up after a create must see the new row
        rows = self._crql(self._query(self.page_size, f"{column} = {literal(value)}"), 1, action,
                          cache=False)
        if len(rows) >= self.page_size:
            raise TargetError(f"{self.name}: {action}: {len(rows)} or more accounts have "
                              f"{column} = {value!r}; correlate on an attribute that identifies one person")
        return [self._account(r) for r in rows]

    # -- writing ---------------------------------------------------------

    def create(self, attrs: Mapping[str, Any]) -> Account:
        body = self._body({k: v for k, v in attrs.items() if v is not None})
        body.setdefault(self.status_field, self.active_value)
        response = self._request("POST", self.base_url + self.create_path, "create", json_body=body,
                                 ok=(200, 201, 202))
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if isinstance(answer, dict) and self._key_name(answer) in answer:
            return self._account(answer)
        # an answer of just the new id (or {"id": ...}) is read back
        new_id = answer.get("id", answer.get("Id")) if isinstance(answer, dict) else answer
        account = self.get_account(str(new_id)) if isinstance(new_id, (int, str)) and new_id != "" else None
        if account is None:
            raise TargetError(f"{self.name}: create answered {response.status_code} without the new "
                              f"record's {self.key_column}; the next plan finds it by correlation")
        return account

    def modify(self, account: Account, changes: Mapping[str, Any]) -> None:
        if not changes:
            return
        self._request("PUT", self._object_url(self.update_path, account.id), "update",
                      json_body=self._body(changes), ok=(200, 201, 202, 204),
                      errors={404: NotFound})

    def _body(self, values: Mapping[str, Any]) -> dict:
        body: dict[str, Any] = {}
        for path, value in values.items():
            if path == ACTIVE:
                body[self.status_field] = self.inactive_value if value is False else self.active_value
            else:
                body[self.columns.get(path, path)] = value
        return body

    # -- other -----------------------------------------------------------

    def check(self) -> str:
        response = self._request("GET", self.base_url + "/auth/test", "check")
        try:
            answer = response.json()
        except ValueError:
            answer = response.text
        environment = _environment(answer)
        # one row of the list query proves the table and every configured column
        first = self._crql(self._query(1), 1, "check", page_size=1, cache=False)
        paging = self._check_top_paging(first) if self.paging == "top" else "keyset paging"
        return (f"ClientTrack at {safe_url(self.base_url)}: keys accepted; environment {environment}; "
                f"table {self.table} readable with columns {', '.join(self._select)} ({paging})")

    def _check_top_paging(self, first: list[dict]) -> str:
        """`paging = "top"` needs pageNo to page past TOP: with one-row pages, page 2 must be
        another row whenever there is one. Found out here rather than by a blocked plan once the
        table outgrows a page."""
        if not first:
            return "top paging; pageNo not checked: the table is empty"
        key = first[0][self._key_name(first[0])]
        second = self._crql(self._query(1), 2, "check", page_size=1, cache=False)
        if second:
            if self._key(second[0]) == self._key(first[0]):
                raise self._paging_error("page 2 repeated page 1", "check")
            return "top paging, pageNo checked"
        # page 2 empty: a one-row table, or TOP bound before paging
        if self._crql(self._query(1, f"{self.key_column} <> {literal(key)}"), 1, "check", page_size=1,
                      cache=False):
            raise self._paging_error(f"page 2 was empty although {self.key_column} {key} is not the "
                                     "only row", "check")
        return "top paging; pageNo not checked: the table has one row"

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    # -- plumbing --------------------------------------------------------

    def _request(self, method: str, url: str, action: str, *, params: dict | None = None,
                 json_body: Any = None, ok: Sequence[int] = (200,),
                 errors: Mapping[int, type[TargetError]] | None = None) -> httpx.Response:
        content = json.dumps(json_body, ensure_ascii=False).encode() if json_body is not None else None
        with acting(self.name, action):
            response = self._client.request(method, url, params=params, content=content, auth=self._auth,
                                            headers={"Content-Type": JSON} if content is not None else None)
        return accepted(response, self.name, action, ok=ok, errors=errors,
                        unauthorized=f"check the {self._credential}", refusal=self._error)

    def _json(self, response: httpx.Response, action: str, what: str) -> Any:
        return json_of(response, self.name, action, what=what)

    def _query(self, top: int, where: str | None = None) -> str:
        query = f"SELECT TOP {top} {', '.join(self._select)} FROM {self.table}"
        return f"{query} WHERE {where}" if where else query

    def _crql(self, query: str, page_no: int, action: str, *, page_size: int | None = None,
              cache: bool = True) -> list[dict]:
        """One CRQL page's rows ([] for CTAPI's empty `{}`)."""
        if encoded_length(query) > MAX_QUERY:
            raise TargetError(f"{self.name}: {action}: the CRQL query is {encoded_length(query)} characters "
                              f"URL-encoded, over CTAPI's {MAX_QUERY}")
        size = page_size or self.page_size
        response = self._request("GET", self.base_url + "/crql", action, params={
            "q": query, "pageNo": page_no, "pageSize": size, "shouldCache": "true" if cache else "false"})
        body = self._json(response, action, what="a CRQL JSON object")
        if not body:
            return []
        data = body.get("data")
        table = data.get("Table1") if isinstance(data, dict) else None
        if not isinstance(table, list) or not all(isinstance(r, dict) for r in table):
            raise TargetError(f"{self.name}: {action}: the CRQL answer has no data.Table1 list of rows")
        for row in table:
            if row.get(self._key_name(row)) is None:
                raise TargetError(f"{self.name}: {action}: a row has no {self.key_column}: "
                                  "check key_column")
        return table

    def _key_name(self, row: Mapping[str, Any]) -> str:
        """The key column as the row spells it (CRQL column names ignore case)."""
        if self.key_column in row:
            return self.key_column
        wanted = self.key_column.casefold()
        return next((k for k in row if k.casefold() == wanted), self.key_column)

    def _key(self, row: Mapping[str, Any]) -> str:
        return str(row[self._key_name(row)])

    def _account(self, row: dict) -> Account:
        folded = {k.casefold(): v for k, v in row.items()}
        attrs = {path: folded.get(column.casefold()) for path, column in self.columns.items()}
        status = folded.get(self.status_field.casefold())
        attrs[ACTIVE] = status is None or str(status).casefold() != self.inactive_value.casefold()
        return Account(id=self._key(row), attrs=attrs, raw=row)

    def _object_url(self, template: str, account_id: str) -> str:
        return self.base_url + template.replace("{id}", quote(str(account_id), safe=""))

    def _paging_error(self, what: str, action: str = "list accounts") -> TargetError:
        return TargetError(f"{self.name}: {action}: {what}: CTAPI seems to apply TOP before "
                           "pageNo, so paging would miss accounts: set paging = \"keyset\" for this target")

    def _error(self, target: str, action: str, response: httpx.Response,
               cls: type[TargetError]) -> TargetError:
        error = error_for(target, action, response, cls)
        if error_detail(response)[0] is None and response.text.strip():
            # CTAPI's message verbatim (e.g. "Invalid column name 'Foo'."), JSON or not
            text = redact(response.text.strip())[:300]
            error = cls(f"{error}: {text}", error.status, error.retryable)
        if response.status_code == 400 and action in ("check", "list accounts"):
            error = cls(f"{error} (check table, key_column, status_field, columns and the mapping's "
                        "attributes)", error.status, error.retryable)
        return error

    def manual_delete(self, account: Account) -> str | None:
        # CTObjects are get / insert / update only (the CTAPI seed): no call removes a record
        return (f"ClientTrack's API cannot delete records: remove staff record {account.id} in "
                "ClientTrack by hand if your retention rules allow, or keep it inactive")


def _environment(answer: Any) -> str:
    """What /auth/test says it reached: its environment name if it gives one."""
    if isinstance(answer, dict):
        for key, value in answer.items():
            if key.casefold() in ("environment", "environmentname", "env", "site", "database") and value:
                return repr(str(value))
        shown = ", ".join(f"{k}={v}" for k, v in answer.items() if isinstance(v, (str, int)))
        return f"not named ({redact(shown)[:120] or 'empty answer'})"
    text = redact(str(answer or "").strip())[:120]
    return repr(text) if text else "not named (empty answer)"
