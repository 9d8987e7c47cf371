"""Receipts: the seed's time_received (and the read time, once the UI showed a message)
going back to the author, owed on disk with what they are for, batched per author (one
call from this lobby carrying every agent's, or none when the author is hosted here too),
and kept on the author's copies of its messages. A batch that cannot go out stays owed
and is tried again later: receipts never take the DHT, the owing lobby retries them."""

import asyncio
import logging

from kizuna.v1 import common_pb2, lobby_pb2
from kizuna_node.common.errors import KizunaError, NotFound, PermissionDenied, parse
from kizuna_node.common.hashing import now_micros
from kizuna_node.common.keys import sign_into, verify_signed
from kizuna_node.common.retry import RetryPolicy, is_transient
from kizuna_node.common.background import Background
from kizuna_node.lobby.delivery import Delivery
from kizuna_node.lobby.groups import Groups
from kizuna_node.lobby.hosting import Hosting
from kizuna_node.lobby.naming import short
from kizuna_node.lobby.peer_calls import MAX_RECEIVERS
from kizuna_node.lobby.signals import SignalHub
from kizuna_node.lobby.store import LobbyStore

log = logging.getLogger("kizuna.lobby")

RECEIPT_BATCH_SECONDS = 0.25
# After a batch of receipts could not go out: the pause before it is tried again.
RECEIPT_RETRY = RetryPolicy(backoff_initial=5.0, backoff_max=5.0)


