"""The Lobby DNA's domain logic for every agent this node hosts: groups, invites, group
messages and the seed's receive rules, blocking, and history.

Workflows are named <verb>_<noun>. Outgoing calls go through the ports handed in
(conductor, DHT, other lobbies), so nothing here imports grpc.
"""

import asyncio
import base64
import binascii
import logging
import re
import secrets
import uuid

from kizuna.v1 import common_pb2, group_dht_pb2, lobby_pb2
from services.common import anchors, dna, group_state
from services.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    KizunaError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from services.common.hashing import blake2b_256, now_micros
from services.common.keys import check_agent_key, verify_signed
from services.common.retry import RetryPolicy, call_with_policy, is_transient
from services.common.sealing import seal, sealed_aad
from services.lobby.directory import Directory, op_of
from services.lobby.envelopes import EnvelopeChecker, seal_envelope
from services.lobby.limits import Limits, RateLimiter
from services.lobby.liveness import PeerLiveness
from services.lobby.outbox import Outbox
from services.lobby.signals import SignalHub
from services.lobby.source_chain import SourceChain
from services.lobby.store import LobbyStore, group_key
from services.common.store import u64

log = logging.getLogger("kizuna.lobby")

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
DEFAULT_PAGE = 50
# How items fetched from an inbox are put in order before they are applied.
SORT_KEYS = {
    "message": lambda body: parse(common_pb2.MessageEntry, body, "message").time_sent,
    "group_update": lambda body: parse(common_pb2.GroupUpdate, body, "group update").seq,
}
FETCH_CONCURRENCY = 32
DECRYPT_BATCH = 100  # sealed items per conductor call (each at most a payload's size)
MAX_TOKEN_HINTS = 10_000
RECEIPT_BATCH_SECONDS = 0.25
RECEIPT_RETRY_SECONDS = 5.0  # after a batch of receipts could not go out
DEFAULT_CHAIN_PAGE, MAX_CHAIN_PAGE = 100, 1000


def short(agent: bytes) -> str:
    return base64.b64encode(agent).decode()[:8]


def parse(message_type, data: bytes, what: str):
    """`data` as a `message_type`, or InvalidArgument naming `what`."""
    try:
        return message_type.FromString(data)
    except Exception:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise InvalidArgument(f"the {what} does not parse") from None


def _set_group_state(info: lobby_pb2.GroupInfo, state: group_state.GroupState) -> None:
    info.name, info.update_seq = state.name, state.seq
    del info.members[:], info.admins[:]
    info.members.extend(state.members)
    info.admins.extend(state.admins)


def parse_agent_ref(ref: str) -> bytes | None:
    """A participant given as a base64 agent key, else None (then it is a username)."""
    try:
        raw = base64.b64decode(ref, validate=True)
    except (binascii.Error, ValueError):
        try:
            raw = base64.urlsafe_b64decode(ref)
        except (binascii.Error, ValueError):
            return None
    return raw if len(raw) == 32 else None


