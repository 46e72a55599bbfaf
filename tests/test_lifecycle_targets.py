"""Delete on the targets that declare it, against their servers on 127.0.0.1; what the
others tell a person instead."""

from __future__ import annotations

import pytest

from provisioner.errors import NotFound
from provisioner.model import Account
from provisioner.target import DELETE
from provisioner.connectors.ccs.target import CcsTarget
from provisioner.connectors.clienttrack.target import ClientTrackTarget
from provisioner.connectors.ccc.target import CccTarget
from provisioner.connectors.onecloud.target import OneCloudTarget
from provisioner.connectors.scim.target import ScimTarget
from provisioner.connectors.ytel.ycc_target import YccTarget
from provisioner.secrets import Secret
from conftest import SCIM_TOKEN
from test_onecloud_target import connect, person
from test_ytel_target import API_PASSWORD, API_USER, connect as connect_ytel, user as ytel_user
from provisioner.connectors.ytel.emulator import YtelEmulator, YtelOptions


@pytest.fixture
def ytel():
    emulator = YtelEmulator(YtelOptions(username=API_USER, password=API_PASSWORD)).start()
    yield emulator
    emulator.stop()


def test_onecloud_deletes_with_scim_delete_and_a_second_delete_is_not_found(onecloud):
    with connect(onecloud) as target:
        assert DELETE in target.capabilities
        made = target.create(person("ada"))
        target.delete(made)
        assert target.get_account(made.id) is None
        with pytest.raises(NotFound):
            target.delete(made)
    assert [p for m, p, _ in onecloud.requests if m == "DELETE"] == [f"/configapi/v2/scim/users/{made.id}"] * 2


def test_scim_deletes_and_a_second_delete_is_not_found(scim_server):
    with ScimTarget("directory", scim_server.base_url, paths=["userName"],
                    token=Secret(SCIM_TOKEN, "env:T")) as target:
        made = target.create({"userName": "ada@example.com", "active": False})
        target.delete(made)
        assert target.get_account(made.id) is None
        with pytest.raises(NotFound):
            target.delete(made)


def test_ytel_deletes_with_its_delete_call_and_a_second_delete_is_not_found(ytel):
    with connect_ytel(ytel) as target:
        assert DELETE in target.capabilities
        made = target.create(ytel_user("ada@example.com", active=False))
        target.delete(made)
        assert target.get_account(made.id) is None
        assert target.find_accounts("username", "ada@example.com") == []
        with pytest.raises(NotFound) as gone:
            target.delete(made)
    assert "404 User not found" in str(gone.value)
    assert [(p, s) for m, p, s in ytel.requests if m == "DELETE"] == [
        (f"/ams/v3/users/{made.id}", 200), (f"/ams/v3/users/{made.id}", 404)]


@pytest.mark.parametrize("cls", [CcsTarget, ClientTrackTarget, CccTarget, YccTarget])
def test_targets_without_a_delete_say_what_a_person_does(cls):
    assert DELETE not in cls.capabilities
    # the hook reads only the account: called unbound, no connection is needed
    sentence = cls.manual_delete(None, Account("a1", {"extension": "2002", "active": False}))
    assert sentence is not None and ("a1" in sentence or "2002" in sentence)
    assert "by hand" in sentence or "portal" in sentence
