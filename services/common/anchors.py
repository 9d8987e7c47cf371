"""Anchors: well-known base addresses in a space that links hang from."""

from kizuna.v1 import group_dht_pb2
from kizuna_node.common.hashing import blake2b_256
from kizuna_node.common.store import u64

USERNAME_TAG = b"username:"


def anchor(kind: str, name: bytes) -> bytes:
    return blake2b_256(b"anchor:" + kind.encode() + b":" + name)


def username_anchor(username: str) -> bytes:
    """Links from here to an agent info entry claim a username; the first one wins."""
    return anchor("username", username.encode())


def agent_anchor(agent: bytes) -> bytes:
    """Links from here point to the agent's published agent infos."""
    return anchor("agent", agent)


def inbox_anchor(agent: bytes) -> bytes:
    """Links from here, in a group space, point to messages stored for the agent."""
    return anchor("inbox", agent)


def invites_anchor(agent: bytes) -> bytes:
    """Links from here, in the Lobby space, point to invites stored for the agent."""
    return anchor("invites", agent)


def group_updates_anchor(space: bytes) -> bytes:
    """Links from here, in a group space, point to the group's updates; the tag is the
    update's seq (8 bytes, big-endian)."""
    return anchor("group_updates", space)


def group_update_tag(seq: int) -> bytes:
    """The tag of the link from the group's updates anchor to the update of that seq."""
    return u64(seq)


def in_update_order(links) -> list:
    """Links from a group's updates anchor, the update of the lowest seq first."""
    return sorted(links, key=lambda link: group_dht_pb2.Op.FromString(link.create.body).tag)
