"""OneCloud CX (Bright Pattern): SCIM 2.0 users plus the non-SCIM user API.

Vendor facts this module owns (shared api-notes §1, seed 001):
- OAuth client credentials with `scope` = the tenant domain; `expires_in` is a string.
- SCIM lives at /configapi/v2/scim/users (lower case). `externalId` is ignored
  and always comes back "": accounts are correlated on userName, and the
  account id is what the link keeps.
- Listing every user is not documented: `list_mode = "auto"` tries RFC 7644
  paging and falls back to the phone directory plus one userName look-up per
  login. The log says which path was taken.
- Roles come back as strings or as {"value": ...} objects. They are flattened
  here to one text, role names sorted and joined with ", ", which is also the
  form a mapping gives them in ("Agent" or "Agent, Supervisor").
- `team` and `skills` are written through /configapi/v2/user/{loginId}.
  Skills are read there too. The team is read from SCIM's groups[0].display
  when the user carries `groups` (some of the vendor's examples do, most do
  not), else from the user API's `team`: one GET per user, only then.
  Skills are written "Name:level, Name:level".
- The extension OneCloud assigns on create is kept with the link.
- Nothing is ever deleted.
"""

from __future__ import annotations

import difflib
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote, urlsplit

import httpx

from ...auth.oauth_client_credentials import ClientCredentialsAuth
from ...errors import ConfigError, TargetError
from ...http import error_detail, error_for, safe_url
from ...model import Account, normalize
from ...scim_paths import get_path
from ...secrets import Secret
from ...target import flatten
from ..scim.target import ScimTarget

log = logging.getLogger(__name__)

API = "/configapi/v2"
EXTENSION = 'phoneNumbers[type eq "extension"].value'
ROLES, TEAM, SKILLS = "roles", "team", "skills"
USER_API_PATHS = (TEAM, SKILLS)   # reachable only through the non-SCIM user API
LIST_MODES = ("auto", "scim", "directory")


