"""Delete on the targets that declare it, against their servers on 127.0.0.1; what the
others tell a person instead."""

from __future__ import annotations

import pytest

from provisioner.errors import NotFound, TargetError
from provisioner.model import Account
from provisioner.target import DELETE
from provisioner.connectors.ccs.target import CcsTarget
from provisioner.connectors.clienttrack.target import ClientTrackTarget
from provisioner.connectors.ccc.target import CccTarget
from provisioner.connectors.onecloud.target import OneCloudTarget
from provisioner.connectors.scim.target import ScimTarget
from provisioner.secrets import Secret
from conftest import SCIM_TOKEN
from test_onecloud_target import connect, person
from test_ytel_target import API_PASSWORD, API_USER, connect as connect_ytel, user as ytel_user
from provisioner.connectors.ytel.emulator import YtelEmulator, YtelOptions
from provisioner.connectors.ytel.ycc_emulator import YccEmulator, YccOptions
from test_ytel_ycc_target import connect as connect_ycc
from conftest import YCC_PASSWORD, YCC_USER


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


def test_ycc_deletes_by_the_internal_user_id_never_by_the_user(ycc):
    # internal ids count from 1000 in the order agents came: template 1000, "1002" 1001, "1050" 1002
    ycc.add_agent("1002", "Ada Lovelace", "ada@example.com", active="N")
    ycc.add_agent("1050", "Grace Hopper", "grace@example.com")
    assert (ycc.user_ids["1002"], ycc.user_ids["1050"]) == (1001, 1002)
    with connect_ycc(ycc) as target:
        assert DELETE in target.capabilities
        target.delete(target.get_account("1002"))
        assert target.get_account("1002") is None
        assert target.get_account("1050") is not None, "the agent whose internal id is 1002 was deleted"
        with pytest.raises(NotFound):
            target.delete(Account("1002", {}))
        with pytest.raises(TargetError, match="template_agent"):
            target.delete(target.get_account("9999"))
    assert set(ycc.agents) == {"9999", "1050"}


class _Unlisting(YccEmulator):
    """A global API that leaves every agent out: the internal id cannot be found."""

    def global_api(self, request):
        self._authorized(request)
        return self._ok({"agent": []})


def test_ycc_refuses_a_delete_whose_agent_global_api_does_not_list_and_deletes_nothing():
    ycc = _Unlisting(YccOptions(username=YCC_USER, password=YCC_PASSWORD)).start()
    try:
        ycc.add_agent("1002", "Ada Lovelace", "ada@example.com", active="N")
        with connect_ycc(ycc) as target, pytest.raises(TargetError) as refused:
            target.delete(target.get_account("1002"))
        assert not isinstance(refused.value, NotFound), "a failed lookup must not pass for gone already"
        assert "delete it in YCC by hand" in str(refused.value)
        assert "1002" in ycc.agents
        assert not [p for _, p, _ in ycc.requests if "delete-agent" in p]
    finally:
        ycc.stop()


@pytest.mark.parametrize("cls", [CcsTarget, ClientTrackTarget, CccTarget])
def test_targets_without_a_delete_say_what_a_person_does(cls):
    assert DELETE not in cls.capabilities
    # the hook reads only the account: called unbound, no connection is needed
    sentence = cls.manual_delete(None, Account("a1", {"extension": "2002", "active": False}))
    assert sentence is not None and ("a1" in sentence or "2002" in sentence)
    assert "by hand" in sentence or "portal" in sentence


@pytest.mark.parametrize("cls", [CcsTarget, ClientTrackTarget, CccTarget])
def test_a_delete_sent_to_a_target_that_cannot_delete_is_refused_in_a_sentence(cls):
    # the base class answers: called unbound, no connection is needed
    target = object.__new__(cls)
    target.name = "t1"
    with pytest.raises(TargetError, match="^t1: this target cannot delete accounts$"):
        target.delete(Account("a1", {"active": False}))
