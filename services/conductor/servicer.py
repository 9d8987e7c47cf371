"""The Conductor's RPC layer: parse and validate, call the domain, map the result."""

from kizuna.v1 import conductor_pb2, conductor_pb2_grpc
from services.common.rpc import rpc_method
from services.conductor.conductor import Conductor


class ConductorServicer(conductor_pb2_grpc.ConductorServicer):
    def __init__(self, conductor: Conductor):
        self._conductor = conductor

    @rpc_method
    async def CreateAgent(self, request, context):
        agent, app_token, lobby_cell = self._conductor.create_agent(request.name)
        return conductor_pb2.CreateAgentResponse(agent=agent, app_token=app_token, lobby_cell=lobby_cell)

    @rpc_method
    async def ListAgents(self, request, context):
        return conductor_pb2.ListAgentsResponse(agents=self._conductor.list_agents())

    @rpc_method
    async def CloneDna(self, request, context):
        cell = await self._conductor.clone_dna(request.agent, request.template, request.properties)
        return conductor_pb2.CloneDnaResponse(cell=cell)

    @rpc_method
    async def ListCells(self, request, context):
        return conductor_pb2.ListCellsResponse(cells=self._conductor.list_cells(request.agent))

    @rpc_method
    async def Sign(self, request, context):
        return conductor_pb2.SignResponse(signature=self._conductor.sign(request.agent, request.data))

    @rpc_method
    async def ResolveToken(self, request, context):
        return conductor_pb2.ResolveTokenResponse(agent=self._conductor.resolve_token(request.app_token))

    @rpc_method
    async def Decrypt(self, request, context):
        plaintext = self._conductor.decrypt(request.agent, request.sealed, request.aad)
        return conductor_pb2.DecryptResponse(plaintext=plaintext)
