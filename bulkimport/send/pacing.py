"""Pacing: at most N people subscribed per minute, across every batch in flight.

A token bucket: it holds at most one batch's worth of people and refills at
N a minute, so over any stretch of time the people sent stay within one batch
of N a minute. The clock is injected (tests measure the rate without waiting).
"""

from __future__ import annotations

from collections.abc import Callable


class TokenBucket:
    """People that may be sent now; taken before a batch leaves, refilled with time."""

    def __init__(self, per_minute: int, capacity: int, clock: Callable[[], float]) -> None:
        if per_minute < 1 or capacity < 1:
            raise ValueError("a pace needs at least one person a minute and a batch of one")
        self.per_second = per_minute / 60.0
        self.capacity = float(capacity)
        self._clock = clock
        self._tokens = float(capacity)
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.per_second)
        self._at = now

    def wait_for(self, people: int) -> float:
        """Return the seconds until ``people`` may be sent (0: now)."""
        self._refill()
        missing = min(float(people), self.capacity) - self._tokens
        return max(0.0, missing / self.per_second)

    def take(self, people: int) -> None:
        """Spend ``people`` tokens (call once :meth:`wait_for` says 0)."""
        self._refill()
        self._tokens -= min(float(people), self.capacity)

    def seconds_for(self, people: int) -> float:
        """Return how long ``people`` more take at this pace (for a time-left estimate)."""
        return max(0.0, people - self._tokens) / self.per_second
