"""When a failed request is sent again, and after how long.

Guarantees:
* A request whose method is idempotent for the API (GET, PUT, DELETE, PATCH) is retried
  on any network failure and on 429, 500, 502, 503 and 504.
* A POST is retried only when the server surely did not act on it: it could not be
  connected to, or it answered 429 Too Many Requests, or 503 with `Retry-After`.
* The wait before retry `n` is drawn from [d/2, d] with d = min(cap, base * 2**(n-1)),
  so that clients that failed together do not come back together; a server's
  `Retry-After` (in seconds) replaces it.
"""

from __future__ import annotations

import dataclasses
import math
import random

import httpx

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})

# Failures of the connection itself; anything else from httpx is a bug, not the network.
NETWORK_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.NetworkError,
    httpx.TimeoutException,
    httpx.RemoteProtocolError,
)
# Failures that leave no doubt that the request never reached the server.
_NOT_SENT: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)


def may_retry_failure(method: str, error: httpx.TransportError) -> bool:
    """Whether a request that failed with `error` on the network may be sent again."""
    if method.upper() in IDEMPOTENT_METHODS:
        return isinstance(error, NETWORK_ERRORS)
    return isinstance(error, _NOT_SENT)


def may_retry_status(method: str, status: int, *, retry_after: float | None) -> bool:
    """Whether a request answered with `status` may be sent again."""
    if status not in RETRYABLE_STATUS:
        return False
    if method.upper() in IDEMPOTENT_METHODS:
        return True
    return status == 429 or (status == 503 and retry_after is not None)


def retry_after(headers: httpx.Headers) -> float | None:
    """The seconds a `Retry-After` header asks for; None if absent or not in seconds."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        # The HTTP-date form would need the wall clock; the backoff applies instead.
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    base: float
    cap: float

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0:
            raise ValueError("backoff times cannot be negative")

    def ceiling(self, failures: int) -> float:
        """The longest wait after the `failures`-th failure in a row (1 for the first)."""
        return min(self.cap, self.base * 2.0 ** min(max(failures - 1, 0), 64))

    def delay(self, failures: int, rng: random.Random) -> float:
        ceiling = self.ceiling(failures)
        return rng.uniform(ceiling / 2, ceiling)
