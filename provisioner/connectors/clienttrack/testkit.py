"""The ClientTrack connector's testkit: its emulator, which (as a real CTAPI) accepts a
second record with the same login, so the 409 case does not apply."""

from __future__ import annotations

from ...testing.testkit import Testkit, default_mapping

SUBSCRIPTION, API_KEY = "conformance-ct-subscription-2f4e", "conformance-ct-apikey-90d1"


def _start():
    from .emulator import ClientTrackEmulator, ClientTrackOptions
    return ClientTrackEmulator(ClientTrackOptions(subscription_key=SUBSCRIPTION, api_key=API_KEY)).start()


def testkit() -> Testkit:
    return Testkit(
        type="clienttrack", start=_start,
        settings=lambda url: {"base_url": url, "subscription_key": "env:CONFORMANCE_CT_SUBSCRIPTION",
                              "api_key": "env:CONFORMANCE_CT_KEY", "page_size": 2},
        env={"CONFORMANCE_CT_SUBSCRIPTION": SUBSCRIPTION, "CONFORMANCE_CT_KEY": API_KEY},
        mapping=default_mapping("clienttrack"),
        create_request=("POST", r"/cto/Users\Z"),
        page_size=2, refuses_duplicates=False)