class Receipts:
    """`batch_seconds`: how long a receipt waits for others to the same author;
    `retry`: the pause before a batch that could not go out is tried again."""

    def __init__(self, store: LobbyStore, conductor, hosting: Hosting, groups: Groups, delivery: Delivery,
                 signals: SignalHub, background: Background, batch_seconds: float = RECEIPT_BATCH_SECONDS,
                 retry: RetryPolicy = RECEIPT_RETRY):
        self._store = store
        self._conductor = conductor
        self._hosting = hosting
        self._groups = groups
        self._delivery = delivery
        self._signals = signals
        self._background = background
        self.batch_seconds = batch_seconds
        self.retry = retry
        self._pending: dict[tuple, list] = {}

    def owe_receipt(self, batch, agent: bytes, entry, message_hash: bytes, space: bytes, read: bool = False):
        """Records in `batch` the receipt the agent owes the entry's author, with the message
        or the read mark it is for; returns what to give `queue_receipt` once the batch is
        written."""
        receipt = common_pb2.Receipt(message_hash=message_hash, group_uuid=entry.group_uuid, receiver=agent,
                                     delivered_at=entry.time_received, read_at=now_micros() if read else 0)
        return agent, entry.author, space, receipt, self._store.owe_receipt(batch, agent, entry.author, space, receipt)

    def queue_receipt(self, agent: bytes, author: bytes, space: bytes, receipt, due_key: bytes,
                      failures: int = 0) -> None:
        """Receipts for one author that come due together travel together: from every agent
        of this lobby in one call, each agent's signed once; handed over in-process when the
        author is hosted here too."""
        key = (author, space)
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = []
            self._background.spawn(self._flush(key))
        pending.append((agent, receipt, due_key, failures))

    def resume_receipts(self) -> int:
        """Queues every receipt owed from before a restart; how many."""
        owed = list(self._store.owed_receipts())
        for due_key, agent, due in owed:
            self.queue_receipt(agent, due.author, due.space, due.receipt, due_key)
        return len(owed)

    async def _flush(self, key) -> None:
        """Sends one author's batch once it had time to fill. Taken, or refused for good (a
        refusal retrying cannot fix): owed no more. Not taken yet (the author unreachable or
        too busy, the conductor not signing): still owed, on disk too, and the whole batch is
        tried again after the retry pause; nothing goes to the DHT."""
        await asyncio.sleep(self.batch_seconds)
        author, space = key
        queued = self._pending.pop(key)
        try:
            await self._hand_over(author, [(agent, receipt) for agent, receipt, _, _ in queued])
        except Exception as exc:  # noqa: BLE001 - see below
            if isinstance(exc, KizunaError) and not is_transient(exc):
                log.info("%d receipts for %s refused: %s %s", len(queued), short(author), exc.code, exc.message)
            else:
                if isinstance(exc, KizunaError):
                    log.info("%d receipts for %s could not go out yet: %s %s", len(queued), short(author), exc.code,
                             exc.message)
                else:
                    log.error("%d receipts for %s could not go out yet", len(queued), short(author), exc_info=exc)
                failures = max(f for _, _, _, f in queued) + 1
                await asyncio.sleep(self.retry.wait_before(failures))
                for agent, receipt, due_key, _ in queued:
                    self.queue_receipt(agent, author, space, receipt, due_key, failures)
                return
        self._store.settle_receipts([due_key for _, _, due_key, _ in queued])

    async def _hand_over(self, author: bytes, receipts: list[tuple[bytes, common_pb2.Receipt]]) -> None:
        """The receipts of this lobby's agents for one author, to the author's lobby: in-process
        (nothing signed, no call) when it is this one, else in one call per MAX_RECEIVERS agents,
        each agent's receipts signed by it. Raises what stopped them."""
        if self._hosting.is_hosted(author):
            await self._apply_receipts(author, [receipt for _, receipt in receipts])
            return
        by_agent: dict[bytes, list] = {}
        for agent, receipt in receipts:
            by_agent.setdefault(agent, []).append(receipt)
        agents = list(by_agent)
        for start in range(0, len(agents), MAX_RECEIVERS):
            chunk = agents[start:start + MAX_RECEIVERS]
            signed = await asyncio.gather(*(
                sign_into(self._conductor.sign, agent, common_pb2.Receipts(receipts=by_agent[agent]).SerializeToString())
                for agent in chunk))
            await self._delivery.call_with_receipts(author, list(signed), sum(len(by_agent[a]) for a in chunk))

    async def mark_read(self, agent: bytes, group_uuid: str, message_hashes) -> int:
        """Marks messages of the group read and owes their authors a read receipt each;
        how many were newly marked (the agent's own, and those marked before, are not)."""
        info = self._groups.require_group(agent, group_uuid)
        records = []
        for message_hash in message_hashes:
            record = self._store.get_message(agent, message_hash)
            if record is None or record.entry.group_uuid != group_uuid:
                raise NotFound("a message_hash names no message in this group")
            records.append(record)
        owed, marked = [], set()
        with self._store.batch() as batch:
            for record in records:
                message_hash = record.message_hash
                if (record.entry.author == agent or message_hash in marked  # named twice in one call
                        or self._store.is_read(agent, message_hash)):
                    continue
                self._store.mark_read(batch, agent, message_hash)
                owed.append(self.owe_receipt(batch, agent, record.entry, message_hash, info.dna_hash, read=True))
                marked.add(message_hash)
        for receipt in owed:
            self.queue_receipt(*receipt)
        return len(owed)

    async def receive_receipts(self, to_agent: bytes, signed, caller: bytes | None = None) -> bool:
        """Receivers' receipts for the agent's messages: kept on its copies, shown to its UI.
        `signed` is one Signed Receipts, or a list of them (several receivers' at once, each
        signed by its receiver), written in one batch. `caller`, with one: who made the call."""
        await self._hosting.require_hosted(to_agent)
        batches = [signed] if isinstance(signed, common_pb2.Signed) else list(signed)
        received = []
        for one in batches:
            batch = parse(common_pb2.Receipts, verify_signed(one, "receipts"), "receipts")
            if caller is not None and caller != one.author:
                raise PermissionDenied("receipts come from the messages' receiver itself")
            for receipt in batch.receipts:
                if receipt.receiver != one.author:
                    raise PermissionDenied("receipts come from the messages' receiver itself")
                received.append(receipt)
        return await self._apply_receipts(to_agent, received)

    async def _apply_receipts(self, to_agent: bytes, received: list[common_pb2.Receipt]) -> bool:
        """Receipts from the receivers they name (checked, or made by this lobby), kept on the
        agent's copies of its messages in one write and shown to its UI in one signal."""
        updated: dict[bytes, lobby_pb2.MessageRecord] = {}
        records: dict[bytes, lobby_pb2.MessageRecord | None] = {}
        indexes: dict[bytes, dict] = {}  # message hash -> receiver -> its receipt on the record
        addressed: dict[bytes, set] = {}  # message hash -> the receivers it was sent to
        signalled = []
        for receipt in received:
            if receipt.message_hash not in records:  # the batch may hold several receipts for one message
                records[receipt.message_hash] = self._store.get_message(to_agent, receipt.message_hash)
            record = records[receipt.message_hash]
            if record is None:
                continue  # a message this agent no longer keeps
            if receipt.message_hash not in addressed:
                addressed[receipt.message_hash] = set(record.entry.receiver)
            if record.entry.author != to_agent or receipt.receiver not in addressed[receipt.message_hash]:
                raise PermissionDenied("a receipt is for a message its sender did not send to it")
            by_receiver = indexes.get(receipt.message_hash)
            if by_receiver is None:
                by_receiver = indexes[receipt.message_hash] = {r.receiver: r for r in record.receipts}
            mine = by_receiver.get(receipt.receiver)
            if mine is None:
                mine = by_receiver[receipt.receiver] = record.receipts.add(
                    receiver=receipt.receiver, message_hash=receipt.message_hash, group_uuid=receipt.group_uuid)
            changed = False
            for name in ("delivered_at", "read_at"):
                if getattr(receipt, name) and not getattr(mine, name):
                    setattr(mine, name, getattr(receipt, name))
                    changed = True
            if changed:
                updated[receipt.message_hash] = record
                signalled.append(common_pb2.Receipt())
                signalled[-1].CopyFrom(mine)  # as it is now: a later receipt in the batch may add to it
        if updated:
            self._store.update_messages(to_agent, list(updated.values()))
        if signalled:
            self._signals.emit_signal(to_agent, lobby_pb2.Signal(receipt=lobby_pb2.ReceiptSignal(receipts=signalled)))
        return bool(updated)
