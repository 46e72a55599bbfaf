"""`provisioner sandbox serve`: every emulator of the config's [sandbox] section,
on its port on 127.0.0.1, until Ctrl-C or SIGTERM.

A connector's emulator joins through its SandboxSpec in the registry: the
[sandbox.<type>] table is its settings, `build` makes the emulator.
"""

from __future__ import annotations

import signal
import threading
from typing import Callable

from ..connectors import connectors, load
from ..errors import ConfigError
from .server import Emulator, faults_of
from .ytel import YtelEmulator, YtelOptions


def _ytel_options(settings, kind: type = YtelOptions, **extra) -> YtelOptions:
    return kind(username=settings.username, password=settings.password.reveal(),
                account_id=settings.account_id, rate_limit=settings.rate_limit,
                token_rate_limit=settings.token_rate_limit, sso=settings.sso,
                workgroups=tuple(settings.workgroups), **extra)


def _ytel(settings) -> Emulator:
    return YtelEmulator(_ytel_options(settings), faults_of(settings), state_file=settings.state_file)


def _ytel_ycc(settings) -> Emulator:
    from .ytel_ycc import YccEmulator, YccOptions
    admin = settings.admin_password.reveal() if settings.admin_password else None
    options = _ytel_options(settings, YccOptions, template_agent=settings.template_agent,
                            admin_password=admin, soft_errors=settings.soft_errors)
    return YccEmulator(options, faults_of(settings), state_file=settings.state_file)


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
