"""A memory of which receivers failed recently, so a group with offline members does not
pay the retry budget on every message: a recent failure goes straight to the DHT path,
and a success clears it."""

import time


class PeerLiveness:
    def __init__(self, window_seconds: float):
        self.window = window_seconds
        self._failed_at: dict[bytes, float] = {}

    def recently_failed(self, agent: bytes) -> bool:
        failed_at = self._failed_at.get(agent)
        if failed_at is None:
            return False
        if time.monotonic() - failed_at >= self.window:
            del self._failed_at[agent]
            return False
        return True

    def failed(self, agent: bytes) -> None:
        self._failed_at[agent] = time.monotonic()

    def succeeded(self, agent: bytes) -> None:
        self._failed_at.pop(agent, None)
