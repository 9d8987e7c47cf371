"""The lobby's records: source chains, the state derived from them, message history, the
outbox, owed receipts, kept signals, send transactions and seen envelope nonces. The only
code that knows their keys.

Keys: a prefix per kind, agent keys (32 bytes) first, fixed-width big-endian numbers
where order matters. A change that touches several records takes a `batch()` and the
named operations below write into it, so a chain action and the state it changes are
written together.
"""

import collections
import logging

from kizuna.v1 import common_pb2, lobby_pb2
from kizuna_node.common.hashing import blake2b_256
from kizuna_node.common.store import Store, from_u64, u64

log = logging.getLogger("kizuna.lobby.store")

# A position in a group's history: (time_sent, message hash), the order history sorts in.
# A hash of b"" sorts before every message sent at that time, LAST_HASH after every one.
LAST_HASH = b"\xff" * 32


def _group_key(group_uuid: str) -> bytes:
    """A fixed-width key for a group_uuid, so history keys sort by time within a group."""
    return blake2b_256(group_uuid.encode())[:16]


def outbox_key(item: lobby_pb2.OutboxItem) -> bytes:
    if not item.signed_hash:
        item.signed_hash = blake2b_256(item.signed.body)
    return u64(item.queued_at) + item.receiver + item.signed_hash[:16]


def _position_key(position: tuple[int, bytes]) -> bytes:
    return u64(position[0]) + position[1]


def _position_of(key_tail: bytes) -> tuple[int, bytes]:
    return from_u64(key_tail[:8]), key_tail[8:]


