"""A local Ytel AMS account: the token endpoint (credentials and refresh_token
grants), users, their status endpoint and roles, answering in Ytel's envelope
`{status, count, page, payload, error}` (shared api-notes §2, seed 002).

What it holds to, as the vendor documents it:
- every answer is an envelope; a refused request may still be HTTP 200 with
  `status: false` (a duplicate username, an unknown role, a username change);
- separate per-second limits for the token endpoint (25/s, `token_rate_limit`)
  and every other route (150/s, `rate_limit`), held strictly: no one-second
  span, wherever it starts, admits more than the limit (a client that passes
  here passes a server counting fixed windows too). Announced in
  X-RateLimit-Limit-Second / RateLimit-Limit / RateLimit-Remaining /
  RateLimit-Reset; 429 with Retry-After beyond it. Every arrival is logged by
  bucket (`arrivals`), and `busiest_second(bucket)` counts the most that came
  within any one second, so tests assert on counts, not on elapsed time;
- access tokens expire after `Faults.token_lifetime`; an expired one is
  answered "Bad token" (401, or 403 with `bad_token_status = 403`);
  `refreshDurationMinutes` must be an integer and is how long the refresh token
  works (120 when not sent);
- usernames are e-mails and never change; PUT must carry the full `roles`
  and cannot change `password` or `status`; status has its own endpoint;
- DELETE /ams/v3/users/{clientId} removes the user (and its work-group
  memberships); the seed shows no answer, so it answers the bare envelope (an
  empty payload) and a 404 for a clientId it does not hold, as a read does;
- work groups (`/ams/v3/workgroup`): listed with their `userIds`; a POST adds
  users to an existing group or creates a new one. The seed's "remove users"
  is the same POST, so the emulator takes removals at its own stand-in,
  `POST /ams/v3/workgroup/remove` (what `workgroup_remove_path` is tested with).

Passwords sent on create are kept in memory only (`passwords`, for tests to
prove they never leak); the state file never holds them.
"""

from __future__ import annotations

import math
import re
import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...sandbox.server import Emulator, Faults, HttpError, Request, UserStore, faults_of

if TYPE_CHECKING:
    from ...sandbox.demo_targets import DemoTarget, SecretWriter

USERS = "/ams/v3/users"
WORKGROUP = "/ams/v3/workgroup"
BUCKETS = ("token", "api")             # the separately limited route groups
DEFAULT_REFRESH_MINUTES = 120
ROLES = (("webrtc-agent", "WebRTC Agent"), ("agent", "Agent"), ("supervisor", "Supervisor"),
         ("contact-admin", "Contacts"), ("account-admin", "Account Administrator"))
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z")
_EDITABLE = ("firstName", "lastName", "phone", "emailAddress", "displayName", "roles",
             "webrtcNumber", "ucaasExtension")


@dataclass
class YtelOptions:
    username: str = "api@sandbox.ytel.test"
    password: str = "sandbox-password"
    account_id: str = "173c6f7f-c911-f823-fb2d-a13e4780c300"
    rate_limit: int = 150                 # requests per second, every route but the token's
    token_rate_limit: int = 25            # requests per second on /auth/v3/token
    bad_token_status: int = 401
    sso: bool = False                     # true: a create without a password is accepted
    roles: tuple[tuple[str, str], ...] = ROLES
    workgroups: tuple[str, ...] = ()      # work groups the account holds from the start


def envelope(payload: list | None = None, *, status: bool = True, errors: list | None = None) -> dict:
    payload = payload or []
    return {"status": status, "count": len(payload), "page": 1, "payload": payload,
            "error": errors or []}


def refusal(code: int, message: str, more: str = "", http: int = 200) -> HttpError:
    """Ytel's failure: `status: false` with an error entry, under HTTP 200 unless `http` says."""
    body = envelope(status=False, errors=[{"code": str(code), "message": message,
                                            "moreInfo": more or message}])
    return HttpError(http, message, body)


