"""Who calls this node's DHT for a read: another node, proved by a CallerProof signed with a
node key this node knows from a peer exchange, fresh and never taken before; and which
spaces it may read (the Lobby space, and the group spaces it holds a member's claim to)."""

import collections
import hashlib
import secrets

from google.protobuf.message import DecodeError

from kizuna.v1 import group_dht_pb2
from kizuna_node.common.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from kizuna_node.common.hashing import now_micros
from kizuna_node.common.keys import is_valid_signature

METADATA_KEY = "x-kizuna-caller-bin"
WINDOW_MICROS = 120 * 1_000_000  # a proof dated further from this node's clock either way is refused
NONCE_LEN = 16
MAX_NONCES = 200_000  # proofs remembered within the window: more at once is refused, not forgotten
LOCAL = b""  # the caller id of the node's own services (they carry the node secret)


def proof_bytes(proof: group_dht_pb2.CallerProof) -> bytes:
    unsigned = group_dht_pb2.CallerProof()
    unsigned.CopyFrom(proof)
    unsigned.signature = b""
    return unsigned.SerializeToString(deterministic=True)


def audience(certificate: bytes) -> bytes:
    """What a proof names the called node by: the SHA-256 of the certificate it presents."""
    return hashlib.sha256(certificate).digest()


def caller_metadata(identity, certificate: bytes, method: str) -> tuple:
    """The metadata that proves this node (`identity`) calls `method` of the node presenting `certificate`."""
    proof = group_dht_pb2.CallerProof(node_id=identity.node_id, audience=audience(certificate), method=method,
                                      timestamp=now_micros(), nonce=secrets.token_bytes(NONCE_LEN))
    proof.signature = identity.sign_bytes(proof_bytes(proof))
    return ((METADATA_KEY, proof.SerializeToString()),)


class Callers:
    """`ctx` is the node's NodeContext; `certificate` the one it presents to other nodes (its proofs' audience)."""

    def __init__(self, ctx, certificate: bytes, clock=now_micros):
        self._ctx = ctx
        self.audience = audience(certificate)
        self._clock = clock
        self._taken: collections.OrderedDict[bytes, int] = collections.OrderedDict()  # node id + nonce -> timestamp

    def authenticate(self, metadata, method: str) -> bytes:
        """The id of the node whose proof the call carries; Unauthenticated, saying why, otherwise."""
        raw = next((value for key, value in metadata or () if key == METADATA_KEY), None)
        if raw is None:
            raise Unauthenticated(f"a read of this node's DHT needs the calling node's proof ({METADATA_KEY})")
        try:
            proof = group_dht_pb2.CallerProof.FromString(raw)
        except DecodeError:
            raise Unauthenticated("the caller proof does not parse") from None
        peer = self._ctx.peers.get(proof.node_id)
        if peer is None:
            raise Unauthenticated(f"node {proof.node_id.hex()[:16]} is not known here: it exchanges peers first")
        if proof.method != method or proof.audience != self.audience:
            raise Unauthenticated(f"the caller proof is for another call than {method} on this node")
        now = self._clock()
        if abs(now - proof.timestamp) > WINDOW_MICROS or len(proof.nonce) != NONCE_LEN:
            raise Unauthenticated(f"the caller proof is stale (more than {WINDOW_MICROS // 1_000_000} s from this"
                                  f" node's clock) or has no {NONCE_LEN}-byte nonce")
        if not is_valid_signature(peer.public_key, proof_bytes(proof), proof.signature):
            raise Unauthenticated(f"the caller proof is not signed by node {proof.node_id.hex()[:16]}'s key")
        self._take(proof.node_id + proof.nonce, proof.timestamp, now)
        return proof.node_id

    def _take(self, key: bytes, timestamp: int, now: int) -> None:
        """Remembers a proof until it is too old to be taken again; refuses one taken before."""
        while self._taken and next(iter(self._taken.values())) < now - 2 * WINDOW_MICROS:
            self._taken.popitem(last=False)
        if key in self._taken:
            raise Unauthenticated("the caller proof was taken before: each call carries a new one")
        if len(self._taken) >= MAX_NONCES:
            raise ResourceExhausted("this node takes no more reads from other nodes right now")
        self._taken[key] = max(timestamp, now)

    def check_read(self, caller: bytes, space: bytes, base: bytes = b"", address: bytes = b"") -> None:
        """The node's own services read every space; another node the Lobby space, and a group
        space only with a claim by a member of the group as this node holds it (see
        NodeContext.check_reader for the read of links from `base` or an entry at `address`)."""
        if caller != LOCAL:
            self._ctx.check_reader(caller, space, base, address)

    def may_read(self, caller: bytes, space: bytes) -> bool:
        try:
            self.check_read(caller, space)
        except PermissionDenied:
            return False
        return True
