"""Peer exchange: this node's signed word about itself traded with the bootstrap addresses
not yet known as peers and a few known peers a round (the least recently exchanged with
first), at start and then periodically, and the addresses it learns to bootstrap from.

A round costs the same however many peers there are: with N nodes each peer hears from
this node every N / GOSSIP_FANOUT rounds, and what one node learns reaches the others
within a few rounds, since every answer carries every peer its sender knows."""

import asyncio
import logging
import time

from kizuna.v1 import group_dht_pb2
from kizuna_node.common import tls
from kizuna_node.common.background import round_failed
from kizuna_node.common.errors import KizunaError
from kizuna_node.common.hashing import now_micros
from kizuna_node.group_dht.context import NodeContext, members_of
from kizuna_node.group_dht.identity import NodeIdentity
from kizuna_node.group_dht.peers import check_node_info
from kizuna_node.group_dht.ports import Endpoint, endpoint_of

log = logging.getLogger("kizuna.group_dht")

GOSSIP_INTERVAL = 2.0
GOSSIP_FANOUT = 4  # known peers exchanged with per round
NODE_INFO_REFRESH = 60.0  # seconds before the node's unchanged word about itself is signed anew
MAX_LEARNED_ADDRESSES = 256


def _member_claim(record: group_dht_pb2.Space) -> group_dht_pb2.SpaceClaim | None:
    """The claim this node shows for a group space: one by an agent it hosts that is a member
    still, else (until its lobby leaves the space) one by an agent since removed, which the
    holders let read only how the group changed and its inbox."""
    members = members_of(record)
    if members is None:
        return None
    return next((c for c in record.claims if c.agent in members), next(iter(record.claims), None))


