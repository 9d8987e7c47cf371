"""What the workflows of one DHT node share (its store, id, peer table, outgoing calls and
background work), and which of the nodes it knows in a space hold an address."""

import dataclasses

from kizuna.v1 import group_dht_pb2
from services.group_dht import placement
from services.common.background import Background
from services.group_dht.calls import PeerCalls
from services.group_dht.peers import PeerTable
from services.group_dht.store import DhtStore


@dataclasses.dataclass
class NodeContext:
    store: DhtStore
    node_id: bytes
    peers: PeerTable
    calls: PeerCalls
    background: Background
    replication: int = placement.DEFAULT_REPLICATION

    def nodes_in_space(self, space: bytes) -> dict[bytes, group_dht_pb2.NodeInfo | None]:
        """node id -> peer (None for this node) of every node known to be in the space and
        not gone (a peer that answered nothing for a while no longer holds anything)."""
        nodes: dict[bytes, group_dht_pb2.NodeInfo | None] = {
            p.node_id: p for p in self.peers.in_space(space) if not self.peers.is_gone(p.node_id)}
        if self.store.get_space(space) is not None:
            nodes[self.node_id] = None
        return nodes

    def holders(self, space: bytes, address: bytes) -> list[bytes]:
        return placement.holders(address, self.nodes_in_space(space), self.replication)
