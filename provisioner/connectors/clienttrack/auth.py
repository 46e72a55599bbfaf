"""ClientTrack (Eccovia CTAPI) keys as an httpx.Auth: a subscription key AND an API key.

Every CTAPI request carries both (shared api-notes §4): the subscription key in
`Ocp-Apim-Subscription-Key` (the header form; the `?subscription-key=` query
form would put it in URLs, which end up in logs) and `Authorization: ApiKey
<key>`. `OrgId` narrows a User Key to one organization; it is not a secret.

A 401 is final: the keys are static, so sending the same request again cannot
help (and CTAPI asks clients not to retry it).
"""

from __future__ import annotations

from typing import Generator

import httpx

from ...secrets import Secret

SUBSCRIPTION_HEADER = "Ocp-Apim-Subscription-Key"
ORG_HEADER = "OrgId"


class CtapiKeyAuth(httpx.Auth):
    def __init__(self, subscription_key: Secret, api_key: Secret, org_id: str | None = None):
        self._subscription_key = subscription_key
        self._api_key = api_key
        self.org_id = org_id

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # revealed per request so the plain values live only in the outgoing headers
        request.headers[SUBSCRIPTION_HEADER] = self._subscription_key.reveal()
        request.headers["Authorization"] = f"ApiKey {self._api_key.reveal()}"
        if self.org_id:
            request.headers[ORG_HEADER] = self.org_id
        yield request

    def __repr__(self) -> str:
        return f"CtapiKeyAuth({self._subscription_key!r}, {self._api_key!r}, org_id={self.org_id!r})"