class Gossip:
    def __init__(self, ctx: NodeContext, identity: NodeIdentity, address: str = "", bootstrap=(),
                 interval: float = GOSSIP_INTERVAL, tls_certificate: bytes = b""):
        self._ctx = ctx
        self._identity = identity
        self.address = address
        self.tls_certificate = tls_certificate
        # bootstrap address -> (its pinned fingerprint or "", the certificate it presents:
        # b"" until asked for a bootstrap flag, the one its agent info names when learned)
        self._bootstrap: dict[str, tuple[str, bytes]] = {}
        for given in bootstrap:
            if given:
                address, pin = tls.split_pin(given)
                self._bootstrap[address] = (pin, b"")
        self._interval = interval
        self._exchanged_at: dict[bytes, float] = {}  # node id -> when last exchanged with (asked)
        self._said: group_dht_pb2.NodeInfo | None = None

    @property
    def bootstrap(self) -> tuple[str, ...]:
        """The addresses exchanged with besides the known peers: given at start, or learned."""
        return tuple(self._bootstrap)

    def learn_address(self, address: str, certificate: bytes = b"") -> bool:
        """Adds a DHT address to bootstrap from (at most MAX_LEARNED_ADDRESSES of them), with
        the certificate the signed info that named it gives, unless it is this node's or a
        known peer's; whether it was new."""
        if len(self._bootstrap) >= MAX_LEARNED_ADDRESSES:
            return False
        if address and address != self.address and address not in self._bootstrap \
                and address not in self._ctx.peers.addresses():
            self._bootstrap[address] = ("", certificate)
            log.info("learned DHT address %s", address)
            return True
        return False

    def node_info(self) -> group_dht_pb2.NodeInfo:
        """This node's word about itself, signed with its node key: signed anew when what it
        says changes (its spaces) and every NODE_INFO_REFRESH seconds, so peers store and pass
        on a new word only then, not after every exchange."""
        records = self._ctx.store.list_spaces()
        spaces = [r.space for r in records]
        claims = [c for c in map(_member_claim, records) if c is not None]
        said = self._said
        if said is not None and list(said.spaces) == spaces and list(said.claims) == claims \
                and said.address == self.address and said.tls_certificate == self.tls_certificate \
                and now_micros() - said.timestamp < NODE_INFO_REFRESH * 1_000_000:
            return said
        self._said = self._identity.sign(group_dht_pb2.NodeInfo(
            node_id=self._identity.node_id,
            address=self.address,
            spaces=spaces,
            timestamp=now_micros(),
            public_key=self._identity.public_key,
            tls_certificate=self.tls_certificate,
            claims=claims,
        ))
        return self._said

    async def introduce(self, peer: group_dht_pb2.NodeInfo) -> None:
        """Tells one peer this node's word about itself now (it refused a read as from a
        node it does not know, or without a claim it has since been given)."""
        answer = await self._ctx.calls.call_exchange_peers(endpoint_of(peer), peer, self.node_info(), [])
        self._merge([answer.node, *answer.known])

    async def run(self) -> None:
        """Exchanges at once, then every `interval` seconds, until cancelled."""
        while True:
            try:
                await self.exchange_with_peers()
            except Exception as exc:  # noqa: BLE001 - gossip must outlive one bad round
                await round_failed(log, "peer exchange round", exc)
            await asyncio.sleep(self._interval)

    async def exchange_peers(
        self, sender: group_dht_pb2.NodeInfo, known: list[group_dht_pb2.NodeInfo]
    ) -> group_dht_pb2.ExchangePeersResponse:
        """Records the sender and what it knows (newer wins, never about this node);
        answers with this node and every peer it knows."""
        check_node_info(sender, "from")
        self._merge([sender, *known])
        if sender.node_id != self._ctx.node_id:
            self._ctx.peers.mark_up(sender.node_id)
        return group_dht_pb2.ExchangePeersResponse(node=self.node_info(), known=self._ctx.peers.all())

    def _merge(self, infos) -> None:
        for info in infos:
            if self._ctx.peers.merge(info):
                log.debug("peer %s at %s is in %d spaces", info.node_id.hex()[:16], info.address, len(info.spaces))

    async def exchange_with_peers(self, everyone: bool = False) -> None:
        """One round of peer exchange, in parallel, with every bootstrap address not known as
        a peer and the GOSSIP_FANOUT known peers least recently exchanged with (`everyone`:
        with every known peer)."""
        me = self.node_info()
        known = self._ctx.peers.all()
        peer_addresses = {p.address for p in known}
        by_address = {a: None for a in self._bootstrap if a not in peer_addresses}
        others = sorted((p for p in known if p.address != self.address),
                        key=lambda p: self._exchanged_at.get(p.node_id, 0.0))
        now = time.monotonic()
        for peer in others if everyone else others[:GOSSIP_FANOUT]:
            by_address[peer.address] = peer
            self._exchanged_at[peer.node_id] = now
        by_address.pop(self.address, None)

        async def exchange(address: str, peer: group_dht_pb2.NodeInfo | None):
            try:
                endpoint = endpoint_of(peer) if peer is not None else await self._bootstrap_endpoint(address)
                answer = await self._ctx.calls.call_exchange_peers(endpoint, peer, me, known)
            except KizunaError as exc:
                log.debug("peer exchange with %s failed: %s %s", address, exc.code, exc.message)
                return
            self._merge([answer.node, *answer.known])
            # reached where its info says: a known peer at its address, or a bootstrap
            # address that presented the certificate the answer's info names
            if (answer.node.node_id == peer.node_id) if peer is not None else (
                    answer.node.address == address or answer.node.tls_certificate == endpoint.certificate):
                self._ctx.peers.reached(answer.node.node_id)

        await asyncio.gather(*(exchange(a, p) for a, p in by_address.items()))

    async def _bootstrap_endpoint(self, address: str) -> Endpoint:
        """A bootstrap address with the certificate it presents: asked once, checked against
        the address's pin if it has one, trusted on first use if not."""
        pin, certificate = self._bootstrap.get(address, ("", b""))
        if not certificate:
            certificate = await self._ctx.calls.certificate_at(f"{address}#{pin}" if pin else address)
            if address in self._bootstrap:
                self._bootstrap[address] = (pin, certificate)
            log.info("bootstrap %s presents TLS certificate %s (%s)", address, tls.fingerprint(certificate),
                     "as pinned" if pin else "trusted on first use")
        return Endpoint(address, certificate)
