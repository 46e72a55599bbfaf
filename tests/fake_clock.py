"""A clock a test moves by hand, for code that takes `clock=` (and `sleep=`): token
expiry, renewal points and pacing then happen when the test says, whatever the load."""

from __future__ import annotations


class FakeClock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    advance = sleep
