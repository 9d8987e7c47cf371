"""What the workflows of one DHT node share (its store, id, peer table, outgoing calls and
background work), and which of the nodes it knows in a space hold an address."""

import dataclasses

from kizuna.v1 import common_pb2, group_dht_pb2
from kizuna_node.common import anchors, dna, group_state
from kizuna_node.common.errors import PermissionDenied
from kizuna_node.group_dht import placement
from kizuna_node.common.background import Background
from kizuna_node.group_dht.calls import PeerCalls
from kizuna_node.group_dht.peers import PeerTable
from kizuna_node.group_dht.store import DhtStore
from kizuna_node.group_dht.validation import group_update_of, state_of


def members_of(record: group_dht_pb2.Space | None) -> frozenset[bytes] | None:
    """The members of a group space as this node holds it; None for the Lobby space or a space not held here."""
    if record is None or record.template != dna.GROUP_TEMPLATE:
        return None
    return state_of(record).member_set


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

    def check_reader(self, node_id: bytes, space: bytes, base: bytes = b"", address: bytes = b"") -> None:
        """Another node reads the Lobby space, and a group space this node holds when its
        info carries a claim by a member of the group (as this node holds the group now).
        The node of a member since removed still reads the group's updates (the links from
        `base`, the updates anchor, and an update entry at `address`) and the links from its
        agent's inbox there: how it learns, after being away, that it was removed."""
        if space == dna.LOBBY_DNA_HASH:
            return
        record = self.store.get_space(space)
        members = members_of(record)
        peer = self.peers.get(node_id)
        if members is not None and peer is not None:
            if self.peers.claim_for(peer, space, members) is not None:
                return
            former = self.peers.claim_for(peer, space, members | self._former_members(record)) \
                if base or address else None
            if former is not None and (self._is_update_chain(space, base, address)
                                       or base == anchors.inbox_anchor(former.agent)):
                return
        raise PermissionDenied(f"space {space.hex()[:16]} is read by its members' nodes only, and node"
                               f" {node_id.hex()[:16]} has no member's claim to it here")

    def _is_update_chain(self, space: bytes, base: bytes, address: bytes) -> bool:
        if base:
            return base == anchors.group_updates_anchor(space)
        signed = self.store.entry_op(space, address) if address else None
        return signed is not None and group_dht_pb2.Op.FromString(signed.body).entry_type == group_state.ENTRY_TYPE

    def _former_members(self, record: group_dht_pb2.Space) -> frozenset[bytes]:
        """Every agent the group's properties or an update held here made a member."""
        agents = set(record.properties.initial_members)
        for _, link in self.store.link_creates(record.space, anchors.group_updates_anchor(record.space)):
            signed = self.store.entry_op(record.space, group_dht_pb2.Op.FromString(link.body).target)
            update = group_update_of(group_dht_pb2.Op.FromString(signed.body)) if signed is not None else None
            if update is not None:
                agents.update(common_pb2.GroupUpdate.FromString(update.body).members)
        return frozenset(agents)

    def holders(self, space: bytes, address: bytes) -> list[bytes]:
        return placement.holders(address, self.nodes_in_space(space), self.replication)
