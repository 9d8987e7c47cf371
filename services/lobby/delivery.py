"""Delivery of one item (a message, an invite, a group update, receipts) to one receiver:
call_remote first; when the retry policy gives up, the receiver's inbox in the DHT; when
the DHT cannot take it either, the durable outbox. Recent failures skip the first step."""

import logging

from kizuna.v1 import lobby_pb2
from services.common.errors import KizunaError
from services.common.hashing import blake2b_256
from services.common.retry import RetryPolicy, is_transient
from services.lobby.inbox import Inbox
from services.lobby.liveness import PeerLiveness
from services.lobby.outbox import Outbox
from services.lobby.peer_calls import OutgoingCalls
from services.lobby.signals import SignalHub
from services.lobby.naming import short

log = logging.getLogger("kizuna.lobby")


class Delivery:
    def __init__(self, calls: OutgoingCalls, inbox: Inbox, outbox: Outbox, liveness: PeerLiveness,
                 retry_policy: RetryPolicy, signals: SignalHub):
        self._calls = calls
        self._inbox = inbox
        self.outbox = outbox
        self.liveness = liveness
        self.retry_policy = retry_policy
        self._signals = signals

    async def deliver(self, item: lobby_pb2.OutboxItem,
                      first: lobby_pb2.RemoteCall | None = None) -> lobby_pb2.DeliveryOutcome:
        """The item's outcome for its receiver: DELIVERED, STORED_IN_DHT, FAILED (the
        receiver refused it), or QUEUED (on disk, synced, retried in the background)."""
        outcome = await self.deliver_now(item, first)
        if outcome is not None:
            return outcome
        self.outbox.enqueue(item)
        return lobby_pb2.DeliveryOutcome(receiver=item.receiver, status=lobby_pb2.QUEUED,
                                         detail="neither the receiver nor the DHT could take it yet; retrying",
                                         attempts=item.attempts)

    async def deliver_now(self, item: lobby_pb2.OutboxItem,
                          first: lobby_pb2.RemoteCall | None = None) -> lobby_pb2.DeliveryOutcome | None:
        """One try at delivering an item; None when nobody could take it."""
        receiver, attempts = item.receiver, 0
        if not self.liveness.recently_failed(receiver):
            try:
                _, attempts = await self._calls.call_receive_item(item, self.retry_policy, first)
            except KizunaError as exc:
                attempts = getattr(exc, "attempts", 0)
                if not is_transient(exc):
                    log.info("a %s to %s refused: %s %s", item.kind, short(receiver), exc.code, exc.message)
                    return lobby_pb2.DeliveryOutcome(receiver=receiver, status=lobby_pb2.FAILED,
                                                     detail=f"{exc.code}: {exc.message}", attempts=attempts)
                self.liveness.failed(receiver)
                log.info("a %s to %s: unreachable (%s); storing it in the DHT", item.kind, short(receiver), exc.code)
            else:
                self.liveness.succeeded(receiver)
                return lobby_pb2.DeliveryOutcome(receiver=receiver, status=lobby_pb2.DELIVERED, attempts=attempts)
        try:
            address = await self._inbox.store_in_inbox(item)
        except KizunaError as exc:
            log.info("the DHT could not take a %s for %s: %s %s", item.kind, short(receiver), exc.code, exc.message)
            return None
        return lobby_pb2.DeliveryOutcome(receiver=receiver, status=lobby_pb2.STORED_IN_DHT, address=address,
                                         attempts=attempts)

    def on_outbox_outcome(self, item: lobby_pb2.OutboxItem, outcome: lobby_pb2.DeliveryOutcome) -> None:
        """A queued item's outcome changed: the sender's UI hears of it."""
        self._signals.emit_signal(item.author, lobby_pb2.Signal(delivery=lobby_pb2.DeliverySignal(
            message_hash=blake2b_256(item.signed.body), group_uuid=item.group_uuid, outcome=outcome)))

    async def run_outbox(self) -> None:
        await self.outbox.run(self.deliver_now, self.on_outbox_outcome)
