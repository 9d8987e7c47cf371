"""Creating a group (clone its DNA first; only then commit the Invite and Groups entry and
send the invites, in parallel) and receiving an invite, by call_remote or from the inbox."""

import asyncio
import contextlib
import logging
import secrets
import uuid

from kizuna.v1 import common_pb2, lobby_pb2
from kizuna_node.common import dna, group_state
from kizuna_node.common.errors import InvalidArgument, KizunaError, PermissionDenied, parse
from kizuna_node.common.hashing import now_micros
from kizuna_node.common.keys import sign_into, verify_signed
from kizuna_node.lobby.delivery import Delivery
from kizuna_node.lobby.groups import group_info_of
from kizuna_node.lobby.hosting import Hosting
from kizuna_node.lobby.inbox import Inbox, apply_from_inbox
from kizuna_node.lobby.limits import Limits
from kizuna_node.lobby.signals import SignalHub
from kizuna_node.lobby.source_chain import SourceChain
from kizuna_node.lobby.store import LobbyStore
from kizuna_node.lobby.naming import short

log = logging.getLogger("kizuna.lobby")


class Invites:
    def __init__(self, store: LobbyStore, chain: SourceChain, conductor, hosting: Hosting, delivery: Delivery,
                 inbox: Inbox, signals: SignalHub, background, limits: Limits):
        self._store = store
        self._chain = chain
        self._conductor = conductor
        self._hosting = hosting
        self._delivery = delivery
        self._inbox = inbox
        self._signals = signals
        self._background = background
        self._limits = limits

    async def create_group(self, agent: bytes, name: str, participants: list[str]):
        """Clones the group DNA first; only when that succeeds commits the Invite and the
        Groups entry and sends the invites, in parallel (in-process to the invitees this
        lobby hosts). Returns the group and one outcome per invitee."""
        name = name.strip()
        if not 1 <= len(name) <= self._limits.max_group_name:
            raise InvalidArgument(f"a group name is 1 to {self._limits.max_group_name} characters")
        if not participants:
            raise InvalidArgument("a group needs at least one participant besides its creator")
        if len(participants) >= self._limits.max_members:
            raise InvalidArgument(f"a group has at most {self._limits.max_members} members, its creator included")
        members = [agent, *[m for m in await self._hosting.resolve_participants(participants) if m != agent]]
        if len(members) < 2:
            raise InvalidArgument("a group needs at least one participant besides its creator")
        properties = common_pb2.GroupProperties(
            group_uuid=str(uuid.uuid4()),
            name=name,
            creator=agent,
            initial_members=members,
            network_seed=secrets.token_hex(16),
        )
        cell = await self._conductor.clone_dna(agent, properties)
        invite = common_pb2.Invite(
            group_uuid=properties.group_uuid,
            initial_members=members,
            timestamp=now_micros(),
            properties=properties,
            dna_hash=cell.dna_hash,
        )
        info = group_info_of(invite, lobby_pb2.ACCEPTED)
        invite_bytes = invite.SerializeToString()
        signed_invite = await sign_into(self._conductor.sign, agent, invite_bytes)
        items = [lobby_pb2.OutboxItem(author=agent, receiver=invitee, kind="invite", signed=signed_invite,
                                      group_uuid=properties.group_uuid, space=dna.LOBBY_DNA_HASH)
                 for invitee in members[1:]]
        outbox = self._delivery.outbox
        async with self._chain.lock(agent):
            groups = self._store.get_groups(agent)
            groups.group_uuids.append(properties.group_uuid)

            def apply(batch):  # the group and the invites owed to its members, at once
                self._store.put_group(batch, agent, invite, info)
                self._store.put_groups(batch, agent, groups)
                outbox.in_flight(batch, items)

            await self._chain.commit(agent, [("invite", invite_bytes), ("groups", groups.SerializeToString())], apply)
        return info, await outbox.track(items, self._deliver_invites(agent, signed_invite, items))

    async def _deliver_invites(self, agent: bytes, signed_invite, items) -> list[lobby_pb2.DeliveryOutcome]:
        """The invite to each invitee, in-process to those this lobby hosts, one call per
        other lobby to the rest; one outcome per item, in order."""
        here = [item for item in items if self._hosting.is_hosted(item.receiver)]
        elsewhere = [item for item in items if not self._hosting.is_hosted(item.receiver)]
        taken_here, sent = await asyncio.gather(
            self._delivery.deliver_here(here, lambda invitees: self.receive_invites(invitees, signed_invite, agent)),
            self._delivery.deliver_per_node(elsewhere))
        outcomes = {o.receiver: o for o in [*taken_here, *sent]}
        return [outcomes[item.receiver] for item in items]

    async def receive_invites(self, to_agents, signed_invite, caller: bytes | None = None):
        """receive_invite for several invitees this lobby hosts, at once, each with its own
        outcome: (taken, error or None) in order. The invite is checked once; the invitees'
        clone cells are made at once, and every new invitee's chain commit goes in one
        synced write."""
        outcomes: dict[bytes, tuple[bool, KizunaError | None]] = {}
        invitees = []
        for agent in dict.fromkeys(to_agents):
            try:
                await self._hosting.require_hosted(agent)
                invitees.append(agent)
            except KizunaError as exc:
                outcomes[agent] = (False, exc)
        try:
            body, invite, current = self._check_invite(signed_invite, caller)
        except KizunaError as exc:  # the same for every invitee
            return [outcomes.get(agent, (False, exc)) for agent in to_agents]
        fresh = []
        for agent in invitees:
            if not current.is_member(agent):
                outcomes[agent] = (False, PermissionDenied("the invitee is not a member of the group"))
            elif self._store.get_invite(agent, invite.group_uuid) is not None:
                outcomes[agent] = (False, None)  # a duplicate: already received
            else:
                fresh.append(agent)

        async def clone(agent):
            try:
                await self._conductor.clone_dna(agent, invite.properties, list(invite.updates))
                return agent
            except KizunaError as exc:
                outcomes[agent] = (False, exc)
        cloned = [agent for agent in await asyncio.gather(*(clone(a) for a in fresh)) if agent is not None]
        info = group_info_of(invite, lobby_pb2.INVITED)
        async with contextlib.AsyncExitStack() as locks:
            for agent in sorted(cloned):
                await locks.enter_async_context(self._chain.lock(agent))
            new = []
            for agent in cloned:
                if self._store.get_invite(agent, invite.group_uuid) is not None:
                    outcomes[agent] = (False, None)  # taken meanwhile, by another call
                else:
                    new.append(agent)
            try:
                await self._chain.commit_each([
                    (agent, [("invite", body)], lambda batch, agent=agent: self._store.put_group(batch, agent, invite,
                                                                                                  info))
                    for agent in new])
            except KizunaError as exc:
                for agent in new:
                    outcomes[agent] = (False, exc)
                new = []
        for agent in new:
            outcomes[agent] = (True, None)
            self._signals.emit_signal(agent, lobby_pb2.Signal(
                invite=lobby_pb2.InviteSignal(group=info, inviter=signed_invite.author)))
        if new:
            log.info("%d agents invited to group %s", len(new), invite.group_uuid)
        return [outcomes[agent] for agent in to_agents]

    async def receive_invite(self, to_agent: bytes, signed_invite, caller: bytes | None = None) -> bool:
        """Checks the invite against the group properties its DNA hash proves, clones the
        group's DNA and commits the invite; the group is INVITED until the agent accepts.
        `caller`: who made the call_remote (None for an invite fetched from the DHT).
        False for an invite the agent holds already."""
        taken, error = (await self.receive_invites([to_agent], signed_invite, caller))[0]
        if error is not None:
            raise error
        return taken

    @staticmethod
    def _check_invite(signed_invite, caller: bytes | None):
        """(body, invite, the group as its updates make it) of an invite signed by a member
        of the group its DNA hash proves (and by the caller, if one made the call)."""
        body = verify_signed(signed_invite, "invite")
        if caller is not None and caller != signed_invite.author:
            raise PermissionDenied("the caller is not the inviter")
        invite = parse(common_pb2.Invite, body, "invite")
        properties = invite.properties
        dna.check_group_properties(properties)
        if dna.group_dna_hash(properties) != invite.dna_hash:
            raise PermissionDenied("the invite's DNA hash does not match its group properties")
        if invite.group_uuid != properties.group_uuid or list(invite.initial_members) != list(properties.initial_members):
            raise InvalidArgument("the invite disagrees with its group properties")
        current = group_state.apply_chain(properties, invite.updates)
        if not current.is_member(signed_invite.author):
            raise PermissionDenied("the inviter is not a member of the group")
        return body, invite, current

    async def take_invites(self, agent: bytes, holders_only: bool = False) -> int:
        """Applies the invites waiting in the agent's inbox in the Lobby space; how many
        were new. The inbox not answering is an error (Unavailable, say)."""
        taken = 0
        for signed, retire in await self._inbox.fetch_inbox(agent, "invite", dna.LOBBY_DNA_HASH, holders_only):
            applied = await apply_from_inbox("invite", self.receive_invite(agent, signed))
            if applied is not None:
                taken += applied
                self._background.spawn(retire())
        return taken

    async def take_waiting_invites(self, agent: bytes) -> None:
        """`take_invites`, for a message whose invite may still wait in the DHT: the inbox
        not answering is only logged (the message then waits for its invite)."""
        try:
            await self.take_invites(agent)
        except KizunaError as exc:
            log.info("could not read %s's invites: %s %s", short(agent), exc.code, exc.message)