class OneCloudTarget(ScimTarget):
    users_path = "/users"
    link_keys = frozenset({"extension"})
    # OneCloud refuses a user without login, first and last name or e-mail
    required_paths = frozenset({"userName", "name.givenName", "name.familyName", "emails[0].value"})

    def __init__(self, name: str, base_url: str, *, paths: Sequence[str], client_id: str,
                 client_secret: Secret, tenant: str | None = None, list_mode: str = "auto",
                 concurrency: int = 4, timeout: float = 30, tls_verify: bool = True,
                 ca_file: Path | None = None, rate_limit: float | None = None,
                 client: httpx.Client | None = None):
        if list_mode not in LIST_MODES:
            raise ConfigError(f"{name}: list_mode must be one of {', '.join(LIST_MODES)}, not {list_mode!r}")
        if any(p.split(".")[0].split("[")[0].lower() == "externalid" for p in paths):
            raise ConfigError(f"{name}: OneCloud ignores externalId (it always answers \"\"): "
                              "remove it from the mapping and correlate on userName")
        self.tenant_url = base_url.rstrip("/")
        super().__init__(name, self.tenant_url + API + "/scim", paths=paths, page_size=100,
                         timeout=timeout, tls_verify=tls_verify, ca_file=ca_file,
                         rate_limit=rate_limit, client=client)
        self.tenant = tenant or urlsplit(self.tenant_url).hostname or ""
        self.list_mode = list_mode
        self.concurrency = max(1, concurrency)
        self._scim_paths = tuple(p for p in self.paths if p not in USER_API_PATHS)
        self._credential = "client_id and client_secret"
        # the token endpoint shares the client: same TLS settings, connection pool and pacing
        self._auth = ClientCredentialsAuth(self.tenant_url + API + "/oauth/token", client_id,
                                           client_secret, extra={"scope": self.tenant},
                                           client=self._client)
        self._teams: list[str] | None = None
        self.list_mode_used: str | None = None

    # -- reading ---------------------------------------------------------

    def list_accounts(self) -> list[Account]:
        mode = self.list_mode if self.list_mode != "auto" else self._detect_list_mode()
        if mode == "scim":
            accounts = self._search({}, "list accounts")
        else:
            accounts = self._list_via_directory()
        if any(self._needs_user_api(a.raw) for a in accounts):
            accounts = self._parallel(self._completed, accounts)
        if TEAM in self.paths:
            self._teams = self._fetch_teams()
        self.list_mode_used = mode
        how = ("SCIM paging" if mode == "scim"
               else "the phone directory and one userName look-up per user")
        log.info("%s: read %d accounts from %s via %s", self.name, len(accounts),
                 safe_url(self.tenant_url), how)
        return accounts

    def get_account(self, account_id: str) -> Account | None:
        account = super().get_account(account_id)
        return self._completed(account) if account is not None else None

    def find_accounts(self, path: str, value: Any) -> list[Account]:
        if path == "userName" or value is None:
            return super().find_accounts(path, value)
        # OneCloud documents only the userName filter: anything else is looked for among all accounts
        wanted = normalize(value, case_insensitive=True)
        return [a for a in self.list_accounts() if normalize(a.attrs.get(path), True) == wanted]

    def _detect_list_mode(self) -> str:
        # not documented by the vendor: a tenant that refuses or ignores paging gets the directory path
        response = self._request("GET", self.base_url + self.users_path, "list accounts",
                                 params={"startIndex": 1, "count": 1}, ok=(200, 400, 403, 404, 405, 501))
        try:
            body = response.json() if response.status_code == 200 else None
        except ValueError:
            body = None
        pages = isinstance(body, dict) and isinstance(body.get("Resources"), list) \
            and body.get("totalResults") is not None
        if not pages:
            log.info("%s: the tenant does not list users over SCIM (answered %d); using the directory",
                     self.name, response.status_code)
        return "scim" if pages else "directory"

    def _list_via_directory(self) -> list[Account]:
        entries = self._json_list(self._request("GET", self.tenant_url + API + "/phone/user",
                                                "read the directory"), "read the directory")
        logins = list(dict.fromkeys(e["loginId"] for e in entries
                                    if isinstance(e, dict) and isinstance(e.get("loginId"), str)))
        found: dict[str, Account] = {}
        for matches in self._parallel(lambda login: self.find_accounts("userName", login), logins):
            for account in matches:
                found.setdefault(account.id, account)
        return list(found.values())

    def _parallel(self, work, items: list) -> list:
        if len(items) <= 1 or self.concurrency == 1:
            return [work(i) for i in items]
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"read-{self.name}") as pool:
            return list(pool.map(work, items))

    def _needs_user_api(self, doc: Mapping[str, Any]) -> bool:
        """Skills are only in the user API; the team is too when SCIM shows no groups."""
        return SKILLS in self.paths or (TEAM in self.paths and _scim_team(doc) is None)

    def _completed(self, account: Account) -> Account:
        """The account with what only the user API shows, when the mapping manages it."""
        if not self._needs_user_api(account.raw):
            return account
        response = self._request("GET", self._user_api_url(account.raw.get("userName", "")),
                                 "read the user", ok=(200, 404))
        user = self._json(response, "read the user") if response.status_code == 200 else {}
        return self._account(account.raw, user)

    def _fetch_teams(self) -> list[str]:
        body = self._json_list(self._request("GET", self.tenant_url + API + "/team", "read teams"),
                               "read teams")
        return [t["name"] for t in body if isinstance(t, dict) and isinstance(t.get("name"), str)]

    def _json_list(self, response: httpx.Response, action: str) -> list:
        return self._json(response, action, expect=list, what="a JSON list")

    def _account(self, doc: dict, user: Mapping[str, Any] | None = None) -> Account:
        """From a SCIM user, plus the user API's answer for `user` when it was read."""
        attrs = flatten(doc, self._scim_paths)
        if ROLES in attrs:
            attrs[ROLES] = roles_text(doc.get("roles"))
        user = user or {}
        if TEAM in self.paths:
            attrs[TEAM] = _scim_team(doc) or user.get(TEAM) or None
        if SKILLS in self.paths:
            attrs[SKILLS] = skills_text(user.get(SKILLS))
        return Account(id=str(doc["id"]), attrs=attrs, raw=doc)

    # -- plan-time checks -------------------------------------------------

    def validate(self, want: Mapping[str, Any]) -> str | None:
        """A sentence when the wanted team or skills cannot be set (the plan shows a conflict)."""
        team = want.get(TEAM)
        if team is not None and self._teams is not None and team not in self._teams:
            close = difflib.get_close_matches(str(team), self._teams, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return (f"team {team!r} does not exist in OneCloud{hint}: create the team there "
                    "or correct the team in the source or the mapping")
        skills = want.get(SKILLS)
        if skills is not None:
            try:
                parse_skills(skills)
            except ValueError as exc:
                return f"skills {skills!r}: {exc}"
        return None

    # -- writing ---------------------------------------------------------

    def create(self, attrs: Mapping[str, Any]) -> Account:
        scim = {p: v for p, v in attrs.items() if p not in USER_API_PATHS}
        if scim.get(ROLES) is not None:
            scim[ROLES] = roles_list(scim[ROLES])
        account = super().create(scim)
        extra = self._user_api_body(attrs)
        if extra:
            try:
                self._put_user_api(account.raw.get("userName", attrs.get("userName")), extra)
            except TargetError as exc:
                raise TargetError(f"{exc} (the account {account.id} was created without it; "
                                  "the next plan shows the difference)", exc.status, exc.retryable) from exc
        return account

    def modify(self, account: Account, changes: Mapping[str, Any]) -> None:
        scim = {p: v for p, v in changes.items() if p not in USER_API_PATHS}
        if scim.get(ROLES) is not None:
            scim[ROLES] = roles_list(scim[ROLES])
        super().modify(account, scim)
        extra = self._user_api_body(changes)
        if extra:
            login = changes.get("userName") or account.raw.get("userName") or account.attrs.get("userName")
            self._put_user_api(login, extra)

    def link_data(self, account: Account) -> dict | None:
        extension = get_path(account.raw, EXTENSION)
        return {"extension": str(extension)} if extension else None

    def _user_api_body(self, values: Mapping[str, Any]) -> dict:
        body: dict[str, Any] = {}
        if TEAM in values:
            if values[TEAM] is None:
                raise TargetError(f"{self.name}: a OneCloud user always has a team; "
                                  "give this person a team instead of none")
            body[TEAM] = values[TEAM]
        if SKILLS in values:
            try:
                body[SKILLS] = parse_skills(values[SKILLS]) if values[SKILLS] is not None else {}
            except ValueError as exc:
                raise TargetError(f"{self.name}: skills: {exc}") from None
        return body

    def _put_user_api(self, login: str, body: dict) -> None:
        self._request("PUT", self._user_api_url(login), f"set {' and '.join(body)}",
                      json_body=body, content_type="application/json")

    def _user_api_url(self, login: str) -> str:
        return f"{self.tenant_url}{API}/user/{quote(str(login), safe='')}"

    # -- other -----------------------------------------------------------

    def check(self) -> str:
        users = self._json_list(self._request("GET", self.tenant_url + API + "/phone/user", "check"), "check")
        return f"OneCloud CX at {safe_url(self.tenant_url)}: token accepted; {len(users)} users in the directory"

    def _error(self, action: str, response: httpx.Response, cls: type[TargetError]) -> TargetError:
        error = error_for(self.name, action, response, cls)
        hint = _hint(response.status_code, (error_detail(response)[0] or "").lower())
        if hint:
            error = cls(f"{error}; {hint}", error.status, error.retryable)
        return error


def _scim_team(doc: Mapping[str, Any]) -> str | None:
    team = get_path(doc, "groups[0].display")
    return team if isinstance(team, str) and team.strip() else None


def _hint(status: int, detail: str) -> str | None:
    """What a person should do about a refusal OneCloud documents."""
    if status == 404 and "role" in detail:
        return ("a role in roles does not exist in OneCloud: create the role there "
                "or correct roles in the source or the mapping")
    if status == 404 and "team" in detail:
        return "the team does not exist in OneCloud: create it there or correct the team"
    if status == 404 and "skill" in detail:
        return "a skill does not exist in OneCloud: create it there or correct the skills"
    if status == 409 and "extension" in detail:
        return ("the extension is already assigned to another user: free it in OneCloud "
                "or give this person another one")
    if status == 409:
        return ("another OneCloud user already has this userName: rename or remove that user, "
                "or give this person a different userName in the source")
    if status == 400 and "username" in detail:
        return "userName changes must be enabled for the contact center by the service provider"
    return None


def roles_text(roles: Any) -> str | None:
    """Role names (strings or {"value": ...} objects) as one text: sorted, joined with ", "."""
    names = []
    for role in roles or []:
        role = role.get("value") if isinstance(role, dict) else role
        if isinstance(role, str) and role.strip():
            names.append(role.strip())
    return ", ".join(sorted(names, key=str.casefold)) or None


def roles_list(text: Any) -> list[str]:
    """"Agent, Supervisor" -> ["Agent", "Supervisor"] (a list is taken as it is)."""
    parts = text if isinstance(text, list) else str(text).split(",")
    return [p.strip() for p in parts if str(p).strip()]


def skills_text(skills: Any) -> str | None:
    if not isinstance(skills, dict) or not skills:
        return None
    return ", ".join(f"{name}:{level}" for name, level in sorted(skills.items(), key=lambda kv: kv[0].casefold()))


def parse_skills(text: Any) -> dict[str, int]:
    """"Support:100, Sales:70" -> {"Support": 100, "Sales": 70}; a name alone is level 100."""
    skills: dict[str, int] = {}
    for part in str(text).split(","):
        if not part.strip():
            continue
        name, sep, level = part.partition(":")
        name = name.strip()
        try:
            value = int(level.strip()) if sep else 100
        except ValueError:
            value = -1
        if not name or not 0 <= value <= 100:
            raise ValueError(f"{part.strip()!r} is not \"Skill:level\" with a level from 0 to 100")
        skills[name] = value
    return skills
