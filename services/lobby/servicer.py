"""The Lobby's RPC layer: authenticate, parse and validate, call one workflow, map the result."""

from kizuna.v1 import lobby_pb2, lobby_pb2_grpc
from kizuna_node.common.errors import InvalidArgument, KizunaError, Unauthenticated
from kizuna_node.common.file_chunks import MAX_FILE_BYTES
from kizuna_node.common.rpc import rpc_method
from kizuna_node.lobby.attachments import MAX_PIECE_BYTES
from kizuna_node.lobby.hosting import Hosting
from kizuna_node.lobby.lobby import Lobby

MAX_TOKEN_HINTS = 10_000


def bearer_token(context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("authorization must be 'Bearer <app token>'")
            return token.strip()
    raise Unauthenticated("this call needs 'authorization: Bearer <app token>'")


async def read_on(stream, limit: int = MAX_FILE_BYTES + MAX_PIECE_BYTES) -> None:
    """Reads on what a client still streams (up to `limit` bytes) after its call was refused,
    so that it gets the refusal's status: a call ended while the client still writes reaches
    it as INTERNAL ("Internal error from Core") instead."""
    read = 0
    async for request in stream:
        read += request.ByteSize()
        if read > limit:
            return


class Authenticator:
    """App token -> agent. The conductor is asked on every call, so a revoked token stops
    working at once; the agents of tokens seen before are remembered only as hints, for
    the send path, where the conductor checks the token in the same call that signs."""

    def __init__(self, conductor, hosting: Hosting):
        self._conductor = conductor
        self._hosting = hosting
        self._hints: dict[str, bytes] = {}

    def knows(self, app_token: str) -> bool:
        """Whether the token is a hint now (seen, and not refused since)."""
        return app_token in self._hints

    async def authenticate(self, app_token: str) -> bytes:
        """The agent an app token names (hosted from now on); Unauthenticated when none."""
        try:
            resolved = await self._conductor.resolve_token(app_token)
        except Unauthenticated:
            self._hints.pop(app_token, None)
            raise
        await self._hosting.host_agent(resolved)
        self._hints[app_token] = resolved.agent
        if len(self._hints) > MAX_TOKEN_HINTS:
            self._hints.pop(next(iter(self._hints)))
        return resolved.agent

    async def send_as(self, app_token: str, send):
        """`await send(agent, app_token)` for the agent the token names. For a token seen
        before, `send` is handed the token for the conductor to check as it signs, before
        anything is stored or sent; a refused send costs a separate check, so an
        unauthenticated caller learns nothing more than that."""
        hint = self._hints.get(app_token)
        if hint is None:
            return await send(await self.authenticate(app_token), "")
        try:
            return await send(hint, app_token)
        except Unauthenticated:
            self._hints.pop(app_token, None)
            raise
        except KizunaError:
            if await self.authenticate(app_token) != hint:  # a refused caller learns no more
                raise Unauthenticated("the app token names another agent") from None
            raise


class LobbyServicer(lobby_pb2_grpc.LobbyServicer):
    def __init__(self, lobby: Lobby, authenticator: Authenticator):
        self._lobby = lobby
        self._auth = authenticator

    async def _agent(self, context) -> bytes:
        return await self._auth.authenticate(bearer_token(context))

    @rpc_method
    async def SetUsername(self, request, context):
        agent = await self._agent(context)
        return lobby_pb2.SetUsernameResponse(agent_info=await self._lobby.hosting.set_username(agent, request.username))

    @rpc_method
    async def GetAgentByUsername(self, request, context):
        await self._agent(context)
        info = await self._lobby.hosting.get_agent_by_username(request.username)
        return lobby_pb2.GetAgentByUsernameResponse(agent_info=info)

    @rpc_method
    async def GetGroups(self, request, context):
        groups, details = self._lobby.groups.get_groups(await self._agent(context))
        return lobby_pb2.GetGroupsResponse(groups=groups, details=details)

    @rpc_method
    async def CreateGroup(self, request, context):
        agent = await self._agent(context)
        group, invites = await self._lobby.invites.create_group(agent, request.name, list(request.participants))
        return lobby_pb2.CreateGroupResponse(group=group, invites=invites)

    @rpc_method
    async def AcceptGroup(self, request, context):
        groups = await self._lobby.groups.accept_group(await self._agent(context), request.group_uuid)
        return lobby_pb2.GroupResponse(groups=groups)

    @rpc_method
    async def DeleteGroup(self, request, context):
        groups = await self._lobby.groups.delete_group(await self._agent(context), request.group_uuid)
        return lobby_pb2.GroupResponse(groups=groups)

    @rpc_method
    async def BlockGroup(self, request, context):
        groups = await self._lobby.groups.block_group(await self._agent(context), request.group_uuid)
        return lobby_pb2.GroupResponse(groups=groups)

    @rpc_method
    async def UnblockGroup(self, request, context):
        groups = await self._lobby.groups.unblock_group(await self._agent(context), request.group_uuid)
        return lobby_pb2.GroupResponse(groups=groups)

    @rpc_method
    async def BlockAgent(self, request, context):
        blocked = await self._lobby.groups.set_agent_blocked(await self._agent(context), request.agent, True)
        return lobby_pb2.AgentResponse(blocked_agents=blocked)

    @rpc_method
    async def GetBlockedAgents(self, request, context):
        agent = await self._agent(context)
        return lobby_pb2.AgentResponse(blocked_agents=self._lobby.store.get_blocked_agents(agent))

    @rpc_method
    async def UnblockAgent(self, request, context):
        blocked = await self._lobby.groups.set_agent_blocked(await self._agent(context), request.agent, False)
        return lobby_pb2.AgentResponse(blocked_agents=blocked)

    @rpc_method
    async def SendGroupMessage(self, request, context):
        def send(agent, app_token):
            return self._lobby.transactions.send_group_message(agent, request.transaction_id, request.group_uuid,
                                                               request.payload, request.reply_to, app_token)

        record, outcomes, lobby_calls = await self._auth.send_as(bearer_token(context), send)
        return lobby_pb2.SendGroupMessageResponse(message=record, outcomes=outcomes, lobby_calls=lobby_calls)

    @rpc_method
    async def GetMessages(self, request, context):
        agent = await self._agent(context)
        records, token = self._lobby.history.get_messages(
            agent, request.group_uuid, request.page_size, request.page_token,
            request.cursor_message, request.cursor_time, request.newer, request.author)
        return lobby_pb2.GetMessagesResponse(messages=records, next_page_token=token)

    @rpc_method
    async def GetConversations(self, request, context):
        agent = await self._agent(context)
        return lobby_pb2.GetConversationsResponse(conversations=self._lobby.history.get_conversations(agent))

    @rpc_method
    async def SendFile(self, requests, context):
        agent = await self._agent(context)
        stream = requests.__aiter__()
        first = await anext(stream, None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidArgument("a SendFile stream starts with its header")

        async def pieces():
            async for request in stream:
                if request.WhichOneof("part") != "data":
                    raise InvalidArgument("after its header, a SendFile stream carries data only")
                yield request.data
        try:
            record, outcomes, lobby_calls = await self._lobby.attachments.send_file(agent, first.header, pieces())
        except KizunaError:
            await read_on(stream)
            raise
        return lobby_pb2.SendGroupMessageResponse(message=record, outcomes=outcomes, lobby_calls=lobby_calls)

    @rpc_method
    async def FetchFile(self, request, context):
        agent = await self._agent(context)
        async for chunk in self._lobby.attachments.fetch_file(agent, request.group_uuid, request.message_hash,
                                                              request.attachment):
            yield chunk

    @rpc_method
    async def PinMessage(self, request, context):
        return await self._pin(context, request, True)

    @rpc_method
    async def UnpinMessage(self, request, context):
        return await self._pin(context, request, False)

    async def _pin(self, context, request, pinned: bool):
        agent = await self._agent(context)
        group, outcomes = await self._lobby.group_changes.pin_message(agent, request.group_uuid,
                                                                     request.message_hash, pinned)
        return lobby_pb2.GroupUpdateResponse(group=group, outcomes=outcomes)

    async def _change(self, context, group_uuid, change, participants=(), name=None):
        agent = await self._agent(context)
        group, outcomes = await self._lobby.group_changes.change_group(agent, group_uuid, change, list(participants), name)
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
        marked = await self._lobby.receipts.mark_read(agent, request.group_uuid, list(request.message_hashes))
        return lobby_pb2.MarkReadResponse(marked=marked)

    @rpc_method
    async def SetTyping(self, request, context):
        agent = await self._agent(context)
        return lobby_pb2.SetTypingResponse(told=await self._lobby.presence.set_typing(agent, request.group_uuid, request.typing))

    @rpc_method
    async def GetSourceChain(self, request, context):
        agent = await self._agent(context)
        return lobby_pb2.GetSourceChainResponse(actions=self._lobby.history.get_source_chain(agent, request.from_seq, request.limit))

    @rpc_method
    async def Signals(self, request, context):
        agent = await self._agent(context)
        hub = self._lobby.signals
        subscription = hub.subscribe(agent, request.since)
        try:
            for signal in hub.replay(agent, request.since, subscription.replayed_to):
                yield signal
            yield lobby_pb2.Signal(ready=lobby_pb2.Ready(agent=agent, replayed_to=subscription.replayed_to))
            while (signal := await subscription.next()) is not None:
                if not signal.seq or signal.seq > subscription.replayed_to:
                    yield signal
        finally:
            hub.unsubscribe(agent, subscription)

    @rpc_method
    async def AckSignals(self, request, context):
        kept = self._lobby.signals.ack(await self._agent(context), request.seq)
        return lobby_pb2.AckSignalsResponse(kept=kept)

    @rpc_method
    async def SyncInbox(self, request, context):
        invites, messages = await self._lobby.catch_up.sync_inbox(await self._agent(context))
        return lobby_pb2.SyncInboxResponse(invites=invites, messages=messages)


class LobbyPeerServicer(lobby_pb2_grpc.LobbyPeerServicer):
    """The calls other lobbies make (call_remote), on the peer-facing TLS listener: each
    carries its caller's signed envelope, which `lobby.peer` checks."""

    def __init__(self, lobby: Lobby):
        self._lobby = lobby

    @rpc_method
    async def ReceiveInvite(self, request, context):
        await self._lobby.peer.rpc_receive_invite(request)
        return lobby_pb2.ReceiveInviteResponse()

    @rpc_method
    async def ReceiveGroupMessage(self, request, context):
        await self._lobby.peer.rpc_receive_group_message(request)
        return lobby_pb2.ReceiveGroupMessageResponse()

    @rpc_method
    async def ReceiveGroupMessages(self, request, context):
        return await self._lobby.peer.rpc_receive_group_messages(request)

    @rpc_method
    async def ReceiveInvites(self, request, context):
        return await self._lobby.peer.rpc_receive_invites(request)

    @rpc_method
    async def ReceiveGroupKeys(self, request, context):
        return await self._lobby.peer.rpc_receive_group_keys(request)

    @rpc_method
    async def RequestGroupKey(self, request, context):
        return await self._lobby.peer.rpc_request_group_key(request)

    @rpc_method
    async def ReceiveReceipts(self, request, context):
        await self._lobby.peer.rpc_receive_receipts(request)
        return lobby_pb2.ReceiveReceiptsResponse()

    @rpc_method
    async def ReceiveGroupUpdate(self, request, context):
        await self._lobby.peer.rpc_receive_group_update(request)
        return lobby_pb2.ReceiveGroupUpdateResponse()

    @rpc_method
    async def ReceiveReceipt(self, request, context):
        await self._lobby.peer.rpc_receive_receipt(request)
        return lobby_pb2.ReceiveReceiptResponse()

    @rpc_method
    async def ReceiveTyping(self, request, context):
        await self._lobby.peer.rpc_receive_typing(request)
        return lobby_pb2.ReceiveTypingResponse()
