"""Who this node is: its node key, made once and kept in its store, and its node id, the
hash of the key's public half."""

import secrets

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kizuna.v1 import group_dht_pb2
from kizuna_node.common.hashing import blake2b_256
from kizuna_node.group_dht.peers import signing_bytes
from kizuna_node.group_dht.store import DhtStore


class NodeIdentity:
    def __init__(self, store: DhtStore):
        self._key = Ed25519PrivateKey.from_private_bytes(store.node_key(lambda: secrets.token_bytes(32)))
        self.public_key = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.node_id = blake2b_256(self.public_key)

    def sign(self, info: group_dht_pb2.NodeInfo) -> group_dht_pb2.NodeInfo:
        """The node info, signed with the node key."""
        info.signature = self.sign_bytes(signing_bytes(info))
        return info

    def sign_bytes(self, data: bytes) -> bytes:
        return self._key.sign(data)
