"""A local OneCloud CX (Bright Pattern) tenant: OAuth token, SCIM users, the phone
directory, teams and the non-SCIM user API, answering in the shapes of the
vendor's Postman examples (shared seed 001).

Users are kept as BPCC records (loginId, firstName, disabled, extension, team,
skills, ...) and rendered as SCIM documents on the way out, which is how the
vendor describes the mapping: `active` is the inverse of Disabled, one e-mail,
one address, phone numbers by type, `externalId` always "".

What the documents leave open is a knob here, not a guess baked in:
`scim_paging` (does GET /scim/users without a filter list everyone?),
`roles_as_objects` (roles as strings or {"value": ...}), `scim_groups` (does a
SCIM user carry its team as `groups`? Most of the examples show none; the
user API's `team` always has it).
"""

from __future__ import annotations

import copy
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ... import scim_paths as P
from ...sandbox.server import Emulator, Faults, HttpError, Request, UserStore, faults_of

API = "/configapi/v2"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

TEAMS = ("Administrators", "Contact Center Support", "CSIM Support", "Customer Service",
         "Maintenance Renewal", "Management")
ROLES = ("System Administrator", "Campaign Administrator", "Supervisor", "Quality Evaluator",
         "Quality Evaluator Admin", "Security Administrator", "Campaign Operator",
         "Service Administrator", "Reviewer", "Manager", "Agent")
_PHONE_FIELDS = {"extension": "extension", "default": "defaultPhone", "work": "workPhone",
                 "mobile": "mobilePhone"}
_FILTER = re.compile(r'\s*userName\s+eq\s+"((?:[^"\\]|\\.)*)"\s*\Z', re.IGNORECASE)


@dataclass
class OneCloudOptions:
    client_id: str = "admin"
    client_secret: str = "sandbox-secret"
    tenant: str = "sandbox.cx.onecloud.com"     # the token request's `scope`
    scim_paging: bool = True
    roles_as_objects: bool = False
    scim_groups: bool = False                   # SCIM users show their team as groups[0].display
    allow_rename: bool = True
    first_extension: int = 2001
    teams: tuple[str, ...] = TEAMS
    roles: tuple[str, ...] = ROLES
    default_roles: tuple[str, ...] = ("Agent",)
    skills: tuple[str, ...] = ("Support", "Sales", "Billing", "Spanish")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _scim_error(status: int, detail: str, scim_type: str | None = None) -> HttpError:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return HttpError(status, detail, body)


def _primary(entries: Any) -> dict:
    """The entry marked primary, else the first (how BPCC reads multi-valued attributes)."""
    entries = [e for e in entries or [] if isinstance(e, dict)]
    return next((e for e in entries if e.get("primary") is True), entries[0] if entries else {})


