"""Groups that change: an admin's add, remove or rename, a member's leave, and any member's
pin or unpin of a message, as signed
GroupUpdate entries in the group's own space, applied to each member's copy and sent to
every member they concern (an added member gets an invite carrying the chain)."""

import asyncio
import logging

from kizuna.v1 import common_pb2, lobby_pb2
from kizuna_node.common import anchors, dna, group_state
from kizuna_node.common.errors import FailedPrecondition, InvalidArgument, KizunaError, NotFound, PermissionDenied, parse
from kizuna_node.common.hashing import now_micros
from kizuna_node.common.keys import sign_into, verify_signed
from kizuna_node.lobby.delivery import Delivery
from kizuna_node.lobby.directory import Directory, op_of
from kizuna_node.lobby.groups import Groups, set_group_state, without
from kizuna_node.lobby.hosting import Hosting
from kizuna_node.lobby.limits import Limits
from kizuna_node.lobby.signals import SignalHub
from kizuna_node.lobby.source_chain import SourceChain
from kizuna_node.lobby.store import LobbyStore
from kizuna_node.lobby.naming import short

log = logging.getLogger("kizuna.lobby")

MAX_PINS = 100


class GroupChanges:
    def __init__(self, store: LobbyStore, chain: SourceChain, conductor, dht, directory: Directory,
                 hosting: Hosting, groups: Groups, delivery: Delivery, signals: SignalHub, limits: Limits):
        self._store = store
        self._chain = chain
        self._conductor = conductor
        self._dht = dht
        self._directory = directory
        self._hosting = hosting
        self._groups = groups
        self._delivery = delivery
        self._signals = signals
        self._limits = limits
        self._change_locks: dict[bytes, asyncio.Lock] = {}

    def _current_state(self, agent: bytes, group_uuid: str) -> group_state.GroupState:
        invite = self._store.get_invite(agent, group_uuid)
        return group_state.apply_chain(invite.properties, self._store.list_updates(agent, group_uuid))

    async def pin_message(self, agent: bytes, group_uuid: str, message_hash: bytes, pinned: bool):
        """Pins (or unpins) a message of the agent's history for the whole group: a group
        update every member applies. Pinning a pinned message changes nothing."""
        info = self._groups.require_group(agent, group_uuid)
        record = self._store.get_message(agent, message_hash)
        if record is None or record.entry.group_uuid != group_uuid:
            raise NotFound("no such message in this group")
        if pinned == (message_hash in info.pinned):
            if pinned:
                return info, []
            raise NotFound("the message is not pinned")
        if pinned and len(info.pinned) >= MAX_PINS:
            raise FailedPrecondition(f"a group has at most {MAX_PINS} pinned messages; unpin one first")
        return await self.change_group(agent, group_uuid, "pin" if pinned else "unpin", message_hash=message_hash)

    async def change_group(self, agent: bytes, group_uuid: str, change: str, participants=(), name: str | None = None,
                           message_hash: bytes = b""):
        """An admin's add, remove or rename, or the agent's own leave: signed, checked against
        the group's state, published to the group's space (whose holders check it again),
        applied here, and sent to every member it concerns (added ones get an invite)."""
        info = self._groups.require_group(agent, group_uuid)
        if info.departed:
            raise FailedPrecondition("this agent is no longer a member of the group")
        if info.state != lobby_pb2.ACCEPTED and change != "leave":
            raise FailedPrecondition("accept the group before changing it")
        subjects = await self._hosting.resolve_participants(participants)
        if change in ("add", "remove") and not subjects:
            raise InvalidArgument("name at least one participant")
        if change == "add" and len(info.members) + len(subjects) > self._limits.max_members:
            raise InvalidArgument(f"a group has at most {self._limits.max_members} members")
        if change == "leave":
            subjects = [agent]
        async with self._change_locks.setdefault(agent, asyncio.Lock()):
            return await self._make_change(agent, info, change, subjects, name, message_hash)

    async def _make_change(self, agent: bytes, info, change: str, subjects: list[bytes], name: str | None,
                           message_hash: bytes = b""):
        """Read state, sign, publish, apply, tell: one change at a time per agent."""
        group_uuid = info.group_uuid
        state = self._current_state(agent, group_uuid)
        update = group_state.next_update(state, change, subjects, agent, now_micros(),
                                         name.strip() if name is not None else None, message_hash)
        signed = await sign_into(self._conductor.sign, agent, update.SerializeToString())
        new_state, _ = group_state.apply_update(state, signed)  # refused here as every holder would
        await self._publish_update(agent, info.dna_hash, signed, update.seq)
        await self.apply_group_update(agent, signed)
        told = [m for m in dict.fromkeys([*state.members, *new_state.members]) if m != agent]
        added = [m for m in new_state.members if m not in state.members]
        invite = None
        if added:
            old_invite = self._store.get_invite(agent, group_uuid)
            invite = await sign_into(self._conductor.sign, agent, common_pb2.Invite(
                group_uuid=group_uuid, initial_members=old_invite.properties.initial_members, timestamp=now_micros(),
                properties=old_invite.properties, dna_hash=info.dna_hash,
                updates=self._store.list_updates(agent, group_uuid)).SerializeToString())
        outcomes = await asyncio.gather(*(
            self._delivery.deliver(lobby_pb2.OutboxItem(
                author=agent, receiver=member, group_uuid=group_uuid,
                **({"kind": "invite", "signed": invite, "space": dna.LOBBY_DNA_HASH} if member in added else
                   {"kind": "group_update", "signed": signed, "space": info.dna_hash})))
            for member in told
        ))
        if change == "leave":
            await self._leave_space(agent, info)
        return self._store.get_group_info(agent, group_uuid), list(outcomes)

    async def _publish_update(self, agent: bytes, space: bytes, signed: common_pb2.Signed, seq: int) -> None:
        """The update, then its link from the group's updates anchor (which holders accept
        from the update's author even when the update was its leaving)."""
        address = await self._directory.publish_entry(agent, space, group_state.ENTRY_TYPE, signed.SerializeToString())
        try:
            await self._directory.publish_link(agent, space, anchors.group_updates_anchor(space), address,
                                              anchors.group_update_tag(seq))
        except KizunaError as exc:
            # The update stands (every node of the space holds it); only nodes catching up
            # later will not find it by this link.
            log.warning("group update %d stored, but not its link: %s %s", seq, exc.code, exc.message)

    async def _leave_space(self, agent: bytes, info: lobby_pb2.GroupInfo) -> None:
        try:
            await self._conductor.delete_clone_cell(agent, info.dna_hash)
        except KizunaError as exc:
            log.warning("could not delete the clone cell of group %s: %s %s", info.group_uuid, exc.code, exc.message)

    async def apply_group_update(self, agent: bytes, signed: common_pb2.Signed) -> bool:
        """Applies a signed update to the agent's copy of the group; False for one it holds.
        An agent the update removes departs: the group leaves its Groups entry and its UI."""
        update = parse(common_pb2.GroupUpdate, verify_signed(signed, "group update"), "group update")
        async with self._chain.lock(agent):
            info = self._groups.require_group(agent, update.group_uuid)
            state = self._current_state(agent, update.group_uuid)
            if update.seq <= state.seq:
                return False
            state, _ = group_state.apply_update(state, signed)
            set_group_state(info, state)
            departed = not state.is_member(agent)
            groups = self._store.get_groups(agent)
            entries = [("group_update", signed.SerializeToString())]
            if departed:
                info.departed = True
                groups.group_uuids[:] = without(groups.group_uuids, update.group_uuid)
                entries.append(("groups", groups.SerializeToString()))

            def apply(batch):
                self._store.put_update(batch, agent, update.group_uuid, signed)
                self._store.put_group_info(batch, agent, info)
                if departed:
                    self._store.put_groups(batch, agent, groups)

            await self._chain.commit(agent, entries, apply)
        self._signals.emit_signal(agent, lobby_pb2.Signal(group_update=lobby_pb2.GroupUpdateSignal(
            group=info, update=update, author=signed.author)))
        log.info("agent %s: group %s update %d (%s)", short(agent), update.group_uuid, update.seq, update.change)
        return True

    async def receive_group_update(self, to_agent: bytes, signed, caller: bytes | None = None) -> bool:
        await self._hosting.require_hosted(to_agent)
        body = verify_signed(signed, "group update")
        if caller is not None and caller != signed.author:
            raise PermissionDenied("the caller is not the update's author")
        update = parse(common_pb2.GroupUpdate, body, "group update")
        info = self._groups.require_group(to_agent, update.group_uuid)
        try:
            applied = await self.apply_group_update(to_agent, signed)
        except FailedPrecondition:
            applied = await self.refresh_group(to_agent, update.group_uuid)  # missed some: read them all
        if applied and self._store.get_group_info(to_agent, update.group_uuid).departed:
            await self._leave_space(to_agent, info)
        return applied

    async def refresh_group(self, agent: bytes, group_uuid: str) -> bool:
        """Reads the group's updates from its space and applies the ones this agent lacks."""
        info = self._store.get_group_info(agent, group_uuid)
        if info is None:
            return False
        space = info.dna_hash
        try:
            links = await self._dht.get_links(space, anchors.group_updates_anchor(space))
        except KizunaError:
            return False
        applied = False
        for link in anchors.in_update_order(links):
            stored = await self._dht.get(space, op_of(link.create).target)
            if stored is None:
                break
            try:
                applied |= await self.apply_group_update(
                    agent, parse(common_pb2.Signed, op_of(stored).entry, "group update entry"))
            except KizunaError as exc:
                log.info("a group update in the space does not apply: %s %s", exc.code, exc.message)
                break
        return applied
