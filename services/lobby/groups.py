"""The Groups entry and the blocked lists: accepting, blocking, unblocking and deleting a
group, blocking an agent; each a new entry on the agent's source chain."""

from kizuna.v1 import common_pb2, lobby_pb2
from kizuna_node.common import group_state
from kizuna_node.common.errors import InvalidArgument, NotFound
from kizuna_node.common.keys import check_agent_key
from kizuna_node.lobby.source_chain import SourceChain
from kizuna_node.lobby.store import LobbyStore


def group_info_of(invite: common_pb2.Invite, state) -> lobby_pb2.GroupInfo:
    """What the UI is shown of a group: its invite with the updates it carries applied."""
    info = lobby_pb2.GroupInfo(
        group_uuid=invite.group_uuid,
        creator=invite.properties.creator,
        initial_members=invite.initial_members,
        dna_hash=invite.dna_hash,
        timestamp=invite.timestamp,
        state=state,
    )
    set_group_state(info, group_state.apply_chain(invite.properties, invite.updates))
    return info


def set_group_state(info: lobby_pb2.GroupInfo, state: group_state.GroupState) -> None:
    info.name, info.update_seq = state.name, state.seq
    del info.members[:], info.admins[:], info.pinned[:]
    info.members.extend(state.members)
    info.admins.extend(state.admins)
    info.pinned.extend(state.pinned)


def without(values, value) -> list:
    return [v for v in values if v != value]


class Groups:
    def __init__(self, store: LobbyStore, chain: SourceChain):
        self._store = store
        self._chain = chain

    def get_groups(self, agent: bytes) -> tuple[common_pb2.Groups, list[lobby_pb2.GroupInfo]]:
        """The Groups entry and the groups the agent is still in."""
        return self._store.get_groups(agent), [g for g in self._store.list_group_info(agent) if not g.departed]

    def require_group(self, agent: bytes, group_uuid: str) -> lobby_pb2.GroupInfo:
        if not group_uuid:
            raise InvalidArgument("group_uuid is required")
        info = self._store.get_group_info(agent, group_uuid)
        if info is None:
            raise NotFound(f"no group {group_uuid} for this agent")
        return info

    async def _change_groups(self, agent: bytes, group_uuid: str, state, change, extra_entries=(), extra_apply=None):
        """Commits a new Groups entry made by `change(groups)` and sets the group's state."""
        async with self._chain.lock(agent):
            info = self.require_group(agent, group_uuid)
            groups = self._store.get_groups(agent)
            change(groups)
            info.state = state

            def apply(batch):
                self._store.put_groups(batch, agent, groups)
                self._store.put_group_info(batch, agent, info)
                if extra_apply is not None:
                    extra_apply(batch)

            await self._chain.commit(agent, [*extra_entries, ("groups", groups.SerializeToString())], apply)
            return groups

    async def accept_group(self, agent: bytes, group_uuid: str) -> common_pb2.Groups:
        def change(groups):
            if group_uuid not in groups.group_uuids:
                groups.group_uuids.append(group_uuid)
            groups.blocked[:] = without(groups.blocked, group_uuid)

        return await self._change_groups(agent, group_uuid, lobby_pb2.ACCEPTED, change,
                                         extra_apply=lambda batch: self._store.restore_group(batch, agent, group_uuid))

    async def block_group(self, agent: bytes, group_uuid: str) -> common_pb2.Groups:
        def change(groups):
            groups.group_uuids[:] = without(groups.group_uuids, group_uuid)
            if group_uuid not in groups.blocked:
                groups.blocked.append(group_uuid)

        return await self._change_groups(agent, group_uuid, lobby_pb2.BLOCKED, change)

    async def unblock_group(self, agent: bytes, group_uuid: str) -> common_pb2.Groups:
        def change(groups):
            groups.blocked[:] = without(groups.blocked, group_uuid)

        return await self._change_groups(agent, group_uuid, lobby_pb2.INVITED, change)

    async def delete_group(self, agent: bytes, group_uuid: str) -> common_pb2.Groups:
        """Forgets the invite and the group's messages; the group's properties are kept so
        a later message from it can still be checked, and shows the banner again."""
        if self._store.is_deleted_group(agent, group_uuid):
            raise NotFound(f"no group {group_uuid} for this agent")

        def change(groups):
            groups.group_uuids[:] = without(groups.group_uuids, group_uuid)
            groups.blocked[:] = without(groups.blocked, group_uuid)

        return await self._change_groups(
            agent, group_uuid, lobby_pb2.INVITED, change,
            extra_entries=[("delete_invite", group_uuid.encode())],
            extra_apply=lambda batch: self._store.forget_group(batch, agent, group_uuid),
        )

    async def set_agent_blocked(self, agent: bytes, other: bytes, blocked: bool) -> common_pb2.BlockedAgents:
        check_agent_key(other)
        if other == agent:
            raise InvalidArgument(f"an agent cannot {'block' if blocked else 'unblock'} itself")
        async with self._chain.lock(agent):
            current = self._store.get_blocked_agents(agent)
            agents = [a for a in current.agents if a != other] + ([other] if blocked else [])
            updated = common_pb2.BlockedAgents(agents=agents)
            await self._chain.commit(agent, [("blocked_agents", updated.SerializeToString())],
                                     lambda batch: self._store.put_blocked_agents(batch, agent, updated))
            return updated
