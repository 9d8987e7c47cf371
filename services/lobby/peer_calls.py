"""call_remote between lobbies, as named pairs: `call_receive_*` sends one Receive* call to
the lobby hosting an agent, each attempt in a fresh signed envelope; `rpc_receive_*`
takes one, checking its envelope before the workflow sees the request."""

import asyncio
import contextlib

from kizuna.v1 import lobby_pb2
from kizuna_node.common.errors import InvalidArgument, KizunaError, NotFound, PermissionDenied, Unavailable, parse
from kizuna_node.common.keys import sign_into
from kizuna_node.common.retry import RetryPolicy, call_with_policy
from kizuna_node.lobby.directory import Directory
from kizuna_node.lobby.envelopes import EnvelopeChecker, seal_envelope
from kizuna_node.lobby.limits import RateLimiter
from kizuna_node.lobby.naming import short

MAX_RECEIVERS = 1000  # receivers (or receipt batches) one call to one lobby carries
LOOKUPS_AT_ONCE = 32  # agent-info look-ups in flight while grouping receivers by lobby


class OutgoingCalls:
    """`remote.call(address, certificate, method, request, timeout)` is the transport to
    other lobbies: the address and certificate are those the receiver's signed agent info names."""

    def __init__(self, directory: Directory, conductor, remote):
        self._directory = directory
        self._conductor = conductor
        self._remote = remote

    async def call_remote(self, caller: bytes, to_agent: bytes, method: str, request, policy: RetryPolicy,
                          first: lobby_pb2.RemoteCall | None = None):
        """Calls `method` on the lobby hosting `to_agent` under the retry policy, each attempt
        in a fresh envelope signed by `caller` (`first`, when given, is the first attempt's,
        signed beforehand); returns (response, attempts) or raises the last error. An agent
        with no agent info is unreachable (Unavailable)."""
        try:
            info = await self._directory.agent_info(to_agent)
        except NotFound as exc:
            raise Unavailable(f"{short(to_agent)} cannot be reached: {exc.message}") from None
        presigned = [first] if first is not None else []

        tries = 0

        async def attempt(timeout):
            nonlocal info, tries
            tries += 1
            if presigned:
                call = presigned.pop()
            else:
                if tries > 1:  # a retry goes where the agent is now (or, not found, where it was)
                    with contextlib.suppress(KizunaError):
                        info = await self._directory.agent_info(to_agent, fresh=True)
                envelope = seal_envelope(method, request, to_agent).SerializeToString()
                call = lobby_pb2.RemoteCall(envelope=await sign_into(self._conductor.sign, caller, envelope))
            return await self._remote.call(info.lobby_address, info.tls_certificate, method, call, timeout)

        return await call_with_policy(policy, f"{method} to {short(to_agent)}", attempt)

    async def by_lobby(self, agents: list[bytes]) -> list[list[bytes]]:
        """The agents grouped by the lobby their agent infos name (address and certificate),
        in the order first named; an agent with no agent info is a group of its own."""
        limit = asyncio.Semaphore(LOOKUPS_AT_ONCE)

        async def where(agent):
            async with limit:
                try:
                    info = await self._directory.agent_info(agent)
                except KizunaError:
                    return agent  # unknown: it goes alone, and fails (or falls back) as such
                return (info.lobby_address, info.tls_certificate)

        groups: dict[object, list[bytes]] = {}
        for agent, key in zip(agents, await asyncio.gather(*(where(a) for a in agents))):
            groups.setdefault(key, []).append(agent)
        return list(groups.values())

    async def call_receive_invite(self, author, to_agent, invite, policy, first=None):
        request = lobby_pb2.ReceiveInviteRequest(to_agent=to_agent, invite=invite)
        return await self.call_remote(author, to_agent, "ReceiveInvite", request, policy, first)

    async def call_receive_group_message(self, author, to_agent, message, policy, first=None):
        request = lobby_pb2.ReceiveGroupMessageRequest(to_agent=to_agent, message=message)
        return await self.call_remote(author, to_agent, "ReceiveGroupMessage", request, policy, first)

    async def call_receive_group_update(self, author, to_agent, update, policy, first=None):
        request = lobby_pb2.ReceiveGroupUpdateRequest(to_agent=to_agent, update=update)
        return await self.call_remote(author, to_agent, "ReceiveGroupUpdate", request, policy, first)

    async def call_receive_receipt(self, author, to_agent, receipts, policy, first=None):
        request = lobby_pb2.ReceiveReceiptRequest(to_agent=to_agent, receipts=receipts)
        return await self.call_remote(author, to_agent, "ReceiveReceipt", request, policy, first)

    async def call_receive_typing(self, author, to_agent, typing, policy, first=None):
        request = lobby_pb2.ReceiveTypingRequest(to_agent=to_agent, typing=typing)
        return await self.call_remote(author, to_agent, "ReceiveTyping", request, policy, first)

    async def call_receive_group_messages(self, author, to_agents, message, policy, first=None):
        """One call carrying a message for several receivers hosted by one lobby (reached
        at the first one's address); the response holds each one's result."""
        request = lobby_pb2.ReceiveGroupMessagesRequest(to_agents=to_agents, message=message)
        return await self.call_remote(author, to_agents[0], "ReceiveGroupMessages", request, policy, first)

    async def call_receive_invites(self, author, to_agents, invite, policy, first=None):
        """One call carrying an invite for several invitees hosted by one lobby."""
        request = lobby_pb2.ReceiveInvitesRequest(to_agents=to_agents, invite=invite)
        return await self.call_remote(author, to_agents[0], "ReceiveInvites", request, policy, first)

    async def call_receive_group_keys(self, author, to_agents, shares, policy):
        """One call carrying key shares for several receivers hosted by one lobby, one each."""
        request = lobby_pb2.ReceiveGroupKeysRequest(to_agents=to_agents, key_shares=shares)
        return await self.call_remote(author, to_agents[0], "ReceiveGroupKeys", request, policy)

    async def call_receive_items(self, items: list[lobby_pb2.OutboxItem], policy: RetryPolicy, first=None):
        """The call for several receivers at one lobby that carries items of their kind
        (a message or an invite, the same for all; or each its own key share)."""
        receivers = [item.receiver for item in items]
        if items[0].kind == "group_key":
            return await self.call_receive_group_keys(items[0].author, receivers, [item.signed for item in items],
                                                      policy)
        if items[0].kind == "invite":
            return await self.call_receive_invites(items[0].author, receivers, items[0].signed, policy, first)
        return await self.call_receive_group_messages(items[0].author, receivers, items[0].signed, policy, first)

    async def call_receive_receipts(self, caller, to_agent, receipts, policy):
        """One call carrying the receipts of several receivers (`caller` among them) for one author."""
        request = lobby_pb2.ReceiveReceiptsRequest(to_agent=to_agent, receipts=receipts)
        return await self.call_remote(caller, to_agent, "ReceiveReceipts", request, policy)

    async def call_receive_item(self, item: lobby_pb2.OutboxItem, policy: RetryPolicy, first=None):
        """The call_receive_* that carries an outbox item of its kind."""
        args = (item.author, item.receiver, item.signed, policy, first)
        if item.kind == "group_key":
            return await self.call_receive_items([item], policy)
        if item.kind == "invite":
            return await self.call_receive_invite(*args)
        if item.kind == "group_update":
            return await self.call_receive_group_update(*args)
        if item.kind == "receipt":
            return await self.call_receive_receipt(*args)
        return await self.call_receive_group_message(*args)

    @staticmethod
    def group_message_envelope(to_agents: list[bytes], unsigned_message) -> bytes:
        """The bytes of a first ReceiveGroupMessage envelope (ReceiveGroupMessages for more
        than one receiver), to be signed with the message itself (which it carries
        unsigned: its signature goes beside it, `item_signature`)."""
        if len(to_agents) == 1:
            request = lobby_pb2.ReceiveGroupMessageRequest(to_agent=to_agents[0], message=unsigned_message)
            return seal_envelope("ReceiveGroupMessage", request, to_agents[0]).SerializeToString()
        request = lobby_pb2.ReceiveGroupMessagesRequest(to_agents=to_agents, message=unsigned_message)
        return seal_envelope("ReceiveGroupMessages", request, to_agents[0]).SerializeToString()


