"""The lobby's limits, each a flag (see `add_arguments`), and the per-sender rate limit."""

import dataclasses
import time

from kizuna_node.common.errors import ResourceExhausted
from kizuna_node.common.settings import FlagSettings


@dataclasses.dataclass(frozen=True)
class Limits(FlagSettings):
    max_payload_bytes: int = 16 * 1024
    max_members: int = 1000
    max_group_name: int = 50
    max_page_size: int = 500
    messages_per_second: float = 200.0
    message_burst: int = 500
    envelope_window_seconds: float = 120.0


MAX_TRACKED = 10_000


class RateLimiter:
    """A token bucket per key: `rate` per second, up to `burst` at once."""

    def __init__(self, rate: float, burst: int):
        self.rate = rate
        self.burst = burst
        self._buckets: dict[bytes, tuple[float, float]] = {}

    def take(self, key: bytes, what: str) -> None:
        now = time.monotonic()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            raise ResourceExhausted(f"{what}: more than {self.rate:g} messages per second; slow down")
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > MAX_TRACKED:
            self._buckets.pop(next(iter(self._buckets)))  # the longest untouched sender
