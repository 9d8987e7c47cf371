"""The peer table: other DHT nodes, the spaces they are in, and which of them just failed to answer."""

import logging
import time

from kizuna.v1 import group_dht_pb2
from kizuna_node.common import space_claims, tls
from kizuna_node.common.errors import InvalidArgument, PermissionDenied
from kizuna_node.common.hashing import HASH_LEN, blake2b_256, now_micros
from kizuna_node.common.keys import is_valid_signature
from kizuna_node.group_dht.store import DhtStore

log = logging.getLogger("kizuna.group_dht")

DOWN_SECONDS = 5.0
GONE_SECONDS = 30.0
MAX_PEERS = 1000
MAX_FUTURE_MICROS = 5 * 60 * 1_000_000  # a node info dated later than this from now is refused
MAX_CLAIMS = 100_000  # claim checks remembered


def signing_bytes(info: group_dht_pb2.NodeInfo) -> bytes:
    unsigned = group_dht_pb2.NodeInfo()
    unsigned.CopyFrom(info)
    unsigned.signature = b""
    return unsigned.SerializeToString(deterministic=True)


def check_node_info(info: group_dht_pb2.NodeInfo, what: str = "node") -> None:
    """A node info stands when its node id is the hash of its key and its key signed it."""
    if len(info.node_id) != HASH_LEN:
        raise InvalidArgument(f"{what} needs a {HASH_LEN}-byte node_id")
    if not info.address:
        raise InvalidArgument(f"{what} needs an address")
    if info.tls_certificate:
        tls.check_certificate(info.tls_certificate, f"{what}'s tls_certificate")
    if info.timestamp > now_micros() + MAX_FUTURE_MICROS:
        raise InvalidArgument(f"{what}: the node info is dated more than 5 minutes in the future")
    if len(info.claims) > len(info.spaces):
        raise InvalidArgument(f"{what}: the node info has more space claims than spaces")
    if blake2b_256(info.public_key) != info.node_id:
        raise PermissionDenied(f"{what}: node_id is not the hash of its public_key")
    if not is_valid_signature(info.public_key, signing_bytes(info), info.signature):
        raise PermissionDenied(f"{what}: the node info is not signed by its node key")


class PeerTable:
    """Peers are kept (they may come back) but one that failed a call counts as down for
    `down_seconds`, so reads ask live nodes first; one that has answered nothing for
    `gone_seconds` counts as gone: placement leaves it out, so the next nodes in line
    hold its addresses. `on_return(node_id)` is told when a peer that was failing answers.

    A peer learned from another node's word (an exchange, which anyone may make) counts
    in placement only once this node has reached it itself, at the address its info names,
    over a channel pinned to the certificate its info names (`reached`): a node info
    naming an address nobody serves never makes its node a holder."""

    def __init__(self, store: DhtStore, self_id: bytes, down_seconds: float = DOWN_SECONDS, clock=time.monotonic,
                 gone_seconds: float = GONE_SECONDS, on_return=None):
        self._store = store
        self._self_id = self_id
        self._down_seconds = down_seconds
        self.gone_seconds = gone_seconds
        self._clock = clock
        self._down_until: dict[bytes, float] = {}
        self._failing_since: dict[bytes, float] = {}
        self.on_return = on_return
        # every known peer, read from the store once: peer exchange and placement ask often
        self._known: dict[bytes, group_dht_pb2.NodeInfo] = {p.node_id: p for p in store.list_peers()}
        # peers reached: those of the store were, or failed long enough since to be gone
        self._reached: set[bytes] = set(self._known)
        self._signed_claims: dict[tuple[bytes, bytes], bytes] = {}  # (node, space) -> a claim signature checked
        self._unproven: set[tuple[bytes, bytes, int]] = set()  # (node, space, info timestamp) logged unproven

    def merge(self, info: group_dht_pb2.NodeInfo) -> bool:
        """Records what a node says about itself when it is newer than what is known; never self."""
        if info.node_id == self._self_id:
            return False
        known = self._known.get(info.node_id)
        if known is not None and known.timestamp >= info.timestamp:
            return False  # before any check: most of what a peer exchange carries is known already
        try:
            check_node_info(info)
        except (InvalidArgument, PermissionDenied):
            return False
        if known is None and len(self._known) >= MAX_PEERS:
            return False
        self._store.put_peer(info)
        self._known[info.node_id] = info
        return True

    def get(self, node_id: bytes) -> group_dht_pb2.NodeInfo | None:
        return self._known.get(node_id)

    def all(self) -> list[group_dht_pb2.NodeInfo]:
        """Every known peer (the table's own messages: read, don't change them)."""
        return list(self._known.values())

    def in_space(self, space: bytes, members: frozenset[bytes] | None = None) -> list[group_dht_pb2.NodeInfo]:
        """The peers in the space that this node has reached; with the `members` of a group
        space, only those whose info carries a claim to it by one of them."""
        return [p for p in self.all() if space in p.spaces and p.node_id in self._reached
                and (members is None or self.claim_for(p, space, members) is not None)]

    def claim_for(self, peer: group_dht_pb2.NodeInfo, space: bytes,
                  members: frozenset[bytes]) -> group_dht_pb2.SpaceClaim | None:
        """The peer's claim to the space by one of `members`, signed by that agent for that
        peer; None (logged once per node info) when it has none."""
        for claim in peer.claims:
            if claim.space == space and claim.agent in members:
                key = (peer.node_id, space)
                if self._signed_claims.get(key) == claim.signature or space_claims.is_signed_claim(
                        claim, peer.node_id, space):
                    if len(self._signed_claims) >= MAX_CLAIMS:
                        self._signed_claims.clear()
                    self._signed_claims[key] = claim.signature
                    return claim
        unproven = (peer.node_id, space, peer.timestamp)
        if unproven not in self._unproven:
            if len(self._unproven) >= MAX_CLAIMS:
                self._unproven.clear()
            self._unproven.add(unproven)
            log.info("node %s lists space %s without a member's claim: not counted there",
                     peer.node_id.hex()[:16], space.hex()[:16])
        return None

    def reached(self, node_id: bytes) -> None:
        """A call this node made to the peer (at its info's address and certificate) was answered."""
        if node_id in self._known:
            self._reached.add(node_id)
        self.mark_up(node_id)

    def is_reached(self, node_id: bytes) -> bool:
        return node_id in self._reached

    def addresses(self) -> set[str]:
        return {p.address for p in self.all()}

    def mark_down(self, node_id: bytes) -> None:
        now = self._clock()
        self._down_until[node_id] = now + self._down_seconds
        self._failing_since.setdefault(node_id, now)

    def mark_up(self, node_id: bytes) -> None:
        self._down_until.pop(node_id, None)
        if self._failing_since.pop(node_id, None) is not None and self.on_return is not None:
            self.on_return(node_id)

    def is_gone(self, node_id: bytes) -> bool:
        """Whether the peer has failed every call for `gone_seconds` or more."""
        since = self._failing_since.get(node_id)
        return since is not None and self._clock() - since >= self.gone_seconds

    def is_down(self, node_id: bytes) -> bool:
        until = self._down_until.get(node_id)
        if until is None:
            return False
        if until <= self._clock():
            del self._down_until[node_id]
            return False
        return True

    def live_first(self, peers: list[group_dht_pb2.NodeInfo]) -> list[group_dht_pb2.NodeInfo]:
        """The same peers, the ones not marked down first, order otherwise kept."""
        return sorted(peers, key=lambda p: self.is_down(p.node_id))
