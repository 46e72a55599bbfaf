"""Stopping an apply cleanly on Ctrl-C or SIGTERM, the same way for both.

The first signal sets a flag the executor asks between items: the items in
flight finish and are recorded, the rest stay pending, and the plan can be
applied again to resume. A second signal exits at once; that is still safe to
resume, because every item is marked in flight before its target is asked.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

log = logging.getLogger(__name__)

EXIT_INTERRUPTED = 130   # the shell's code for a process ended by Ctrl-C
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopFlag:
    """Set by the first SIGTERM/SIGINT; a callable the executor asks between items."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.on_set: list[Callable[[], None]] = []

    def __call__(self) -> bool:
        return self.event.is_set()

    def handler(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.event.is_set():
            # no logging here: the first handler may have been interrupted inside a log call
            os.write(2, f"{name} again: exiting now; the next apply of the plan checks the items "
                        "that were in flight\n".encode())
            os._exit(EXIT_INTERRUPTED)
        # set before the message: a second signal may run its handler in the middle of this one's
        # log call (the test sends it on reading the message), and must find the flag already set
        self.event.set()
        log.warning("%s received: finishing the items in progress, then stopping "
                    "(press Ctrl-C again to exit at once)", name)
        for callback in self.on_set:
            callback()

    def install(self) -> None:
        for sig in SIGNALS:
            signal.signal(sig, self.handler)

    @contextmanager
    def installed(self) -> Iterator[StopFlag]:
        """Handle the signals within the block only; outside it Ctrl-C interrupts as usual."""
        previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
        self.install()
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
