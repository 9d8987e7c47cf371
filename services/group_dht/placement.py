"""Rendezvous placement: which nodes of a space hold an address, and how many make a quorum."""

from kizuna_node.common.hashing import blake2b_256

DEFAULT_REPLICATION = 3


def score(address: bytes, node_id: bytes) -> bytes:
    """A node's rendezvous score for an address; the highest scores hold it."""
    return blake2b_256(address + node_id)


def holders(address: bytes, node_ids, replication: int = DEFAULT_REPLICATION) -> list[bytes]:
    """The `replication` node ids with the highest scores for the address, best first;
    every node when there are fewer. The same inputs give the same answer on every node."""
    ranked = sorted(set(node_ids), key=lambda node_id: score(address, node_id), reverse=True)
    return ranked[: max(replication, 1)]


def quorum(holder_count: int) -> int:
    """A strict majority of the holders."""
    return holder_count // 2 + 1
