"""Delivery of one item (a message, an invite, a group update, receipts) to one receiver:
call_remote first; when the retry policy gives up, the receiver's inbox in the DHT; when
the DHT cannot take it either, the durable outbox. Recent failures skip the first step."""

import asyncio
import logging

from kizuna.v1 import lobby_pb2
from kizuna_node.common.errors import KizunaError, error_for
from kizuna_node.common.hashing import blake2b_256
from kizuna_node.common.retry import RetryPolicy, is_transient
from kizuna_node.lobby.inbox import Inbox
from kizuna_node.lobby.liveness import PeerLiveness
from kizuna_node.lobby.outbox import Outbox
from kizuna_node.lobby.peer_calls import OutgoingCalls
from kizuna_node.lobby.signals import SignalHub
from kizuna_node.lobby.naming import short

log = logging.getLogger("kizuna.lobby")

# What one more receiver adds to the work of a call for several at one lobby, in seconds:
# the tries of such a call wait that much longer (see RetryPolicy.for_batch). These are
# bounds for a busy 2-core machine running 20 nodes, not the usual cost: a message is a
# check and a copy per receiver (a few ms each there); an invite a clone cell per invitee,
# the chain commits of all of them going in one write (some 0.15 s each when every
# invitee had a commit of its own).
# A batch of receipts is a signature to check per agent and a receipt to keep per message;
# one of key shares an Olm session for the conductor to open per receiver.
BATCH_SECONDS = {"message": 0.04, "invite": 0.3, "receipt": 0.01, "group_key": 0.05}


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

    async def deliver_per_node(self, items: list[lobby_pb2.OutboxItem]) -> list[lobby_pb2.DeliveryOutcome]:
        """Items of one kind and body (an invite, say) for many receivers: one call per lobby
        hosting some of them, all at once; one outcome per item, in order."""
        by_receiver = {item.receiver: item for item in items}
        per_lobby = await asyncio.gather(*(
            self.deliver_to_node([by_receiver[r] for r in receivers])
            for receivers in await self._calls.by_lobby(list(by_receiver))))
        outcomes = {o.receiver: o for group in per_lobby for o in group}
        return [outcomes[item.receiver] for item in items]

    async def deliver_to_node(self, items: list[lobby_pb2.OutboxItem],
                              first: lobby_pb2.RemoteCall | None = None) -> list[lobby_pb2.DeliveryOutcome]:
        """A message (or invite) for several receivers one lobby hosts: one call carrying them all (`first`
        its presigned first attempt), each receiver's outcome its own; the receivers it could
        not reach go on the path `deliver` takes without the call (the DHT, else the outbox)."""
        if len(items) == 1:
            return [await self.deliver(items[0], first)]
        receivers = [item.receiver for item in items]
        outcomes: dict[bytes, lobby_pb2.DeliveryOutcome] = {}
        attempts = 0
        if not all(self.liveness.recently_failed(r) for r in receivers):
            try:
                policy = self.retry_policy.for_batch(len(items), BATCH_SECONDS.get(items[0].kind, 0.01))
                response, attempts = await self._calls.call_receive_items(items, policy, first)
            except KizunaError as exc:
                attempts = getattr(exc, "attempts", 0)
                if not is_transient(exc):
                    log.info("a %s to %d receivers at one lobby refused: %s %s", items[0].kind, len(items), exc.code,
                             exc.message)
                    return [lobby_pb2.DeliveryOutcome(receiver=r, status=lobby_pb2.FAILED,
                                                      detail=f"{exc.code}: {exc.message}", attempts=attempts)
                            for r in receivers]
                log.info("a %s to %d receivers at one lobby: unreachable (%s); storing it in the DHT",
                         items[0].kind, len(items), exc.code)
            else:
                for result in response.results:
                    if result.agent not in receivers or result.agent in outcomes:
                        continue
                    if not result.code:
                        self.liveness.succeeded(result.agent)
                        outcomes[result.agent] = lobby_pb2.DeliveryOutcome(
                            receiver=result.agent, status=lobby_pb2.DELIVERED, attempts=attempts)
                    elif not is_transient(error_for(result.code, result.message)):
                        outcomes[result.agent] = lobby_pb2.DeliveryOutcome(
                            receiver=result.agent, status=lobby_pb2.FAILED, detail=f"{result.code}: {result.message}",
                            attempts=attempts)
        rest = [item for item in items if item.receiver not in outcomes]
        for item in rest:
            self.liveness.failed(item.receiver)
        for item, outcome in zip(rest, await asyncio.gather(*(self.deliver(item) for item in rest))):
            outcome.attempts = max(outcome.attempts, attempts)
            outcomes[item.receiver] = outcome
        return [outcomes[r] for r in receivers]

    async def call_with_receipts(self, author: bytes, signed: list, receipts: int) -> None:
        """One call carrying the receipts of several agents of this lobby (each agent's
        `signed` by it) for one author, its tries as long as the `receipts` it carries need;
        raises the call's error. No fallback: receipts stay owed until a call takes them."""
        policy = self.retry_policy.for_batch(receipts, BATCH_SECONDS["receipt"])
        await self._calls.call_receive_receipts(signed[0].author, author, signed, policy)
        self.liveness.succeeded(author)

    async def deliver_here(self, items: list[lobby_pb2.OutboxItem], receive) -> list[lobby_pb2.DeliveryOutcome]:
        """Items for receivers this lobby hosts itself, handed in-process to `receive(receivers)`
        (the workflow an incoming call would reach, returning (taken, error or None) for each):
        no call is made, and each receiver's outcome is its own, as a call's results would say.
        A receiver that cannot take it just now (a transient error) goes the way `deliver` takes."""
        if not items:
            return []
        outcomes: dict[bytes, lobby_pb2.DeliveryOutcome] = {}
        rest = []
        for item, (_, error) in zip(items, await receive([item.receiver for item in items])):
            if error is None:
                outcomes[item.receiver] = lobby_pb2.DeliveryOutcome(receiver=item.receiver, status=lobby_pb2.DELIVERED)
            elif not is_transient(error):
                outcomes[item.receiver] = lobby_pb2.DeliveryOutcome(
                    receiver=item.receiver, status=lobby_pb2.FAILED, detail=f"{error.code}: {error.message}")
            else:
                rest.append(item)
        for item, outcome in zip(rest, await asyncio.gather(*(self.deliver(item) for item in rest))):
            outcomes[item.receiver] = outcome
        return [outcomes[item.receiver] for item in items]

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
        """A queued item's outcome changed: the sender's UI hears of it (not of a key share,
        which it never saw)."""
        if item.kind == "group_key":
            return
        self._signals.emit_signal(item.author, lobby_pb2.Signal(delivery=lobby_pb2.DeliverySignal(
            message_hash=blake2b_256(item.signed.body), group_uuid=item.group_uuid, outcome=outcome)))

    async def run_outbox(self) -> None:
        await self.outbox.run(self.deliver_now, self.on_outbox_outcome)