class OneCloudEmulator(UserStore, Emulator):
    name = "onecloud"

    def __init__(self, options: OneCloudOptions | None = None, faults: Faults | None = None, **kwargs):
        self.options = options or OneCloudOptions()
        self.users: dict[str, dict] = {}      # id -> BPCC record
        self.team_ids = {name: str(uuid.uuid4()).upper() for name in self.options.teams}
        super().__init__(faults, **kwargs)
        # the API user the client id names exists on every tenant
        self._insert({"loginId": self.options.client_id, "firstName": "API", "lastName": "User",
                      "email": f"{self.options.client_id}@{self.options.tenant}",
                      "roles": ["System Administrator"], "team": self.options.teams[0]
                      if self.options.teams else None})

    def routes(self):
        scim = f"{API}/scim/users"
        return [
            ("POST", f"{API}/oauth/token", self.token),
            ("GET", scim, self.scim_list),
            ("POST", scim, self.scim_create),
            ("GET", scim + r"/(?P<id>[^/]+)", self.scim_get),
            ("PUT", scim + r"/(?P<id>[^/]+)", self.scim_put),
            ("PATCH", scim + r"/(?P<id>[^/]+)", self.scim_patch),
            ("DELETE", scim + r"/(?P<id>[^/]+)", self.scim_delete),
            ("GET", f"{API}/phone/user", self.directory),
            ("GET", f"{API}/team", self.team_list),
            ("POST", f"{API}/user", self.user_create),
            ("GET", f"{API}/user/(?P<login>[^/]+)", self.user_get),
            ("PUT", f"{API}/user/(?P<login>[^/]+)", self.user_update),
            ("DELETE", f"{API}/user/(?P<login>[^/]+)", self.user_delete),
        ]

    # -- state -----------------------------------------------------------------

    def _insert(self, record: dict) -> dict:
        record = {"id": str(uuid.uuid4()).upper(), "disabled": False, "changePassword": False,
                  "skills": {}, "roles": list(self.options.default_roles), "created": _now(),
                  **record}
        record["lastModified"] = record["created"]
        if not record.get("extension"):
            record["extension"] = self._free_extension()
        self.users[record["id"]] = record
        return record

    def _free_extension(self) -> str:
        taken = {u.get("extension") for u in self.users.values()}
        number = self.options.first_extension
        while str(number) in taken:
            number += 1
        return str(number)

    def by_login(self, login: str) -> dict | None:
        folded = login.casefold()
        return next((u for u in self.users.values() if u["loginId"].casefold() == folded), None)

    def _check_unique(self, record: dict, other_than: str | None = None) -> None:
        for user in self.users.values():
            if user["id"] == other_than:
                continue
            if user["loginId"].casefold() == record["loginId"].casefold():
                raise _scim_error(409, f"User with userName '{record['loginId']}' already exists",
                                  "uniqueness")
            if record.get("extension") and user.get("extension") == record["extension"]:
                raise _scim_error(409, f"Extension {record['extension']} is already assigned to "
                                       "another user", "uniqueness")

    def _check_roles(self, roles: list[str]) -> None:
        known = {r.casefold() for r in self.options.roles}
        for role in roles:
            if role.casefold() not in known:
                raise _scim_error(404, f"Role not found: {role}")

    # -- auth ------------------------------------------------------------------

    def token(self, request: Request):
        if "application/x-www-form-urlencoded" not in (request.headers.get("Content-Type") or ""):
            raise HttpError(415, "the token request must be form-encoded")
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            raise HttpError(400, "unsupported grant type", {"error": "unsupported_grant_type"})
        if (form.get("client_id") != self.options.client_id
                or form.get("client_secret") != self.options.client_secret):
            raise HttpError(401, "invalid client", {"error": "invalid_client",
                                                    "error_description": "invalid client credentials"})
        if form.get("scope", "").casefold() != self.options.tenant.casefold():
            raise HttpError(400, "invalid scope", {"error": "invalid_scope",
                                                   "error_description": "scope must be the tenant domain"})
        token, lifetime = self.issue_token()
        return 200, {"access_token": token, "token_type": "Bearer",
                     "expires_in": str(int(lifetime)), "scope": self.options.tenant}

    # -- SCIM ------------------------------------------------------------------

    def to_scim(self, record: dict, request: Request) -> dict:
        host = request.headers.get("Host") or "127.0.0.1"
        doc: dict[str, Any] = {
            "schemas": [USER_SCHEMA], "id": record["id"], "externalId": "",
            "meta": {"resourceType": "USER", "created": record["created"],
                     "lastModified": record["lastModified"],
                     "location": f"http://{host}{API}/scim/users/{record['id']}"},
            "userName": record["loginId"],
        }
        if record.get("nickName"):
            doc["nickName"] = record["nickName"]
        doc["name"] = {"familyName": record.get("lastName") or "", "givenName": record.get("firstName") or ""}
        for key in ("title", "timezone"):
            if record.get(key):
                doc[key] = record[key]
        doc["active"] = not record.get("disabled", False)
        doc["emails"] = [{"value": record["email"], "primary": True}] if record.get("email") else []
        doc["phoneNumbers"] = [{"type": kind, "value": record[key]}
                               for kind, key in (("work", "workPhone"), ("mobile", "mobilePhone"),
                                                 ("default", "defaultPhone"), ("extension", "extension"))
                               if record.get(key)]
        address = {k: record[k] for k in ("locality", "region", "country") if record.get(k)}
        doc["addresses"] = [address]
        roles = list(record.get("roles") or [])
        doc["roles"] = [{"value": r} for r in roles] if self.options.roles_as_objects else roles
        if record.get("team") and self.options.scim_groups:
            doc["groups"] = [{"value": self.team_ids.get(record["team"], ""), "display": record["team"]}]
        return doc

    def _from_scim(self, doc: Any, base: dict | None) -> dict:
        """A BPCC record from a full SCIM user document (create, PUT; PATCH after applying)."""
        if not isinstance(doc, dict):
            raise _scim_error(400, "the body must be a SCIM user object", "invalidSyntax")
        name = doc.get("name") if isinstance(doc.get("name"), dict) else {}
        email = _primary(doc.get("emails")).get("value")
        record = dict(base or {})
        record.update({
            "loginId": doc.get("userName"), "firstName": name.get("givenName"),
            "lastName": name.get("familyName"), "email": email,
            "nickName": doc.get("nickName"), "title": doc.get("title"), "timezone": doc.get("timezone"),
        })
        for field_name in ("loginId", "firstName", "lastName", "email"):
            value = record.get(field_name)
            if not isinstance(value, str) or not value.strip():
                attr = {"loginId": "userName", "firstName": "name.givenName",
                        "lastName": "name.familyName", "email": "emails.value"}[field_name]
                raise _scim_error(400, f"{attr} is required", "invalidValue")
        if "active" in doc:
            if not isinstance(doc["active"], bool):
                raise _scim_error(400, "active must be true or false", "invalidValue")
            record["disabled"] = not doc["active"]
        phones = {e.get("type"): e.get("value") for e in doc.get("phoneNumbers") or []
                  if isinstance(e, dict)}
        for kind, key in _PHONE_FIELDS.items():
            if kind in phones:
                record[key] = str(phones[kind]) if phones[kind] is not None else None
            elif kind != "extension":   # an extension is kept unless one is given
                record[key] = None
        address = _primary(doc.get("addresses"))
        for key in ("locality", "region", "country"):
            record[key] = address.get(key)
        roles = []
        for role in doc.get("roles") or []:
            role = role.get("value") if isinstance(role, dict) else role
            if isinstance(role, str) and role.strip():
                roles.append(role.strip())
        self._check_roles(roles)
        record["roles"] = roles
        if isinstance(doc.get("password"), str):
            record["password"] = doc["password"]
        return record

    def _user(self, request: Request) -> dict:
        user = self.users.get(request.params["id"])
        if user is None:
            raise _scim_error(404, "User not found")
        return user

    def _scim_body(self, request: Request) -> Any:
        kind = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind not in ("application/json", "application/scim+json"):
            raise _scim_error(415, "Content-Type must be application/json or application/scim+json")
        return request.json()

    def scim_list(self, request: Request):
        self.require_token(request)
        with self.lock:
            users = sorted(self.users.values(), key=lambda u: u["created"] + u["id"])
            wanted = request.query.get("filter")
            if wanted is not None:
                match = _FILTER.match(wanted)
                if not match:
                    raise _scim_error(400, "only the filter userName eq \"...\" is supported",
                                      "invalidFilter")
                login = re.sub(r"\\(.)", r"\1", match.group(1)).casefold()
                found = [self.to_scim(u, request) for u in users if u["loginId"].casefold() == login]
                return 200, {"schemas": [LIST_SCHEMA], "totalResults": len(found), "Resources": found}
            if not self.options.scim_paging:
                raise _scim_error(400, "a filter is required", "invalidFilter")
            try:
                start = max(1, int(request.query.get("startIndex", 1)))
                count = max(0, int(request.query.get("count", 100)))
            except ValueError:
                raise _scim_error(400, "startIndex and count must be integers", "invalidValue") from None
            page = [self.to_scim(u, request) for u in users[start - 1:start - 1 + count]]
            return 200, {"schemas": [LIST_SCHEMA], "totalResults": len(users), "startIndex": start,
                         "itemsPerPage": len(page), "Resources": page}

    def scim_create(self, request: Request):
        self.require_token(request)
        doc = self._scim_body(request)
        with self.lock:
            record = self._from_scim(doc, None)
            if not record.get("roles"):
                record["roles"] = list(self.options.default_roles)
            self._check_unique(record)
            record = self._insert({k: v for k, v in record.items() if v is not None})
            return 201, self.to_scim(record, request), {"Location": f"{API}/scim/users/{record['id']}"}

    def scim_get(self, request: Request):
        self.require_token(request)
        with self.lock:
            return 200, self.to_scim(self._user(request), request)

    def _replace(self, request: Request, user: dict, doc: dict):
        record = self._from_scim(doc, user)
        if record["loginId"].casefold() != user["loginId"].casefold() and not self.options.allow_rename:
            raise _scim_error(400, "changing userName is not enabled for this contact center", "mutability")
        self._check_unique(record, other_than=user["id"])
        record["lastModified"] = _now()
        self.users[user["id"]] = record
        return 200, self.to_scim(record, request)

    def scim_put(self, request: Request):
        self.require_token(request)
        doc = self._scim_body(request)
        with self.lock:
            user = self._user(request)
            if isinstance(doc, dict) and "active" not in doc:
                doc = {**doc, "active": True}
            return self._replace(request, user, doc)

    def scim_patch(self, request: Request):
        self.require_token(request)
        body = self._scim_body(request)
        if not isinstance(body, dict) or PATCH_SCHEMA not in (body.get("schemas") or []):
            raise _scim_error(400, f"the body must be a {PATCH_SCHEMA} message", "invalidSyntax")
        with self.lock:
            user = self._user(request)
            doc = self.to_scim(user, request)
            for op in body.get("Operations") or []:
                self._patch_one(doc, op)
            return self._replace(request, user, doc)

    @staticmethod
    def _patch_one(doc: dict, op: Any) -> None:
        kind = str(op.get("op", "")).lower() if isinstance(op, dict) else ""
        path, value = (op.get("path"), op.get("value")) if isinstance(op, dict) else (None, None)
        if kind not in ("add", "replace", "remove"):
            raise _scim_error(400, f"unsupported patch operation {kind!r}", "invalidSyntax")
        try:
            if kind == "remove":
                if not path:
                    raise _scim_error(400, "remove needs a path", "noTarget")
                P.remove_path(doc, path)
            elif not path:
                if not isinstance(value, dict):
                    raise _scim_error(400, "a patch without a path needs an object value", "invalidValue")
                for key, item in value.items():
                    P.set_path(doc, key, copy.deepcopy(item))
            else:
                P.set_path(doc, path, copy.deepcopy(value))
        except ValueError as exc:
            raise _scim_error(400, str(exc), "invalidPath") from None

    def scim_delete(self, request: Request):
        self.require_token(request)
        with self.lock:
            self.users.pop(self._user(request)["id"])
        return 204, None

    # -- directory, teams, user API ----------------------------------------------

    def directory(self, request: Request):
        self.require_token(request)
        with self.lock:
            users = sorted(self.users.values(), key=lambda u: u.get("extension") or "")
            return 200, [{"extension": u.get("extension"), "loginId": u["loginId"],
                          "firstName": u.get("firstName"), "lastName": u.get("lastName"),
                          "voiceMail": False, "greeting": False} for u in users]

    def team_list(self, request: Request):
        self.require_token(request)
        return 200, [{"name": name} for name in self.options.teams]

    def _by_login(self, request: Request) -> dict:
        user = self.by_login(request.params["login"])
        if user is None:
            raise HttpError(404, "user not found")
        return user

    def _team(self, name: Any) -> str:
        if not isinstance(name, str) or name not in self.options.teams:
            raise HttpError(404, f"user team not found: {name}")
        return name

    def _skills(self, skills: Any) -> dict:
        if not isinstance(skills, dict):
            raise HttpError(400, "skills must be an object of skill name: level")
        for name, level in skills.items():
            if name not in self.options.skills:
                raise HttpError(404, f"skill not found: {name}")
            if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 100:
                raise HttpError(400, f"skill level of {name} must be 0..100")
        return dict(skills)

    def user_get(self, request: Request):
        self.require_token(request)
        with self.lock:
            u = self._by_login(request)
            return 200, {"disabled": u.get("disabled", False), "changePassword": u.get("changePassword", False),
                         "skills": dict(u.get("skills") or {}), "loginId": u["loginId"],
                         "firstName": u.get("firstName"), "lastName": u.get("lastName"),
                         "team": u.get("team"), "extension": u.get("extension"),
                         "workPhone": u.get("workPhone"), "mobilePhone": u.get("mobilePhone"),
                         "email": u.get("email"), "roles": list(u.get("roles") or [])}

    def user_update(self, request: Request):
        self.require_token(request)
        body = request.json()
        if not isinstance(body, dict):
            raise HttpError(400, "the body must be a JSON object")
        unknown = set(body) - {"skills", "disabled", "password", "changePassword", "team"}
        if unknown:
            raise HttpError(400, f"cannot update {', '.join(sorted(unknown))} with this method")
        with self.lock:
            user = self._by_login(request)
            changed = dict(user)
            if "team" in body:
                changed["team"] = self._team(body["team"])
            if "skills" in body:
                changed["skills"] = self._skills(body["skills"])
            for key in ("disabled", "changePassword"):
                if key in body:
                    value = body[key]
                    # the vendor's own example sends "true" as a string
                    changed[key] = value if isinstance(value, bool) else str(value).lower() == "true"
            if "password" in body:
                changed["password"] = body["password"]
            changed["lastModified"] = _now()
            self.users[user["id"]] = changed
        return 200, None

    def user_create(self, request: Request):
        self.require_token(request)
        body = request.json()
        if not isinstance(body, dict):
            raise HttpError(400, "the body must be a JSON object")
        for key in ("loginId", "password", "firstName", "lastName", "team"):
            if not isinstance(body.get(key), str) or not body[key].strip():
                raise HttpError(400, f"{key} is required")
        with self.lock:
            record = {k: body.get(k) for k in ("loginId", "password", "firstName", "lastName", "extension",
                                              "workPhone", "mobilePhone", "email")}
            record["team"] = self._team(body["team"])
            record["skills"] = self._skills(body.get("skills") or {})
            record["disabled"] = bool(body.get("disabled", False))
            record["changePassword"] = bool(body.get("changePassword", False))
            roles = [r for r in body.get("roles") or [] if isinstance(r, str)]
            self._check_roles(roles)
            record["roles"] = roles or list(self.options.default_roles)
            self._check_unique(record)
            self._insert({k: v for k, v in record.items() if v is not None})
        return 200, None

    def user_delete(self, request: Request):
        self.require_token(request)
        with self.lock:
            self.users.pop(self._by_login(request)["id"])
        return 200, None


