"""The Lobby's RPC layer: authenticate, parse and validate, call one workflow, map the result."""

from kizuna.v1 import lobby_pb2, lobby_pb2_grpc
from services.common.errors import Unauthenticated
from services.common.rpc import rpc_method
from services.lobby.lobby import Lobby


def bearer_token(context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("authorization must be 'Bearer <app token>'")
            return token.strip()
    raise Unauthenticated("this call needs 'authorization: Bearer <app token>'")


class LobbyServicer(lobby_pb2_grpc.LobbyServicer):
    def __init__(self, lobby: Lobby):
        self._lobby = lobby

    async def _agent(self, context) -> bytes:
        return await self._lobby.authenticate(bearer_token(context))

    @rpc_method
    async def SetUsername(self, request, context):
        agent = await self._agent(context)
        return lobby_pb2.SetUsernameResponse(agent_info=await self._lobby.set_username(agent, request.username))

    @rpc_method
    async def GetAgentByUsername(self, request, context):
        await self._agent(context)
        info = await self._lobby.get_agent_by_username(request.username)
        return lobby_pb2.GetAgentByUsernameResponse(agent_info=info)

    @rpc_method
    async def GetGroups(self, request, context):
        groups, details = self._lobby.get_groups(await self._agent(context))
        return lobby_pb2.GetGroupsResponse(groups=groups, details=details)

    @rpc_method
    async def CreateGroup(self, request, context):
        agent = await self._agent(context)
        group, invites = await self._lobby.create_group(agent, request.name, list(request.participants))
        return lobby_pb2.CreateGroupResponse(group=group, invites=invites)

    @rpc_method
    async def AcceptGroup(self, request, context):
        groups = await self._lobby.accept_group(await self._agent(context), request.group_uuid)
        return lobby_pb2.GroupResponse(groups=groups)

    @rpc_method
    async def DeleteGroup(self, request, context):
        groups = await self._lobby.delete_group(await self._agent(context), request.group_uuid)
        return lobby_pb2.GroupResponse(groups=groups)

    @rpc_method
    async def BlockGroup(self, request, context):
        groups = await self._lobby.block_group(await self._agent(context), request.group_uuid)
        return lobby_pb2.GroupResponse(groups=groups)

    @rpc_method
    async def UnblockGroup(self, request, context):
        groups = await self._lobby.unblock_group(await self._agent(context), request.group_uuid)
        return lobby_pb2.GroupResponse(groups=groups)

    @rpc_method
    async def BlockAgent(self, request, context):
        blocked = await self._lobby.set_agent_blocked(await self._agent(context), request.agent, True)
        return lobby_pb2.AgentResponse(blocked_agents=blocked)

    @rpc_method
    async def UnblockAgent(self, request, context):
        blocked = await self._lobby.set_agent_blocked(await self._agent(context), request.agent, False)
        return lobby_pb2.AgentResponse(blocked_agents=blocked)

    @rpc_method
    async def SendGroupMessage(self, request, context):
        record, outcomes = await self._lobby.send_group_message_as(bearer_token(context), request.group_uuid,
                                                                   request.payload, request.reply_to)
        return lobby_pb2.SendGroupMessageResponse(message=record, outcomes=outcomes)

    @rpc_method
    async def GetMessages(self, request, context):
        agent = await self._agent(context)
        records, token = self._lobby.get_messages(
            agent, request.group_uuid, request.page_size, request.page_token,
            request.cursor_message, request.cursor_time, request.newer, request.author)
        return lobby_pb2.GetMessagesResponse(messages=records, next_page_token=token)

    @rpc_method
    async def GetConversations(self, request, context):
        agent = await self._agent(context)
        return lobby_pb2.GetConversationsResponse(conversations=self._lobby.get_conversations(agent))

    async def _change(self, context, group_uuid, change, participants=(), name=None):
        agent = await self._agent(context)
        group, outcomes = await self._lobby.change_group(agent, group_uuid, change, list(participants), name)
        return lobby_pb2.GroupUpdateResponse(group=group, outcomes=outcomes)

    @rpc_method
    async def AddMembers(self, request, context):
        return await self._change(context, request.group_uuid, "add", request.participants)

    @rpc_method
    async def RemoveMembers(self, request, context):
        return await self._change(context, request.group_uuid, "remove", request.participants)

    @rpc_method
    async def RenameGroup(self, request, context):
        return await self._change(context, request.group_uuid, "rename", name=request.name)

    @rpc_method
    async def LeaveGroup(self, request, context):
        return await self._change(context, request.group_uuid, "leave")

    @rpc_method
    async def MarkRead(self, request, context):
        agent = await self._agent(context)
        marked = await self._lobby.mark_read(agent, request.group_uuid, list(request.message_hashes))
        return lobby_pb2.MarkReadResponse(marked=marked)

    @rpc_method
    async def SetTyping(self, request, context):
        agent = await self._agent(context)
        return lobby_pb2.SetTypingResponse(told=await self._lobby.set_typing(agent, request.group_uuid, request.typing))

    @rpc_method
    async def GetSourceChain(self, request, context):
        agent = await self._agent(context)
        return lobby_pb2.GetSourceChainResponse(actions=self._lobby.get_source_chain(agent, request.from_seq, request.limit))

    @rpc_method
    async def Signals(self, request, context):
        agent = await self._agent(context)
        subscription = self._lobby.signals.subscribe(agent)
        try:
            yield lobby_pb2.Signal(ready=lobby_pb2.Ready(agent=agent))
            while True:
                signal = await subscription.next()
                if signal is None:
                    break
                yield signal
        finally:
            self._lobby.signals.unsubscribe(agent, subscription)

    @rpc_method
    async def SyncInbox(self, request, context):
        invites, messages = await self._lobby.sync_inbox(await self._agent(context))
        return lobby_pb2.SyncInboxResponse(invites=invites, messages=messages)

    @rpc_method
    async def ReceiveInvite(self, request, context):
        await self._lobby.receive_remote("ReceiveInvite", request)
        return lobby_pb2.ReceiveInviteResponse()

    @rpc_method
    async def ReceiveGroupMessage(self, request, context):
        await self._lobby.receive_remote("ReceiveGroupMessage", request)
        return lobby_pb2.ReceiveGroupMessageResponse()

    @rpc_method
    async def ReceiveGroupUpdate(self, request, context):
        await self._lobby.receive_remote("ReceiveGroupUpdate", request)
        return lobby_pb2.ReceiveGroupUpdateResponse()

    @rpc_method
    async def ReceiveReceipt(self, request, context):
        await self._lobby.receive_remote("ReceiveReceipt", request)
        return lobby_pb2.ReceiveReceiptResponse()

    @rpc_method
    async def ReceiveTyping(self, request, context):
        await self._lobby.receive_remote("ReceiveTyping", request)
        return lobby_pb2.ReceiveTypingResponse()