class Lobby:
    """`conductor`, `dht` and `remote` are the ports of services.lobby.ports (or fakes in
    unit tests); `address` is where other lobbies reach this one; `dht_address` is what
    this node's agent infos advertise for its DHT."""

    def __init__(self, store: LobbyStore, conductor, dht, remote, address: str, dht_address: str,
                 retry_policy: RetryPolicy, liveness_window: float = 5.0, outbox: Outbox | None = None,
                 limits: Limits = Limits(), receipt_batch_seconds: float = RECEIPT_BATCH_SECONDS):
        self.store = store
        self.receipt_batch_seconds = receipt_batch_seconds
        self.receipt_retry_seconds = RECEIPT_RETRY_SECONDS
        self.conductor = conductor
        self.dht = dht
        self.remote = remote
        self.address = address
        self.dht_address = dht_address
        self.retry_policy = retry_policy
        self.signals = SignalHub()
        self.chain = SourceChain(store, conductor.sign)
        self.directory = Directory(dht, conductor.sign)
        self.liveness = PeerLiveness(liveness_window)
        self.outbox = outbox or Outbox(store)
        self.limits = limits
        self.envelopes = EnvelopeChecker(store.nonces, limits.envelope_window_seconds)
        self._send_rate = RateLimiter(limits.messages_per_second, limits.message_burst)
        self._receive_rate = RateLimiter(limits.messages_per_second, limits.message_burst)
        self._sync_locks: dict[bytes, asyncio.Lock] = {}
        self._hosted: dict[bytes, object] = {}
        self._tasks: set[asyncio.Task] = set()
        self._retire_gate = asyncio.Semaphore(FETCH_CONCURRENCY)
        self._receipts: dict[tuple, list] = {}
        self._token_hints: dict[str, bytes] = {}
        self._receive_locks: dict[bytes, asyncio.Lock] = {}
        self._change_locks: dict[bytes, asyncio.Lock] = {}

    # hosting and authentication

    async def host_agents(self) -> None:
        """Joins the Lobby space and publishes agent infos for every agent of the conductor."""
        for agent in await self.conductor.list_agents():
            await self.host_agent(agent)

    async def host_agent(self, agent) -> None:
        if agent.agent in self._hosted:
            return
        await self.dht.join_space(dna.LOBBY_DNA_HASH, agent.agent, dna.LOBBY_TEMPLATE)
        await self.directory.publish_agent_info(
            agent.agent, agent.encryption_key, self.store.get_username(agent.agent), self.address, self.dht_address
        )
        self._hosted[agent.agent] = agent
        log.info("hosting agent %s", short(agent.agent))

    async def republish_agent_infos(self) -> None:
        """Publishes every hosted agent's info again: well before the last one expires, and
        so that it sits on the holders the space's current nodes would ask."""
        for agent in list(self._hosted.values()):
            try:
                await self.directory.publish_agent_info(agent.agent, agent.encryption_key,
                                                        self.store.get_username(agent.agent), self.address,
                                                        self.dht_address)
            except KizunaError as exc:
                log.info("could not republish agent %s's info: %s %s", short(agent.agent), exc.code, exc.message)

    async def authenticate(self, app_token: str) -> bytes:
        """The agent an app token names; Unauthenticated when none. Asked of the conductor
        on every call, so a revoked token stops working at once (and is no hint any more)."""
        try:
            resolved = await self.conductor.resolve_token(app_token)
        except KizunaError as exc:
            if isinstance(exc, Unauthenticated):
                self._token_hints.pop(app_token, None)
            raise
        if resolved.agent not in self._hosted:
            await self.host_agent(resolved)
        self._token_hints[app_token] = resolved.agent
        if len(self._token_hints) > MAX_TOKEN_HINTS:
            self._token_hints.pop(next(iter(self._token_hints)))
        return resolved.agent

    async def send_group_message_as(self, app_token: str, group_uuid: str, payload: str, reply_to: bytes = b""):
        """SendGroupMessage for the agent an app token names. For a token seen before, the
        conductor checks it in the same call that signs the message, before anything is
        stored or sent; a refused message costs a separate check, so an unauthenticated
        caller learns nothing more than that."""
        hint = self._token_hints.get(app_token)
        if hint is None:
            return await self.send_group_message(await self.authenticate(app_token), group_uuid, payload, reply_to)
        try:
            return await self.send_group_message(hint, group_uuid, payload, reply_to, app_token=app_token)
        except KizunaError as exc:
            if isinstance(exc, Unauthenticated):
                self._token_hints.pop(app_token, None)
                raise
            if await self.authenticate(app_token) != hint:  # a refused caller learns no more
                raise Unauthenticated("the app token names another agent") from None
            raise

    async def require_hosted(self, agent: bytes) -> None:
        check_agent_key(agent, "to_agent")
        if agent not in self._hosted:
            for candidate in await self.conductor.list_agents():
                if candidate.agent == agent:
                    await self.host_agent(candidate)
                    return
            raise NotFound("that agent is not hosted by this lobby")

    async def display_name(self, agent: bytes) -> str:
        """The agent's username where it published one, else a short form of its key."""
        try:
            return (await self.directory.agent_info(agent)).username or short(agent)
        except KizunaError:
            return short(agent)

    # usernames

    async def set_username(self, agent: bytes, username: str):
        if not USERNAME_RE.match(username):
            raise InvalidArgument("a username is 1 to 32 characters: a-z, 0-9, and _ . - after the first")
        owner = await self.directory.username_owner(username)
        if owner is not None and owner != agent:
            raise AlreadyExists(f"the username '{username}' is taken")
        self.store.profiles.put(agent, username.encode())
        hosted = self._hosted[agent]
        return await self.directory.publish_agent_info(
            agent, hosted.encryption_key, username, self.address, self.dht_address
        )

    async def get_agent_by_username(self, username: str):
        if not USERNAME_RE.match(username):
            raise InvalidArgument(f"'{username}' is not a valid username")
        owner = await self.directory.username_owner(username)
        if owner is None:
            raise NotFound(f"no agent has the username '{username}'")
        return await self.directory.agent_info(owner)

    # groups

    def get_groups(self, agent: bytes) -> tuple[common_pb2.Groups, list[lobby_pb2.GroupInfo]]:
        """The Groups entry and the groups the agent is still in."""
        return self.store.get_groups(agent), [g for g in self.store.list_group_info(agent) if not g.departed]

    async def resolve_participant(self, ref: str) -> bytes:
        key = parse_agent_ref(ref)
        if key is not None:
            return key
        return (await self.get_agent_by_username(ref)).agent

    async def create_group(self, agent: bytes, name: str, participants: list[str]):
        """Clones the group DNA first; only when that succeeds commits the Invite and the
        Groups entry and sends the invites, in parallel. Returns the group and one outcome
        per invitee."""
        name = name.strip()
        if not 1 <= len(name) <= self.limits.max_group_name:
            raise InvalidArgument(f"a group name is 1 to {self.limits.max_group_name} characters")
        if not participants:
            raise InvalidArgument("a group needs at least one participant besides its creator")
        if len(participants) >= self.limits.max_members:
            raise InvalidArgument(f"a group has at most {self.limits.max_members} members, its creator included")
        members = [agent]
        for ref in participants:
            key = await self.resolve_participant(ref)
            if key not in members:
                members.append(key)
        if len(members) < 2:
            raise InvalidArgument("a group needs at least one participant besides its creator")
        properties = common_pb2.GroupProperties(
            group_uuid=str(uuid.uuid4()),
            name=name,
            creator=agent,
            initial_members=members,
            network_seed=secrets.token_hex(16),
        )
        cell = await self.conductor.clone_dna(agent, properties)
        invite = common_pb2.Invite(
            group_uuid=properties.group_uuid,
            initial_members=members,
            timestamp=now_micros(),
            properties=properties,
            dna_hash=cell.dna_hash,
        )
        info = self._group_info(invite, lobby_pb2.ACCEPTED)
        invite_bytes = invite.SerializeToString()
        signed_invite = common_pb2.Signed(body=invite_bytes, signature=await self.conductor.sign(agent, invite_bytes),
                                          author=agent)
        async with self.chain.lock(agent):
            groups = self.store.get_groups(agent)
            groups.group_uuids.append(properties.group_uuid)

            def apply(batch):
                self._put_group(batch, agent, invite, info, groups)

            await self.chain.commit(agent, [("invite", invite_bytes), ("groups", groups.SerializeToString())], apply)
        outcomes = await asyncio.gather(*(
            self.deliver(lobby_pb2.OutboxItem(
                author=agent, receiver=invitee, kind="invite", signed=signed_invite,
                group_uuid=properties.group_uuid, space=dna.LOBBY_DNA_HASH))
            for invitee in members[1:]
        ))
        return info, list(outcomes)

    def _group_info(self, invite: common_pb2.Invite, state) -> lobby_pb2.GroupInfo:
        current = group_state.apply_chain(invite.properties, invite.updates)
        info = lobby_pb2.GroupInfo(
            group_uuid=invite.group_uuid,
            creator=invite.properties.creator,
            initial_members=invite.initial_members,
            dna_hash=invite.dna_hash,
            timestamp=invite.timestamp,
            state=state,
        )
        _set_group_state(info, current)
        return info

    def _put_group(self, batch, agent, invite, info, groups) -> None:
        gk = agent + group_key(invite.group_uuid)
        for signed in invite.updates:
            seq = common_pb2.GroupUpdate.FromString(signed.body).seq
            batch.put(self.store.updates, gk + u64(seq), signed.SerializeToString())
        batch.put(self.store.invites, gk, invite.SerializeToString())
        batch.put(self.store.group_info, gk, info.SerializeToString())
        batch.delete(self.store.hidden, gk)
        if groups is not None:
            batch.put(self.store.groups, agent, groups.SerializeToString())

    async def receive_invite(self, to_agent: bytes, signed_invite, caller: bytes | None = None) -> bool:
        """`caller`: who made the call_remote (None for an invite fetched from the DHT)."""
        await self.require_hosted(to_agent)
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
        if not current.is_member(to_agent):
            raise PermissionDenied("the invitee is not a member of the group")
        if self.store.get_invite(to_agent, invite.group_uuid) is not None:
            return False  # a duplicate: already received
        await self.conductor.clone_dna(to_agent, properties, list(invite.updates))
        info = self._group_info(invite, lobby_pb2.INVITED)
        async with self.chain.lock(to_agent):
            if self.store.get_invite(to_agent, invite.group_uuid) is not None:
                return False

            def apply(batch):
                self._put_group(batch, to_agent, invite, info, None)

            await self.chain.commit(to_agent, [("invite", body)], apply)
        self.signals.emit_signal(to_agent, lobby_pb2.Signal(
            invite=lobby_pb2.InviteSignal(group=info, inviter=signed_invite.author)))
        log.info("agent %s invited to group %s", short(to_agent), invite.group_uuid)
        return True

    def _require_group(self, agent: bytes, group_uuid: str) -> lobby_pb2.GroupInfo:
        if not group_uuid:
            raise InvalidArgument("group_uuid is required")
        info = self.store.get_group_info(agent, group_uuid)
        if info is None:
            raise NotFound(f"no group {group_uuid} for this agent")
        return info

    async def _change_groups(self, agent: bytes, group_uuid: str, state, change, extra_entries=(), extra_apply=None):
        """Commits a new Groups entry made by `change(groups)` and sets the group's state."""
        async with self.chain.lock(agent):
            info = self._require_group(agent, group_uuid)
            groups = self.store.get_groups(agent)
            change(groups)
            info.state = state

            def apply(batch):
                batch.put(self.store.groups, agent, groups.SerializeToString())
                batch.put(self.store.group_info, agent + group_key(group_uuid), info.SerializeToString())
                if extra_apply is not None:
                    extra_apply(batch)

            await self.chain.commit(agent, [*extra_entries, ("groups", groups.SerializeToString())], apply)
            return groups

    @staticmethod
    def _without(values, value) -> list:
        return [v for v in values if v != value]

    async def accept_group(self, agent: bytes, group_uuid: str) -> common_pb2.Groups:
        def change(groups):
            if group_uuid not in groups.group_uuids:
                groups.group_uuids.append(group_uuid)
            groups.blocked[:] = self._without(groups.blocked, group_uuid)

        return await self._change_groups(
            agent, group_uuid, lobby_pb2.ACCEPTED, change,
            extra_apply=lambda batch: batch.delete(self.store.hidden, agent + group_key(group_uuid)))

    async def block_group(self, agent: bytes, group_uuid: str) -> common_pb2.Groups:
        def change(groups):
            groups.group_uuids[:] = self._without(groups.group_uuids, group_uuid)
            if group_uuid not in groups.blocked:
                groups.blocked.append(group_uuid)

        return await self._change_groups(agent, group_uuid, lobby_pb2.BLOCKED, change)

    async def unblock_group(self, agent: bytes, group_uuid: str) -> common_pb2.Groups:
        def change(groups):
            groups.blocked[:] = self._without(groups.blocked, group_uuid)

        return await self._change_groups(agent, group_uuid, lobby_pb2.INVITED, change)

    async def delete_group(self, agent: bytes, group_uuid: str) -> common_pb2.Groups:
        """Forgets the invite and the group's messages; the group's properties are kept so
        a later message from it can still be checked, and shows the banner again."""
        if self.store.is_hidden(agent, group_uuid):
            raise NotFound(f"no group {group_uuid} for this agent")

        def change(groups):
            groups.group_uuids[:] = self._without(groups.group_uuids, group_uuid)
            groups.blocked[:] = self._without(groups.blocked, group_uuid)

        def forget(batch):
            batch.put(self.store.hidden, agent + group_key(group_uuid), b"")
            for key in self.store.message_keys(agent, group_uuid):
                batch.delete(self.store.messages, key)

        return await self._change_groups(
            agent, group_uuid, lobby_pb2.INVITED, change,
            extra_entries=[("delete_invite", group_uuid.encode())], extra_apply=forget,
        )

    # background work

    def _background(self, coro) -> None:
        """Work the caller need not wait for (a receipt going back, say)."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # group changes: membership and name as signed updates in the group's own space

    def _current_state(self, agent: bytes, group_uuid: str) -> group_state.GroupState:
        invite = self.store.get_invite(agent, group_uuid)
        return group_state.apply_chain(invite.properties, self.store.list_updates(agent, group_uuid))

    async def _publish_update(self, agent: bytes, space: bytes, signed: common_pb2.Signed, seq: int) -> None:
        """The update, then its link from the group's updates anchor (which holders accept
        from the update's author even when the update was its leaving)."""
        address = await self.directory.publish_entry(agent, space, group_state.ENTRY_TYPE, signed.SerializeToString())
        try:
            await self.directory.publish_link(agent, space, anchors.group_updates_anchor(space), address, u64(seq))
        except KizunaError as exc:
            # The update stands (every node of the space holds it); only nodes catching up
            # later will not find it by this link.
            log.warning("group update %d stored, but not its link: %s %s", seq, exc.code, exc.message)

    async def change_group(self, agent: bytes, group_uuid: str, change: str, participants=(), name: str | None = None):
        """An admin's add, remove or rename, or the agent's own leave: signed, checked against
        the group's state, published to the group's space (whose holders check it again),
        applied here, and sent to every member it concerns (added ones get an invite)."""
        info = self._require_group(agent, group_uuid)
        if info.departed:
            raise FailedPrecondition("this agent is no longer a member of the group")
        if info.state != lobby_pb2.ACCEPTED and change != "leave":
            raise FailedPrecondition("accept the group before changing it")
        subjects = []
        for ref in participants:
            key = await self.resolve_participant(ref)
            if key not in subjects:
                subjects.append(key)
        if change in ("add", "remove") and not subjects:
            raise InvalidArgument("name at least one participant")
        if change == "add" and len(info.members) + len(subjects) > self.limits.max_members:
            raise InvalidArgument(f"a group has at most {self.limits.max_members} members")
        if change == "leave":
            subjects = [agent]
        async with self._change_locks.setdefault(agent, asyncio.Lock()):
            return await self._make_change(agent, info, change, subjects, name)

    async def _make_change(self, agent: bytes, info, change: str, subjects: list[bytes], name: str | None):
        """Read state, sign, publish, apply, tell: one change at a time per agent."""
        group_uuid = info.group_uuid
        state = self._current_state(agent, group_uuid)
        update = group_state.next_update(state, change, subjects, agent, now_micros(),
                                         name.strip() if name is not None else None)
        body = update.SerializeToString()
        signed = common_pb2.Signed(body=body, signature=await self.conductor.sign(agent, body), author=agent)
        new_state, _ = group_state.apply_update(state, signed)  # refused here as every holder would
        await self._publish_update(agent, info.dna_hash, signed, update.seq)
        await self._apply_group_update(agent, signed)
        told = [m for m in dict.fromkeys([*state.members, *new_state.members]) if m != agent]
        added = [m for m in new_state.members if m not in state.members]
        invite = None
        if added:
            old_invite = self.store.get_invite(agent, group_uuid)
            invite_body = common_pb2.Invite(
                group_uuid=group_uuid, initial_members=old_invite.properties.initial_members, timestamp=now_micros(),
                properties=old_invite.properties, dna_hash=info.dna_hash,
                updates=self.store.list_updates(agent, group_uuid)).SerializeToString()
            invite = common_pb2.Signed(body=invite_body, signature=await self.conductor.sign(agent, invite_body),
                                       author=agent)
        outcomes = await asyncio.gather(*(
            self.deliver(lobby_pb2.OutboxItem(
                author=agent, receiver=member, group_uuid=group_uuid,
                **({"kind": "invite", "signed": invite, "space": dna.LOBBY_DNA_HASH} if member in added else
                   {"kind": "group_update", "signed": signed, "space": info.dna_hash})))
            for member in told
        ))
        if change == "leave":
            await self._leave_space(agent, info)
        return self.store.get_group_info(agent, group_uuid), list(outcomes)

    async def _leave_space(self, agent: bytes, info: lobby_pb2.GroupInfo) -> None:
        try:
            await self.conductor.delete_clone_cell(agent, info.dna_hash)
        except KizunaError as exc:
            log.warning("could not delete the clone cell of group %s: %s %s", info.group_uuid, exc.code, exc.message)

    async def _apply_group_update(self, agent: bytes, signed: common_pb2.Signed) -> bool:
        """Applies a signed update to the agent's copy of the group; False for one it holds.
        An agent the update removes departs: the group leaves its Groups entry and its UI."""
        update = parse(common_pb2.GroupUpdate, verify_signed(signed, "group update"), "group update")
        async with self.chain.lock(agent):
            info = self._require_group(agent, update.group_uuid)
            state = self._current_state(agent, update.group_uuid)
            if update.seq <= state.seq:
                return False
            state, _ = group_state.apply_update(state, signed)
            _set_group_state(info, state)
            departed = not state.is_member(agent)
            groups = self.store.get_groups(agent)
            entries = [("group_update", signed.SerializeToString())]
            if departed:
                info.departed = True
                groups.group_uuids[:] = self._without(groups.group_uuids, update.group_uuid)
                entries.append(("groups", groups.SerializeToString()))
            gk = agent + group_key(update.group_uuid)

            def apply(batch):
                batch.put(self.store.updates, gk + u64(update.seq), signed.SerializeToString())
                batch.put(self.store.group_info, gk, info.SerializeToString())
                if departed:
                    batch.put(self.store.groups, agent, groups.SerializeToString())

            await self.chain.commit(agent, entries, apply)
        self.signals.emit_signal(agent, lobby_pb2.Signal(group_update=lobby_pb2.GroupUpdateSignal(
            group=info, update=update, author=signed.author)))
        log.info("agent %s: group %s update %d (%s)", short(agent), update.group_uuid, update.seq, update.change)
        return True

    async def receive_group_update(self, to_agent: bytes, signed, caller: bytes | None = None) -> bool:
        await self.require_hosted(to_agent)
        body = verify_signed(signed, "group update")
        if caller is not None and caller != signed.author:
            raise PermissionDenied("the caller is not the update's author")
        update = parse(common_pb2.GroupUpdate, body, "group update")
        info = self._require_group(to_agent, update.group_uuid)
        try:
            applied = await self._apply_group_update(to_agent, signed)
        except FailedPrecondition:
            applied = await self.refresh_group(to_agent, update.group_uuid)  # missed some: read them all
        if applied and self.store.get_group_info(to_agent, update.group_uuid).departed:
            await self._leave_space(to_agent, info)
        return applied

    async def refresh_group(self, agent: bytes, group_uuid: str) -> bool:
        """Reads the group's updates from its space and applies the ones this agent lacks."""
        info = self.store.get_group_info(agent, group_uuid)
        if info is None:
            return False
        space = info.dna_hash
        try:
            links = await self.dht.get_links(space, anchors.group_updates_anchor(space))
        except KizunaError:
            return False
        applied = False
        for link in sorted(links, key=lambda l: op_of(l.create).tag):
            stored = await self.dht.get(space, op_of(link.create).target)
            if stored is None:
                break
            try:
                applied |= await self._apply_group_update(
                    agent, parse(common_pb2.Signed, op_of(stored).entry, "group update entry"))
            except KizunaError as exc:
                log.info("a group update in the space does not apply: %s %s", exc.code, exc.message)
                break
        return applied

    # receipts and typing

    def _owe_receipt(self, batch, agent: bytes, entry, message_hash: bytes, space: bytes, read: bool = False):
        """The seed's time_received (and, once the UI showed it, the read time) goes back to
        the author. Recorded in `batch`, with the message or the read mark it is for; it
        goes out (`_queue_receipt`) once that batch is written. Returns what to queue."""
        receipt = common_pb2.Receipt(message_hash=message_hash, group_uuid=entry.group_uuid, receiver=agent,
                                     delivered_at=entry.time_received, read_at=now_micros() if read else 0)
        return agent, entry.author, space, receipt, self.store.owe_receipt(batch, agent, entry.author, space, receipt)

    def _queue_receipt(self, agent: bytes, author: bytes, space: bytes, receipt, due_key: bytes) -> None:
        """Receipts for one author that come due together travel together, signed once,
        with the same fallback as a message."""
        key = (agent, author, space)
        pending = self._receipts.get(key)
        if pending is None:
            pending = self._receipts[key] = []
            self._background(self._flush_receipts(key))
        pending.append((receipt, due_key))

    def resume_receipts(self) -> int:
        """Queues every receipt owed from before a restart; how many."""
        owed = list(self.store.owed_receipts())
        for due_key, agent, due in owed:
            self._queue_receipt(agent, due.author, due.space, due.receipt, due_key)
        return len(owed)

    async def _flush_receipts(self, key) -> None:
        await asyncio.sleep(self.receipt_batch_seconds)
        agent, author, space = key
        queued = self._receipts.pop(key)
        receipts = [receipt for receipt, _ in queued]
        body = common_pb2.Receipts(receipts=receipts).SerializeToString()
        try:
            signed = common_pb2.Signed(body=body, signature=await self.conductor.sign(agent, body), author=agent)
            await self.deliver(lobby_pb2.OutboxItem(author=agent, receiver=author, kind="receipt", signed=signed,
                                                    group_uuid=receipts[0].group_uuid, space=space))
            # Delivered, stored in the DHT, queued in the outbox or refused: owed no more.
            # Not synced: after a crash, a receipt sent twice changes nothing at its author.
            with self.store.batch(sync=False) as batch:
                for _, due_key in queued:
                    batch.delete(self.store.due_receipts, due_key)
        except Exception as exc:  # noqa: BLE001 - still owed (on disk too): try again in a while
            if isinstance(exc, KizunaError):
                log.info("%d receipts could not go out yet: %s %s", len(receipts), exc.code, exc.message)
            else:
                log.error("%d receipts could not go out yet", len(receipts), exc_info=exc)
            await asyncio.sleep(self.receipt_retry_seconds)
            for receipt, due_key in queued:
                self._queue_receipt(agent, author, space, receipt, due_key)

    async def mark_read(self, agent: bytes, group_uuid: str, message_hashes) -> int:
        info = self._require_group(agent, group_uuid)
        records = []
        for message_hash in message_hashes:
            found = self.store.get_message(agent, message_hash) if len(message_hash) == 32 else None
            if found is None or found[1].entry.group_uuid != group_uuid:
                raise NotFound("a message_hash names no message in this group")
            records.append((message_hash, found[1]))
        owed, marked = [], set()
        with self.store.batch() as batch:
            for message_hash, record in records:
                if (record.entry.author == agent or message_hash in marked  # named twice in one call
                        or self.store.read.get(agent + message_hash) is not None):
                    continue
                batch.put(self.store.read, agent + message_hash, b"")
                owed.append(self._owe_receipt(batch, agent, record.entry, message_hash, info.dna_hash, read=True))
                marked.add(message_hash)
        for receipt in owed:
            self._queue_receipt(*receipt)
        return len(owed)

    async def receive_receipts(self, to_agent: bytes, signed, caller: bytes | None = None) -> bool:
        """A receiver's receipts for the agent's messages: kept on its copies, shown to its UI."""
        await self.require_hosted(to_agent)
        batch = parse(common_pb2.Receipts, verify_signed(signed, "receipts"), "receipts")
        if caller is not None and caller != signed.author:
            raise PermissionDenied("receipts come from the messages' receiver itself")
        updated: dict[bytes, lobby_pb2.MessageRecord] = {}
        signalled = []
        for receipt in batch.receipts:
            if receipt.receiver != signed.author:
                raise PermissionDenied("receipts come from the messages' receiver itself")
            found = self.store.get_message(to_agent, receipt.message_hash)
            if found is None:
                continue  # a message this agent no longer keeps
            key, record = found
            record = updated.get(key, record)  # the batch may hold two receipts for one message
            if record.entry.author != to_agent or receipt.receiver not in record.entry.receiver:
                raise PermissionDenied("a receipt is for a message its sender did not send to it")
            mine = next((r for r in record.receipts if r.receiver == receipt.receiver), None)
            if mine is None:
                mine = record.receipts.add(receiver=receipt.receiver, message_hash=receipt.message_hash,
                                           group_uuid=receipt.group_uuid)
            changed = False
            for name in ("delivered_at", "read_at"):
                if getattr(receipt, name) and not getattr(mine, name):
                    setattr(mine, name, getattr(receipt, name))
                    changed = True
            if changed:
                updated[key] = record
                signalled.append(common_pb2.Receipt())
                signalled[-1].CopyFrom(mine)  # as it is now: a later receipt in the batch may add to it
        if updated:
            with self.store.batch() as write:
                for key, record in updated.items():
                    write.put(self.store.messages, key, record.SerializeToString())
        if signalled:
            self.signals.emit_signal(to_agent, lobby_pb2.Signal(receipt=lobby_pb2.ReceiptSignal(receipts=signalled)))
        return bool(updated)

    async def set_typing(self, agent: bytes, group_uuid: str, typing: bool) -> int:
        """Tells the members online now; one quick try each, never stored, never queued."""
        info = self._require_group(agent, group_uuid)
        if info.departed or info.state != lobby_pb2.ACCEPTED:
            raise FailedPrecondition("accept the group before typing in it")
        body = common_pb2.Typing(group_uuid=group_uuid, agent=agent, typing=typing,
                                 timestamp=now_micros()).SerializeToString()
        signed = common_pb2.Signed(body=body, signature=await self.conductor.sign(agent, body), author=agent)
        once = RetryPolicy(attempts=1, attempt_timeout=self.retry_policy.attempt_timeout,
                           budget=self.retry_policy.attempt_timeout)

        async def tell(member):
            if self.liveness.recently_failed(member):
                return False
            try:
                await self.call_remote(agent, member, "ReceiveTyping",
                                       lobby_pb2.ReceiveTypingRequest(to_agent=member, typing=signed), once)
                return True
            except KizunaError:
                return False

        return sum(await asyncio.gather(*(tell(m) for m in info.members if m != agent)))

    async def receive_typing(self, to_agent: bytes, signed, caller: bytes | None = None) -> None:
        await self.require_hosted(to_agent)
        typing = parse(common_pb2.Typing, verify_signed(signed, "typing"), "typing")
        if typing.agent != signed.author or (caller is not None and caller != signed.author):
            raise PermissionDenied("typing is signalled by the typing agent itself")
        info = self._require_group(to_agent, typing.group_uuid)
        if typing.agent not in info.members:
            raise PermissionDenied("the typing agent is not a member of the group")
        if typing.group_uuid in self.store.get_groups(to_agent).blocked:
            return
        self.signals.emit_signal(to_agent, lobby_pb2.Signal(typing=lobby_pb2.TypingSignal(typing=typing)))

    # blocking agents

    async def set_agent_blocked(self, agent: bytes, other: bytes, blocked: bool) -> common_pb2.BlockedAgents:
        check_agent_key(other)
        if other == agent:
            raise InvalidArgument("an agent cannot block itself")
        async with self.chain.lock(agent):
            current = self.store.get_blocked_agents(agent)
            agents = [a for a in current.agents if a != other] + ([other] if blocked else [])
            updated = common_pb2.BlockedAgents(agents=agents)
            entry = updated.SerializeToString()
            await self.chain.commit(agent, [("blocked_agents", entry)],
                                    lambda batch: batch.put(self.store.blocked_agents, agent, entry))
            return updated

    # messages

    async def send_group_message(self, agent: bytes, group_uuid: str, payload: str, reply_to: bytes = b"",
                                 app_token: str = ""):
        """Signs the MessageEntry, stores it in the sender's history, and delivers it to
        every receiver (the group's members now) at once; one outcome per receiver.
        The entry and each receiver's first envelope are signed in one conductor call,
        which also checks `app_token` when given."""
        info, entry = self._prepare_message(agent, group_uuid, payload, reply_to)
        body = entry.SerializeToString()
        unsigned = common_pb2.Signed(body=body, author=agent)
        bodies = [body, *(seal_envelope("ReceiveGroupMessage", lobby_pb2.ReceiveGroupMessageRequest(
            to_agent=receiver, message=unsigned), receiver).SerializeToString() for receiver in entry.receiver)]
        signature, *envelope_signatures = await self.conductor.sign_batch(agent, bodies, app_token)
        signed = common_pb2.Signed(body=body, signature=signature, author=agent)
        record = lobby_pb2.MessageRecord(entry=entry, message_hash=blake2b_256(body))
        with self.store.batch() as batch:
            self.store.put_message(batch, agent, record)
        outcomes = await asyncio.gather(*(
            self.deliver(lobby_pb2.OutboxItem(
                author=agent, receiver=receiver, kind="message", signed=signed,
                group_uuid=group_uuid, space=info.dna_hash),
                lobby_pb2.RemoteCall(envelope=common_pb2.Signed(body=envelope, signature=envelope_signature,
                                                                author=agent),
                                     item_signature=signature))
            for receiver, envelope, envelope_signature in zip(entry.receiver, bodies[1:], envelope_signatures)
        ))
        return record, list(outcomes)

    def _prepare_message(self, agent: bytes, group_uuid: str, payload: str, reply_to: bytes):
        """Checks a message the agent wants to send: (group, unsigned entry)."""
        info = self._require_group(agent, group_uuid)
        if info.departed:
            raise FailedPrecondition("this agent is no longer a member of the group")
        if self.store.is_hidden(agent, group_uuid) or info.state != lobby_pb2.ACCEPTED:
            raise FailedPrecondition("accept the group before sending to it")
        if reply_to:
            found = self.store.get_message(agent, reply_to) if len(reply_to) == 32 else None
            if found is None or found[1].entry.group_uuid != group_uuid:
                raise InvalidArgument("reply_to names no message in this group")
        if not payload:
            raise InvalidArgument("payload is empty")
        if len(payload.encode()) > self.limits.max_payload_bytes:
            raise InvalidArgument(f"payload is larger than {self.limits.max_payload_bytes} bytes")
        self._send_rate.take(agent, "sending")
        entry = common_pb2.MessageEntry(
            author=agent,
            receiver=[m for m in info.members if m != agent],
            group_uuid=group_uuid,
            payload=payload,
            time_sent=now_micros(),
            reply_to=reply_to,
        )
        return info, entry

    async def call_remote(self, caller: bytes, to_agent: bytes, method: str, request, policy: RetryPolicy,
                          first: lobby_pb2.RemoteCall | None = None):
        """Calls `method` on the lobby hosting `to_agent` under the retry policy, each attempt
        in a fresh envelope signed by `caller` (`first`, when given, is the first attempt's,
        signed beforehand); returns (response, attempts) or raises the last error."""
        info = await self.directory.agent_info(to_agent)
        presigned = [first] if first is not None else []

        async def attempt(timeout):
            if presigned:
                call = presigned.pop()
            else:
                envelope = seal_envelope(method, request, to_agent).SerializeToString()
                call = lobby_pb2.RemoteCall(envelope=common_pb2.Signed(
                    body=envelope, signature=await self.conductor.sign(caller, envelope), author=caller))
            return await self.remote.call(info.lobby_address, method, call, timeout)

        return await call_with_policy(policy, f"{method} to {short(to_agent)}", attempt)

    async def receive_remote(self, method: str, remote_call: lobby_pb2.RemoteCall) -> None:
        """An incoming call_remote: the envelope is checked first, then the call it carries."""
        caller, envelope = self.envelopes.open(remote_call, method)
        try:
            await self.require_hosted(envelope.target)
        except NotFound:
            raise PermissionDenied("the envelope's target is not an agent this lobby hosts") from None
        request_type, item, handle = self._remote_methods[method]
        request = parse(request_type, envelope.body, "envelope's body")
        if remote_call.item_signature:
            if getattr(request, item).signature:
                raise InvalidArgument(f"the request's {item} is signed already; item_signature must be empty")
            getattr(request, item).signature = remote_call.item_signature
        if request.to_agent != envelope.target:
            raise PermissionDenied("the call is addressed to another agent than its envelope's target")
        with self.envelopes.in_flight(envelope):
            await handle(request, caller)
            self.envelopes.remember(envelope)

    @property
    def _remote_methods(self):
        """What each call_remote method carries and the workflow that takes it."""
        def invite(request, caller):
            self._receive_rate.take(caller, "invites from this sender")
            return self.receive_invite(request.to_agent, request.invite, caller=caller)

        def message(request, caller):
            self._receive_rate.take(caller, "receiving from this sender")
            return self.receive_group_message(request.to_agent, request.message, caller=caller)

        return {
            "ReceiveInvite": (lobby_pb2.ReceiveInviteRequest, "invite", invite),
            "ReceiveGroupMessage": (lobby_pb2.ReceiveGroupMessageRequest, "message", message),
            "ReceiveGroupUpdate": (lobby_pb2.ReceiveGroupUpdateRequest, "update",
                                   lambda r, c: self.receive_group_update(r.to_agent, r.update, caller=c)),
            "ReceiveReceipt": (lobby_pb2.ReceiveReceiptRequest, "receipts",
                               lambda r, c: self.receive_receipts(r.to_agent, r.receipts, caller=c)),
            "ReceiveTyping": (lobby_pb2.ReceiveTypingRequest, "typing",
                              lambda r, c: self.receive_typing(r.to_agent, r.typing, caller=c)),
        }

    async def deliver(self, item: lobby_pb2.OutboxItem, first: lobby_pb2.RemoteCall | None = None) -> lobby_pb2.DeliveryOutcome:
        """call_remote first; when the policy gives up, the receiver's inbox in the DHT;
        when the DHT cannot take it either, the durable outbox (QUEUED)."""
        outcome = await self.deliver_now(item, first)
        if outcome is not None:
            return outcome
        self.outbox.enqueue(item)
        return lobby_pb2.DeliveryOutcome(receiver=item.receiver, status=lobby_pb2.QUEUED,
                                         detail="neither the receiver nor the DHT could take it yet; retrying",
                                         attempts=item.attempts)

    async def deliver_now(self, item: lobby_pb2.OutboxItem,
                          first: lobby_pb2.RemoteCall | None = None) -> lobby_pb2.DeliveryOutcome | None:
        """One try at delivering an item; None when nobody could take it."""
        receiver, attempts = item.receiver, 0
        if not self.liveness.recently_failed(receiver):
            method, request = self._remote_request(item)
            try:
                _, attempts = await self.call_remote(item.author, receiver, method, request, self.retry_policy, first)
            except KizunaError as exc:
                attempts = getattr(exc, "attempts", 0)
                if not is_transient(exc) and not isinstance(exc, NotFound):
                    log.info("%s to %s refused: %s %s", method, short(receiver), exc.code, exc.message)
                    return lobby_pb2.DeliveryOutcome(receiver=receiver, status=lobby_pb2.FAILED,
                                                     detail=f"{exc.code}: {exc.message}", attempts=attempts)
                self.liveness.failed(receiver)
                log.info("%s to %s: unreachable (%s); storing it in the DHT", method, short(receiver), exc.code)
            else:
                self.liveness.succeeded(receiver)
                return lobby_pb2.DeliveryOutcome(receiver=receiver, status=lobby_pb2.DELIVERED, attempts=attempts)
        try:
            address = await self.store_in_inbox(item)
        except KizunaError as exc:
            log.info("the DHT could not take a %s for %s: %s %s", item.kind, short(receiver), exc.code, exc.message)
            return None
        return lobby_pb2.DeliveryOutcome(receiver=receiver, status=lobby_pb2.STORED_IN_DHT, address=address,
                                         attempts=attempts)

    @staticmethod
    def _remote_request(item: lobby_pb2.OutboxItem):
        if item.kind == "invite":
            return "ReceiveInvite", lobby_pb2.ReceiveInviteRequest(to_agent=item.receiver, invite=item.signed)
        if item.kind == "group_update":
            return "ReceiveGroupUpdate", lobby_pb2.ReceiveGroupUpdateRequest(to_agent=item.receiver, update=item.signed)
        if item.kind == "receipt":
            return "ReceiveReceipt", lobby_pb2.ReceiveReceiptRequest(to_agent=item.receiver, receipts=item.signed)
        return "ReceiveGroupMessage", lobby_pb2.ReceiveGroupMessageRequest(to_agent=item.receiver, message=item.signed)

    async def store_in_inbox(self, item: lobby_pb2.OutboxItem) -> bytes:
        """Commits the item, sealed to its receiver, to its space (the group's for a message,
        the Lobby's for an invite) and links it from the receiver's inbox anchor there."""
        info = await self.directory.agent_info(item.receiver)
        sealed = seal(item.receiver, info.encryption_key, item.signed.SerializeToString(),
                      sealed_aad(item.kind, item.space, item.receiver))
        address = await self.directory.publish_entry(item.author, item.space, f"sealed_{item.kind}",
                                                     sealed.SerializeToString())
        await self.directory.publish_link(item.author, item.space, self._inbox(item.kind, item.receiver), address,
                                          item.kind.encode())
        return address

    @staticmethod
    def _inbox(kind: str, agent: bytes) -> bytes:
        return anchors.invites_anchor(agent) if kind == "invite" else anchors.inbox_anchor(agent)

    def on_outbox_outcome(self, item: lobby_pb2.OutboxItem, outcome: lobby_pb2.DeliveryOutcome) -> None:
        """A queued item's outcome changed: the sender's UI hears of it."""
        self.signals.emit_signal(item.author, lobby_pb2.Signal(delivery=lobby_pb2.DeliverySignal(
            message_hash=blake2b_256(item.signed.body), group_uuid=item.group_uuid, outcome=outcome)))

    async def run_outbox(self) -> None:
        await self.outbox.run(self.deliver_now, self.on_outbox_outcome)

    # catch-up

    async def sync_inbox(self, agent: bytes) -> tuple[int, int]:
        """Fetches what waits in the agent's inboxes (invites first, then each group's
        messages in time_sent order), applies the receive rules, and retires the links.
        Returns how many invites and messages were new."""
        lock = self._sync_locks.setdefault(agent, asyncio.Lock())
        async with lock:
            invites = 0
            for signed, retire in await self._fetch_inbox(agent, "invite", dna.LOBBY_DNA_HASH):
                applied = await self._apply_from_inbox("invite", self.receive_invite(agent, signed))
                if applied is None:
                    continue
                invites += applied
                self._background(retire())
            spaces = [g.dna_hash for g in self.store.list_group_info(agent) if not g.departed]
            updates = []
            for space in spaces:
                updates += await self._fetch_inbox(agent, "group_update", space)
            updates.sort(key=lambda pair: SORT_KEYS["group_update"](pair[0].body))
            retired = []  # links go once every signal is out
            for signed, retire in updates:
                if await self._apply_from_inbox("group update", self.receive_group_update(agent, signed)) is not None:
                    retired.append(retire)
            fetched, receipts = [], []
            for space in spaces:
                fetched += await self._fetch_inbox(agent, "message", space)
                receipts += await self._fetch_inbox(agent, "receipt", space)
            fetched.sort(key=lambda pair: SORT_KEYS["message"](pair[0].body))
            for signed, retire in receipts:
                if await self._apply_from_inbox("receipt", self.receive_receipts(agent, signed)) is not None:
                    retired.append(retire)
            messages = 0
            for signed, retire in fetched:
                applied = await self._apply_from_inbox("message", self.receive_group_message(agent, signed))
                if applied is None:
                    continue  # may apply later (e.g. its invite is still on its way): keep the link
                messages += applied
                retired.append(retire)
            for retire in retired:
                self._background(retire())
            if invites or messages:
                log.info("caught up agent %s: %d invites, %d messages", short(agent), invites, messages)
            return invites, messages

    @staticmethod
    async def _apply_from_inbox(kind: str, applying) -> bool | None:
        """True: new; False: a duplicate or refused for good (its link is retired); None: not
        applicable now, so the link stays for the next catch-up."""
        try:
            return await applying
        except (PermissionDenied, InvalidArgument) as exc:
            log.warning("dropping a %s from the inbox: %s %s", kind, exc.code, exc.message)
            return False
        except KizunaError as exc:
            log.info("a %s in the inbox cannot be applied yet: %s %s", kind, exc.code, exc.message)
            return None

    async def _take_waiting_invites(self, agent: bytes) -> None:
        """Applies the invites waiting in the agent's inbox in the Lobby space."""
        try:
            for signed, retire in await self._fetch_inbox(agent, "invite", dna.LOBBY_DNA_HASH):
                if await self._apply_from_inbox("invite", self.receive_invite(agent, signed)) is not None:
                    self._background(retire())
        except KizunaError as exc:
            log.info("could not read %s's invites: %s %s", short(agent), exc.code, exc.message)

    async def _fetch_inbox(self, agent: bytes, kind: str, space: bytes) -> list:
        """(Signed, retire) for each item linked from the agent's inbox of this kind in the
        space, in order: entries fetched with the links (the rest concurrently), opened in
        batches by the conductor."""
        base = self._inbox(kind, agent)
        links, targets = await self.dht.get_links_with_targets(space, base, kind.encode())
        gate = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def stored_entry(link):
            target = op_of(link.create).target
            if target in targets:
                return targets[target]
            async with gate:
                return await self.dht.get(space, target)

        stored = await asyncio.gather(*(stored_entry(link) for link in links))
        sealed_items = []  # (link, stored op, sealed box)
        for link, entry in zip(links, stored):
            if entry is None:
                continue  # not reachable now; the next catch-up tries again
            try:
                sealed_items.append((link, entry, parse(common_pb2.SealedBox, op_of(entry).entry, "sealed box")))
            except KizunaError as exc:
                log.warning("dropping an unreadable %s from the inbox: %s", kind, exc.message)
                self._background(self._retirer(agent, space, base, link.address)())
        aad = sealed_aad(kind, space, agent)
        fetched = []
        for start in range(0, len(sealed_items), DECRYPT_BATCH):
            chunk = sealed_items[start:start + DECRYPT_BATCH]
            opened = await self.conductor.decrypt_batch(agent, [(sealed, aad) for _, _, sealed in chunk])
            for (link, entry, _), (plaintext, error) in zip(chunk, opened):
                retire = self._retirer(agent, space, base, link.address)
                try:
                    if error:
                        raise PermissionDenied(error)
                    signed = parse(common_pb2.Signed, plaintext, "sealed item")
                    if signed.author != entry.author:
                        raise PermissionDenied("the sealed item was stored by someone other than its author")
                    order = SORT_KEYS[kind](signed.body) if kind in SORT_KEYS else 0
                except KizunaError as exc:
                    log.warning("dropping an unreadable %s from the inbox: %s", kind, exc.message)
                    self._background(retire())
                    continue
                fetched.append((order, signed, retire))
        return [(signed, retire) for _, signed, retire in sorted(fetched, key=lambda item: item[0])]

    def _retirer(self, agent: bytes, space: bytes, base: bytes, link_address: bytes):
        """A coroutine function that deletes the inbox link, once its item was applied."""

        async def retire():
            async with self._retire_gate:
                await delete()

        async def delete():
            try:
                await self.directory.publish_op(agent, group_dht_pb2.Op(
                    space=space, kind=group_dht_pb2.DELETE_LINK, author=agent, timestamp=now_micros(),
                    base=base, link_address=link_address))
            except KizunaError as exc:
                log.info("could not retire an inbox link yet: %s %s", exc.code, exc.message)

        return retire

    async def sync_all(self) -> None:
        for agent in list(self._hosted):
            try:
                await self.sync_inbox(agent)
            except KizunaError as exc:
                log.info("catch-up for %s failed: %s %s", short(agent), exc.code, exc.message)

    async def receive_group_message(self, to_agent: bytes, signed, caller: bytes | None = None) -> bool:
        """The seed's rules, in order: verify; drop a duplicate; a blocked group gets
        nothing; a blocked member gets a warning; else the message is signalled. Stored
        with time_received."""
        await self.require_hosted(to_agent)
        body = verify_signed(signed, "message")
        entry = parse(common_pb2.MessageEntry, body, "message")
        if entry.author != signed.author:
            raise PermissionDenied("the message's author did not sign it")
        if caller is not None and caller != entry.author:
            raise PermissionDenied("the caller is not the message's author")
        if entry.HasField("time_received"):
            raise InvalidArgument("a sent message carries no time_received")
        if to_agent not in entry.receiver:
            raise PermissionDenied("the message is not addressed to this agent")
        info = self.store.get_group_info(to_agent, entry.group_uuid)
        if info is None and caller is not None:
            await self._take_waiting_invites(to_agent)  # its invite may wait in the DHT
            info = self.store.get_group_info(to_agent, entry.group_uuid)
        if info is None:
            raise FailedPrecondition(f"this agent has no invite to group {entry.group_uuid}")
        named = [entry.author, *entry.receiver]
        if any(a not in info.members for a in named) and await self.refresh_group(to_agent, entry.group_uuid):
            info = self.store.get_group_info(to_agent, entry.group_uuid)
        if info.departed:
            raise FailedPrecondition("this agent is no longer a member of the group")
        if entry.author not in info.members:
            raise PermissionDenied("the author is not a member of the group")
        if any(r not in info.members for r in entry.receiver):
            raise PermissionDenied("the message names receivers outside the group")
        message_hash = blake2b_256(body)
        async with self._receive_locks.setdefault(to_agent, asyncio.Lock()):
            return await self._take_message(to_agent, entry, message_hash, info)

    async def _take_message(self, to_agent: bytes, entry, message_hash: bytes, info) -> bool:
        """The seed's rules after verification: duplicate, blocked group, blocked member;
        stored with time_received and signalled. The caller holds the agent's receive lock."""
        if self.store.has_seen(to_agent, message_hash):
            return False
        groups = self.store.get_groups(to_agent)
        if entry.group_uuid in groups.blocked:
            return False
        blocked = set(self.store.get_blocked_agents(to_agent).agents)
        involved = [entry.author, *[r for r in entry.receiver if r != to_agent]]
        blocked_members = [a for a in involved if a in blocked]
        entry.time_received = now_micros()
        record = lobby_pb2.MessageRecord(entry=entry, message_hash=message_hash, blocked_members=blocked_members)
        if blocked_members:
            names = ", ".join([await self.display_name(a) for a in blocked_members])
            record.warning = f"someone in this group is blocked by you: {names}"
        with self.store.batch() as batch:
            self.store.put_message(batch, to_agent, record)
            if self.store.is_hidden(to_agent, entry.group_uuid):
                batch.delete(self.store.hidden, to_agent + group_key(entry.group_uuid))
            receipt = self._owe_receipt(batch, to_agent, entry, message_hash, info.dna_hash)
        self.signals.emit_signal(to_agent, lobby_pb2.Signal(message=lobby_pb2.MessageSignal(message=record)))
        self._queue_receipt(*receipt)
        return True

    # history

    def get_messages(self, agent: bytes, group_uuid: str, page_size: int, page_token: str,
                     cursor_message: bytes = b"", cursor_time: int = 0, newer: bool = False, author: bytes = b""):
        """A page of the group's history from a cursor (a page token, a message or a time),
        towards older messages (newest first) or newer ones (oldest first), optionally one
        author's; and the token of the next page in the same direction ("" at the end)."""
        self._require_group(agent, group_uuid)
        if page_size < 0 or page_size > self.limits.max_page_size:
            raise InvalidArgument(f"page_size is 0 (default {DEFAULT_PAGE}) to {self.limits.max_page_size}")
        if author:
            check_agent_key(author, "author")
        prefix = self.store.message_key(agent, group_uuid, 0, b"")[:-8]
        cursor = None
        if page_token:
            try:
                token = base64.urlsafe_b64decode(page_token.encode())
            except (binascii.Error, ValueError):
                raise InvalidArgument("page_token is not one this lobby gave out") from None
            if len(token) not in (41, 73) or token[:1] not in (b"n", b"o"):
                raise InvalidArgument("page_token is not one this lobby gave out")
            newer, cursor, author = token[:1] == b"n", prefix + token[1:41], token[41:]
        elif cursor_message:
            key = self.store.message_key_of(agent, cursor_message) if len(cursor_message) == 32 else None
            if key is None or not key.startswith(prefix):
                raise NotFound("cursor_message names no message in this group")
            cursor = key
        elif cursor_time:
            if cursor_time < 0:
                raise InvalidArgument("cursor_time is microseconds since the Unix epoch")
            cursor = prefix + u64(cursor_time) + (b"\xff" * 32 if newer else b"")
        limit = page_size or DEFAULT_PAGE
        records, last = self.store.messages_range(agent, group_uuid, cursor, newer, limit, author)
        next_token = ""
        if last is not None and len(records) == limit:
            more, _ = self.store.messages_range(agent, group_uuid, last, newer, 1, author)
            if more:
                token = (b"n" if newer else b"o") + last[len(prefix):] + author
                next_token = base64.urlsafe_b64encode(token).decode()
        return records, next_token

    def get_conversations(self, agent: bytes) -> list[lobby_pb2.Conversation]:
        """Every group the agent is in with its latest message, the most recent first."""
        conversations = []
        for info in self.get_groups(agent)[1]:
            latest, _ = self.store.messages_range(agent, info.group_uuid, None, False, 1)
            conversations.append(lobby_pb2.Conversation(group=info, latest=latest[0] if latest else None))
        return sorted(conversations, reverse=True,
                      key=lambda c: c.latest.entry.time_sent if c.HasField("latest") else c.group.timestamp)

    def get_source_chain(self, agent: bytes, from_seq: int, limit: int):
        if limit < 0 or limit > MAX_CHAIN_PAGE:
            raise InvalidArgument(f"limit is 0 (default {DEFAULT_CHAIN_PAGE}) to {MAX_CHAIN_PAGE}")
        return self.store.actions(agent, from_seq, limit or DEFAULT_CHAIN_PAGE)
