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
from .ccs import CcsEmulator, CcsOptions
from .clienttrack import ClientTrackEmulator, ClientTrackOptions
from .onecloud import OneCloudEmulator, OneCloudOptions
from .server import Emulator, Faults
from .ytel import YtelEmulator, YtelOptions


def faults_of(settings) -> Faults:
    return Faults(latency=settings.latency, error_rate=settings.error_rate,
                  throttle_rate=settings.throttle_rate, retry_after=settings.retry_after,
                  token_lifetime=settings.token_lifetime)


def _onecloud(settings) -> Emulator:
    options = OneCloudOptions(client_id=settings.client_id, client_secret=settings.client_secret.reveal(),
                              tenant=settings.tenant, scim_paging=settings.scim_paging,
                              roles_as_objects=settings.roles_as_objects,
                              scim_groups=settings.scim_groups)
    return OneCloudEmulator(options, faults_of(settings), state_file=settings.state_file)


def _ccs(settings) -> Emulator:
    options = CcsOptions(token=settings.token.reveal(), tenant_uuid=settings.tenant_uuid)
    return CcsEmulator(options, faults_of(settings), state_file=settings.state_file)


def _clienttrack(settings) -> Emulator:
    options = ClientTrackOptions(subscription_key=settings.subscription_key.reveal(),
                                 api_key=settings.api_key.reveal(), environment=settings.environment,
                                 paging_quirk=settings.paging_quirk,
                                 bad_gateway_rate=settings.bad_gateway_rate)
    return ClientTrackEmulator(options, faults_of(settings), state_file=settings.state_file)


def _ccc(settings) -> Emulator:
    from .ccc import CccEmulator, CccOptions
    options = CccOptions(client_id=settings.client_id, username=settings.username,
                         secret_key=settings.secret_key.reveal(), time_zone=settings.timezone,
                         window=settings.window, actions=settings.actions.model_dump(),
                         id_field=settings.id_field, active_field=settings.active_field,
                         list_key=settings.list_key, soft_errors=settings.soft_errors)
    return CccEmulator(options, faults_of(settings), state_file=settings.state_file)


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
