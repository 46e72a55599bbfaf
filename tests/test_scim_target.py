"""ScimTarget against a real scim2-server subprocess (and scripted HTTP servers for misbehaviour)."""

import logging

import httpx
import pytest

from conftest import SCIM_TOKEN
from provisioner.errors import AlreadyExists, ConfigError, NotFound, TargetError
from provisioner.secrets import Secret
from provisioner.target import Target
from provisioner.connectors.scim.target import ScimTarget, filter_for, patch_operations
from scripted_server import Reply, ScriptedServer

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATHS = ["userName", "name.givenName", "name.familyName", "title", "emails[0].value",
         'emails[type eq "work"].value', f"{ENT}:department", f"{ENT}:manager.value"]


@pytest.fixture
def admin(scim_server):
    """A plain HTTP client for seeding and inspecting the server behind the target's back."""
    with httpx.Client(base_url=scim_server.base_url,
                      headers={"Authorization": f"Bearer {SCIM_TOKEN}"}) as client:
        yield client


@pytest.fixture
def target(scim_server):
    t = ScimTarget("directory", scim_server.base_url, paths=PATHS,
                   token=Secret(SCIM_TOKEN, "env:SCIM_TOKEN"))
    yield t
    t.close()


def seed(admin, user_name, **extra):
    r = admin.post("/Users", json={"schemas": [USER, ENT] if ENT in extra else [USER],
                                   "userName": user_name, **extra})
    assert r.status_code == 201, r.text
    return r.json()


ALICE = dict(name={"givenName": "Alice", "familyName": "Liddell"}, title="Engineer", active=True,
             emails=[{"type": "home", "value": "alice@home.example"},
                     {"type": "work", "value": "alice@work.example"}],
             **{ENT: {"department": "IT", "manager": {"value": "m-1"}}})


def test_is_a_target(target):
    assert isinstance(target, Target)
    assert target.capabilities == {"create", "update", "disable", "enable", "delete"}


# -- reading ---------------------------------------------------------------

def test_list_reads_every_page_once(scim_server, admin, caplog):
    ids = {seed(admin, f"user{i:03}")["id"] for i in range(250)}
    seen = []
    with httpx.Client(event_hooks={"request": [seen.append]}) as client:
        t = ScimTarget("directory", scim_server.base_url, paths=["userName"], page_size=100,
                       token=Secret(SCIM_TOKEN, "env:T"), client=client)
        with caplog.at_level(logging.INFO, logger="provisioner.connectors.scim.target"):
            accounts = t.list_accounts()
    assert len(accounts) == 250 and {a.id for a in accounts} == ids
    assert {a.attrs["userName"] for a in accounts} == {f"user{i:03}" for i in range(250)}
    assert [(r.url.params["startIndex"], r.url.params["count"]) for r in seen] == \
        [("1", "100"), ("101", "100"), ("201", "100")]
    assert "read 250 accounts" in caplog.text


def test_list_asks_for_the_page_size_the_server_announces(scim_server, admin):
    # scim2-server announces filter.maxResults = 1000: 120 accounts are one page, not two
    for i in range(120):
        seed(admin, f"user{i:03}")
    seen = []
    with httpx.Client(event_hooks={"request": [seen.append]}) as client:
        t = ScimTarget("directory", scim_server.base_url, paths=["userName"],
                       token=Secret(SCIM_TOKEN, "env:T"), client=client)
        assert len(t.list_accounts()) == 120
        assert len(t.list_accounts()) == 120  # the page size is asked for once
    assert [r.url.path.rsplit("/", 1)[-1] for r in seen] == ["ServiceProviderConfig", "Users", "Users"]
    assert [r.url.params["count"] for r in seen[1:]] == ["1000", "1000"]


@pytest.mark.parametrize("config,count", [
    (Reply(404), "100"),                                               # no ServiceProviderConfig
    (Reply(200, {"filter": {"supported": True}}), "100"),              # no maxResults
    (Reply(200, {"filter": {"supported": True, "maxResults": 200}}), "200"),
    (Reply(200, {"filter": {"supported": True, "maxResults": 50000}}), "1000"),  # capped
])
def test_list_page_size_without_a_configured_one(config, count):
    def respond(seen):
        if seen.path.endswith("ServiceProviderConfig"):
            return config
        return Reply(200, {"totalResults": 1, "Resources": _users([1])})
    with ScriptedServer(respond=respond) as srv:
        assert len(ScimTarget("d", srv.url, paths=["userName"]).list_accounts()) == 1
    assert [r.query["count"] for r in srv.requests if r.path == "/Users"] == [[count]]


def test_list_empty(target):
    assert target.list_accounts() == []


