"""A node's claim to hold a group space: signed by a member agent the node hosts (in the
conductor, the only holder of agent keys), checked by every node that holds the space."""

import struct

from kizuna.v1 import group_dht_pb2
from kizuna_node.common.hashing import now_micros
from kizuna_node.common.keys import is_valid_signature

DOMAIN = b"kizuna space claim v1\0"


def claim_bytes(node_id: bytes, space: bytes, timestamp: int) -> bytes:
    """What the agent signs: it names one node and one space."""
    return DOMAIN + bytes(node_id) + bytes(space) + struct.pack(">q", timestamp)


def make_claim(sign, agent: bytes, node_id: bytes, space: bytes) -> group_dht_pb2.SpaceClaim:
    """The agent's claim that the node holds the space for it, `sign(data)` signing as the agent."""
    timestamp = now_micros()
    return group_dht_pb2.SpaceClaim(space=space, agent=agent, timestamp=timestamp,
                                    signature=sign(claim_bytes(node_id, space, timestamp)))


def is_signed_claim(claim: group_dht_pb2.SpaceClaim, node_id: bytes, space: bytes) -> bool:
    """Whether the claim is for this node and space and its agent signed it (membership is the verifier's to check)."""
    return claim.space == space and is_valid_signature(
        claim.agent, claim_bytes(node_id, space, claim.timestamp), claim.signature)
