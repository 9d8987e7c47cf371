"""emit_signal: what each agent's UI must see, fanned out to its open signal streams."""

import asyncio
import collections
import logging

log = logging.getLogger("kizuna.lobby.signals")

MAX_PENDING = 10_000


class Subscription:
    """One open signal stream. `next()` returns the next signal, or None once the stream
    is closed (the lobby stops, or the UI fell too far behind to keep up)."""

    def __init__(self):
        self._queue: asyncio.Queue = asyncio.Queue()
        self.fell_behind = False

    def push(self, signal) -> None:
        if self._queue.qsize() >= MAX_PENDING:
            self.fell_behind = True
            self._queue.put_nowait(None)
        elif not self.fell_behind:
            self._queue.put_nowait(signal)

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def next(self):
        return await self._queue.get()

    def take_ready(self) -> list:
        """The signals waiting to be read now, without waiting for more."""
        ready = []
        while not self._queue.empty():
            ready.append(self._queue.get_nowait())
        return ready


class SignalHub:
    """Signals emitted while an agent has no open stream wait (up to MAX_PENDING, oldest
    dropped first) and go to the next stream that opens."""

    def __init__(self):
        self._subscribers: dict[bytes, set[Subscription]] = collections.defaultdict(set)
        self._waiting: dict[bytes, collections.deque] = {}

    def queued_by_agent(self) -> dict[bytes, int]:
        return {agent: len(waiting) for agent, waiting in self._waiting.items() if waiting}

    def queued(self) -> int:
        """Signals waiting for a UI stream, all agents together."""
        return sum(len(waiting) for waiting in self._waiting.values())

    def subscribe(self, agent: bytes) -> Subscription:
        subscription = Subscription()
        for signal in self._waiting.pop(agent, ()):
            subscription.push(signal)
        self._subscribers[agent].add(subscription)
        return subscription

    def unsubscribe(self, agent: bytes, subscription: Subscription) -> None:
        self._subscribers[agent].discard(subscription)

    def emit_signal(self, agent: bytes, signal) -> None:
        if not self._subscribers.get(agent):
            self._waiting.setdefault(agent, collections.deque(maxlen=MAX_PENDING)).append(signal)
            return
        for subscription in list(self._subscribers.get(agent, ())):
            subscription.push(signal)
            if subscription.fell_behind:
                log.warning("a signal stream fell %d signals behind; closing it", MAX_PENDING)
                self.unsubscribe(agent, subscription)

    def close(self) -> None:
        for subscriptions in self._subscribers.values():
            for subscription in subscriptions:
                subscription.close()
        self._subscribers.clear()
