"""The conductor's outgoing calls: its node's DHT joining and leaving the spaces of the
cells it runs. Each failed call becomes the domain error of the status that came back."""

from typing import Protocol

import grpc

from kizuna.v1 import group_dht_pb2, group_dht_pb2_grpc
from services.common import node_secret
from services.common.rpc import remote_error

JOIN_TIMEOUT = 10.0


class Spaces(Protocol):
    """The node's DHT joining and leaving a space for one of the node's agents."""

    async def join_space(self, space: bytes, agent: bytes, template: str, properties, updates=()) -> None: ...

    async def leave_space(self, space: bytes, agent: bytes) -> None: ...


class DhtSpaces(Spaces):
    """`Spaces` over gRPC to the node's GroupDht, with the node's secret."""

    def __init__(self, channel: grpc.aio.Channel, secret: str):
        self._stub = group_dht_pb2_grpc.GroupDhtStub(channel)
        self._metadata = ((node_secret.METADATA_KEY, secret),)

    async def join_space(self, space, agent, template, properties, updates=()):
        request = group_dht_pb2.JoinSpaceRequest(space=space, agent=agent, template=template, properties=properties,
                                                 updates=list(updates))
        try:
            await self._stub.JoinSpace(request, timeout=JOIN_TIMEOUT, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            raise remote_error(exc) from exc

    async def leave_space(self, space, agent):
        try:
            await self._stub.LeaveSpace(group_dht_pb2.LeaveSpaceRequest(space=space, agent=agent), timeout=JOIN_TIMEOUT,
                                        metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            raise remote_error(exc) from exc