def test_accounts_are_flattened_to_the_managed_paths(target, admin):
    doc = seed(admin, "alice", **ALICE)
    account = target.get_account(doc["id"])
    assert account.id == doc["id"]
    assert dict(account.attrs) == {
        "userName": "alice", "name.givenName": "Alice", "name.familyName": "Liddell",
        "title": "Engineer", "emails[0].value": "alice@home.example",
        'emails[type eq "work"].value': "alice@work.example",
        f"{ENT}:department": "IT", f"{ENT}:manager.value": "m-1", "active": True}
    assert account.raw["emails"][1]["type"] == "work"
    assert account.active


def test_get_missing_account_is_none(target):
    assert target.get_account("no-such-id") is None
    assert target.get_account("weird/../id?x=1") is None


def test_find_accounts(target, admin):
    alice = seed(admin, "alice", **ALICE)
    seed(admin, "bob", emails=[{"type": "work", "value": "bob@work.example"}])
    quoted = seed(admin, 'o"brien\\x')
    assert [a.id for a in target.find_accounts("userName", "alice")] == [alice["id"]]
    assert [a.id for a in target.find_accounts("emails[0].value", "alice@work.example")] == [alice["id"]]
    assert [a.id for a in target.find_accounts('emails[type eq "work"].value',
                                               "alice@work.example")] == [alice["id"]]
    assert target.find_accounts('emails[type eq "home"].value', "bob@work.example") == []
    assert [a.id for a in target.find_accounts(f"{ENT}:department", "IT")] == [alice["id"]]
    assert [a.id for a in target.find_accounts("userName", 'o"brien\\x')] == [quoted["id"]]
    assert target.find_accounts("userName", "nobody") == []
    assert target.find_accounts("userName", None) == []


def test_filter_for():
    assert filter_for("userName", 'a"b\\c') == 'userName eq "a\\"b\\\\c"'
    assert filter_for("emails[0].value", "x") == 'emails.value eq "x"'
    assert filter_for('emails[type eq "work"].value', "x") == \
        'emails[type eq "work" and value eq "x"]'
    assert filter_for("active", False) == "active eq false"
    assert filter_for(f"{ENT}:manager.value", "m") == f'{ENT}:manager.value eq "m"'


# -- creating --------------------------------------------------------------

def test_create_returns_the_account(target, admin):
    account = target.create({
        "userName": "carol", "name.givenName": "Carol", "name.familyName": None,
        "emails[0].value": "carol@work.example", f"{ENT}:department": "HR", "active": False})
    assert account.attrs["userName"] == "carol" and account.attrs[f"{ENT}:department"] == "HR"
    assert account.attrs["name.familyName"] is None and account.active is False
    stored = admin.get(f"/Users/{account.id}").json()
    assert stored["emails"] == [{"value": "carol@work.example"}]
    assert ENT in stored["schemas"] and stored["active"] is False


def test_duplicate_create_raises_already_exists(target):
    target.create({"userName": "dave"})
    with pytest.raises(AlreadyExists) as info:
        target.create({"userName": "dave"})
    assert info.value.status == 409 and not info.value.retryable
    assert str(info.value).startswith("directory: create refused (409 uniqueness): ")
    assert "already in use" in str(info.value)


# -- modifying -------------------------------------------------------------

@pytest.fixture(params=["patch", "put"])
def updater(request, scim_server):
    t = ScimTarget("directory", scim_server.base_url, paths=PATHS, update_method=request.param,
                   token=Secret(SCIM_TOKEN, "env:SCIM_TOKEN"))
    yield t
    t.close()


def test_modify_simple_paths(updater, admin):
    doc = seed(admin, "alice", **ALICE)
    account = updater.get_account(doc["id"])
    updater.modify(account, {"title": "Manager", "name.givenName": "Alicia", "active": False,
                             f"{ENT}:department": "Sales", "name.familyName": None})
    stored = admin.get(f"/Users/{doc['id']}").json()
    assert stored["title"] == "Manager" and stored["active"] is False
    assert stored["name"] == {"givenName": "Alicia"}
    assert stored[ENT] == {"department": "Sales", "manager": {"value": "m-1"}}
    assert stored["emails"] == ALICE["emails"] and stored["userName"] == "alice"


def test_modify_indexed_email_keeps_the_other_emails(updater, admin):
    doc = seed(admin, "alice", **ALICE)
    updater.modify(updater.get_account(doc["id"]), {"emails[0].value": "alice@new.example"})
    stored = admin.get(f"/Users/{doc['id']}").json()
    assert stored["emails"] == [{"type": "home", "value": "alice@new.example"},
                                {"type": "work", "value": "alice@work.example"}]
    assert stored["title"] == "Engineer"


