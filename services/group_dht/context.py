"""What the workflows of one DHT node share (its store, id, peer table, outgoing calls and
background work), and which of the nodes it knows in a space hold an address."""

import dataclasses

from kizuna.v1 import group_dht_pb2
from services.common import dna
from services.common.errors import PermissionDenied
from services.group_dht import placement
from services.common.background import Background
from services.group_dht.calls import PeerCalls
from services.group_dht.peers import PeerTable
from services.group_dht.store import DhtStore
from services.group_dht.validation import state_of


def members_of(record: group_dht_pb2.Space | None) -> frozenset[bytes] | None:
    """The members of a group space as this node holds it; None for the Lobby space or a space not held here."""
    if record is None or record.template != dna.GROUP_TEMPLATE:
        return None
    return frozenset(state_of(record).members)


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
        not gone (a peer that answered nothing for a while no longer holds anything); in a
        group space this node holds, only peers with a claim by one of its members."""
        record = self.store.get_space(space)
        nodes: dict[bytes, group_dht_pb2.NodeInfo | None] = {
            p.node_id: p for p in self.peers.in_space(space, members_of(record))
            if not self.peers.is_gone(p.node_id)}
        if record is not None:
            nodes[self.node_id] = None
        return nodes

    def check_reader(self, node_id: bytes, space: bytes) -> None:
        """Another node reads the Lobby space, and a group space this node holds when its
        info carries a claim by a member of the group (as this node holds the group now)."""
        if space == dna.LOBBY_DNA_HASH:
            return
        members = members_of(self.store.get_space(space))
        peer = self.peers.get(node_id)
        if members is None or peer is None or self.peers.claim_for(peer, space, members) is None:
            raise PermissionDenied(f"space {space.hex()[:16]} is read by its members' nodes only, and node"
                                   f" {node_id.hex()[:16]} has no member's claim to it here")

    def holders(self, space: bytes, address: bytes) -> list[bytes]:
        return placement.holders(address, self.nodes_in_space(space), self.replication)
