"""The durable outbox: messages and invites that neither their receiver nor the DHT took
yet, retried in the background with backoff until one of them does.

An item is on disk (synced) before the sender is told QUEUED, so a lobby that dies
right after still finishes the work when it starts again.
"""

import asyncio
import collections
import logging

from kizuna.v1 import lobby_pb2
from services.common.hashing import now_micros
from services.common.retry import RetryPolicy

log = logging.getLogger("kizuna.lobby.outbox")

# The pause before a queued item is tried again grows from half a second to five.
OUTBOX_RETRY = RetryPolicy(backoff_initial=0.5, backoff_max=5.0)


class Outbox:
    """`deliver(item) -> DeliveryOutcome | None` tries one item once (None: still nobody
    took it); `on_outcome(item, outcome)` tells the sender's UI."""

    def __init__(self, store, interval: float = 0.25, retry: RetryPolicy = OUTBOX_RETRY):
        self._store = store
        self.interval = interval
        self.retry = retry
        self._wake = asyncio.Event()

    def enqueue(self, item: lobby_pb2.OutboxItem) -> None:
        item.queued_at = item.queued_at or now_micros()
        item.next_attempt = item.next_attempt or item.queued_at
        self._store.put_outbox_item(item)
        self._wake.set()

    def pending(self) -> list[lobby_pb2.OutboxItem]:
        """Every waiting item, oldest first."""
        return self._store.outbox_items()

    def __len__(self) -> int:
        return self._store.outbox_count()

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
        for item in self.pending():
            if item.receiver in waiting:
                continue  # an older item for this receiver is backing off: keep the order
            if item.next_attempt > now:
                waiting.add(item.receiver)
                continue
            by_receiver[item.receiver].append(item)
        done = await asyncio.gather(*(
            self._work_receiver(items, deliver, on_outcome) for items in by_receiver.values()
        ))
        return sum(done)

    async def _work_receiver(self, items, deliver, on_outcome) -> int:
        done = 0
        for item in items:
            outcome = await deliver(item)
            if outcome is None:
                # Still nobody took it: back off this one and keep the receiver's order.
                item.attempts += 1
                delay = self.retry.wait_before(item.attempts)
                item.next_attempt = now_micros() + int(delay * 1_000_000)
                self._store.put_outbox_item(item)
                break
            self._store.remove_outbox_item(item)
            done += 1
            on_outcome(item, outcome)
        return done