class LobbyStore:
    def __init__(self, path: str):
        self._store = Store(path)
        self._chain = self._store.table(b"chain:")  # agent + u64 seq -> Signed{Action}
        self._heads = self._store.table(b"head:")  # agent -> u64 seq + action hash
        self._groups = self._store.table(b"groups:")  # agent -> Groups (the latest entry)
        self._blocked_agents = self._store.table(b"blocked:")  # agent -> BlockedAgents
        self._invites = self._store.table(b"invite:")  # agent + group key -> Invite
        self._group_info = self._store.table(b"ginfo:")  # agent + group key -> GroupInfo
        # agent + group key -> b"": groups the agent deleted (its invite and messages are
        # forgotten; the properties stay, so a later message can still be checked)
        self._deleted_groups = self._store.table(b"hidden:")
        self._messages = self._store.table(b"msg:")  # agent + group key + u64 time_sent + hash -> MessageRecord
        self._seen = self._store.table(b"seen:")  # agent + message hash -> history key
        self._profiles = self._store.table(b"profile:")  # agent -> username
        self._updates = self._store.table(b"gupdate:")  # agent + group key + u64 seq -> Signed{GroupUpdate}
        self._read = self._store.table(b"read:")  # agent + message hash -> b"" (a read receipt went out)
        self._nonces = self._store.table(b"nonce:")  # envelope nonce -> u64 timestamp
        # u64 queued_at + receiver + hash prefix -> OutboxItem without its `signed`, which is
        # kept once for every item carrying it: signed hash -> Signed, and its items
        # referenced by signed hash + outbox key -> b""
        self._outbox = self._store.table(b"outbox:")
        self._outbox_signed = self._store.table(b"outboxsig:")
        self._outbox_refs = self._store.table(b"outboxref:")
        self._due_receipts = self._store.table(b"rcptdue:")  # agent + message hash + kind -> DueReceipt
        # agent + session key + message hash -> Signed{MessageEntry}: a message received
        # before the key of its Megolm session, held (encrypted) until the key comes
        self._held = self._store.table(b"held:")
        self._signals = self._store.table(b"signal:")  # agent + u64 seq -> Signal, kept until acked or expired
        self._signal_seqs = self._store.table(b"sigseq:")  # agent -> u64 the last seq given to its signals
        # agent + transaction key -> SendGroupMessageResponse: a send's first answer
        self._transactions = self._store.table(b"txn:")
        self.sweep_outbox()

    def batch(self, sync: bool = True):
        return self._store.batch(sync)

    def close(self) -> None:
        self._store.close()

    # source chain

    def head(self, agent: bytes) -> tuple[int, bytes] | None:
        raw = self._heads.get(agent)
        return (from_u64(raw[:8]), raw[8:]) if raw is not None else None

    def put_action(self, batch, agent: bytes, seq: int, signed: common_pb2.Signed) -> None:
        batch.put(self._chain, agent + u64(seq), signed.SerializeToString())
        batch.put(self._heads, agent, u64(seq) + blake2b_256(signed.body))

    def actions(self, agent: bytes, from_seq: int, limit: int) -> list[common_pb2.Signed]:
        out = []
        for _, value in self._chain.items(start=agent + u64(from_seq), stop=agent + b"\xff" * 8):
            out.append(common_pb2.Signed.FromString(value))
            if len(out) >= limit:
                break
        return out

    # profiles

    def get_username(self, agent: bytes) -> str:
        raw = self._profiles.get(agent)
        return raw.decode() if raw is not None else ""

    def put_username(self, agent: bytes, username: str) -> None:
        self._profiles.put(agent, username.encode())

    # groups: the Groups entry, each group's invite, state and updates

    def get_groups(self, agent: bytes) -> common_pb2.Groups:
        raw = self._groups.get(agent)
        return common_pb2.Groups.FromString(raw) if raw is not None else common_pb2.Groups()

    def put_groups(self, batch, agent: bytes, groups: common_pb2.Groups) -> None:
        batch.put(self._groups, agent, groups.SerializeToString())

    def get_invite(self, agent: bytes, group_uuid: str) -> common_pb2.Invite | None:
        raw = self._invites.get(agent + _group_key(group_uuid))
        return common_pb2.Invite.FromString(raw) if raw is not None else None

    def put_group(self, batch, agent: bytes, invite: common_pb2.Invite, info: lobby_pb2.GroupInfo) -> None:
        """A group the agent created or was invited to: its invite, the updates it carries,
        its state; a group the agent had deleted is back."""
        gk = agent + _group_key(invite.group_uuid)
        for signed in invite.updates:
            self.put_update(batch, agent, invite.group_uuid, signed)
        batch.put(self._invites, gk, invite.SerializeToString())
        batch.put(self._group_info, gk, info.SerializeToString())
        batch.delete(self._deleted_groups, gk)

    def get_group_info(self, agent: bytes, group_uuid: str) -> lobby_pb2.GroupInfo | None:
        raw = self._group_info.get(agent + _group_key(group_uuid))
        return lobby_pb2.GroupInfo.FromString(raw) if raw is not None else None

    def put_group_info(self, batch, agent: bytes, info: lobby_pb2.GroupInfo) -> None:
        batch.put(self._group_info, agent + _group_key(info.group_uuid), info.SerializeToString())

    def list_group_info(self, agent: bytes) -> list[lobby_pb2.GroupInfo]:
        """Every group the agent has and did not delete."""
        deleted = {k for k in self._deleted_groups.keys(prefix=agent)}
        return [
            lobby_pb2.GroupInfo.FromString(v) for k, v in self._group_info.items(prefix=agent) if k not in deleted
        ]

    def is_deleted_group(self, agent: bytes, group_uuid: str) -> bool:
        return self._deleted_groups.get(agent + _group_key(group_uuid)) is not None

    def forget_group(self, batch, agent: bytes, group_uuid: str) -> None:
        """The agent deleted the group: its messages go, and it is listed no more."""
        gk = agent + _group_key(group_uuid)
        batch.put(self._deleted_groups, gk, b"")
        for key in self._messages.keys(prefix=gk):
            batch.delete(self._messages, key)

    def restore_group(self, batch, agent: bytes, group_uuid: str) -> None:
        """A deleted group is listed again (accepted again, or a message came from it)."""
        batch.delete(self._deleted_groups, agent + _group_key(group_uuid))

    def put_update(self, batch, agent: bytes, group_uuid: str, signed: common_pb2.Signed) -> None:
        seq = common_pb2.GroupUpdate.FromString(signed.body).seq
        batch.put(self._updates, agent + _group_key(group_uuid) + u64(seq), signed.SerializeToString())

    def list_updates(self, agent: bytes, group_uuid: str) -> list[common_pb2.Signed]:
        """The group's updates, in seq order."""
        return [common_pb2.Signed.FromString(v) for _, v in self._updates.items(prefix=agent + _group_key(group_uuid))]

    # blocked agents

    def get_blocked_agents(self, agent: bytes) -> common_pb2.BlockedAgents:
        raw = self._blocked_agents.get(agent)
        return common_pb2.BlockedAgents.FromString(raw) if raw is not None else common_pb2.BlockedAgents()

    def put_blocked_agents(self, batch, agent: bytes, blocked: common_pb2.BlockedAgents) -> None:
        batch.put(self._blocked_agents, agent, blocked.SerializeToString())

    # history

    def has_seen(self, agent: bytes, message_hash: bytes) -> bool:
        return self._seen.get(agent + message_hash) is not None

    @staticmethod
    def _message_key(agent: bytes, record: lobby_pb2.MessageRecord) -> bytes:
        return agent + _group_key(record.entry.group_uuid) + _position_key((record.entry.time_sent, record.message_hash))

    def put_message(self, batch, agent: bytes, record: lobby_pb2.MessageRecord) -> None:
        key = self._message_key(agent, record)
        batch.put(self._messages, key, record.SerializeToString())
        batch.put(self._seen, agent + record.message_hash, key)

    def update_messages(self, agent: bytes, records: list[lobby_pb2.MessageRecord]) -> None:
        """Writes back records the agent holds (receipts added, say), in one batch."""
        with self.batch() as batch:
            for record in records:
                batch.put(self._messages, self._message_key(agent, record), record.SerializeToString())

    def get_message(self, agent: bytes, message_hash: bytes) -> lobby_pb2.MessageRecord | None:
        key = self._seen.get(agent + message_hash) if len(message_hash) == 32 else None
        raw = self._messages.get(key) if key is not None else None
        return lobby_pb2.MessageRecord.FromString(raw) if raw is not None else None

    def message_position(self, agent: bytes, group_uuid: str, message_hash: bytes) -> tuple[int, bytes] | None:
        """Where a message of the group sits (or sat) in its history; None when the agent
        never had such a message in that group."""
        prefix = agent + _group_key(group_uuid)
        key = self._seen.get(agent + message_hash) if len(message_hash) == 32 else None
        if key is None or not key.startswith(prefix):
            return None
        return _position_of(key[len(prefix):])

    def messages_range(self, agent: bytes, group_uuid: str, cursor: tuple[int, bytes] | None, newer: bool,
                       limit: int, author: bytes = b""):
        """Up to `limit` records past the position `cursor` (exclusive; None: from the end),
        newer ones (oldest first) or older ones (newest first), only `author`'s when set;
        and the position of the last record returned (None when none)."""
        prefix = agent + _group_key(group_uuid)
        end = prefix + b"\xff" * 40
        at = prefix + _position_key(cursor) if cursor is not None else None
        if newer:
            items = self._messages.items(start=(at + b"\x00") if at is not None else prefix, stop=end)
        else:
            items = self._messages.items(start=prefix, stop=at if at is not None else end, reverse=True)
        out, last = [], None
        for key, value in items:
            record = lobby_pb2.MessageRecord.FromString(value)
            if author and record.entry.author != author:
                continue
            out.append(record)
            last = _position_of(key[len(prefix):])
            if len(out) >= limit:
                break
        return out, last

    def has_messages(self, agent: bytes, group_uuid: str) -> bool:
        """Whether the agent's history holds any message of the group."""
        return any(True for _ in self._messages.keys(prefix=agent + _group_key(group_uuid)))

    def is_read(self, agent: bytes, message_hash: bytes) -> bool:
        return self._read.get(agent + message_hash) is not None

    def mark_read(self, batch, agent: bytes, message_hash: bytes) -> None:
        batch.put(self._read, agent + message_hash, b"")

    # receipts owed to messages' authors

    def owe_receipt(self, batch, agent: bytes, author: bytes, space: bytes, receipt: common_pb2.Receipt) -> bytes:
        """Records, in `batch`, a receipt the agent owes `author`; returns its key."""
        key = agent + receipt.message_hash + (b"r" if receipt.read_at else b"d")
        batch.put(self._due_receipts, key, lobby_pb2.DueReceipt(author=author, space=space, receipt=receipt)
                  .SerializeToString())
        return key

    def owed_receipts(self):
        """(key, agent, DueReceipt) of every receipt owed and not yet sent."""
        for key, value in self._due_receipts.items():
            yield key, key[:32], lobby_pb2.DueReceipt.FromString(value)

    def settle_receipts(self, keys: list[bytes]) -> None:
        """The receipts went out: owed no more. Not synced: after a crash, a receipt sent
        twice changes nothing at its author."""
        with self.batch(sync=False) as batch:
            for key in keys:
                batch.delete(self._due_receipts, key)

    # the outbox

    def put_outbox_item(self, item: lobby_pb2.OutboxItem, batch=None) -> None:
        """Queues an item, or writes back one already queued (a new attempt time); synced,
        or in `batch`."""
        self.put_outbox_items([item], batch)

    def put_outbox_items(self, items: list[lobby_pb2.OutboxItem], batch=None) -> None:
        """put_outbox_item for each item, what they carry written once per distinct body."""
        if batch is None:
            with self.batch() as batch:
                return self.put_outbox_items(items, batch)
        written = set()
        for item in items:
            key = outbox_key(item)  # sets signed_hash
            stored = lobby_pb2.OutboxItem(**{f.name: v for f, v in item.ListFields() if f.name != "signed"})
            batch.put(self._outbox, key, stored.SerializeToString())
            batch.put(self._outbox_refs, item.signed_hash + key, b"")
            if item.signed_hash not in written:
                written.add(item.signed_hash)
                batch.put(self._outbox_signed, item.signed_hash, item.signed.SerializeToString())

    def remove_outbox_item(self, item: lobby_pb2.OutboxItem) -> None:
        self.remove_outbox_items([item])

    def remove_outbox_items(self, items: list[lobby_pb2.OutboxItem], sync: bool = True, keys=None) -> None:
        """The items gone from the outbox, and what they carried once no item refers to it;
        `keys`, when given, their outbox keys."""
        removed: dict[bytes, set] = {}  # signed hash -> the references this write deletes
        with self.batch(sync=sync) as batch:
            for i, item in enumerate(items):
                key = keys[i] if keys is not None else outbox_key(item)
                batch.delete(self._outbox, key)
                batch.delete(self._outbox_refs, item.signed_hash + key)
                removed.setdefault(item.signed_hash, set()).add(item.signed_hash + key)
            for signed_hash, refs in removed.items():  # in the same write as the items it goes with
                if all(ref in refs for ref in self._outbox_refs.keys(signed_hash)):
                    batch.delete(self._outbox_signed, signed_hash)

    def sweep_outbox(self) -> int:
        """Drops what no queued item refers to (a body left by damage, or by a lobby whose
        write of it and of its items was not one); how many. Run at start."""
        orphans = [key for key in self._outbox_signed.keys() if next(iter(self._outbox_refs.keys(key)), None) is None]
        with self.batch() as batch:
            for signed_hash in orphans:
                batch.delete(self._outbox_signed, signed_hash)
        return len(orphans)

    def outbox_items(self, skip: set | frozenset = frozenset()) -> list[lobby_pb2.OutboxItem]:
        """Every queued item, oldest first, with what it carries; those whose outbox key is in
        `skip` left out (and not read)."""
        signed: dict[bytes, bytes | None] = {}
        items = []
        for key, value in self._outbox.items():
            if key in skip:
                continue
            item = self._outbox_item(value, signed)
            if item is not None:
                items.append(item)
        return items

    def oldest_outbox_item(self) -> lobby_pb2.OutboxItem | None:
        for _, value in self._outbox.items():
            return lobby_pb2.OutboxItem.FromString(value)  # its queued_at; not what it carries
        return None

    def _outbox_item(self, value: bytes, signed: dict) -> lobby_pb2.OutboxItem | None:
        item = lobby_pb2.OutboxItem.FromString(value)
        if item.HasField("signed"):  # written whole, before items shared what they carry
            item.signed_hash = item.signed_hash or blake2b_256(item.signed.body)
            return item
        if item.signed_hash not in signed:
            signed[item.signed_hash] = self._outbox_signed.get(item.signed_hash)
        body = signed[item.signed_hash]
        if body is None:
            log.error("an outbox item for %s refers to a body the store does not hold: skipped",
                      item.receiver.hex()[:16])
            return None
        item.signed.ParseFromString(body)
        return item

    def outbox_count(self) -> int:
        return self._outbox.count()

    # kept signals, in seq order per agent

    def keep_signal(self, batch, agent: bytes, signal: lobby_pb2.Signal) -> None:
        """A message's signal is kept as a reference to the agent's history, which holds the
        only copy of its text: a replay reads it back from there."""
        if signal.WhichOneof("signal") == "message":
            kept = lobby_pb2.Signal()
            kept.CopyFrom(signal)
            kept.message.message.ClearField("entry")
            signal = kept
        batch.put(self._signals, agent + u64(signal.seq), signal.SerializeToString())
        batch.put(self._signal_seqs, agent, u64(signal.seq))

    def signal_seqs(self) -> dict[bytes, int]:
        """Each agent's last signal seq."""
        return {key: from_u64(value) for key, value in self._signal_seqs.items()}

    def kept_signal_counts(self) -> dict[bytes, int]:
        return dict(collections.Counter(key[:32] for key in self._signals.keys()))

    def kept_signals(self, agent: bytes, after: int, through: int, limit: int) -> list[lobby_pb2.Signal]:
        """Up to `limit` of the agent's kept signals with a seq in (after, through], in order;
        a message's record as its history has it now (none if no longer there)."""
        items = self._signals.items(start=agent + u64(after + 1), stop=agent + u64(through + 1))
        out = []
        for _, value in items:
            signal = lobby_pb2.Signal.FromString(value)
            if signal.WhichOneof("signal") == "message":
                record = self.get_message(agent, signal.message.message.message_hash)
                if record is not None:  # else its group was deleted, and its history with it: no entry
                    signal.message.message.CopyFrom(record)
            out.append(signal)
            if len(out) >= limit:
                break
        return out

    def drop_oldest_signal(self, batch, agent: bytes) -> bool:
        for key in self._signals.keys(prefix=agent):
            batch.delete(self._signals, key)
            return True
        return False

    def drop_signals(self, agent: bytes, through: int = 2**64 - 2, emitted_before: int | None = None,
                     start: int = 0) -> int:
        """Drops the agent's kept signals from seq `start` up to seq `through`, or the oldest of
        them that were emitted before `emitted_before`; how many. Not synced: a drop lost in a crash only
        means signals the UI saw already are replayed, and it skips them by their seq."""
        dropped = 0
        with self.batch(sync=False) as batch:
            for key, value in self._signals.items(start=agent + u64(start), stop=agent + u64(through + 1)):
                if emitted_before is not None and lobby_pb2.Signal.FromString(value).emitted_at >= emitted_before:
                    break
                batch.delete(self._signals, key)
                dropped += 1
        return dropped

    # send transactions: a send's first answer, by the id its UI chose

    @staticmethod
    def _transaction_key(agent: bytes, transaction_id: str) -> bytes:
        return agent + blake2b_256(transaction_id.encode())[:16]

    def get_transaction(self, agent: bytes, transaction_id: str) -> lobby_pb2.SendGroupMessageResponse | None:
        """The first answer, its message read back from the agent's history (which holds
        the only copy of the text)."""
        raw = self._transactions.get(self._transaction_key(agent, transaction_id))
        if raw is None:
            return None
        answer = lobby_pb2.SendGroupMessageResponse.FromString(raw)
        record = self.get_message(agent, answer.message.message_hash)
        if record is not None:
            answer.message.CopyFrom(record)
        return answer

    def put_transaction(self, agent: bytes, transaction_id: str, answer: lobby_pb2.SendGroupMessageResponse,
                        batch=None) -> None:
        """In `batch` (the message's own write), or on its own and not synced: the answer
        written after the send, whose loss in a crash leaves the one written with the message.
        Its message is kept as a reference only: no text, no files."""
        kept = lobby_pb2.SendGroupMessageResponse()
        kept.CopyFrom(answer)
        kept.message.entry.ClearField("payload")
        kept.message.entry.ClearField("attachments")
        key, value = self._transaction_key(agent, transaction_id), kept.SerializeToString()
        if batch is not None:
            batch.put(self._transactions, key, value)
        else:
            self._transactions.put(key, value, sync=False)

    def forget_transactions_before(self, horizon: int) -> int:
        """Drops the transactions of messages sent before `horizon`; how many."""
        old = [key for key, value in self._transactions.items()
               if lobby_pb2.SendGroupMessageResponse.FromString(value).message.entry.time_sent < horizon]
        with self.batch(sync=False) as batch:
            for key in old:
                batch.delete(self._transactions, key)
        return len(old)

    # envelope nonces, remembered for as long as their envelopes are fresh

    @staticmethod
    def _session_key(session_id: str) -> bytes:
        return blake2b_256(session_id.encode())[:16]

    def hold_message(self, agent: bytes, session_id: str, message_hash: bytes, signed: common_pb2.Signed) -> None:
        self._held.put(agent + self._session_key(session_id) + message_hash, signed.SerializeToString())

    def held_messages(self, agent: bytes, session_id: str) -> list[tuple[bytes, common_pb2.Signed]]:
        """(message hash, Signed message) of what the agent holds for the session's key."""
        prefix = agent + self._session_key(session_id)
        return [(key[len(prefix):], common_pb2.Signed.FromString(value))
                for key, value in self._held.items(prefix=prefix)]

    def all_held(self) -> list[tuple[bytes, common_pb2.Signed]]:
        """(agent, Signed message) of every message held for its key, on any agent."""
        return [(key[:32], common_pb2.Signed.FromString(value)) for key, value in self._held.items()]

    def release_held(self, agent: bytes, session_id: str, message_hash: bytes) -> None:
        self._held.delete(agent + self._session_key(session_id) + message_hash)

    def has_nonce(self, nonce: bytes) -> bool:
        return self._nonces.get(nonce) is not None

    def remember_nonce(self, nonce: bytes, timestamp: int) -> None:
        """Not synced: a replay of a message in the last moments before a crash of the
        machine is still dropped as a duplicate."""
        self._nonces.put(nonce, u64(timestamp), sync=False)

    def forget_nonces_before(self, horizon: int) -> int:
        old = [k for k, v in self._nonces.items() if from_u64(v) < horizon]
        for key in old:
            self._nonces.delete(key, sync=False)
        return len(old)
