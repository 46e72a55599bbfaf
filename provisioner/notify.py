"""Telling people about a scheduled run that needs them: webhooks and e-mail.

A run that failed items, was blocked, waits for review or left items only a
person can do produces one JSON summary; every webhook gets it (its `text`
field is what Slack and Teams show, `summary_markdown` the plan's summary for
a ticket), and the optional SMTP settings send the text and that summary as a
mail, with the plan's HTML report attached. Delivery is
best effort: a failure is logged (naming the webhook by its reference, as its
URL is often a credential) and never fails the run.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage

from .errors import TargetError
from .http import make_client, safe_url
from .model import DRIFT
from .reports import plan_markdown
from .reports.common import PERSON_OPS
from .secrets import redact, redact_tree, register

log = logging.getLogger(__name__)

_HEADLINE = {
    "failed": "provisioner: {failed} item(s) FAILED in run {run_id}",
    "blocked": "provisioner: plan {plan_id} is BLOCKED by the safety policy",
    "review": "provisioner: plan {plan_id} is waiting for review",
    "manual": "provisioner: plan {plan_id} has {attention} item(s) only a person can do",
}


def summary(event: str, *, run_id: str, plan, counts: dict[str, int], failures: list[dict],
            unreadable: dict[str, str] | None = None) -> dict:
    """The JSON document a notification carries."""
    blocked = {name: s.block_reason for name, s in plan.targets.items() if s.blocked}
    doc = {"event": event, "run_id": run_id, "plan_id": plan.plan_id, "plan_status": plan.status,
           "identities": plan.identities, "counts": counts, "blocked": blocked,
           "unreadable": unreadable or {}, "failures": failures}
    attention = sum(1 for i in plan.items if i.op in PERSON_OPS)
    lines = [_HEADLINE[event].format(run_id=run_id, plan_id=plan.plan_id, failed=len(failures),
                                     attention=attention)]
    if counts:
        lines.append("counts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    lines += [f"blocked {name}: {reason}" for name, reason in blocked.items()]
    lines += [f"cannot read {name}: {why}" for name, why in (unreadable or {}).items()]
    lines += [f"failed {f['op']} {f['target']} {f['identity']}: {f['error']}" for f in failures[:20]]
    drift = [i for i in plan.items if i.op == DRIFT]
    lines += [f"drift {i.target} {i.identity}: {i.reason}" for i in drift[:20]]
    if len(drift) > 20:
        lines.append(f"… and {len(drift) - 20} more drift items")
    if len(failures) > 20:
        lines.append(f"… and {len(failures) - 20} more failures")
    if event in ("review", "blocked"):
        lines.append(f"review with: provisioner show {plan.plan_id}; apply with: provisioner apply "
                     f"{plan.plan_id}" + (" --allow-mass-change" if blocked else ""))
    elif event == "manual":
        lines.append(f"see them with: provisioner show {plan.plan_id} --format html -o plan.html")
    doc["text"] = "\n".join(lines)
    doc["summary_markdown"] = plan_markdown(plan)
    # every field, not only the text: a webhook's JSON is read by other tools too
    return redact_tree(doc)


def deliver(settings, doc: dict, *, report_html: str | None = None) -> int:
    """Send `doc` everywhere [notify] says; return how many deliveries failed (logged, not raised).

    The mail's body is the text and the Markdown summary; `report_html`, the
    plan's HTML report, goes with it as an attachment.
    """
    failed = 0
    for number, url in enumerate(settings.webhooks, 1):
        label = f"notify.webhooks[{number - 1}] ({url.reference})"
        register(safe_url(url.reveal()))  # retry log lines show the URL without its query
        try:
            with make_client(timeout=settings.timeout, retries=2, backoff=0.5) as client:
                response = client.post(url.reveal(), json=doc)
            if response.status_code >= 300:
                raise TargetError(f"answered HTTP {response.status_code}", response.status_code)
            log.info("notify: %s delivered", label)
        except (TargetError, OSError) as exc:
            failed += 1
            log.error("notify: %s not delivered: %s", label, _webhook_reason(exc))
    if settings.smtp is not None:
        try:
            body = doc["text"] + ("\n\n" + doc["summary_markdown"] if doc.get("summary_markdown") else "")
            attachments = {f"plan-{doc['plan_id']}.html": redact(report_html)} if report_html else {}
            send_mail(settings.smtp, subject=doc["text"].splitlines()[0], body=body, attachments=attachments)
            log.info("notify: mail sent to %s", ", ".join(settings.smtp.to))
        except (smtplib.SMTPException, OSError) as exc:
            failed += 1
            log.error("notify: mail via %s:%s not sent: %s", settings.smtp.host, settings.smtp.port,
                      _reason(exc))
    return failed


def send_mail(smtp, *, subject: str, body: str, attachments: dict[str, str] | None = None) -> None:
    """`attachments`: file name -> HTML text."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = smtp.sender, ", ".join(smtp.to), subject
    message.set_content(body)
    for name, html in (attachments or {}).items():
        message.add_attachment(html, subtype="html", filename=name)
    with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
        if smtp.starttls:
            client.starttls(context=ssl.create_default_context())
        if smtp.username and smtp.password:
            client.login(smtp.username, smtp.password.reveal())
        client.send_message(message)


def _webhook_reason(exc: Exception) -> str:
    # never the exception text: it quotes the URL, and part of a URL is not caught by redaction
    if isinstance(exc, TargetError) and exc.status:
        return f"HTTP {exc.status}"
    return type(exc.__cause__ or exc).__name__


def _reason(exc: Exception) -> str:
    return redact(f"{type(exc).__name__}: {exc}")
