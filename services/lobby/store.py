"""The lobby's records: source chains, the state derived from them, and message history.

Keys: a prefix per kind, agent keys (32 bytes) first, fixed-width big-endian numbers
where order matters. A chain action and the state it changes are written in one batch.
"""

from kizuna.v1 import common_pb2, lobby_pb2
from services.common.hashing import blake2b_256
from services.common.store import Store, from_u64, u64


def group_key(group_uuid: str) -> bytes:
    """A fixed-width key for a group_uuid, so history keys sort by time within a group."""
    return blake2b_256(group_uuid.encode())[:16]


class LobbyStore:
    def __init__(self, path: str):
        self._store = Store(path)
        self.chain = self._store.table(b"chain:")  # agent + u64 seq -> Signed{Action}
        self.heads = self._store.table(b"head:")  # agent -> u64 seq + action hash
        self.groups = self._store.table(b"groups:")  # agent -> Groups (the latest entry)
        self.blocked_agents = self._store.table(b"blocked:")  # agent -> BlockedAgents
        self.invites = self._store.table(b"invite:")  # agent + group key -> Invite
        self.group_info = self._store.table(b"ginfo:")  # agent + group key -> GroupInfo
        self.hidden = self._store.table(b"hidden:")  # agent + group key -> b"" (deleted by the agent)
        self.messages = self._store.table(b"msg:")  # agent + group key + u64 time_sent + hash -> MessageRecord
        self.seen = self._store.table(b"seen:")  # agent + message hash -> history key
        self.profiles = self._store.table(b"profile:")  # agent -> username
        self.updates = self._store.table(b"gupdate:")  # agent + group key + u64 seq -> Signed{GroupUpdate}
        self.read = self._store.table(b"read:")  # agent + message hash -> b"" (a read receipt went out)
        self.nonces = self._store.table(b"nonce:")  # envelope nonce -> u64 timestamp
        self.outbox = self._store.table(b"outbox:")  # u64 queued_at + receiver + hash prefix -> OutboxItem
        self.due_receipts = self._store.table(b"rcptdue:")  # agent + message hash + kind -> DueReceipt

    def batch(self, sync: bool = True):
        return self._store.batch(sync)

    def close(self) -> None:
        self._store.close()

    # source chain

    def head(self, agent: bytes) -> tuple[int, bytes] | None:
        raw = self.heads.get(agent)
        return (from_u64(raw[:8]), raw[8:]) if raw is not None else None

    def put_action(self, batch, agent: bytes, seq: int, signed: common_pb2.Signed) -> None:
        batch.put(self.chain, agent + u64(seq), signed.SerializeToString())
        batch.put(self.heads, agent, u64(seq) + blake2b_256(signed.body))

    def actions(self, agent: bytes, from_seq: int, limit: int) -> list[common_pb2.Signed]:
        out = []
        for _, value in self.chain.items(start=agent + u64(from_seq), stop=agent + b"\xff" * 8):
            out.append(common_pb2.Signed.FromString(value))
            if len(out) >= limit:
                break
        return out

    # state derived from the chain

    def get_groups(self, agent: bytes) -> common_pb2.Groups:
        raw = self.groups.get(agent)
        return common_pb2.Groups.FromString(raw) if raw is not None else common_pb2.Groups()

    def get_blocked_agents(self, agent: bytes) -> common_pb2.BlockedAgents:
        raw = self.blocked_agents.get(agent)
        return common_pb2.BlockedAgents.FromString(raw) if raw is not None else common_pb2.BlockedAgents()

    def get_invite(self, agent: bytes, group_uuid: str) -> common_pb2.Invite | None:
        raw = self.invites.get(agent + group_key(group_uuid))
        return common_pb2.Invite.FromString(raw) if raw is not None else None

    def get_group_info(self, agent: bytes, group_uuid: str) -> lobby_pb2.GroupInfo | None:
        raw = self.group_info.get(agent + group_key(group_uuid))
        return lobby_pb2.GroupInfo.FromString(raw) if raw is not None else None

    def is_hidden(self, agent: bytes, group_uuid: str) -> bool:
        return self.hidden.get(agent + group_key(group_uuid)) is not None

    def list_group_info(self, agent: bytes) -> list[lobby_pb2.GroupInfo]:
        hidden = {k for k in self.hidden.keys(prefix=agent)}
        return [
            lobby_pb2.GroupInfo.FromString(v) for k, v in self.group_info.items(prefix=agent) if k not in hidden
        ]

    # history

    def message_key(self, agent: bytes, group_uuid: str, time_sent: int, message_hash: bytes) -> bytes:
        return agent + group_key(group_uuid) + u64(time_sent) + message_hash

    def has_seen(self, agent: bytes, message_hash: bytes) -> bool:
        return self.seen.get(agent + message_hash) is not None

    def put_message(self, batch, agent: bytes, record: lobby_pb2.MessageRecord) -> None:
        key = self.message_key(agent, record.entry.group_uuid, record.entry.time_sent, record.message_hash)
        batch.put(self.messages, key, record.SerializeToString())
        batch.put(self.seen, agent + record.message_hash, key)

    def owe_receipt(self, batch, agent: bytes, author: bytes, space: bytes, receipt: common_pb2.Receipt) -> bytes:
        """Records, in `batch`, a receipt the agent owes `author`; returns its key."""
        key = agent + receipt.message_hash + (b"r" if receipt.read_at else b"d")
        batch.put(self.due_receipts, key, lobby_pb2.DueReceipt(author=author, space=space, receipt=receipt)
                  .SerializeToString())
        return key

    def owed_receipts(self):
        """(key, agent, DueReceipt) of every receipt owed and not yet sent."""
        for key, value in self.due_receipts.items():
            yield key, key[:32], lobby_pb2.DueReceipt.FromString(value)

    def messages_range(self, agent: bytes, group_uuid: str, cursor: bytes | None, newer: bool, limit: int,
                       author: bytes = b""):
        """Up to `limit` records past the key `cursor` (exclusive; None: from the end), newer
        ones (oldest first) or older ones (newest first), only `author`'s when set; and the
        key of the last record returned."""
        prefix = agent + group_key(group_uuid)
        end = prefix + b"\xff" * 40
        if newer:
            items = self.messages.items(start=(cursor + b"\x00") if cursor is not None else prefix, stop=end)
        else:
            items = self.messages.items(start=prefix, stop=cursor if cursor is not None else end, reverse=True)
        out, last = [], None
        for key, value in items:
            record = lobby_pb2.MessageRecord.FromString(value)
            if author and record.entry.author != author:
                continue
            out.append(record)
            last = key
            if len(out) >= limit:
                break
        return out, last

    def message_key_of(self, agent: bytes, message_hash: bytes) -> bytes | None:
        return self.seen.get(agent + message_hash)

    def get_message(self, agent: bytes, message_hash: bytes) -> tuple[bytes, lobby_pb2.MessageRecord] | None:
        key = self.seen.get(agent + message_hash)
        raw = self.messages.get(key) if key is not None else None
        return (key, lobby_pb2.MessageRecord.FromString(raw)) if raw is not None else None

    def list_updates(self, agent: bytes, group_uuid: str) -> list[common_pb2.Signed]:
        return [common_pb2.Signed.FromString(v) for _, v in self.updates.items(prefix=agent + group_key(group_uuid))]

    def message_keys(self, agent: bytes, group_uuid: str) -> list[bytes]:
        return [k for k in self.messages.keys(prefix=agent + group_key(group_uuid))]

    def get_username(self, agent: bytes) -> str:
        raw = self.profiles.get(agent)
        return raw.decode() if raw is not None else ""
