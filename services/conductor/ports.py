"""The conductor's outgoing calls: its node's DHT joining and leaving the spaces of the
cells it runs. Each failed call becomes the domain error of the status that came back."""

from typing import Protocol

import grpc

from kizuna.v1 import group_dht_pb2, group_dht_pb2_grpc
from kizuna_node.common import node_secret
from kizuna_node.common.rpc import remote_error

JOIN_TIMEOUT = 10.0


class Spaces(Protocol):
    """The node's DHT joining and leaving a space for one of the node's agents."""

    async def join_space(self, space: bytes, agent: bytes, template: str, properties, updates=(),
                         claim=None) -> None: ...

    async def leave_space(self, space: bytes, agent: bytes) -> None: ...


class DhtSpaces(Spaces):
    """`Spaces` over gRPC to the node's GroupDht, with the node's secret."""

    def __init__(self, channel: grpc.aio.Channel, secret: str):
        self._stub = group_dht_pb2_grpc.GroupDhtStub(channel)
        self._metadata = ((node_secret.METADATA_KEY, secret),)
        self._node_id = b""

    async def _call(self, method, request):
        try:
            return await method(request, timeout=JOIN_TIMEOUT, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            raise remote_error(exc) from exc

    async def node_id(self) -> bytes:
        """The DHT's node id, asked once."""
        if not self._node_id:
            self._node_id = (await self._call(self._stub.ListSpaces, group_dht_pb2.ListSpacesRequest())).node_id
        return self._node_id

    async def join_space(self, space, agent, template, properties, updates=(), claim=None):
        await self._call(self._stub.JoinSpace, group_dht_pb2.JoinSpaceRequest(
            space=space, agent=agent, template=template, properties=properties, updates=list(updates), claim=claim))

    async def leave_space(self, space, agent):
        await self._call(self._stub.LeaveSpace, group_dht_pb2.LeaveSpaceRequest(space=space, agent=agent))