class YtelEmulator(UserStore, Emulator):
    name = "ytel"

    def __init__(self, options: YtelOptions | None = None, faults: Faults | None = None, **kwargs):
        self.options = options or YtelOptions()
        self.users: dict[str, dict] = {}         # clientId -> user
        self.passwords: dict[str, str] = {}      # clientId -> password sent on create (memory only)
        self.grants: list[str] = []              # grant types asked for, in order
        self._refresh_tokens: dict[str, float] = {}      # refresh token -> expiry (monotonic)
        self.refresh_durations: list[Any] = []            # refreshDurationMinutes as sent, in order
        # per bucket: monotonic arrival time of every request, and those admitted in the last second
        self.arrivals: dict[str, list[float]] = {b: [] for b in BUCKETS}
        self._admitted: dict[str, deque[float]] = {b: deque() for b in BUCKETS}
        self.throttled = 0
        self.workgroups: dict[str, dict] = {}    # groupName -> group (userIds included)
        super().__init__(faults, **kwargs)
        for name in self.options.workgroups:
            self.add_workgroup(name)

    def routes(self):
        user = USERS + r"/(?P<id>[^/]+)"
        return [
            ("POST", "/auth/v3/token", self.token),
            ("GET", USERS, self.list_users),
            ("POST", USERS, self.create_user),
            ("GET", USERS + r"/usernames/(?P<username>[^/]+)", self.get_by_username),
            ("PUT", USERS + r"/status/(?P<id>[^/]+)", self.set_status),
            ("GET", user, self.get_user),
            ("PUT", user, self.update_user),
            ("DELETE", user, self.delete_user),
            ("GET", "/ams/v2/roles/all", self.list_roles),
            ("GET", WORKGROUP, self.list_workgroups),
            ("POST", WORKGROUP + "/remove", self.remove_from_workgroup),
            ("GET", WORKGROUP + r"/(?P<name>[^/]+)", self.get_workgroup),
            ("POST", WORKGROUP, self.post_workgroup),
            ("PUT", WORKGROUP, self.update_workgroup),
            ("DELETE", WORKGROUP + r"/(?P<name>[^/]+)", self.delete_workgroup),
        ]

    # -- state -----------------------------------------------------------------

    def add_user(self, username: str, first: str = "", last: str = "", *, roles=("agent",),
                 status: str = "active", **extra: Any) -> dict:
        """Put a user in the account as if made by hand (for seeding and tests)."""
        user = {"clientId": str(uuid.uuid4()), "username": username, "firstName": first,
                "lastName": last, "displayName": f"{first} {last}".strip(), "emailAddress": username,
                "phone": None, "roles": list(roles), "userStatus": status,
                "belongAcctId": self.options.account_id, "parentAcctId": self.options.account_id,
                "source": "ams", "webrtcNumber": None, "ucaasExtension": None,
                "twoFactorEnabled": False, **extra}
        with self.lock:
            self.users[user["clientId"]] = user
        return user

    def add_workgroup(self, name: str, *user_ids: str, description: str = "") -> dict:
        group = {"groupName": name, "description": description, "metadata": {}, "details": {},
                 "userIds": list(user_ids)}
        with self.lock:
            self.workgroups[name] = group
        return group

    def snapshot(self) -> Any:
        with self.lock:
            return {"users": self.users, "workgroups": self.workgroups}

    def restore(self, data: Any) -> None:
        with self.lock:
            self.users = dict(data.get("users") or {})
            # a state file from before work groups keeps the groups the options seeded
            self.workgroups = dict(data.get("workgroups", self.workgroups))

    # -- rate limit ------------------------------------------------------------

    def _dispatch(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        bucket = "token" if request.path.startswith("/auth/") else "api"
        limit = self.options.token_rate_limit if bucket == "token" else self.options.rate_limit
        with self.lock:
            now = time.monotonic()
            self.arrivals[bucket].append(now)
            window = self._admitted[bucket]
            while window and window[0] <= now - 1.0:
                window.popleft()
            admitted = len(window) < limit
            if admitted:
                window.append(now)
            else:
                self.throttled += 1
            remaining = limit - len(window)
            # whole seconds until the oldest request in the window stops counting
            reset = str(max(1, math.ceil(window[0] + 1.0 - now)))
        headers = {"X-RateLimit-Limit-Second": str(limit), "RateLimit-Limit": str(limit),
                   "X-RateLimit-Remaining-Second": str(remaining),
                   "RateLimit-Remaining": str(remaining), "RateLimit-Reset": reset}
        if not admitted:
            body = envelope(status=False, errors=[{"code": "429", "message": "API rate limit exceeded",
                                                   "moreInfo": "API rate limit exceeded"}])
            return 429, body, {**headers, "Retry-After": reset}
        status, body, extra = super()._dispatch(request)
        return status, body, {**extra, **headers}

    def busiest_second(self, bucket: str) -> int:
        """The most requests of `bucket` ("token" or "api") that arrived within one second."""
        with self.lock:
            times = list(self.arrivals[bucket])
        most, first = 0, 0
        for last, at in enumerate(times):
            while at - times[first] >= 1.0:
                first += 1
            most = max(most, last - first + 1)
        return most

    # -- tokens ----------------------------------------------------------------

    def token(self, request: Request):
        body = request.json() or {}
        grant = body.get("grantType")
        with self.lock:
            self.grants.append(str(grant))
        if grant == "resource_owner_credentials":
            if (body.get("username") != self.options.username
                    or body.get("password") != self.options.password):
                raise refusal(401, "Invalid username or password", http=401)
        elif grant == "refresh_token":
            with self.lock:
                expiry = self._refresh_tokens.get(body.get("refreshToken"))
            if expiry is None or expiry <= time.monotonic():
                raise refusal(401, "Invalid refresh token", http=401)
        else:
            raise refusal(400, f"unknown grantType {grant!r}", http=400)
        minutes = body.get("refreshDurationMinutes", DEFAULT_REFRESH_MINUTES)
        with self.lock:
            self.refresh_durations.append(minutes)
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
            raise refusal(400, "refreshDurationMinutes must be a whole number of minutes",
                          f"got {minutes!r}", http=400)
        access, _ = self.issue_token()
        refresh = secrets.token_urlsafe(32)
        with self.lock:
            self._refresh_tokens[refresh] = time.monotonic() + minutes * 60
        return 200, envelope([{"accessToken": access, "refreshToken": refresh, "tokenType": "Bearer"}])

    def _authorized(self, request: Request) -> None:
        try:
            self.require_token(request)
        except HttpError:
            raise refusal(self.options.bad_token_status, "Bad token",
                          http=self.options.bad_token_status) from None

    # -- users -----------------------------------------------------------------

    def list_users(self, request: Request):
        self._authorized(request)
        with self.lock:
            return 200, envelope([dict(u) for u in self.users.values()])

    def get_user(self, request: Request):
        self._authorized(request)
        return 200, envelope([dict(self._user(request.params["id"]))])

    def get_by_username(self, request: Request):
        self._authorized(request)
        wanted = request.params["username"].casefold()
        with self.lock:
            found = [dict(u) for u in self.users.values() if u["username"].casefold() == wanted]
        if not found:
            raise refusal(404, "User not found", http=404)
        return 200, envelope(found)

    def create_user(self, request: Request):
        self._authorized(request)
        body = request.json()
        if not isinstance(body, dict):
            raise refusal(400, "the body must be a JSON object")
        username = str(body.get("username") or "")
        if not _EMAIL.match(username):
            raise refusal(400, "username must be an e-mail address", f"got {username!r}")
        if body.get("belongAcctId") != self.options.account_id:
            raise refusal(403, "belongAcctId is not this account")
        password = body.get("password")
        if not password and not self.options.sso:
            raise refusal(400, "password is required")
        if password and (len(password) < 8 or password.isalnum()):
            raise refusal(400, "password is too weak")
        self._check_roles(body.get("roles"))
        if body.get("status", "active") not in ("active", "inactive"):
            raise refusal(400, "status must be active or inactive")
        with self.lock:
            if any(u["username"].casefold() == username.casefold() for u in self.users.values()):
                raise refusal(409, "User already exists", f"username {username} is taken")
            fields = {k: body[k] for k in _EDITABLE if k in body}
            user = self.add_user(username, status=body.get("status", "active"), **fields)
            if password:
                self.passwords[user["clientId"]] = password
        return 200, envelope([dict(user)])

    def update_user(self, request: Request):
        self._authorized(request)
        body = request.json()
        if not isinstance(body, dict):
            raise refusal(400, "the body must be a JSON object")
        if "roles" not in body:
            raise refusal(400, "roles are required", "send the full set of roles with every update")
        for key in ("password", "status", "userStatus"):
            if key in body:
                raise refusal(400, f"{key} cannot be changed here")
        self._check_roles(body["roles"])
        with self.lock:
            user = self._user(request.params["id"])
            if "username" in body and str(body["username"]).casefold() != user["username"].casefold():
                raise refusal(400, "username cannot be changed")
            for key in _EDITABLE:
                if key in body:
                    user[key] = body[key]
            return 200, envelope([dict(user)])

    def set_status(self, request: Request):
        self._authorized(request)
        status = (request.json() or {}).get("status")
        if status not in ("active", "inactive"):
            raise refusal(400, "status must be active or inactive")
        with self.lock:
            user = self._user(request.params["id"])
            user["userStatus"] = status
            return 200, envelope([dict(user)])

    def delete_user(self, request: Request):
        """The seed shows no answer: the envelope with an empty payload, as little as the target may
        rely on; an unknown (or already deleted) clientId is a 404, as for a read."""
        self._authorized(request)
        with self.lock:
            client_id = self._user(request.params["id"])["clientId"]
            del self.users[client_id]
            self.passwords.pop(client_id, None)
            for group in self.workgroups.values():   # a deleted user is in no group
                group["userIds"] = [u for u in group["userIds"] if u != client_id]
        return 200, envelope()

    def list_roles(self, request: Request):
        self._authorized(request)
        return 200, envelope([{"name": n, "displayName": d, "privileges": []} for n, d in self.options.roles])

    # -- work groups -------------------------------------------------------------

    def list_workgroups(self, request: Request):
        self._authorized(request)
        with self.lock:
            return 200, envelope([_copy(g) for g in self.workgroups.values()])

    def get_workgroup(self, request: Request):
        self._authorized(request)
        return 200, envelope([_copy(self._workgroup(request.params["name"]))])

    def post_workgroup(self, request: Request):
        """Create a group, or (the group exists) add `userIds` to it."""
        self._authorized(request)
        body = self._group_body(request)
        with self.lock:
            group = self.workgroups.get(body["groupName"])
            if group is None:
                group = self.add_workgroup(body["groupName"], description=str(body.get("description") or ""))
                group.update({k: body[k] for k in ("metadata", "details") if isinstance(body.get(k), dict)})
            for user_id in self._user_ids(body):
                if user_id not in group["userIds"]:
                    group["userIds"].append(user_id)
            return 200, envelope([_copy(group)])

    def remove_from_workgroup(self, request: Request):
        self._authorized(request)
        body = self._group_body(request)
        with self.lock:
            group = self._workgroup(body["groupName"])
            gone = set(self._user_ids(body))
            group["userIds"] = [u for u in group["userIds"] if u not in gone]
            return 200, envelope([_copy(group)])

    def update_workgroup(self, request: Request):
        self._authorized(request)
        body = self._group_body(request)
        with self.lock:
            group = self._workgroup(body["groupName"])
            group.update({k: body[k] for k in ("description", "metadata", "details") if k in body})
            return 200, envelope([_copy(group)])

    def delete_workgroup(self, request: Request):
        self._authorized(request)
        with self.lock:
            self._workgroup(request.params["name"])
            del self.workgroups[request.params["name"]]
        return 200, envelope()

    def _group_body(self, request: Request) -> dict:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("groupName"), str) or not body["groupName"]:
            raise refusal(400, "groupName is required")
        return body

    def _user_ids(self, body: dict) -> list[str]:
        ids = body.get("userIds") or []
        if not isinstance(ids, list):
            raise refusal(400, "userIds must be a list of clientIds")
        unknown = [str(i) for i in ids if str(i) not in self.users]
        if unknown:
            raise refusal(404, f"User {unknown[0]} not found")
        return [str(i) for i in ids]

    def _workgroup(self, name: str) -> dict:
        return self._found(self.workgroups, name, f"Work group {name}")

    def _user(self, client_id: str) -> dict:
        return self._found(self.users, client_id, "User")

    def _found(self, store: dict, key: str, what: str) -> dict:
        with self.lock:
            found = store.get(key)
        if found is None:
            raise refusal(404, f"{what} not found", http=404)
        return found

    def _check_roles(self, roles: Any) -> None:
        if not isinstance(roles, list):
            raise refusal(400, "roles must be a list of role names")
        known = {n for n, _ in self.options.roles}
        unknown = [r for r in roles if r not in known]
        if unknown:
            raise refusal(400, f"Role {unknown[0]} does not exist")


