"""CtapiKeyAuth alone: a plain httpx client against the ClientTrack emulator."""

from __future__ import annotations

import httpx

from conftest import CLIENTTRACK_API_KEY, CLIENTTRACK_SUBSCRIPTION
from provisioner.connectors.clienttrack.auth import CtapiKeyAuth
from provisioner.secrets import Secret


def auth(subscription=CLIENTTRACK_SUBSCRIPTION, api_key=CLIENTTRACK_API_KEY, org_id=None) -> CtapiKeyAuth:
    return CtapiKeyAuth(Secret(subscription, "env:CT_SUB"), Secret(api_key, "env:CT_KEY"), org_id)


def test_both_keys_on_every_request_and_org_id_when_given(clienttrack):
    with httpx.Client(base_url=clienttrack.base_url, auth=auth(org_id="42")) as client:
        for _ in range(2):
            answer = client.get("/auth/test")
            assert answer.status_code == 200 and answer.json()["orgId"] == "42"
        request = answer.request
    assert request.headers["Ocp-Apim-Subscription-Key"] == CLIENTTRACK_SUBSCRIPTION
    assert request.headers["Authorization"] == f"ApiKey {CLIENTTRACK_API_KEY}"
    with httpx.Client(base_url=clienttrack.base_url, auth=auth()) as client:
        answer = client.get("/auth/test")
    assert answer.status_code == 200 and "OrgId" not in answer.request.headers


def test_a_401_is_answered_once_and_not_repeated(clienttrack):
    for wrong in (auth(subscription="wrong-subscription-key-5150"), auth(api_key="wrong-api-key-5150")):
        with httpx.Client(base_url=clienttrack.base_url, auth=wrong) as client:
            assert client.get("/auth/test").status_code == 401
    assert clienttrack.statuses() == [401, 401]


def test_repr_shows_references_not_keys():
    text = repr(auth(org_id="42"))
    assert "env:CT_SUB" in text and "env:CT_KEY" in text and "42" in text
    assert CLIENTTRACK_SUBSCRIPTION not in text and CLIENTTRACK_API_KEY not in text
