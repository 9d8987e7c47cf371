"""The DHT node's records: ops and their indexes, spaces, peers, and the node's own id."""

from kizuna.v1 import common_pb2, group_dht_pb2
from kizuna_node.common.hashing import HASH_LEN, blake2b_256
from kizuna_node.common.group_state import ENTRY_TYPE as GROUP_UPDATE_TYPE
from kizuna_node.common.store import Store

NODE_ID = b"node_id"
NODE_KEY = b"node_key"
BASIS_INDEX = b"basis_index"  # set once the basis index covers every op held
EVERY_NODE = b"*"  # basis index flag: an op every node of its space holds (a group update)
MAX_ADDED = 4096  # ops remembered per space as stored since the store opened


class DhtStore:
    """Keys are designed so one space's records share a prefix (the 32-byte space hash),
    and one base's links share `space + base`; storing an op and its index is one batch."""

    def __init__(self, path: str):
        self._store = Store(path)
        self._ops = self._store.table(b"op:")  # space + op hash -> Signed{body = Op}
        self._entries = self._store.table(b"entry:")  # space + entry address -> op hash
        self._links = self._store.table(b"link:")  # space + base + link address -> op hash
        self._deleted = self._store.table(b"deleted:")  # space + base + link address -> DELETE_LINK op hash
        self._spaces = self._store.table(b"space:")  # space -> Space
        self._peers = self._store.table(b"peer:")  # node id -> NodeInfo
        self._meta = self._store.table(b"meta:")  # name -> value
        # space + basis address + op hash -> EVERY_NODE or b"": what anti-entropy summarizes
        self._basis = self._store.table(b"basis:")
        # space -> (address, op hash, every node) of the ops stored since this store opened, the
        # latest MAX_ADDED: what anti-entropy adds to the summaries it keeps
        self._added: dict[bytes, list[tuple[bytes, bytes, bool]]] = {}
        self._trimmed: dict[bytes, int] = {}  # space -> how many were dropped off the front
        self._epochs: dict[bytes, int] = {}  # space -> times it was dropped
        if self._meta.get(BASIS_INDEX) is None:
            self._index_basis()

    def _index_basis(self) -> None:
        """Builds the basis index of a store written before it existed."""
        with self._store.batch() as b:
            for key, raw in self._ops.items():
                space, hash_ = key[:HASH_LEN], key[HASH_LEN:]
                op = group_dht_pb2.Op.FromString(common_pb2.Signed.FromString(raw).body)
                address, flag = _basis_of(op)
                b.put(self._basis, space + address + hash_, flag)
            b.put(self._meta, BASIS_INDEX, b"1")

    # ops

    def has_op(self, space: bytes, op_hash: bytes) -> bool:
        return self._ops.get(space + op_hash) is not None

    def put_op(self, op_hash: bytes, signed: common_pb2.Signed, op: group_dht_pb2.Op,
               space_record: group_dht_pb2.Space | None = None) -> bool:
        """Stores a validated op with its index (and, given `space_record`, the space's record
        the op changed, in the same batch); False (and no change) if it was already held."""
        space = op.space
        if self.has_op(space, op_hash):
            return False
        with self._store.batch() as b:
            b.put(self._ops, space + op_hash, signed.SerializeToString())
            address, flag = _basis_of(op)
            b.put(self._basis, space + address + op_hash, flag)
            if space_record is not None:
                b.put(self._spaces, space_record.space, space_record.SerializeToString())
            if op.kind == group_dht_pb2.STORE_ENTRY:
                address = blake2b_256(op.entry)
                if self._entries.get(space + address) is None:
                    b.put(self._entries, space + address, op_hash)
            elif op.kind == group_dht_pb2.CREATE_LINK:
                b.put(self._links, space + op.base + op_hash, op_hash)
            elif op.kind == group_dht_pb2.DELETE_LINK:
                b.put(self._deleted, space + op.base + op.link_address, op_hash)
        basis, flag = _basis_of(op)
        added = self._added.setdefault(space, [])
        added.append((basis, op_hash, flag == EVERY_NODE))
        overflow = len(added) - MAX_ADDED
        if overflow > 0:
            del added[:overflow]
            self._trimmed[space] = self._trimmed.get(space, 0) + overflow
        return True

    def generation(self, space: bytes) -> tuple[int, int]:
        """(epoch, position): the position grows with every op stored in the space, the epoch
        with every drop of it (while this store is open)."""
        return self._epochs.get(space, 0), self._trimmed.get(space, 0) + len(self._added.get(space, ()))

    def added_since(self, space: bytes, position: int) -> list[tuple[bytes, bytes, bool]] | None:
        """(basis address, op hash, every node) of the ops stored in the space since
        `position` (of `generation`), oldest first; None when they are no longer all known."""
        start = position - self._trimmed.get(space, 0)
        if start < 0:
            return None
        return self._added.get(space, [])[start:]

    def get_signed(self, space: bytes, op_hash: bytes) -> common_pb2.Signed | None:
        raw = self._ops.get(space + op_hash)
        return common_pb2.Signed.FromString(raw) if raw is not None else None

    def find_op(self, space: bytes, op_hash: bytes) -> group_dht_pb2.Op | None:
        signed = self.get_signed(space, op_hash)
        return group_dht_pb2.Op.FromString(signed.body) if signed is not None else None

    def entry_op(self, space: bytes, address: bytes) -> common_pb2.Signed | None:
        op_hash = self._entries.get(space + address)
        return self.get_signed(space, op_hash) if op_hash is not None else None

    def link_creates(self, space: bytes, base: bytes) -> list[tuple[bytes, common_pb2.Signed]]:
        """(link address, CREATE_LINK op) for every link this node holds under the base."""
        prefix = space + base
        out = []
        for key, op_hash in self._links.items(prefix=prefix):
            signed = self.get_signed(space, op_hash)
            if signed is not None:
                out.append((key[len(prefix):], signed))
        return out

    def deleted_links(self, space: bytes, base: bytes) -> set[bytes]:
        prefix = space + base
        return {key[len(prefix):] for key in self._deleted.keys(prefix=prefix)}

    def held(self, space: bytes):
        """(basis address, op hash, held by every node of the space) of every op held in the
        space, in address order; read from the index alone."""
        for key, flag in self._basis.items(prefix=space):
            yield key[HASH_LEN:2 * HASH_LEN], key[2 * HASH_LEN:], flag == EVERY_NODE

    def op_count(self, space: bytes) -> int:
        return self._ops.count(prefix=space)

    # spaces

    def get_space(self, space: bytes) -> group_dht_pb2.Space | None:
        raw = self._spaces.get(space)
        return group_dht_pb2.Space.FromString(raw) if raw is not None else None

    def put_space(self, record: group_dht_pb2.Space) -> None:
        self._spaces.put(record.space, record.SerializeToString())

    def list_spaces(self) -> list[group_dht_pb2.Space]:
        return [group_dht_pb2.Space.FromString(v) for _, v in self._spaces.items()]

    def space_count(self) -> int:
        return self._spaces.count()

    def drop_space(self, space: bytes) -> None:
        """Forgets the space and every op held for it, in one batch."""
        with self._store.batch() as b:
            b.delete(self._spaces, space)
            for table in (self._ops, self._entries, self._links, self._deleted, self._basis):
                for key in list(table.keys(prefix=space)):
                    b.delete(table, key)
        self._epochs[space] = self._epochs.get(space, 0) + 1
        self._added.pop(space, None)
        self._trimmed.pop(space, None)

    # peers

    def get_peer(self, node_id: bytes) -> group_dht_pb2.NodeInfo | None:
        raw = self._peers.get(node_id)
        return group_dht_pb2.NodeInfo.FromString(raw) if raw is not None else None

    def put_peer(self, info: group_dht_pb2.NodeInfo) -> None:
        self._peers.put(info.node_id, info.SerializeToString())

    def list_peers(self) -> list[group_dht_pb2.NodeInfo]:
        return [group_dht_pb2.NodeInfo.FromString(v) for _, v in self._peers.items()]

    # meta

    def node_id(self, make) -> bytes:
        """The node's id, made with `make()` and saved the first time it is asked for."""
        node_id = self._meta.get(NODE_ID)
        if node_id is None:
            node_id = make()
            self._meta.put(NODE_ID, node_id)
        return node_id

    def node_key(self, make) -> bytes:
        """The node's signing key seed, made with `make()` and saved the first time."""
        seed = self._meta.get(NODE_KEY)
        if seed is None:
            seed = make()
            self._meta.put(NODE_KEY, seed)
        return seed

    def delete_ops(self, space: bytes, base: bytes) -> list[common_pb2.Signed]:
        """The DELETE_LINK ops held under a base."""
        prefix = space + base
        ops = (self.get_signed(space, op_hash) for _, op_hash in self._deleted.items(prefix=prefix))
        return [op for op in ops if op is not None]

    def close(self) -> None:
        self._store.close()


def _basis_of(op: group_dht_pb2.Op) -> tuple[bytes, bytes]:
    """(basis address, index flag) of an op: where it is placed, and whether every node of
    the space holds it (a group update: every node checks members against the updates)."""
    if op.kind == group_dht_pb2.STORE_ENTRY:
        every = op.entry_type == GROUP_UPDATE_TYPE
        return blake2b_256(op.entry), EVERY_NODE if every else b""
    return op.base, b""
