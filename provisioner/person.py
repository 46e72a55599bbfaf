"""One person across everything: what the source says, and where they stand on every target."""

from __future__ import annotations

import json
import logging
from contextlib import nullcontext

from . import flow
from .errors import ProvisionerError
from .model import with_written

log = logging.getLogger(__name__)


def person_report(settings, state, key: str, *, contact_targets: bool = True, changes: int = 10) -> dict:
    """The source record, each target's link, account state and last changes for identity `key`."""
    source = flow.read_source(settings)
    record = next((i for i in source.identities if i.key == key), None)
    if record is None:  # a key typed by a person: forgive the case
        record = next((i for i in source.identities if i.key.casefold() == key.casefold()), None)
    key = record.key if record else key
    rejected = [r.to_dict() for r in source.rejected if r.key == key]
    report = {"key": key,
              "source": {"row": record.row, "attrs": dict(record.attrs)} if record else None,
              "rejected": rejected, "targets": {}}
    with flow.open_targets(settings) if contact_targets else nullcontext({}) as handles:
        for name in settings.targets:
            link = state.link(name, key)
            entry = {"link": None, "account": None, "account_error": None, "changes": []}
            if link is not None:
                entry["link"] = {"account_id": link.account_id, "data": json.loads(link.data),
                                 "since": link.created_at, "updated_at": link.updated_at}
                if name in handles:
                    entry["account"], entry["account_error"] = _account(
                        handles[name], link.account_id, state.written(name).get(link.account_id))
            entry["changes"] = [
                {"at": a.at, "op": a.op, "outcome": a.outcome, "plan_id": a.plan_id, "run_id": a.run_id,
                 "before": json.loads(a.before), "after": json.loads(a.after)}
                for a in state.audit_rows(name, identity=key, last=changes)]
            report["targets"][name] = entry
    return report


def _account(handle, account_id: str, written: dict | None) -> tuple[dict | None, str | None]:
    try:
        account = handle.target.get_account(account_id)
    except ProvisionerError as exc:
        return None, str(exc)
    if account is None:
        return None, f"account {account_id} does not exist on the target any more"
    # what the target cannot show is what this tool last wrote to it
    account = with_written(account, handle.target.write_only, written)
    return {"id": account.id, "active": account.active, "attrs": dict(account.attrs)}, None

