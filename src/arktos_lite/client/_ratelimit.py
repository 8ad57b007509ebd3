"""A token bucket on trio's clock: at most `qps` requests a second, `burst` at once.

Guarantees: over any span of `t` seconds at most `burst + qps * t` acquisitions return.
Waiters are served in the order they arrive (each reserves the next token as it comes),
and a waiter that is cancelled gives its reservation back. Time is `trio.current_time()`,
so `trio.testing.MockClock` drives it in tests.
"""

from __future__ import annotations

import math

import trio


class TokenBucket:
    def __init__(self, *, qps: float, burst: int) -> None:
        if not qps > 0:
            raise ValueError(f"qps must be positive (math.inf for no limit), not {qps!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        self.qps = qps
        self.burst = burst
        self._tokens = float(burst)
        # Set on first use: the bucket may be made outside trio.run.
        self._updated: float | None = None

    async def acquire(self) -> None:
        """Take one token, waiting for it if the bucket is empty."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if math.isinf(self.qps):
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        now = trio.current_time()
        if self._updated is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.qps)
        self._updated = now
        self._tokens -= 1
        if self._tokens >= 0:
            # Taken: a cancellation now would lose the token, so this yield ignores it.
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        try:
            await trio.sleep(-self._tokens / self.qps)
        except trio.Cancelled:
            self._tokens += 1
            raise
