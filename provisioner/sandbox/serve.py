"""`provisioner sandbox serve`: every emulator of the config's [sandbox] section,
on its port on 127.0.0.1, until Ctrl-C or SIGTERM.

A connector's emulator joins through its SandboxSpec in the registry: the
[sandbox.<type>] table is its settings, `build` makes the emulator.
"""

from __future__ import annotations

import signal
import threading

from ..connectors import connectors, load
from ..errors import ConfigError
from .server import Emulator


def _builders() -> dict[str, str]:
    """type -> "module:function" of its emulator builder, for each connector shipping one."""
    return {kind: conn.sandbox.build for kind, conn in connectors().items() if conn.sandbox}


def start_emulators(sandbox, config_name: str) -> list[tuple[str, Emulator]]:
    """Start each configured emulator on its port; ConfigError when none is configured or a port is taken."""
    started: list[tuple[str, Emulator]] = []
    try:
        for name, build in _builders().items():
            settings = getattr(sandbox, name, None)
            if settings is None:
                continue
            emulator = load(build)(settings)
            try:
                emulator.start(settings.port)
            except OSError as exc:
                raise ConfigError(f"{config_name}: sandbox.{name}.port: cannot listen on "
                                  f"127.0.0.1:{settings.port} ({exc.strerror})") from None
            started.append((name, emulator))
    except BaseException:
        for _, emulator in started:
            emulator.stop()
        raise
    if not started:
        raise ConfigError(f"{config_name}: sandbox: no emulator is configured "
                          f"(add a [sandbox.<type>] table; known: {', '.join(_builders())})")
    return started


def serve_until_stopped(started: list[tuple[str, Emulator]]) -> None:
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        for _, emulator in started:
            emulator.stop()
