"""The durable outbox: messages and invites that neither their receiver nor the DHT took
yet, retried in the background with backoff until one of them does.

An item is on disk (synced) before the sender is told QUEUED, so a lobby that dies
right after still finishes the work when it starts again.
"""

import asyncio
import collections
import logging

from kizuna.v1 import lobby_pb2
from services.common.hashing import blake2b_256, now_micros
from services.common.store import u64

log = logging.getLogger("kizuna.lobby.outbox")


class Outbox:
    """`deliver(item) -> DeliveryOutcome | None` tries one item once (None: still nobody
    took it); `on_outcome(item, outcome)` tells the sender's UI."""

    def __init__(self, store, interval: float = 0.25, backoff_initial: float = 0.5, backoff_max: float = 5.0):
        self._store = store
        self.interval = interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._wake = asyncio.Event()

    @staticmethod
    def key(item: lobby_pb2.OutboxItem) -> bytes:
        return u64(item.queued_at) + item.receiver + blake2b_256(item.signed.body)[:16]

    def enqueue(self, item: lobby_pb2.OutboxItem) -> None:
        item.queued_at = item.queued_at or now_micros()
        item.next_attempt = item.next_attempt or item.queued_at
        self._store.outbox.put(self.key(item), item.SerializeToString())
        self._wake.set()

    def pending(self) -> list[tuple[bytes, lobby_pb2.OutboxItem]]:
        """Every waiting item, oldest first."""
        return [(k, lobby_pb2.OutboxItem.FromString(v)) for k, v in self._store.outbox.items()]

    def __len__(self) -> int:
        return self._store.outbox.count()

    async def run(self, deliver, on_outcome) -> None:
        """Works through due items until cancelled; each receiver's items in order."""
        while True:
            self._wake.clear()  # before the round: an item queued during it wakes the next
            try:
                await self.work_once(deliver, on_outcome)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must outlive one bad round
                log.exception("outbox round failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except asyncio.TimeoutError:
                pass

    async def work_once(self, deliver, on_outcome) -> int:
        now = now_micros()
        by_receiver: dict[bytes, list] = collections.defaultdict(list)
        waiting: set[bytes] = set()
        for key, item in self.pending():
            if item.receiver in waiting:
                continue  # an older item for this receiver is backing off: keep the order
            if item.next_attempt > now:
                waiting.add(item.receiver)
                continue
            by_receiver[item.receiver].append((key, item))
        done = await asyncio.gather(*(
            self._work_receiver(items, deliver, on_outcome) for items in by_receiver.values()
        ))
        return sum(done)

    async def _work_receiver(self, items, deliver, on_outcome) -> int:
        done = 0
        for key, item in items:
            outcome = await deliver(item)
            if outcome is None:
                # Still nobody took it: back off this one and keep the receiver's order.
                item.attempts += 1
                delay = min(self.backoff_max, self.backoff_initial * 2 ** min(item.attempts, 16))
                item.next_attempt = now_micros() + int(delay * 1_000_000)
                self._store.outbox.put(key, item.SerializeToString())
                break
            self._store.outbox.delete(key)
            done += 1
            on_outcome(item, outcome)
        return done