def build(settings) -> Emulator:
    """The emulator a [sandbox.onecloud] table describes (`provisioner sandbox serve`)."""
    options = OneCloudOptions(client_id=settings.client_id, client_secret=settings.client_secret.reveal(),
                              tenant=settings.tenant, scim_paging=settings.scim_paging,
                              roles_as_objects=settings.roles_as_objects,
                              scim_groups=settings.scim_groups)
    return OneCloudEmulator(options, faults_of(settings), state_file=settings.state_file)


DEMO_TENANT = "demo.cx.onecloud.com"
DEMO_CLIENT_ID = "demo-admin"
DEMO_MAPPING = '''# OneCloud CX: the default mapping (provisioner/connectors/onecloud/mapping.toml) plus the team,
# which OneCloud sets through its user API beside SCIM.
scope = 'department eq "Support"'
correlate = ["userName"]

[attributes]
userName = { from = "email", transform = "lower" }
"name.givenName" = { from = "given_name" }
"name.familyName" = { from = "family_name" }
"emails[0].value" = { from = "email", transform = "lower" }
title = { from = "title" }
timezone = { from = "timezone", default = "UTC" }
'phoneNumbers[type eq "work"].value' = { from = "work_phone" }
roles = { from = "role", default = "Agent" }
team = { from = "team" }
active = { from = "status", equals = "active" }
'''


def demo_target(secret):
    """OneCloud in `provisioner demo`: an empty tenant whose extensions the demo shows after the apply."""
    import secrets

    from ...sandbox.demo_targets import DemoTarget
    client_secret = secrets.token_hex(16)
    reference = secret("onecloud_client_secret", client_secret)
    emulator = OneCloudEmulator(OneCloudOptions(client_id=DEMO_CLIENT_ID, client_secret=client_secret,
                                                tenant=DEMO_TENANT))

    def config(base_url: str) -> str:
        return (f'[targets.onecloud]\ntype = "onecloud"\nbase_url = "{base_url}"\ntenant = "{DEMO_TENANT}"\n'
                f'client_id = "{DEMO_CLIENT_ID}"\nclient_secret = "{reference}"\n'
                'mapping = "mappings/onecloud.toml"\n')

    def note(links: dict[str, dict]) -> str:
        return "OneCloud assigned extensions (kept with the links): " + ", ".join(
            f"{key} {data['extension']}" for key, data in sorted(links.items()) if data.get("extension"))
    return DemoTarget(name="onecloud", label="OneCloud CX emulator", emulator=emulator, config=config,
                      mapping=DEMO_MAPPING, note=note)
