"""emit_signal: what each agent's UI must see, kept in the lobby's store, in seq order, until
the UI acks it or it expires, and fanned out to the agent's open signal streams."""

import asyncio
import collections
import logging

from kizuna.v1 import lobby_pb2
from kizuna_node.common.errors import InvalidArgument
from kizuna_node.common.hashing import now_micros
from kizuna_node.lobby.store import LobbyStore

log = logging.getLogger("kizuna.lobby.signals")

MAX_PENDING = 10_000  # live signals a stream may fall behind by before it is closed
MAX_KEPT = 10_000  # kept signals per agent: past it, the oldest goes as a new one comes
MAX_AGE_SECONDS = 7 * 24 * 3600  # a signal not acked within this is dropped
MAX_SINCE = 2**63  # a larger `since` is refused
REPLAY_PAGE = 500


class Subscription:
    """One open signal stream, whose replay ends at `replayed_to`. `next()` returns the next
    live signal, or None once the stream is closed (the lobby stops, or the UI fell too far
    behind to keep up)."""

    def __init__(self, replayed_to: int):
        self._queue: asyncio.Queue = asyncio.Queue()
        self.replayed_to = replayed_to
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


def _group_of(signal: lobby_pb2.Signal) -> str:
    """The group a signal is about, when it is one a replay may leave out."""
    kind = signal.WhichOneof("signal")
    if kind == "message":
        return signal.message.message.entry.group_uuid
    if kind == "invite":
        return signal.invite.group.group_uuid
    if kind == "delivery":
        return signal.delivery.group_uuid
    if kind == "receipt" and signal.receipt.receipts:
        return signal.receipt.receipts[0].group_uuid
    return ""  # a group_update tells of the departure itself, so it stays


class SignalHub:
    """Every signal but typing gets the agent's next seq and is kept (`keep`, in the write
    batch of the change it tells of, then `publish`; or `emit_signal`). A stream replays
    the kept signals after the UI's `since`, then follows the live ones."""

    def __init__(self, store: LobbyStore, max_kept: int = MAX_KEPT, max_age_seconds: float = MAX_AGE_SECONDS):
        self._store = store
        self._max_kept = max_kept
        self._max_age_micros = int(max_age_seconds * 1_000_000)
        self._subscribers: dict[bytes, set[Subscription]] = collections.defaultdict(set)
        self._last_seq = store.signal_seqs()
        self._kept = collections.Counter(store.kept_signal_counts())
        # agent -> the seq its UI acked through, plus one: an ack reads the store from there,
        # not through the ones dropped before
        self._acked_below: dict[bytes, int] = {}

    def last_seq(self, agent: bytes) -> int:
        return self._last_seq.get(agent, 0)

    def queued_by_agent(self) -> dict[bytes, int]:
        """The signals kept for each agent."""
        return {agent: count for agent, count in self._kept.items() if count > 0}

    def queued(self) -> int:
        """Signals kept, all agents together."""
        return sum(self.queued_by_agent().values())

    def keep(self, batch, agent: bytes, signal: lobby_pb2.Signal) -> lobby_pb2.Signal:
        """Gives `signal` the agent's next seq and keeps it, in `batch`; `publish` it once
        the batch is written, with no await between, so streams see seqs in order."""
        signal.seq = self._last_seq[agent] = self.last_seq(agent) + 1
        signal.emitted_at = now_micros()
        if self._kept[agent] >= self._max_kept and self._store.drop_oldest_signal(batch, agent):
            self._kept[agent] -= 1
        self._store.keep_signal(batch, agent, signal)
        self._kept[agent] += 1
        return signal

    def publish(self, agent: bytes, signal: lobby_pb2.Signal) -> None:
        for subscription in list(self._subscribers.get(agent, ())):
            subscription.push(signal)
            if subscription.fell_behind:
                log.warning("a signal stream fell %d signals behind; closing it", MAX_PENDING)
                self.unsubscribe(agent, subscription)

    def emit_signal(self, agent: bytes, signal: lobby_pb2.Signal) -> None:
        """Keeps and publishes a signal whose news the store already holds for good (an
        invite, a group's update, receipts on a message, a delivery outcome, which its
        receipt confirms). Its own write is not synced: a crash of the machine that loses it
        loses nothing the UI cannot read again (GetGroups, GetMessages). Typing is
        published only (seq 0): stale at once, it is never kept."""
        if signal.WhichOneof("signal") != "typing":
            with self._store.batch(sync=False) as batch:
                self.keep(batch, agent, signal)
        self.publish(agent, signal)

    def subscribe(self, agent: bytes, since: int = 0) -> Subscription:
        """A new stream's subscription to live signals: every signal after its `replayed_to`
        reaches it. A `since` past the agent's last seq
        (a UI that saw signals a crash of the machine lost) moves the seq on past it."""
        if since > MAX_SINCE:
            raise InvalidArgument(f"since is at most {MAX_SINCE}")
        if since > self.last_seq(agent):
            self._last_seq[agent] = since
        subscription = Subscription(self.last_seq(agent))
        self._subscribers[agent].add(subscription)
        return subscription

    def unsubscribe(self, agent: bytes, subscription: Subscription) -> None:
        self._subscribers[agent].discard(subscription)

    def replay(self, agent: bytes, since: int, through: int):
        """The agent's kept signals with a seq in (since, through], in order, leaving out
        those expired and those of groups it has since left, deleted or blocked."""
        horizon = now_micros() - self._max_age_micros
        while page := self._store.kept_signals(agent, since, through, REPLAY_PAGE):
            for signal in page:
                gone = signal.WhichOneof("signal") == "message" and not signal.message.message.HasField("entry")
                if not gone and signal.emitted_at >= horizon and self._is_current(agent, _group_of(signal)):
                    yield signal
            since = page[-1].seq

    def _is_current(self, agent: bytes, group_uuid: str) -> bool:
        if not group_uuid:
            return True
        info = self._store.get_group_info(agent, group_uuid)
        return (info is not None and not info.departed and info.state != lobby_pb2.BLOCKED
                and not self._store.is_deleted_group(agent, group_uuid))

    def ack(self, agent: bytes, seq: int) -> int:
        """The UI saw the agent's signals up to `seq`: they are kept no longer. How many
        are still kept."""
        if seq > self.last_seq(agent):
            raise InvalidArgument(f"seq {seq} is past this agent's last signal ({self.last_seq(agent)})")
        start = self._acked_below.get(agent, 0)
        if seq >= start:
            if self._kept[agent] > 0:
                self._kept[agent] -= self._store.drop_signals(agent, through=seq, start=start)
            self._acked_below[agent] = seq + 1
        return self._kept[agent]

    def expire(self) -> int:
        """Drops the signals older than their bound; how many."""
        horizon = now_micros() - self._max_age_micros
        dropped = 0
        for agent in [agent for agent, count in self._kept.items() if count > 0]:
            gone = self._store.drop_signals(agent, emitted_before=horizon)
            self._kept[agent] -= gone
            dropped += gone
        return dropped

    def close(self) -> None:
        for subscriptions in self._subscribers.values():
            for subscription in subscriptions:
                subscription.close()
        self._subscribers.clear()