def _copy(group: dict) -> dict:
    return {**group, "userIds": list(group["userIds"])}


DEMO_MAPPING = '''# Ytel AMS: the default mapping (provisioner/connectors/ytel/mapping.toml) without its comments,
# plus work-group membership from the HR team (groups listed in the target's `workgroups`).
scope = 'department eq "Support"'
correlate = ["username"]

[attributes]
workgroups = { from = "team" }
username = { from = "email", transform = "lower", case_insensitive = true }
firstName = { from = "given_name" }
lastName = { from = "family_name" }
emailAddress = { from = "email", transform = "lower", case_insensitive = true }
phone = { from = "work_phone" }
roles = { from = "role", lookup = { Agent = "webrtc-agent", Supervisor = "supervisor", "Agent, Supervisor" = "supervisor, webrtc-agent" } }
active = { from = "status", equals = "active" }
'''


def demo_target(secret: "SecretWriter") -> "DemoTarget":
    """The Ytel AMS emulator for `provisioner demo`: one user made by hand before the first run."""
    from ...sandbox.demo_targets import DemoTarget
    teams = ("Customer Service", "Contact Center Support")
    options = YtelOptions(username="demo-api@example.com", password=secrets.token_hex(16),
                          workgroups=teams)
    emulator = YtelEmulator(options)
    emulator.add_user("it.admin@example.com", "IT", "Admin", roles=("account-admin",))
    reference = secret("ytel_password", options.password)

    def config(base_url: str) -> str:
        return (f'[targets.ytel]\ntype = "ytel"\nbase_url = "{base_url}"\n'
                f'mapping = "mappings/ytel.toml"\nusername = "{options.username}"\n'
                f'password = "{reference}"\naccount_id = "{options.account_id}"\n'
                f'workgroups = [{", ".join(f"{t!r}" for t in teams)}]\n')

    return DemoTarget(name="ytel", label="Ytel AMS emulator", emulator=emulator, config=config,
                      mapping=DEMO_MAPPING)


def options_of(settings, kind: type = YtelOptions, **extra) -> YtelOptions:
    """The emulator options a [sandbox.ytel] (or [sandbox.ytel_ycc]) table describes."""
    return kind(username=settings.username, password=settings.password.reveal(),
                account_id=settings.account_id, rate_limit=settings.rate_limit,
                token_rate_limit=settings.token_rate_limit, sso=settings.sso,
                workgroups=tuple(settings.workgroups), **extra)


def build(settings) -> Emulator:
    """The emulator a [sandbox.ytel] table describes (`provisioner sandbox serve`)."""
    return YtelEmulator(options_of(settings), faults_of(settings), state_file=settings.state_file)
