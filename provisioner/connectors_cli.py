"""`provisioner connectors`: what each installed connector is and can do.

It needs no config. The target classes are imported here, for this command only:
the registry itself loads only each connector's settings.
"""

from __future__ import annotations

import json
import sys

import click

# the order a person reads an account's life in
_CAPABILITY_ORDER = ("create", "update", "disable", "enable", "delete")


def describe(conn, distribution: str) -> dict:
    """One connector as `--json` shows it."""
    from .target import ALL_CAPABILITIES
    cls = conn.target_class()
    capabilities = frozenset(cls.capabilities)
    mapping = conn.mapping_file()
    docs = conn.resource(conn.docs) if conn.docs else None
    return {
        "type": conn.type,
        "summary": conn.summary,
        "distribution": distribution,
        "capabilities": [c for c in _CAPABILITY_ORDER if c in capabilities]
                        + sorted(capabilities - ALL_CAPABILITIES),
        "write_only": sorted(cls.write_only),
        "rate_limits": dict(cls.rate_limits),
        "emulator": conn.sandbox is not None,
        "default_mapping": str(mapping) if mapping is not None and mapping.is_file() else None,
        "docs": str(docs) if docs is not None and docs.is_file() else None,
    }


def _text(entry: dict) -> str:
    limits = ", ".join(f"{what} {rate:g}/s" for what, rate in entry["rate_limits"].items())
    return "\n".join([
        f"{entry['type']}: {entry['summary']}",
        f"  from:            {entry['distribution']}",
        f"  can:             {', '.join(entry['capabilities']) or 'nothing'}",
        f"  write-only:      {', '.join(entry['write_only']) or 'none'}",
        f"  rate limits:     {limits or 'none declared'}",
        f"  emulator:        {'yes' if entry['emulator'] else 'no'}",
        f"  default mapping: {entry['default_mapping'] or 'none'}",
    ])


@click.command("connectors", epilog="\b\nExample:\n  provisioner connectors --json")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def connectors_command(as_json: bool) -> None:
    """List the installed connectors (target types) and what each can do."""
    from .connectors import broken, connectors, origin
    entries = [describe(conn, origin(kind)) for kind, conn in connectors().items()]
    failed = broken()
    if as_json:
        click.echo(json.dumps({"connectors": entries,
                               "broken": [{"type": k, "error": v} for k, v in failed.items()]}, indent=2))
    else:
        click.echo("\n\n".join(_text(e) for e in entries))
        for sentence in failed.values():
            click.echo(f"error: {sentence}", err=True)
    if failed:
        sys.exit(1)
