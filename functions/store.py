"""What the redirect and health functions need from any link store, whichever it is.

Standard library only: both stores' hot paths import this, and neither may pay
for the other's client.
"""

from __future__ import annotations

import time

#: After a failure, requests skip the store for this long, then one tries again.
RETRY_AFTER_S = 1.0


class StoreUnavailable(Exception):
    """The region's link store could not answer (down, slow, or skipped after failing)."""


class FailureGuard:
    """Skips a store for a moment after it fails.

    While the store is down, requests go straight to the fallback instead of
    each paying a timeout; every `retry_after_s` one request tries the store
    again, so recovery needs no restart.
    """

    def __init__(self, name: str, retry_after_s: float = RETRY_AFTER_S):
        self.name = name
        self.retry_after_s = retry_after_s
        self._down_until = 0.0

    def call(self, operation, *args):
        """`operation(*args)`, unless the store failed moments ago."""
        if time.monotonic() < self._down_until:
            raise StoreUnavailable(f"{self.name} failed recently; retrying shortly")
        try:
            return operation(*args)
        except StoreUnavailable:
            self._down_until = time.monotonic() + self.retry_after_s
            raise
