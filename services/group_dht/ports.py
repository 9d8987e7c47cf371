"""The node's outgoing adapter: the `Transport` it calls other nodes' GroupDht through, and
that transport over gRPC. Each failed call becomes the domain error of the status that came back."""

from typing import NamedTuple, Protocol

import grpc

from kizuna.v1 import common_pb2, group_dht_pb2, group_dht_pb2_grpc
from kizuna_node.common import tls
from kizuna_node.common.channels import ChannelPool
from kizuna_node.common.rpc import remote_error
from kizuna_node.group_dht import callers


BOOTSTRAP_WAIT_SECONDS = 3.0


class Endpoint(NamedTuple):
    """Where another node's DHT listens and the TLS certificate (DER) it must present there."""

    address: str
    certificate: bytes = b""


def endpoint_of(info: group_dht_pb2.NodeInfo) -> Endpoint:
    return Endpoint(info.address, info.tls_certificate)


class Transport(Protocol):
    """Calls to another node's GroupDht at an endpoint; each raises KizunaError on failure."""

    async def certificate_at(self, address: str) -> bytes:
        """The certificate a bootstrap address presents (`HOST:PORT#FINGERPRINT` pins it)."""
        ...

    async def publish(self, peer: Endpoint, signed: common_pb2.Signed, timeout: float) -> group_dht_pb2.PublishResponse: ...

    async def get(self, peer: Endpoint, space: bytes, entry_address: bytes, timeout: float) -> group_dht_pb2.GetResponse: ...

    async def get_links(
        self, peer: Endpoint, space: bytes, base: bytes, tag_prefix: bytes, timeout: float, with_targets: bool = False
    ) -> group_dht_pb2.GetLinksResponse: ...

    async def exchange_peers(
        self, peer: Endpoint, node: group_dht_pb2.NodeInfo, known: list[group_dht_pb2.NodeInfo], timeout: float
    ) -> group_dht_pb2.ExchangePeersResponse: ...

    async def sync_summary(self, peer: Endpoint, request: group_dht_pb2.SyncSummaryRequest,
                           timeout: float) -> group_dht_pb2.SyncSummaryResponse: ...

    async def fetch_ops(self, peer: Endpoint, space: bytes, op_hashes: list[bytes],
                        timeout: float) -> group_dht_pb2.FetchOpsResponse: ...


class GrpcTransport(Transport):
    """The node's outgoing calls as GroupDht stubs over pooled channels; a failed call
    raises the domain error carrying the same status.

    Only ExchangePeers with a peer that has never answered waits for the channel to be
    ready (within its timeout): it is how a node finds peers at start-up, when they may not
    be up yet. Everything else fails fast with UNAVAILABLE on a channel that cannot
    connect, so a dead peer costs no more than a refused connection and is marked down at
    once (not a timeout later); the pool's short reconnect backoff lets a peer that comes
    back be reached again within about a second."""

    MAX_REMEMBERED = 10_000

    def __init__(self, pool: ChannelPool, identity=None):
        """`identity` (the node's NodeIdentity) signs the caller proof every read carries."""
        self._pool = pool
        self._identity = identity
        self._answered: set[str] = set()  # addresses that have answered an ExchangePeers
        self._stubs: dict[grpc.aio.Channel, group_dht_pb2_grpc.GroupDhtStub] = {}  # one per pooled channel

    def _stub(self, peer: Endpoint) -> group_dht_pb2_grpc.GroupDhtStub:
        channel = self._pool.pinned(peer.address, peer.certificate)
        stub = self._stubs.get(channel)
        if stub is None:
            stub = self._stubs[channel] = group_dht_pb2_grpc.GroupDhtStub(channel)
        return stub

    async def certificate_at(self, address: str) -> bytes:
        """Waits for a bootstrap address to answer, as ExchangePeers waits for a channel."""
        address, pin = tls.split_pin(address)
        return await tls.fetch_certificate(address, pin, timeout=BOOTSTRAP_WAIT_SECONDS)

    def _as_caller(self, peer: Endpoint, method: str) -> tuple:
        return callers.caller_metadata(self._identity, peer.certificate, method) if self._identity else ()

    @staticmethod
    async def _unary(call):
        try:
            return await call
        except grpc.aio.AioRpcError as exc:
            raise remote_error(exc) from exc

    async def publish(self, peer: Endpoint, signed: common_pb2.Signed, timeout: float) -> group_dht_pb2.PublishResponse:
        request = group_dht_pb2.PublishRequest(op=signed, local_only=True)
        return await self._unary(self._stub(peer).Publish(request, timeout=timeout))

    async def get(self, peer: Endpoint, space: bytes, entry_address: bytes, timeout: float) -> group_dht_pb2.GetResponse:
        request = group_dht_pb2.GetRequest(space=space, address=entry_address, local_only=True)
        return await self._unary(self._stub(peer).Get(request, timeout=timeout, metadata=self._as_caller(peer, "Get")))

    async def get_links(
        self, peer: Endpoint, space: bytes, base: bytes, tag_prefix: bytes, timeout: float, with_targets: bool = False
    ) -> group_dht_pb2.GetLinksResponse:
        request = group_dht_pb2.GetLinksRequest(space=space, base=base, tag_prefix=tag_prefix, local_only=True,
                                                with_targets=with_targets)
        return await self._unary(self._stub(peer).GetLinks(request, timeout=timeout,
                                                           metadata=self._as_caller(peer, "GetLinks")))

    async def exchange_peers(
        self, peer: Endpoint, node: group_dht_pb2.NodeInfo, known: list[group_dht_pb2.NodeInfo], timeout: float
    ) -> group_dht_pb2.ExchangePeersResponse:
        request = group_dht_pb2.ExchangePeersRequest(known=known)
        getattr(request, "from").CopyFrom(node)
        first = peer.address not in self._answered
        answer = await self._unary(self._stub(peer).ExchangePeers(request, timeout=timeout, wait_for_ready=first))
        if first and len(self._answered) < self.MAX_REMEMBERED:
            self._answered.add(peer.address)
        return answer

    async def sync_summary(self, peer: Endpoint, request: group_dht_pb2.SyncSummaryRequest,
                           timeout: float) -> group_dht_pb2.SyncSummaryResponse:
        return await self._unary(self._stub(peer).SyncSummary(request, timeout=timeout,
                                                              metadata=self._as_caller(peer, "SyncSummary")))

    async def fetch_ops(self, peer: Endpoint, space: bytes, op_hashes: list[bytes],
                        timeout: float) -> group_dht_pb2.FetchOpsResponse:
        request = group_dht_pb2.FetchOpsRequest(space=space, op_hashes=op_hashes)
        return await self._unary(self._stub(peer).FetchOps(request, timeout=timeout,
                                                           metadata=self._as_caller(peer, "FetchOps")))
