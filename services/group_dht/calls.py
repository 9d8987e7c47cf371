"""Outgoing calls to other nodes, `call_<rpc>` for each: every one passes through one
response handler that marks a peer that does not answer down, and one that answers up."""

import logging

from kizuna.v1 import common_pb2, group_dht_pb2
from kizuna_node.common.errors import UNREACHABLE, KizunaError, PermissionDenied, Unauthenticated
from kizuna_node.group_dht.peers import PeerTable
from kizuna_node.group_dht.ports import Endpoint, Transport, endpoint_of

log = logging.getLogger("kizuna.group_dht")

CALL_TIMEOUT = 3.0  # a live peer under load answers well within this; a dead one fails at once or is marked down


class PeerCalls:
    """`introduce(peer)` tells a peer this node's current info (the node's gossip sets it)."""

    def __init__(self, transport: Transport, peers: PeerTable, timeout: float = CALL_TIMEOUT):
        self._transport = transport
        self._peers = peers
        self._timeout = timeout
        self.introduce = None

    async def _call(self, what: str, endpoint: Endpoint, node_id: bytes | None, call):
        """The response handler: runs `call(endpoint, timeout)`; a peer that does not answer
        is marked down, one that answers up. An address not known as a peer yet (a
        bootstrap address) has no node id to mark."""
        try:
            result = await call(endpoint, self._timeout)
        except KizunaError as exc:
            if node_id is not None and isinstance(exc, UNREACHABLE):
                self._peers.mark_down(node_id)
            log.debug("%s to %s failed: %s %s", what, endpoint.address, exc.code, exc.message)
            raise
        if node_id is not None:
            self._peers.reached(node_id)
        return result

    async def _read(self, what: str, peer: group_dht_pb2.NodeInfo, call):
        """A read through the handler: a peer that refuses this node as a stranger (or
        without the claim it has since been given) hears this node's info and is asked once more."""
        try:
            return await self._call(what, endpoint_of(peer), peer.node_id, call)
        except (Unauthenticated, PermissionDenied):
            if self.introduce is None:
                raise
        await self.introduce(peer)
        return await self._call(what, endpoint_of(peer), peer.node_id, call)

    async def call_publish(self, peer: group_dht_pb2.NodeInfo, signed: common_pb2.Signed) -> group_dht_pb2.PublishResponse:
        return await self._call("publish", endpoint_of(peer), peer.node_id, lambda a, t: self._transport.publish(a, signed, t))

    async def call_get(self, peer: group_dht_pb2.NodeInfo, space: bytes, address: bytes) -> group_dht_pb2.GetResponse:
        return await self._read("get", peer, lambda a, t: self._transport.get(a, space, address, t))

    async def call_get_links(self, peer: group_dht_pb2.NodeInfo, space: bytes, base: bytes, tag_prefix: bytes,
                             with_targets: bool) -> group_dht_pb2.GetLinksResponse:
        return await self._read("get_links", peer,
                                lambda a, t: self._transport.get_links(a, space, base, tag_prefix, t, with_targets))

    async def call_exchange_peers(self, endpoint: Endpoint, peer: group_dht_pb2.NodeInfo | None,
                                  me: group_dht_pb2.NodeInfo,
                                  known: list[group_dht_pb2.NodeInfo]) -> group_dht_pb2.ExchangePeersResponse:
        """Exchange with a known peer, or (`peer` None) with a bootstrap endpoint."""
        node_id = peer.node_id if peer is not None else None
        return await self._call("exchange_peers", endpoint, node_id,
                                lambda a, t: self._transport.exchange_peers(a, me, known, t))

    async def call_sync_summary(self, peer: group_dht_pb2.NodeInfo,
                                request: group_dht_pb2.SyncSummaryRequest) -> group_dht_pb2.SyncSummaryResponse:
        return await self._read("sync_summary", peer, lambda a, t: self._transport.sync_summary(a, request, t))

    async def call_fetch_ops(self, peer: group_dht_pb2.NodeInfo, space: bytes,
                             op_hashes: list[bytes]) -> group_dht_pb2.FetchOpsResponse:
        return await self._read("fetch_ops", peer, lambda a, t: self._transport.fetch_ops(a, space, op_hashes, t))

    async def certificate_at(self, address: str) -> bytes:
        """The certificate a bootstrap address presents, checked against its pin if it has one."""
        return await self._transport.certificate_at(address)

    @staticmethod
    async def quietly(what: str, address: str, call) -> None:
        """Runs `call()`, one of the `call_*` above, for work nobody waits on: its failure is
        only logged (at debug); its success still marks the peer up."""
        try:
            await call()
        except KizunaError:
            pass  # logged by _call
        except Exception as exc:  # noqa: BLE001 - nobody is waiting to hear about it
            log.debug("background %s to %s failed: %r", what, address, exc)
