"""The durable outbox: messages and invites that neither their receiver nor the DHT took
yet, retried in the background with backoff until one of them does.

An item is on disk (synced) before the sender is told QUEUED, so a lobby that dies
right after still finishes the work when it starts again. A message is written here, as
in flight, in the same synced batch as the sender's history, before it goes out at all:
one that a lobby killed in the middle of sending shows as sent is retried when it starts
again, not lost. Once each receiver's outcome is known the item goes (or stays, queued).
"""

import asyncio
import collections
import logging

from kizuna.v1 import lobby_pb2
from kizuna_node.common.hashing import now_micros
from kizuna_node.common import metrics
from kizuna_node.common.background import round_failed
from kizuna_node.common.retry import RetryPolicy
from kizuna_node.lobby.store import outbox_key

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
        self._in_flight: set[bytes] = set()  # keys of items being sent now, not the loop's to try
        # False once a round found nothing for the loop (every item on disk in flight): the
        # next rounds read nothing until an item becomes the loop's (queued, released, or
        # left by a send), so a send in flight to a thousand receivers is not read four
        # times a second
        self._maybe_due = True

    def oldest_seconds(self) -> float:
        oldest = self._store.oldest_outbox_item()
        return max(0.0, (now_micros() - oldest.queued_at) / 1e6) if oldest is not None else 0.0

    def in_flight(self, batch, items: list[lobby_pb2.OutboxItem]) -> None:
        """Writes the items in `batch` (the one that stores what they send) as being sent now:
        after a crash they are due at once; until `track` settles them, the loop leaves them alone."""
        queued_at = now_micros()
        for item in items:
            item.queued_at = item.queued_at or queued_at
            item.next_attempt = item.next_attempt or item.queued_at
            self._in_flight.add(outbox_key(item))
        self._store.put_outbox_items(items, batch)

    async def track(self, items: list[lobby_pb2.OutboxItem], delivering) -> list[lobby_pb2.DeliveryOutcome]:
        """Awaits `delivering` (the outcome of each item written by `in_flight`, in order) and
        settles them: an item stays only if queued, and the others go in one write, not
        synced (after a crash, an item tried again that had arrived is a duplicate its
        receiver drops). When the sending stops first (cancelled, say), what is still owed
        is the loop's to try."""
        try:
            outcomes = await delivering
        except BaseException:
            self.release(items)
            raise
        done, done_keys = [], []
        tally: collections.Counter = collections.Counter()  # counted once per kind and status, not per item
        for item, outcome in zip(items, outcomes):
            key = outbox_key(item)
            self._in_flight.discard(key)
            tally[(item.kind, outcome.status)] += 1
            if outcome.status != lobby_pb2.QUEUED:
                done.append(item)
                done_keys.append(key)
        for (kind, status), count in tally.items():
            metrics.DELIVERIES.labels(kind, lobby_pb2.DeliveryStatus.Name(status)).inc(count)
        self._store.remove_outbox_items(done, sync=False, keys=done_keys)
        if len(done) < len(items):
            self._maybe_due = True
            self._wake.set()
        return outcomes

    def is_in_flight(self, item: lobby_pb2.OutboxItem) -> bool:
        return outbox_key(item) in self._in_flight

    def retry_now(self, item_hash: bytes = b"", receiver: bytes = b"") -> int:
        """Makes the queued items with that hash and receiver (empty: any) due now and wakes
        the loop; how many. Items in flight are left to the send carrying them."""
        now, retried = now_micros(), 0
        for item in self.pending(in_flight=False):
            if (item_hash and item.signed_hash != item_hash) \
                    or (receiver and item.receiver != receiver):
                continue
            item.next_attempt = now
            self._store.put_outbox_item(item)
            retried += 1
        self._maybe_due = True
        self._wake.set()
        return retried

    def release(self, items: list[lobby_pb2.OutboxItem]) -> None:
        """Items written by `in_flight` whose sending stopped before their outcomes were
        known: the loop tries them as it tries any queued item."""
        for item in items:
            self._in_flight.discard(outbox_key(item))
        self._maybe_due = True
        self._wake.set()

    def enqueue(self, item: lobby_pb2.OutboxItem) -> None:
        item.queued_at = item.queued_at or now_micros()
        item.next_attempt = item.next_attempt or item.queued_at
        self._store.put_outbox_item(item)
        self._maybe_due = True
        self._wake.set()

    def pending(self, in_flight: bool = True) -> list[lobby_pb2.OutboxItem]:
        """Every waiting item, oldest first; without those in flight unless `in_flight`."""
        return self._store.outbox_items() if in_flight else self._store.outbox_items(skip=self._in_flight)

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
            except Exception as exc:  # noqa: BLE001 - the loop must outlive one bad round
                await round_failed(log, "outbox round", exc)
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except asyncio.TimeoutError:
                pass

    async def work_once(self, deliver, on_outcome) -> int:
        if not self._maybe_due:
            return 0
        self._maybe_due = False  # before the read: an item queued during the round sets it again
        now = now_micros()
        by_receiver: dict[bytes, list] = collections.defaultdict(list)
        waiting: set[bytes] = set()
        pending = self.pending(in_flight=False)
        if pending:
            self._maybe_due = True  # what is tried now, or waits for its backoff, is read again
        for item in pending:
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
                metrics.OUTBOX_ATTEMPTS.inc()
                item.attempts += 1
                delay = self.retry.wait_before(item.attempts)
                item.next_attempt = now_micros() + int(delay * 1_000_000)
                self._store.put_outbox_item(item)
                break
            self._store.remove_outbox_item(item)
            metrics.OUTBOX_OUTCOMES.labels(item.kind, lobby_pb2.DeliveryStatus.Name(outcome.status)).inc()
            done += 1
            on_outcome(item, outcome)
        return done