def test_modify_filtered_email_adds_and_removes_entries(updater, admin):
    doc = seed(admin, "bob", emails=[{"type": "home", "value": "bob@home.example"}])
    updater.modify(updater.get_account(doc["id"]), {'emails[type eq "work"].value': "bob@work.example"})
    stored = admin.get(f"/Users/{doc['id']}").json()
    assert stored["emails"] == [{"type": "home", "value": "bob@home.example"},
                                {"type": "work", "value": "bob@work.example"}]
    updater.modify(updater.get_account(doc["id"]), {'emails[type eq "home"].value': None})
    stored = admin.get(f"/Users/{doc['id']}").json()
    assert stored["emails"] == [{"type": "work", "value": "bob@work.example"}]


def test_enable_again(updater, admin):
    doc = seed(admin, "erin", active=False)
    updater.modify(updater.get_account(doc["id"]), {"active": True})
    assert updater.get_account(doc["id"]).active is True


def test_modify_vanished_account_is_not_found(updater, admin):
    doc = seed(admin, "gone", title="x")
    account = updater.get_account(doc["id"])
    assert admin.delete(f"/Users/{doc['id']}").status_code == 204
    with pytest.raises(NotFound) as info:
        updater.modify(account, {"title": "y"})
    assert info.value.status == 404 and "directory: update refused (404)" in str(info.value)


def test_modify_nothing_sends_nothing():
    from provisioner.model import Account
    with ScriptedServer([Reply(500)]) as srv:
        ScimTarget("d", srv.url, paths=[]).modify(Account("1", {}), {})
    assert srv.requests == []


def test_patch_operations():
    raw = {"title": "t", "emails": [{"type": "home", "value": "h"}, {"type": "work", "value": "w"}]}
    ops = patch_operations(raw, {"title": None, "name.givenName": "G", "active": False,
                                 "emails[1].value": "w2", 'emails[type eq "home"].value': None})
    assert ops == [
        {"op": "remove", "path": "title"},
        {"op": "replace", "path": "name.givenName", "value": "G"},
        {"op": "replace", "path": "active", "value": False},
        {"op": "replace", "path": "emails", "value": [{"type": "work", "value": "w2"}]},
    ]
    assert raw["emails"][0] == {"type": "home", "value": "h"}  # the account is not modified


def test_patch_does_not_remove_what_is_absent():
    raw = {"name": {"givenName": "g"}, "emails": [{"type": "home", "value": "h"}]}
    assert patch_operations(raw, {"title": None, "name.familyName": None,
                                  'emails[type eq "work"].value': None}) == []
    assert patch_operations(raw, {"emails[0].value": None}) == [{"op": "remove", "path": "emails"}]


def test_modify_with_nothing_to_do_sends_nothing():
    from provisioner.model import Account
    with ScriptedServer([Reply(500)]) as srv:
        ScimTarget("d", srv.url, paths=[]).modify(Account("1", {}, raw={"id": "1"}), {"title": None})
    assert srv.requests == []


def test_patch_accepts_200_with_body_and_204():
    for reply in (Reply(200, {"id": "1", "schemas": [USER]}), Reply(204)):
        with ScriptedServer([reply]) as srv:
            from provisioner.model import Account
            ScimTarget("d", srv.url, paths=[]).modify(Account("1", {}, raw={"id": "1"}), {"title": "x"})
        [seen] = srv.requests
        assert seen.method == "PATCH" and seen.path == "/Users/1"
        assert seen.headers["Content-Type"] == "application/scim+json"
        assert seen.json() == {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                               "Operations": [{"op": "replace", "path": "title", "value": "x"}]}


# -- check and errors --------------------------------------------------------

def test_check_describes_the_server(target, admin):
    seed(admin, "a")
    seed(admin, "b")
    assert target.check() == f"SCIM 2.0 at {target.base_url}: 2 users"


def test_wrong_token_is_refused_with_a_clear_sentence(scim_server, caplog):
    wrong = "wrong-token-value-77d2"
    t = ScimTarget("directory", scim_server.base_url, paths=[], token=Secret(wrong, "env:T"))
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(TargetError) as info:
            t.check()
        with pytest.raises(TargetError) as listing:
            t.list_accounts()
    assert str(info.value) == "directory: authentication refused (401): check the token"
    assert info.value.status == 401 and not info.value.retryable
    assert listing.value.status == 401
    for text in (str(info.value), str(listing.value), caplog.text):
        assert wrong not in text and SCIM_TOKEN not in text


def test_check_without_credentials_is_refused(scim_server):
    with pytest.raises(TargetError, match="authentication refused"):
        ScimTarget("directory", scim_server.base_url, paths=[]).check()


def test_check_notes_missing_patch_support():
    def respond(seen):
        if seen.path.endswith("ServiceProviderConfig"):
            return Reply(200, {"patch": {"supported": False}})
        return Reply(200, {"totalResults": 7, "Resources": []})
    with ScriptedServer(respond=respond) as srv:
        text = ScimTarget("d", srv.url + "/scim/", paths=[]).check()
    assert text.startswith(f"SCIM 2.0 at {srv.url}/scim: 7 users; ")
    assert "update_method to put" in text


