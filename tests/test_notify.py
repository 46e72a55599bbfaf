"""Notifications delivered to a real local webhook endpoint and SMTP server; failures only logged."""

from __future__ import annotations

import json
import logging

import pytest
from aiosmtpd.controller import Controller

from conftest import bodies
from ports import closed_port_url, free_port
from provisioner.config import NotifySettings
from provisioner.notify import deliver, summary
from provisioner.secrets import RedactingFilter
from scripted_server import Reply, ScriptedServer
from test_state_db import make_plan


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content.decode()))
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    yield inbox
    controller.stop()


def failed_doc():
    failures = [{"target": "dir", "op": "create", "identity": "E1", "status": "failed", "error": "HTTP 500"}]
    return summary("failed", run_id="run1", plan=make_plan(), counts={"done": 3, "failed": 1},
                   failures=failures)


def test_the_summary_names_the_failures_and_blocked_targets():
    doc = failed_doc()
    assert doc["event"] == "failed" and doc["run_id"] == "run1" and doc["plan_id"] == "p1"
    assert doc["blocked"] == {"crm": "too many disables"}
    assert doc["counts"] == {"done": 3, "failed": 1}
    lines = doc["text"].splitlines()
    assert lines[0] == "provisioner: 1 item(s) FAILED in run run1"
    assert "failed create dir E1: HTTP 500" in lines and "blocked crm: too many disables" in lines
    review = summary("review", run_id="r", plan=make_plan(), counts={"create": 1}, failures=[])
    assert "provisioner apply p1 --allow-mass-change" in review["text"]


def test_no_field_of_the_summary_carries_a_secret():
    from provisioner.secrets import Secret
    secret = 'notify-secret"x\\+/=&1'
    Secret(secret, "env:N")
    failures = [{"target": "dir", "op": "create", "identity": "E1", "status": "failed",
                 "error": f"HTTP 400: you sent {secret} ({json.dumps(secret)})"}]
    doc = summary("failed", run_id="r", plan=make_plan(), counts={"failed": 1}, failures=failures,
                  unreadable={"crm": f"could not read: {secret!r}"})
    shown = json.dumps(doc, ensure_ascii=False)
    assert "you sent ***" in shown and "could not read: '***'" in shown
    assert secret not in shown and json.dumps(secret)[1:-1] not in shown and repr(secret)[1:-1] not in shown


def test_every_webhook_gets_the_json_and_a_dead_one_is_only_logged(hook, caplog, monkeypatch):
    monkeypatch.setenv("TEST_HOOK_URL", f"{hook.url}/services/T0/B0/s3cretpath")
    settings = NotifySettings.model_validate({"webhooks": [closed_port_url(), "env:TEST_HOOK_URL"],
                                              "timeout": 2})
    caplog.handler.addFilter(RedactingFilter())  # as the CLI's log handler does
    with caplog.at_level(logging.INFO):
        failed = deliver(settings, failed_doc())
    assert failed == 1
    assert bodies(hook) == [failed_doc()] and [r.path for r in hook.requests] == ["/services/T0/B0/s3cretpath"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "notify.webhooks[0]" in errors[0] and "not delivered" in errors[0]
    assert "s3cretpath" not in caplog.text


def test_a_webhook_answering_an_error_counts_as_not_delivered(caplog):
    with ScriptedServer([Reply(403)]) as refusing:
        settings = NotifySettings.model_validate({"webhooks": [refusing.url + "/x"]})
        assert deliver(settings, failed_doc()) == 1
        assert "HTTP 403" in caplog.text and len(refusing.requests) == 1


def test_mail_goes_through_smtp_with_the_text(smtp_server):
    settings = NotifySettings.model_validate({"smtp": {
        "host": "127.0.0.1", "port": smtp_server.port, "from": "provisioner@example.com",
        "to": ["ops@example.com", "it@example.com"]}})
    assert deliver(settings, failed_doc()) == 0
    [(sender, recipients, content)] = smtp_server.messages
    assert sender == "provisioner@example.com" and recipients == ["ops@example.com", "it@example.com"]
    assert "Subject: provisioner: 1 item(s) FAILED in run run1" in content
    assert "failed create dir E1: HTTP 500" in content


def test_an_unreachable_mail_server_is_logged_not_raised(caplog):
    settings = NotifySettings.model_validate({"smtp": {
        "host": "127.0.0.1", "port": free_port(), "from": "a@example.com", "to": ["b@example.com"], "timeout": 2}})
    assert deliver(settings, failed_doc()) == 1
    assert "mail via 127.0.0.1" in caplog.text


def test_drift_items_are_sent_in_the_summary_and_counted_as_needing_a_person():
    from dataclasses import replace
    from provisioner.model import Change, PlanItem
    drift = PlanItem("i9", "dir", "drift", "E9", "a9", {"title": Change("Agent", "Boss")},
                     "title was changed on dir: ours 'Agent', theirs 'Boss'; on_drift = \"alert\": left as it is")
    plan = replace(make_plan(), items=(*make_plan().items, drift))
    doc = summary("manual", run_id="r", plan=plan, counts={"drift": 1}, failures=[])
    lines = doc["text"].splitlines()
    assert lines[0] == "provisioner: plan p1 has 2 item(s) only a person can do"   # the conflict and the drift
    assert "drift dir E9: title was changed on dir: ours 'Agent', theirs 'Boss'; on_drift = \"alert\": " \
           "left as it is" in lines
    assert "Boss" in doc["summary_markdown"]
