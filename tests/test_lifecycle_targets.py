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
from provisioner.connectors.ytel.ams_target import YtelTarget
from provisioner.connectors.ytel.ycc_target import YccTarget
from provisioner.secrets import Secret
from conftest import SCIM_TOKEN
from test_onecloud_target import connect, person


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


@pytest.mark.parametrize("cls", [CcsTarget, ClientTrackTarget, CccTarget, YtelTarget, YccTarget])
def test_targets_without_a_delete_say_what_a_person_does(cls):
    assert DELETE not in cls.capabilities
    # the hook reads only the account: called unbound, no connection is needed
    sentence = cls.manual_delete(None, Account("a1", {"extension": "2002", "active": False}))
    assert sentence is not None and ("a1" in sentence or "2002" in sentence)
    assert "by hand" in sentence or "portal" in sentence
