"""The GroupDht RPC layer: parse the request, call the node, map the result."""

from kizuna.v1 import group_dht_pb2, group_dht_pb2_grpc
from kizuna_node.common import node_secret
from kizuna_node.common.rpc import rpc_method
from kizuna_node.group_dht.callers import LOCAL
from kizuna_node.group_dht.dht import GroupDhtNode


class GroupDhtServicer(group_dht_pb2_grpc.GroupDhtServicer):
    """Publish and ExchangePeers serve any node (every op is validated); the reads (Get,
    GetLinks, ListSpaces, SyncSummary, FetchOps) serve the node's own services (with its
    secret) and other nodes that prove who they are, a group space only its members' nodes;
    JoinSpace and LeaveSpace are node-internal and need the node's secret."""

    def __init__(self, node: GroupDhtNode, secret: str):
        self._node = node
        self._secret = secret

    def _caller(self, context, method: str) -> bytes:
        metadata = context.invocation_metadata()
        return LOCAL if node_secret.carries(metadata, self._secret) else self._node.authenticate(metadata, method)

    def _check_read(self, context, method: str, space: bytes, base: bytes = b"", address: bytes = b"") -> None:
        self._node.check_read(self._caller(context, method), space, base, address)

    @rpc_method
    async def Publish(self, request, context):
        return await self._node.publish(request.op, request.local_only)

    @rpc_method
    async def Get(self, request, context):
        self._check_read(context, "Get", request.space, address=request.address)
        return await self._node.get(request.space, request.address, request.local_only)

    @rpc_method
    async def GetLinks(self, request, context):
        self._check_read(context, "GetLinks", request.space, base=request.base)
        return await self._node.get_links(request.space, request.base, request.tag_prefix, request.local_only,
                                          request.with_targets, request.holders_only)

    @rpc_method
    async def JoinSpace(self, request, context):
        node_secret.check(context.invocation_metadata(), self._secret)
        await self._node.join_space(request.space, request.agent, request.template, request.properties,
                                    list(request.updates), request.claim)
        return group_dht_pb2.JoinSpaceResponse()

    @rpc_method
    async def LeaveSpace(self, request, context):
        node_secret.check(context.invocation_metadata(), self._secret)
        await self._node.leave_space(request.space, request.agent)
        return group_dht_pb2.LeaveSpaceResponse()

    @rpc_method
    async def ListSpaces(self, request, context):
        return await self._node.list_spaces(self._caller(context, "ListSpaces"))

    @rpc_method
    async def ExchangePeers(self, request, context):
        return await self._node.exchange_peers(getattr(request, "from"), list(request.known))

    @rpc_method
    async def SyncSummary(self, request, context):
        self._check_read(context, "SyncSummary", request.space)
        return self._node.sync_summary(request)

    @rpc_method
    async def FetchOps(self, request, context):
        self._check_read(context, "FetchOps", request.space)
        return self._node.fetch_ops(request)
