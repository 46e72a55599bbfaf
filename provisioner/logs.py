"""Log output on stderr: a line for a person by default, JSON lines for a collector.

Both formats pass through RedactingFilter, and the JSON line is redacted once
more as a whole, so no field can carry a secret out.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from .secrets import RedactingFilter, redact

# fields an apply item line carries (executor passes them as `extra=`)
ITEM_FIELDS = ("run_id", "plan_id", "target", "op", "identity", "account_id", "status")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for name in ITEM_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(line, ensure_ascii=False, default=str))


def setup_logging(verbose: bool, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    # httpx logs every request with its URL at INFO; keep that for --verbose only
    logging.getLogger("httpx").setLevel(logging.INFO if verbose else logging.WARNING)
    # alembic narrates every schema check; StateDB says itself when it upgrades
    logging.getLogger("alembic").setLevel(logging.WARNING)
