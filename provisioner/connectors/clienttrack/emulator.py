"""A local ClientTrack CTAPI (Eccovia): both keys on every request, `/auth/test`,
a small CRQL subset and the CTObjects get / insert / update of one staff table.

CRQL here understands `SELECT TOP n col, col FROM table [WHERE col op value]`
with op one of = <> > < >= <= and a 'quoted' (with '' inside) or numeric value,
plus `pageNo` / `pageSize` (default 25, at most 500). Rows come back in key
order (like a clustered index), in `{"data": {"Table1": [...]}, "recordCount": n}`;
an empty result is a bare `{}` as the integrator describes. Unknown columns
and tables are 400 with SQL Server's wording, naming them.

What the published material leaves open is a knob here:
`paging_quirk` says how `TOP n` meets `pageNo` ("none": TOP limits each page;
"top_first": TOP binds before paging, so page 2 is empty; "repeat": pageNo is
ignored, every page is page 1). 502 answers ("service temporarily down") come
from `bad_gateway(n)` (the next n requests) or `bad_gateway_rate`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ...sandbox.server import Emulator, Faults, HttpError, Request, _Every, faults_of

MAX_PAGE_SIZE = 500
MAX_QUERY = 2048
PAGING_QUIRKS = ("none", "top_first", "repeat")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_CRQL = re.compile(
    rf"\s*SELECT\s+TOP\s+(?P<top>\d+)\s+(?P<cols>.+?)\s+FROM\s+(?P<table>{_IDENT})"
    rf"(?:\s+WHERE\s+(?P<col>{_IDENT})\s*(?P<op><>|>=|<=|=|>|<)\s*"
    r"(?P<value>'(?:[^']|'')*'|-?\d+(?:\.\d+)?))?\s*\Z", re.IGNORECASE | re.DOTALL)
_OPS = {"=": lambda c: c == 0, "<>": lambda c: c != 0, ">": lambda c: c > 0,
        "<": lambda c: c < 0, ">=": lambda c: c >= 0, "<=": lambda c: c <= 0}
if TYPE_CHECKING:
    from ...sandbox.demo_targets import DemoTarget, SecretWriter

STAFF_COLUMNS = ("UserID", "UserName", "FirstName", "LastName", "Email", "Title", "Phone",
                 "ActiveStatus", "OrgID")


@dataclass
class ClientTrackOptions:
    subscription_key: str = "sandbox-subscription-key"
    api_key: str = "sandbox-api-key"
    org_ids: tuple[str, ...] = ()          # OrgId values a key may narrow to (empty: any)
    environment: str = "ClientTrack sandbox"
    table: str = "Users"
    key_column: str = "UserID"
    columns: tuple[str, ...] = STAFF_COLUMNS
    first_key: int = 1001
    paging_quirk: str = "none"
    bad_gateway_rate: float = 0.0
    rows: list[dict] = field(default_factory=list)   # pre-seeded records (keys assigned in order)


def _bad_request(message: str) -> HttpError:
    return HttpError(400, message, {"statusCode": 400, "message": message})


def _literal(text: str) -> Any:
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    return float(text) if "." in text else int(text)


def _compare(a: Any, b: Any) -> int | None:
    """-1/0/1 like SQL Server with a case-insensitive collation; None for NULL."""
    if a is None or b is None:
        return None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return (a > b) - (a < b)
    x, y = str(a).casefold(), str(b).casefold()
    return (x > y) - (x < y)


def _order(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value).casefold())


class ClientTrackEmulator(Emulator):
    name = "clienttrack"

    def __init__(self, options: ClientTrackOptions | None = None, faults: Faults | None = None, **kwargs):
        self.options = options or ClientTrackOptions()
        if self.options.paging_quirk not in PAGING_QUIRKS:
            raise ValueError(f"paging_quirk must be one of {', '.join(PAGING_QUIRKS)}")
        self.rows: dict[Any, dict] = {}
        self.next_key = self.options.first_key
        self._burst = 0
        self._gateway = _Every()
        super().__init__(faults, **kwargs)
        for row in self.options.rows:
            self.insert(row)

    def routes(self):
        cto = r"/cto/(?P<table>[^/]+)"
        return [
            ("GET", "/auth/test", self.auth_test),
            ("GET", "/crql", self.crql),
            ("POST", cto, self.cto_insert),
            ("GET", cto + r"/(?P<id>[^/]+)", self.cto_get),
            ("PUT", cto + r"/(?P<id>[^/]+)", self.cto_update),
        ]

    # -- faults, keys, state -------------------------------------------------

    def bad_gateway(self, count: int) -> None:
        """Answer the next `count` requests 502, as when the CTAPI service is down."""
        with self.lock:
            self._burst = count

    def _dispatch(self, request: Request):
        with self.lock:
            down = self._burst > 0
            if down:
                self._burst -= 1
            down = down or self._gateway.hit(self.options.bad_gateway_rate)
        if down:
            return 502, {"statusCode": 502, "message": "Bad Gateway: the CTAPI service is "
                         "temporarily down (injected)"}, {}
        return super()._dispatch(request)

    def require_keys(self, request: Request) -> None:
        subscription = request.headers.get("Ocp-Apim-Subscription-Key") or request.query.get("subscription-key")
        if not subscription:
            raise HttpError(401, "missing subscription key", {
                "statusCode": 401, "message": "Access denied due to missing subscription key. Make sure "
                "to include subscription key when making requests to an API."})
        if subscription != self.options.subscription_key:
            raise HttpError(401, "invalid subscription key", {
                "statusCode": 401, "message": "Access denied due to invalid subscription key. Make sure "
                "to provide a valid key for an active subscription."})
        scheme, _, key = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "apikey" or key.strip() != self.options.api_key:
            raise HttpError(401, "invalid API key", {"statusCode": 401, "message": "Invalid API key."})
        org = request.headers.get("OrgId")
        if org and self.options.org_ids and org not in self.options.org_ids:
            raise HttpError(401, "OrgId not allowed", {
                "statusCode": 401, "message": f"OrgId {org} is not an organization of this key."})

    def insert(self, row: dict) -> dict:
        with self.lock:
            record = {c: None for c in self.options.columns}
            record.update(row)
            record[self.options.key_column] = self.next_key
            self.next_key += 1
            self.rows[record[self.options.key_column]] = record
            return dict(record)

    def snapshot(self) -> Any:
        with self.lock:
            return {"next_key": self.next_key, "rows": list(self.rows.values())}

    def restore(self, data: Any) -> None:
        with self.lock:
            self.next_key = data.get("next_key", self.options.first_key)
            self.rows = {r[self.options.key_column]: r for r in data.get("rows", [])}

    # -- handlers ---------------------------------------------------------------

    def auth_test(self, request: Request):
        self.require_keys(request)
        return 200, {"message": "Authenticated", "environment": self.options.environment,
                     "orgId": request.headers.get("OrgId")}

    def _table(self, name: str) -> None:
        if name.casefold() != self.options.table.casefold():
            raise _bad_request(f"Invalid object name '{name}'.")

    def _column(self, name: str) -> str:
        for known in self.options.columns:
            if known.casefold() == name.casefold():
                return known
        raise _bad_request(f"Invalid column name '{name}'.")

    def crql(self, request: Request):
        self.require_keys(request)
        query = request.query.get("q") or ""
        if len(quote(query, safe="")) > MAX_QUERY:
            raise _bad_request(f"The query is longer than {MAX_QUERY} characters.")
        match = _CRQL.match(query)
        if not match:
            raise _bad_request(f"Incorrect syntax in query: {query[:80]}")
        try:
            page_no = int(request.query.get("pageNo", 1))
            page_size = int(request.query.get("pageSize", 25))
        except ValueError:
            raise _bad_request("pageNo and pageSize must be integers") from None
        if not 1 <= page_size <= MAX_PAGE_SIZE or page_no < 1:
            raise _bad_request(f"pageSize must be 1..{MAX_PAGE_SIZE} and pageNo 1 or more")
        self._table(match["table"])
        names = [c.strip() for c in match["cols"].split(",")]
        columns = list(self.options.columns) if names == ["*"] else [self._column(c) for c in names]
        top = int(match["top"])
        with self.lock:
            rows = sorted(self.rows.values(), key=lambda r: _order(r[self.options.key_column]))
            if match["col"]:
                where, test, value = self._column(match["col"]), _OPS[match["op"]], _literal(match["value"])
                rows = [r for r in rows if (c := _compare(r.get(where), value)) is not None and test(c)]
            quirk = self.options.paging_quirk
            if quirk == "top_first":
                rows = rows[:top]
            start = 0 if quirk == "repeat" else (page_no - 1) * page_size
            page = rows[start:start + page_size][:top]
            out = [{c: r.get(c) for c in columns} for r in page]
        if not out:
            return 200, {}
        return 200, {"data": {"Table1": out}, "recordCount": len(rows)}

    def _record(self, request: Request) -> dict:
        self._table(request.params["table"])
        wanted = request.params["id"]
        for key, row in self.rows.items():
            if str(key) == wanted:
                return row
        raise HttpError(404, "not found", {"statusCode": 404, "message": "The CTObject requested does not exist."})

    def _values(self, request: Request) -> dict:
        body = request.json()
        if not isinstance(body, dict):
            raise _bad_request("The body must be a JSON object.")
        values = {self._column(k): v for k, v in body.items()}
        if self.options.key_column in values:
            raise _bad_request(f"{self.options.key_column} is assigned by ClientTrack.")
        return values

    def cto_get(self, request: Request):
        self.require_keys(request)
        with self.lock:
            return 200, dict(self._record(request))

    def cto_insert(self, request: Request):
        self.require_keys(request)
        self._table(request.params["table"])
        return 201, self.insert(self._values(request))

    def cto_update(self, request: Request):
        self.require_keys(request)
        with self.lock:
            record = self._record(request)
            record.update(self._values(request))
            return 200, dict(record)


def demo_target(secret: SecretWriter) -> DemoTarget:
    """ClientTrack for `provisioner demo`: Ada already has a staff record (matched on
    UserName and linked, not created twice) and a shared intake login nobody owns."""
    import secrets as random_secrets
    from ...sandbox.demo_targets import DemoTarget
    subscription, api_key = random_secrets.token_hex(16), random_secrets.token_hex(16)
    emulator = ClientTrackEmulator(ClientTrackOptions(subscription_key=subscription, api_key=api_key,
                                                      environment="ClientTrack demo"))
    emulator.insert({"UserName": "ada.lovelace@example.com", "FirstName": "Ada", "LastName": "Lovelace",
                     "Email": "ada.lovelace@example.com", "Title": "Agent", "Phone": "555-0101",
                     "ActiveStatus": "Active"})
    emulator.insert({"UserName": "intake.desk", "FirstName": "Intake", "LastName": "Desk",
                     "ActiveStatus": "Active"})
    subscription_ref = secret("clienttrack_subscription_key", subscription)
    api_key_ref = secret("clienttrack_api_key", api_key)

    def config(base_url: str) -> str:
        return f'''[targets.clienttrack]
type = "clienttrack"
base_url = "{base_url}"
subscription_key = "{subscription_ref}"
api_key = "{api_key_ref}"
mapping = "mappings/clienttrack.toml"
'''

    return DemoTarget(name="clienttrack", label="ClientTrack CTAPI emulator", emulator=emulator,
                      config=config)


def build(settings) -> Emulator:
    """The emulator a [sandbox.clienttrack] table describes (`provisioner sandbox serve`)."""
    options = ClientTrackOptions(subscription_key=settings.subscription_key.reveal(),
                                 api_key=settings.api_key.reveal(), environment=settings.environment,
                                 paging_quirk=settings.paging_quirk,
                                 bad_gateway_rate=settings.bad_gateway_rate)
    return ClientTrackEmulator(options, faults_of(settings), state_file=settings.state_file)