class IncomingCalls:
    """Each `rpc_receive_*` is one Receive* RPC, called by the servicer: the envelope is
    checked first (signature, method, freshness, replay, a target this lobby hosts), then
    the workflow takes the request it carries, with the caller for its own checks."""

    def __init__(self, envelopes: EnvelopeChecker, hosting, receive_rate: RateLimiter, invites, messaging,
                 group_changes, receipts, presence, group_keys):
        self._envelopes = envelopes
        self._hosting = hosting
        self._receive_rate = receive_rate
        self._invites = invites
        self._messaging = messaging
        self._group_changes = group_changes
        self._receipts = receipts
        self._presence = presence
        self._group_keys = group_keys

    async def rpc_receive_invite(self, remote_call: lobby_pb2.RemoteCall) -> None:
        async with self._opened(remote_call, "ReceiveInvite", lobby_pb2.ReceiveInviteRequest, "invite") as opened:
            caller, request = opened
            self._receive_rate.take(caller, "invites from this sender")
            await self._invites.receive_invite(request.to_agent, request.invite, caller=caller)

    async def rpc_receive_group_message(self, remote_call: lobby_pb2.RemoteCall) -> None:
        async with self._opened(remote_call, "ReceiveGroupMessage", lobby_pb2.ReceiveGroupMessageRequest,
                                "message") as opened:
            caller, request = opened
            self._receive_rate.take(caller, "receiving from this sender")
            await self._messaging.receive_group_message(request.to_agent, request.message, caller=caller)

    async def rpc_receive_group_messages(self, remote_call: lobby_pb2.RemoteCall) -> lobby_pb2.ReceiveGroupMessagesResponse:
        async with self._opened(remote_call, "ReceiveGroupMessages", lobby_pb2.ReceiveGroupMessagesRequest,
                                "message") as opened:
            caller, request = opened
            self._receive_rate.take(caller, "receiving from this sender")
            outcomes = await self._messaging.receive_group_messages(list(request.to_agents), request.message,
                                                                    caller=caller)
        return lobby_pb2.ReceiveGroupMessagesResponse(results=results_of(request.to_agents, outcomes))

    async def rpc_receive_invites(self, remote_call: lobby_pb2.RemoteCall) -> lobby_pb2.ReceiveInvitesResponse:
        async with self._opened(remote_call, "ReceiveInvites", lobby_pb2.ReceiveInvitesRequest, "invite") as opened:
            caller, request = opened
            self._receive_rate.take(caller, "invites from this sender")
            outcomes = await self._invites.receive_invites(list(request.to_agents), request.invite, caller=caller)
        return lobby_pb2.ReceiveInvitesResponse(results=results_of(request.to_agents, outcomes))

    async def rpc_receive_receipts(self, remote_call: lobby_pb2.RemoteCall) -> None:
        async with self._opened(remote_call, "ReceiveReceipts", lobby_pb2.ReceiveReceiptsRequest, None) as opened:
            _, request = opened
            if len(request.receipts) > MAX_RECEIVERS:
                raise InvalidArgument(f"at most {MAX_RECEIVERS} receipts batches per call")
            await self._receipts.receive_receipts(request.to_agent, list(request.receipts))

    async def rpc_receive_group_update(self, remote_call: lobby_pb2.RemoteCall) -> None:
        async with self._opened(remote_call, "ReceiveGroupUpdate", lobby_pb2.ReceiveGroupUpdateRequest,
                                "update") as opened:
            caller, request = opened
            await self._group_changes.receive_group_update(request.to_agent, request.update, caller=caller)

    async def rpc_receive_receipt(self, remote_call: lobby_pb2.RemoteCall) -> None:
        async with self._opened(remote_call, "ReceiveReceipt", lobby_pb2.ReceiveReceiptRequest,
                                "receipts") as opened:
            caller, request = opened
            await self._receipts.receive_receipts(request.to_agent, request.receipts, caller=caller)

    async def rpc_receive_typing(self, remote_call: lobby_pb2.RemoteCall) -> None:
        async with self._opened(remote_call, "ReceiveTyping", lobby_pb2.ReceiveTypingRequest, "typing") as opened:
            caller, request = opened
            await self._presence.receive_typing(request.to_agent, request.typing, caller=caller)

    async def rpc_receive_group_keys(self, remote_call: lobby_pb2.RemoteCall) -> lobby_pb2.ReceiveGroupKeysResponse:
        async with self._opened(remote_call, "ReceiveGroupKeys", lobby_pb2.ReceiveGroupKeysRequest, None) as opened:
            caller, request = opened
            self._receive_rate.take(caller, "receiving from this sender")
            outcomes = await self._group_keys.receive_group_keys(list(request.to_agents), list(request.key_shares),
                                                                 caller=caller)
        return lobby_pb2.ReceiveGroupKeysResponse(results=results_of(request.to_agents, outcomes))

    async def rpc_request_group_key(self, remote_call: lobby_pb2.RemoteCall) -> lobby_pb2.RequestGroupKeyResponse:
        async with self._opened(remote_call, "RequestGroupKey", lobby_pb2.RequestGroupKeyRequest, None) as opened:
            caller, request = opened
            self._receive_rate.take(caller, "key requests from this agent")
            share = await self._group_keys.share_on_request(request.to_agent, caller, request)
        return lobby_pb2.RequestGroupKeyResponse(key_share=share)

    @contextlib.asynccontextmanager
    async def _opened(self, remote_call: lobby_pb2.RemoteCall, method: str, request_type, item: str):
        """(caller, request) of a call whose envelope passes every check; the envelope
        counts as used once the block completes (a replay of it is refused from then on,
        and while the block runs)."""
        caller, envelope = self._envelopes.open(remote_call, method)
        try:
            await self._hosting.require_hosted(envelope.target)
        except NotFound:
            raise PermissionDenied("the envelope's target is not an agent this lobby hosts") from None
        request = parse(request_type, envelope.body, "envelope's body")
        if hasattr(request, "to_agents"):  # a call for several receivers: the first is the target
            if not request.to_agents or len(request.to_agents) > MAX_RECEIVERS:
                raise InvalidArgument(f"to_agents names 1 to {MAX_RECEIVERS} receivers")
            if len(set(request.to_agents)) != len(request.to_agents):
                raise InvalidArgument("to_agents names a receiver twice")
            to_agent = request.to_agents[0]
        else:
            to_agent = request.to_agent
        if remote_call.item_signature:
            if item is None:
                raise InvalidArgument(f"{method} carries no item_signature")
            if getattr(request, item).signature:
                raise InvalidArgument(f"the request's {item} is signed already; item_signature must be empty")
            getattr(request, item).signature = remote_call.item_signature
        if to_agent != envelope.target:
            raise PermissionDenied("the call is addressed to another agent than its envelope's target")
        with self._envelopes.in_flight(envelope):
            yield caller, request
            self._envelopes.remember(envelope)


def results_of(to_agents, outcomes) -> list[lobby_pb2.ReceiverResult]:
    """Each receiver's (taken, error or None) as the ReceiverResult a call for several answers."""
    return [lobby_pb2.ReceiverResult(agent=agent, code=error.code if error is not None else "",
                                     message=error.message if error is not None else "")
            for agent, (_, error) in zip(to_agents, outcomes)]
