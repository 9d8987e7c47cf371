"""The Conductor's RPC layer: parse and validate, call the domain, map the result."""

from kizuna.v1 import conductor_pb2, conductor_pb2_grpc
from kizuna_node.common import node_secret
from kizuna_node.common.rpc import rpc_method
from kizuna_node.conductor.conductor import Conductor


class ConductorServicer(conductor_pb2_grpc.ConductorServicer):
    """Every method first checks the node's secret (see kizuna_node.common.node_secret)."""

    def __init__(self, conductor: Conductor, secret: str):
        self._conductor = conductor
        self._secret = secret

    def _internal(self, context) -> None:
        node_secret.check(context.invocation_metadata(), self._secret)

    @rpc_method
    async def CreateAgent(self, request, context):
        self._internal(context)
        agent, app_token, lobby_cell = self._conductor.create_agent(request.name)
        return conductor_pb2.CreateAgentResponse(agent=agent, app_token=app_token, lobby_cell=lobby_cell)

    @rpc_method
    async def ListAgents(self, request, context):
        self._internal(context)
        return conductor_pb2.ListAgentsResponse(agents=self._conductor.list_agents())

    @rpc_method
    async def CloneDna(self, request, context):
        self._internal(context)
        cell = await self._conductor.clone_dna(request.agent, request.template, request.properties,
                                               list(request.updates))
        return conductor_pb2.CloneDnaResponse(cell=cell)

    @rpc_method
    async def ListCells(self, request, context):
        self._internal(context)
        return conductor_pb2.ListCellsResponse(cells=self._conductor.list_cells(request.agent))

    @rpc_method
    async def Sign(self, request, context):
        self._internal(context)
        return conductor_pb2.SignResponse(signature=self._conductor.sign(request.agent, request.data,
                                                                         request.app_token))

    @rpc_method
    async def SignBatch(self, request, context):
        self._internal(context)
        signatures = self._conductor.sign_batch(request.agent, list(request.data), request.app_token)
        return conductor_pb2.SignBatchResponse(signatures=signatures)

    @rpc_method
    async def ResolveToken(self, request, context):
        self._internal(context)
        return conductor_pb2.ResolveTokenResponse(agent=self._conductor.resolve_token(request.app_token))

    @rpc_method
    async def Decrypt(self, request, context):
        self._internal(context)
        plaintext = self._conductor.decrypt(request.agent, request.sealed, request.aad)
        return conductor_pb2.DecryptResponse(plaintext=plaintext)

    @rpc_method
    async def IssueAppToken(self, request, context):
        self._internal(context)
        app_token, token = self._conductor.issue_app_token(request.agent)
        return conductor_pb2.IssueAppTokenResponse(app_token=app_token, token=token)

    @rpc_method
    async def ListAppTokens(self, request, context):
        self._internal(context)
        return conductor_pb2.ListAppTokensResponse(tokens=self._conductor.list_app_tokens(request.agent))

    @rpc_method
    async def RevokeAppToken(self, request, context):
        self._internal(context)
        return conductor_pb2.RevokeAppTokenResponse(token=self._conductor.revoke_app_token(request.token_id))

    @rpc_method
    async def DeleteCloneCell(self, request, context):
        self._internal(context)
        await self._conductor.delete_clone_cell(request.agent, request.dna_hash)
        return conductor_pb2.DeleteCloneCellResponse()

    @rpc_method
    async def DecryptBatch(self, request, context):
        self._internal(context)
        results = self._conductor.decrypt_batch(request.agent, list(request.items))
        return conductor_pb2.DecryptBatchResponse(
            results=[conductor_pb2.DecryptResult(plaintext=p, error=e) for p, e in results])

    @rpc_method
    async def EncryptGroupMessage(self, request, context):
        self._internal(context)
        encrypted, shares, rotated = self._conductor.encrypt_group_message(
            request.agent, request.group_uuid, request.plaintext, list(request.receivers), request.app_token)
        return conductor_pb2.EncryptGroupMessageResponse(encrypted=encrypted, key_shares=shares, rotated=rotated)

    @rpc_method
    async def DecryptGroupMessages(self, request, context):
        self._internal(context)
        results = self._conductor.decrypt_group_messages(list(request.items))
        return conductor_pb2.DecryptGroupMessagesResponse(results=[
            conductor_pb2.GroupPlaintext(plaintext=p, error=e, missing_key=m) for p, e, m in results])

    @rpc_method
    async def ImportGroupKeys(self, request, context):
        self._internal(context)
        return conductor_pb2.ImportGroupKeysResponse(
            results=self._conductor.import_group_keys(request.agent, list(request.key_shares)))

    @rpc_method
    async def ShareGroupKey(self, request, context):
        self._internal(context)
        share = self._conductor.share_group_key(request.agent, request.group_uuid, request.session_id,
                                                request.receiver)
        return conductor_pb2.ShareGroupKeyResponse(key_share=share)

    @rpc_method
    async def ListGroupSessions(self, request, context):
        self._internal(context)
        return conductor_pb2.ListGroupSessionsResponse(sessions=self._conductor.list_group_sessions(request.agent))
