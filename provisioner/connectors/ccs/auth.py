"""A fixed token sent in a configurable header, for APIs that do not document their scheme.

`Authorization: Bearer <token>` by default; `header` and `scheme` change it
(e.g. `X-Api-Key: <token>` with scheme ""). The token is revealed per request
so the plain value lives only in the outgoing header.
"""

from __future__ import annotations

from typing import Generator

import httpx

from ...secrets import Secret


class HeaderTokenAuth(httpx.Auth):
    def __init__(self, token: Secret, header: str = "Authorization", scheme: str = "Bearer"):
        self._token = token
        self.header = header
        self.scheme = scheme.strip()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        value = self._token.reveal()
        request.headers[self.header] = f"{self.scheme} {value}" if self.scheme else value
        yield request

    def __repr__(self) -> str:
        return f"HeaderTokenAuth({self._token!r}, header={self.header!r}, scheme={self.scheme!r})"
