"""Run scim2-server (an independent in-memory SCIM 2.0 server) as subprocesses, for the tests and `provisioner demo`.

    server = start_scim_server("token")
    try: ... server.base_url ... finally: server.stop()

scim2-server spends ~0.7 s of CPU importing its pydantic models before it
listens. To give every test a fresh server cheaply, one helper process
imports it once and forks a server per request (~0.05 s each). That helper
exits when this process does (its stdin closes), and each server dies with
the helper (Linux parent-death signal), so none outlive a run even if
pytest is killed.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from ..errors import ConfigError
from .ports import free_port

# Runs in the helper process. One request per line: "PORT TOKEN LOGFILE [TENANT]";
# the answer is the forked server's pid.
_FORKSERVER = r"""
import ctypes, os, signal, sys
from scim2_server.testserver.cli import main

libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
def die_with_parent():
    if libc is not None:
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
# stdin reaching its end (the test process exited, however it died) stops the loop
# below, and the servers die with this helper. The kernel signal is only set when
# launched from the main thread: it fires when the launching *thread* ends.
if "--die-with-parent" in sys.argv:
    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent:
        sys.exit(0)
for line in sys.stdin:
    port, token, log, *tenant = line.split()
    me = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            die_with_parent()
            if os.getppid() != me:
                os._exit(0)
            fd = os.open(log, os.O_WRONLY | os.O_APPEND)
            os.dup2(fd, 1); os.dup2(fd, 2)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            sys.argv = ["scim2-server", "--hostname", "127.0.0.1", "--port", port,
                        "--bearer-token", token] + (["--tenant", tenant[0]] if tenant else [])
            main()
        finally:
            os._exit(0)
    sys.stdout.write(f"{pid}\n")
    sys.stdout.flush()
"""

_lock = threading.Lock()
_helper: subprocess.Popen | None = None
_running: set["ScimServer"] = set()


class ScimServer:
    def __init__(self, pid: int, port: int, token: str, log_path: Path, tenant: str | None = None):
        self.pid = pid
        self.port = port
        self.token = token
        self.base_url = f"http://127.0.0.1:{port}{'/' + tenant if tenant else ''}/v2"
        self.log_path = log_path

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server and wait until it is gone; calling it again does nothing."""
        if self not in _running:
            return
        _running.discard(self)
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.005)
            if not self.alive():
                break
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> "ScimServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _forkserver() -> subprocess.Popen:
    global _helper
    if _helper is None or _helper.poll() is not None:
        flags = ["--die-with-parent"] if threading.current_thread() is threading.main_thread() else []
        _helper = subprocess.Popen(
            [sys.executable, "-c", _FORKSERVER, *flags], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, bufsize=1, start_new_session=True)
    return _helper



def _launch(token: str, tenant: str | None) -> ScimServer:
    for word in (token, tenant or "-"):
        if any(c.isspace() for c in word) or not word:
            raise ValueError("the token and the tenant must be non-empty words")
    fd, log_name = tempfile.mkstemp(prefix="scim2-server-", suffix=".log")
    os.close(fd)
    port = free_port()
    with _lock:
        helper = _forkserver()
        helper.stdin.write(f"{port} {token} {log_name} {tenant or ''}".rstrip() + "\n")
        helper.stdin.flush()
        answer = helper.stdout.readline()
    if not answer.strip().isdigit():
        raise RuntimeError(f"the scim2-server fork helper failed (exit code {helper.poll()})")
    server = ScimServer(int(answer), port, token, Path(log_name), tenant)
    _running.add(server)
    return server


def start_scim_server(token: str, *, tenant: str | None = None, timeout: float = 10.0) -> ScimServer:
    """An empty server on a free 127.0.0.1 port (under /TENANT/v2 if given), returned once it answers."""
    if importlib.util.find_spec("scim2_server") is None:
        # a production install leaves the sandbox extra out
        raise ConfigError("scim2-server is not installed: the demo runs it as its SCIM directory; "
                          "install the sandbox extra: python3 -m pip install 'provisioner[sandbox]' "
                          "(in a checkout: python3 -m pip install -e '.[sandbox]')")
    # the free port may be taken between probing and binding: try a few
    for _ in range(3):
        server = _launch(token, tenant)
        try:
            if _wait_ready(server, timeout):
                return server
        except BaseException:
            server.stop()
            raise
        log = server.log()
        server.stop()
        if "Address already in use" not in log:
            raise RuntimeError(f"scim2-server did not start:\n{log[-2000:]}")
    raise RuntimeError("scim2-server could not find a free port")


def _wait_ready(server: ScimServer, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    with httpx.Client(headers={"Authorization": f"Bearer {server.token}"}, timeout=1) as client:
        while time.monotonic() < deadline:
            if not server.alive():
                return False
            try:
                if client.get(f"{server.base_url}/ServiceProviderConfig").status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.005)
    raise RuntimeError(f"scim2-server did not answer within {timeout}s:\n{server.log()[-2000:]}")


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop()
    if _helper is not None and _helper.poll() is None:
        _helper.stdin.close()  # the helper exits at end of input
        try:
            _helper.wait(5)
        except subprocess.TimeoutExpired:
            _helper.kill()