def test_basic_auth_is_sent():
    with ScriptedServer([Reply(200, {"totalResults": 0, "Resources": []})]) as srv:
        ScimTarget("d", srv.url, paths=[], username="svc",
                   password=Secret("pw-9931-secret", "env:P")).list_accounts()
    assert srv.requests[0].headers["Authorization"].startswith("Basic ")


def test_server_error_detail_reaches_the_message():
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400",
            "scimType": "invalidFilter", "detail": "invalid syntax at column 5"}
    with ScriptedServer([Reply(400, body)]) as srv:
        with pytest.raises(TargetError) as info:
            ScimTarget("d", srv.url, paths=[]).find_accounts("userName", "x")
    assert str(info.value) == \
        "d: find accounts by userName refused (400 invalidFilter): invalid syntax at column 5"


def test_not_json_is_a_clear_error():
    with ScriptedServer([Reply(200, "<html>login</html>", {"Content-Type": "text/html"})]) as srv:
        with pytest.raises(TargetError, match="not a SCIM JSON object"):
            ScimTarget("d", srv.url, paths=[]).list_accounts()


def test_503_is_retried_through_the_target():
    with ScriptedServer([Reply(503, headers={"Retry-After": "0"}),
                         Reply(200, {"totalResults": 1, "Resources": [{"id": "1", "userName": "u"}]})]) as srv:
        accounts = ScimTarget("d", srv.url, paths=["userName"], page_size=100).list_accounts()
    assert [a.attrs["userName"] for a in accounts] == ["u"] and len(srv.requests) == 2


def test_persistent_503_is_a_retryable_error():
    with ScriptedServer([Reply(503, {"detail": "maintenance"}, {"Retry-After": "0"})]) as srv:
        with pytest.raises(TargetError) as info:
            ScimTarget("d", srv.url, paths=[]).get_account("1")
    assert info.value.retryable and info.value.status == 503
    assert str(info.value) == "d: read account failed (503): maintenance"


# -- paging guards against misbehaving servers ---------------------------------

def _users(ids):
    return [{"id": str(i), "userName": f"u{i}"} for i in ids]


def test_server_ignoring_count_is_read_once():
    with ScriptedServer([Reply(200, {"totalResults": 250, "Resources": _users(range(250))})]) as srv:
        accounts = ScimTarget("d", srv.url, paths=["userName"], page_size=100).list_accounts()
    assert len(accounts) == 250 and len(srv.requests) == 1


def test_server_ignoring_start_index_does_not_loop_forever():
    # always the first page, and a totalResults it never reaches
    with ScriptedServer([Reply(200, {"totalResults": 1000, "Resources": _users(range(10))})]) as srv:
        accounts = ScimTarget("d", srv.url, paths=["userName"], page_size=10).list_accounts()
    assert len(accounts) == 10 and len(srv.requests) == 2


def test_server_without_total_results_stops_at_an_empty_page():
    def respond(seen):
        start = int(seen.query["startIndex"][0])
        return Reply(200, {"Resources": _users(range(start, min(start + 3, 8)))})
    with ScriptedServer(respond=respond) as srv:
        accounts = ScimTarget("d", srv.url, paths=["userName"], page_size=3).list_accounts()
    assert sorted(int(a.id) for a in accounts) == list(range(1, 8))


def test_short_pages_advance_by_what_was_returned():
    # a server capping pages at 2 whatever count says
    def respond(seen):
        start = int(seen.query["startIndex"][0])
        return Reply(200, {"totalResults": 5, "Resources": _users(range(start, min(start + 2, 6)))})
    with ScriptedServer(respond=respond) as srv:
        accounts = ScimTarget("d", srv.url, paths=[], page_size=100).list_accounts()
    assert sorted(int(a.id) for a in accounts) == [1, 2, 3, 4, 5]


# -- configuration -------------------------------------------------------------

@pytest.mark.parametrize("kwargs,match", [
    (dict(update_method="post"), "update_method"),
    (dict(page_size=0), "page_size"),
    (dict(token=Secret("both-token-T", "env:T"), username="u", password=Secret("both-password-P", "env:P")), "either"),
    (dict(username="u"), "both"),
    (dict(paths=["emails[x].value"]), "invalid attribute path"),
    (dict(rate_limit=0), "rate_limit"),
])
def test_configuration_mistakes(kwargs, match):
    kwargs.setdefault("paths", [])
    with pytest.raises(ConfigError, match=match):
        ScimTarget("d", "http://127.0.0.1:1/v2", **kwargs)
