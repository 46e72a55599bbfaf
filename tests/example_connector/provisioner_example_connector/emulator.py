"""The example directory's API in memory, on provisioner's emulator base (127.0.0.1, faults,
state file). `provisioner sandbox serve` builds it from [sandbox.example_directory]."""

from __future__ import annotations

import itertools
from typing import Any

from provisioner.sandbox.server import Emulator, Faults, HttpError, Request, UserStore

API = "/api/v1"
FIELDS = ("email", "given_name", "family_name", "title", "enabled")
WRITE_ONLY = ("pin",)    # taken, stored, never answered
MAX_PAGE = 100


class ExampleDirectoryEmulator(UserStore, Emulator):
    name = "example_directory"

    def __init__(self, token: str, faults: Faults | None = None, **kwargs: Any):
        self.token = token
        self.users: dict[str, dict] = {}
        self._ids = itertools.count(1)
        super().__init__(faults, **kwargs)

    def routes(self):
        return [("GET", API + "/users", self.list_users),
                ("POST", API + "/users", self.create_user),
                ("GET", API + r"/users/(?P<id>[^/]+)", self.get_user),
                ("PATCH", API + r"/users/(?P<id>[^/]+)", self.update_user),
                ("DELETE", API + r"/users/(?P<id>[^/]+)", self.delete_user)]

    def restore(self, data: Any) -> None:
        super().restore(data)
        with self.lock:   # new ids continue after the kept ones
            self._ids = itertools.count(len(self.users) + 1)

    def dispatch(self, request: Request):
        if request.bearer() != self.token:
            return 401, {"error": "unauthorized", "message": "a valid bearer token is required"}, {}
        return super().dispatch(request)

    @staticmethod
    def shown(user: dict) -> dict:
        return {k: v for k, v in user.items() if k not in WRITE_ONLY}

    def _user(self, request: Request) -> dict:
        user = self.users.get(request.params["id"])
        if user is None:
            raise HttpError(404, "no such user", {"error": "not_found", "message": "no such user"})
        return user

    def _taken(self, email: Any, other_than: str | None = None) -> bool:
        wanted = str(email or "").casefold()
        return any(u["email"].casefold() == wanted and u["id"] != other_than for u in self.users.values())

    def list_users(self, request: Request):
        try:
            offset = max(0, int(request.query.get("offset", 0)))
            limit = min(MAX_PAGE, max(1, int(request.query.get("limit", MAX_PAGE))))
        except ValueError:
            raise HttpError(400, "offset and limit must be whole numbers") from None
        with self.lock:
            users = sorted(self.users.values(), key=lambda u: int(u["id"][2:]))
            if "email" in request.query:
                users = [u for u in users if u["email"].casefold() == request.query["email"].casefold()]
            page = users[offset:offset + limit]
            return 200, {"users": [self.shown(u) for u in page], "total": len(users)}

    def get_user(self, request: Request):
        with self.lock:
            return 200, self.shown(self._user(request))

    def create_user(self, request: Request):
        body = request.json()
        if not isinstance(body, dict):
            raise HttpError(400, "the body must be a JSON object")
        for key in ("email", "given_name", "family_name"):
            if not str(body.get(key) or "").strip():
                raise HttpError(400, f"{key} is required", {"error": "invalid", "message": f"{key} is required"})
        with self.lock:
            if self._taken(body["email"]):
                raise HttpError(409, "email is taken", {"error": "conflict", "message": "email is taken"})
            user = {"id": f"u-{next(self._ids):04d}", "enabled": True,
                    **{k: body[k] for k in (*FIELDS, *WRITE_ONLY) if k in body}}
            self.users[user["id"]] = user
            return 201, self.shown(user), {"Location": f"{API}/users/{user['id']}"}

    def update_user(self, request: Request):
        body = request.json()
        if not isinstance(body, dict) or set(body) - {*FIELDS, *WRITE_ONLY}:
            raise HttpError(400, f"only {', '.join((*FIELDS, *WRITE_ONLY))} can be changed")
        with self.lock:
            user = self._user(request)
            if "email" in body and self._taken(body["email"], other_than=user["id"]):
                raise HttpError(409, "email is taken", {"error": "conflict", "message": "email is taken"})
            user.update(body)
            return 200, self.shown(user)

    def delete_user(self, request: Request):
        with self.lock:
            del self.users[self._user(request)["id"]]
            return 204, None


def build(settings) -> ExampleDirectoryEmulator:
    """The emulator of a [sandbox.example_directory] table (SandboxSpec.build)."""
    faults = Faults(latency=settings.latency, error_rate=settings.error_rate,
                    throttle_rate=settings.throttle_rate, retry_after=settings.retry_after,
                    token_lifetime=settings.token_lifetime)
    return ExampleDirectoryEmulator(settings.token.reveal(), faults, state_file=settings.state_file)
