"""Typing indicators: told to the group's members online now, one quick try each, never
stored and never queued."""

import asyncio

from kizuna.v1 import common_pb2, lobby_pb2
from kizuna_node.common.errors import FailedPrecondition, KizunaError, PermissionDenied, parse
from kizuna_node.common.hashing import now_micros
from kizuna_node.common.keys import sign_into, verify_signed
from kizuna_node.common.retry import RetryPolicy
from kizuna_node.lobby.groups import Groups
from kizuna_node.lobby.hosting import Hosting
from kizuna_node.lobby.liveness import PeerLiveness
from kizuna_node.lobby.peer_calls import OutgoingCalls
from kizuna_node.lobby.signals import SignalHub
from kizuna_node.lobby.store import LobbyStore


class Presence:
    """`retry_policy`: the lobby's; typing takes one attempt of it, no more."""

    def __init__(self, store: LobbyStore, conductor, hosting: Hosting, groups: Groups, calls: OutgoingCalls,
                 liveness: PeerLiveness, retry_policy: RetryPolicy, signals: SignalHub):
        self._store = store
        self._conductor = conductor
        self._hosting = hosting
        self._groups = groups
        self._calls = calls
        self._liveness = liveness
        self._once = RetryPolicy(attempts=1, attempt_timeout=retry_policy.attempt_timeout,
                                 budget=retry_policy.attempt_timeout)
        self._signals = signals

    async def set_typing(self, agent: bytes, group_uuid: str, typing: bool) -> int:
        """Tells the members online now; how many were told."""
        info = self._groups.require_group(agent, group_uuid)
        if info.departed or info.state != lobby_pb2.ACCEPTED:
            raise FailedPrecondition("accept the group before typing in it")
        signed = await sign_into(self._conductor.sign, agent, common_pb2.Typing(
            group_uuid=group_uuid, agent=agent, typing=typing, timestamp=now_micros()).SerializeToString())

        async def tell(member):
            if self._liveness.recently_failed(member):
                return False
            try:
                await self._calls.call_receive_typing(agent, member, signed, self._once)
                return True
            except KizunaError:
                return False

        return sum(await asyncio.gather(*(tell(m) for m in info.members if m != agent)))

    async def receive_typing(self, to_agent: bytes, signed, caller: bytes | None = None) -> None:
        await self._hosting.require_hosted(to_agent)
        typing = parse(common_pb2.Typing, verify_signed(signed, "typing"), "typing")
        if typing.agent != signed.author or (caller is not None and caller != signed.author):
            raise PermissionDenied("typing is signalled by the typing agent itself")
        info = self._groups.require_group(to_agent, typing.group_uuid)
        if typing.agent not in info.members:
            raise PermissionDenied("the typing agent is not a member of the group")
        if typing.group_uuid in self._store.get_groups(to_agent).blocked:
            return
        self._signals.emit_signal(to_agent, lobby_pb2.Signal(typing=lobby_pb2.TypingSignal(typing=typing)))
