"""The DHT node: joins spaces, validates and places ops on their holders, reads them back,
and keeps its peer table current. Calls to other nodes go through an injected transport."""

import asyncio
import logging
import secrets
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kizuna.v1 import common_pb2, group_dht_pb2
from services.common import anchors, dna, group_state
from services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    KizunaError,
    PermissionDenied,
    UNREACHABLE,
    ResourceExhausted,
    Unavailable,
)
from services.common.hashing import blake2b_256, now_micros
from services.common.keys import check_agent_key
from services.group_dht import placement
from services.group_dht.peers import PeerTable, check_node_info, signing_bytes
from services.group_dht.store import DhtStore
from services.group_dht.validation import (
    AGENT_INFO,
    basis_address,
    check_author_in_space,
    check_hash,
    check_op,
    group_update_of,
    op_hash,
    state_of,
    validate_op,
)

log = logging.getLogger("kizuna.group_dht")

CALL_TIMEOUT = 3.0  # a live peer under load answers well within this; a dead one fails at once or is marked down
GOSSIP_INTERVAL = 2.0
MAX_LEARNED_ADDRESSES = 256
DEFAULT_MAX_SPACES = 1000


class Transport(Protocol):
    """Calls to another node's GroupDht, by address; each raises KizunaError on failure."""

    async def publish(self, address: str, signed: common_pb2.Signed, timeout: float) -> group_dht_pb2.PublishResponse: ...

    async def get(self, address: str, space: bytes, entry_address: bytes, timeout: float) -> group_dht_pb2.GetResponse: ...

    async def get_links(
        self, address: str, space: bytes, base: bytes, tag_prefix: bytes, timeout: float, with_targets: bool = False
    ) -> group_dht_pb2.GetLinksResponse: ...

    async def exchange_peers(
        self, address: str, node: group_dht_pb2.NodeInfo, known: list[group_dht_pb2.NodeInfo], timeout: float
    ) -> group_dht_pb2.ExchangePeersResponse: ...


def _set_state(record: group_dht_pb2.Space, state: group_state.GroupState) -> None:
    record.update_seq, record.update_head, record.name = state.seq, state.head, state.name
    del record.members[:], record.admins[:]
    record.members.extend(state.members)
    record.admins.extend(state.admins)



class GroupDhtNode:
    def __init__(
        self,
        store: DhtStore,
        transport: Transport,
        *,
        replication: int = placement.DEFAULT_REPLICATION,
        max_spaces: int = DEFAULT_MAX_SPACES,
        bootstrap=(),
        advertise: str = "",
        call_timeout: float = CALL_TIMEOUT,
        gossip_interval: float = GOSSIP_INTERVAL,
    ):
        if replication < 1:
            raise ValueError("replication must be at least 1")
        self._store = store
        self._transport = transport
        self.replication = replication
        self.max_spaces = max_spaces
        self._node_key = Ed25519PrivateKey.from_private_bytes(store.node_key(lambda: secrets.token_bytes(32)))
        self._public_key = self._node_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.node_id = blake2b_256(self._public_key)
        self.address = advertise
        self.peers = PeerTable(store, self.node_id)
        self._bootstrap: list[str] = [a for a in dict.fromkeys(bootstrap) if a]
        self._call_timeout = call_timeout
        self._gossip_interval = gossip_interval
        self._background: set[asyncio.Task] = set()
        self._gossip: asyncio.Task | None = None

    # life cycle

    async def start(self) -> None:
        """Starts gossiping: at once with every bootstrap address and known peer, then periodically."""
        self._gossip = asyncio.create_task(self._gossip_loop())

    async def stop(self) -> None:
        tasks = [t for t in [self._gossip, *self._background] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def settle(self) -> None:
        """Waits for the background work started so far (peer announcements, writes to
        holders marked down)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def _gossip_loop(self) -> None:
        while True:
            try:
                await self.exchange_with_peers()
            except Exception:  # noqa: BLE001 - gossip must outlive one bad round
                log.exception("peer exchange round failed")
            await asyncio.sleep(self._gossip_interval)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # who this node is

    def node_info(self) -> group_dht_pb2.NodeInfo:
        """This node's word about itself, signed with its node key."""
        info = group_dht_pb2.NodeInfo(
            node_id=self.node_id,
            address=self.address,
            spaces=[s.space for s in self._store.list_spaces()],
            timestamp=now_micros(),
            public_key=self._public_key,
        )
        info.signature = self._node_key.sign(signing_bytes(info))
        return info

    def _nodes_in_space(self, space: bytes) -> dict[bytes, group_dht_pb2.NodeInfo | None]:
        """node id -> peer (None for this node) of every node known to be in the space."""
        nodes: dict[bytes, group_dht_pb2.NodeInfo | None] = {p.node_id: p for p in self.peers.in_space(space)}
        if self._store.get_space(space) is not None:
            nodes[self.node_id] = None
        return nodes

    def holders(self, space: bytes, address: bytes) -> list[bytes]:
        return placement.holders(address, self._nodes_in_space(space), self.replication)

    # outgoing calls: every one passes through `_call`

    async def _call(self, peer: group_dht_pb2.NodeInfo, what: str, call):
        """Runs `call(address, timeout)` against a peer; a peer that does not answer is marked down."""
        try:
            result = await call(peer.address, self._call_timeout)
        except KizunaError as exc:
            if isinstance(exc, UNREACHABLE):
                self.peers.mark_down(peer.node_id)
            log.debug("%s to %s failed: %s %s", what, peer.address, exc.code, exc.message)
            raise
        self.peers.mark_up(peer.node_id)
        return result

    async def _call_in_background(self, peer: group_dht_pb2.NodeInfo, what: str, call) -> None:
        """`_call` that nobody awaits: its failure is only logged (at debug); its success
        still marks the peer up."""
        try:
            await self._call(peer, what, call)
        except KizunaError:
            pass  # logged by _call
        except Exception as exc:  # noqa: BLE001 - nobody is waiting to hear about it
            log.debug("background %s to %s failed: %r", what, peer.address, exc)

    # spaces

    async def join_space(self, space: bytes, agent: bytes, template: str, properties: common_pb2.GroupProperties,
                         updates=()) -> None:
        """Makes this node a member of the space for the agent; idempotent. For an agent
        added to a group after its creation, `updates` (the group's signed updates) prove
        it is a member. The new membership is pushed to known peers in the background."""
        check_hash(space, "space")
        check_agent_key(agent)
        if template == dna.LOBBY_TEMPLATE:
            if space != dna.LOBBY_DNA_HASH:
                raise InvalidArgument("the lobby space is the Lobby DNA hash")
            properties = common_pb2.GroupProperties()
        elif template == dna.GROUP_TEMPLATE:
            dna.check_group_properties(properties)
            if space != dna.group_dna_hash(properties):
                raise InvalidArgument("space is not the DNA hash of these group properties")
            state = group_state.apply_chain(properties, updates)
            if not state.is_member(agent):
                raise PermissionDenied("the agent is not a member of the group")
        else:
            raise InvalidArgument(f"template must be '{dna.LOBBY_TEMPLATE}' or '{dna.GROUP_TEMPLATE}', not '{template}'")
        record = self._store.get_space(space)
        if record is None:
            if self._store.space_count() >= self.max_spaces:
                raise ResourceExhausted(f"this node's DHT holds its maximum of {self.max_spaces} spaces")
            record = group_dht_pb2.Space(space=space, template=template, properties=properties)
        if template == dna.GROUP_TEMPLATE and state.seq > record.update_seq:
            _set_state(record, state)
        elif agent in record.agents:
            return
        if agent not in record.agents:
            record.agents.append(agent)
        self._store.put_space(record)
        log.info("agent %s joined space %s", agent.hex()[:16], space.hex()[:16])
        self._spawn(self.exchange_with_peers())

    async def leave_space(self, space: bytes, agent: bytes) -> None:
        """Removes the agent from the space; with no agent left, the node leaves the space
        and forgets its ops. Idempotent."""
        check_hash(space, "space")
        check_agent_key(agent)
        record = self._store.get_space(space)
        if record is None or agent not in record.agents:
            return
        remaining = [a for a in record.agents if a != agent]
        if remaining:
            del record.agents[:]
            record.agents.extend(remaining)
            self._store.put_space(record)
        else:
            self._store.drop_space(space)
            log.info("left space %s", space.hex()[:16])
        self._spawn(self.exchange_with_peers())

    async def list_spaces(self) -> group_dht_pb2.ListSpacesResponse:
        spaces = self._store.list_spaces()
        for record in spaces:
            record.ops = self._store.op_count(record.space)
        return group_dht_pb2.ListSpacesResponse(node_id=self.node_id, spaces=spaces, peers=self.peers.all())

    # ops

    def _store_validated(self, signed: common_pb2.Signed, op: group_dht_pb2.Op) -> None:
        """Stores a validated op. A group update is checked against the state once more here,
        with no await between that and the write, so two updates validated at the same
        time cannot both be stored: the second is refused."""
        update = group_update_of(op)
        record = self._store.get_space(op.space) if update is not None else None
        if update is not None and record is not None and record.template == dna.GROUP_TEMPLATE:
            if self._store.entry_op(op.space, blake2b_256(op.entry)) is not None:
                return  # held already
            state, _ = group_state.apply_update(state_of(record), update)
            self._store.put_op(op_hash(signed), signed, op)
            _set_state(record, state)
            self._store.put_space(record)
            log.info("group space %s: update %d applied", op.space.hex()[:16], state.seq)
            return
        if self._store.put_op(op_hash(signed), signed, op) and op.entry_type == AGENT_INFO:
            self._learn_from_agent_info(op)

    async def _validate(self, signed: common_pb2.Signed, record: group_dht_pb2.Space | None,
                        holder: bool = True) -> group_dht_pb2.Op:
        """validate_op; in a group space whose state this node may be behind on (an author it
        does not know as a member, an update that skips ahead), it first catches up on the
        group's updates from its peers, then decides."""
        try:
            return validate_op(signed, record, self._store, holder=holder)
        except (PermissionDenied, FailedPrecondition):
            if record is None or record.template != dna.GROUP_TEMPLATE or not await self.refresh_group_state(record.space):
                raise
            return validate_op(signed, self._store.get_space(record.space), self._store, holder=holder)

    async def refresh_group_state(self, space: bytes) -> bool:
        """Fetches the group's updates this node lacks from the space's other nodes and
        applies them in order; whether the state moved."""
        record = self._store.get_space(space)
        if record is None:
            return False
        before = record.update_seq
        try:
            links = await self.get_links(space, anchors.group_updates_anchor(space))
        except KizunaError:
            return False
        for link in sorted(links.links, key=lambda l: group_dht_pb2.Op.FromString(l.create.body).tag):
            target = group_dht_pb2.Op.FromString(link.create.body).target
            if self._store.entry_op(space, target) is not None:
                continue
            try:
                got = await self.get(space, target)
                if got.found:
                    self._store_validated(got.op, validate_op(got.op, self._store.get_space(space), self._store))
            except KizunaError as exc:
                log.info("could not apply a group update while catching up: %s", exc.message)
                break
        return self._store.get_space(space).update_seq > before

    def _learn_from_agent_info(self, op: group_dht_pb2.Op) -> None:
        info = group_dht_pb2.AgentInfo.FromString(op.entry)
        address = info.dht_address
        if len(self._bootstrap) >= MAX_LEARNED_ADDRESSES:
            return
        if address and address != self.address and address not in self._bootstrap and address not in self.peers.addresses():
            self._bootstrap.append(address)
            log.info("learned DHT address %s from an agent info", address)


    async def publish(self, signed: common_pb2.Signed, local_only: bool = False) -> group_dht_pb2.PublishResponse:
        """Validates the op and writes it to the holders of its basis address in parallel;
        succeeds when a quorum stored it (what was stored stays stored either way).

        A holder the peer table marks down is not waited on: it counts as not stored (but
        still among the holders the quorum is taken of) and is sent the op in the
        background, so that one that is back after all still gets it."""
        op = check_op(signed)
        address, hash_ = basis_address(op), op_hash(signed)
        if local_only:
            self._store_validated(signed, await self._validate(signed, self._store.get_space(op.space)))
            return group_dht_pb2.PublishResponse(address=address, op_hash=hash_, stored=1, holders=1)
        record = self._store.get_space(op.space)
        nodes = self._nodes_in_space(op.space)
        if not nodes:
            raise FailedPrecondition("this node is not in the op's space and knows no node that is")
        if group_update_of(op) is not None:
            holder_ids = list(nodes)  # every node of a group checks its members against its updates
        else:
            holder_ids = placement.holders(address, nodes, self.replication)
        if record is not None:
            await self._validate(signed, record, holder=self.node_id in holder_ids)
        send = lambda a, t: self._transport.publish(a, signed, t)  # noqa: E731
        down = [n for n in holder_ids if n != self.node_id and self.peers.is_down(n)]
        for node_id in down:
            log.debug("holder %s is marked down: op %s sent to it in the background", node_id.hex()[:16], hash_.hex()[:16])
            self._spawn(self._call_in_background(nodes[node_id], "publish", send))
        awaited = [n for n in holder_ids if n not in down]

        async def write(node_id: bytes):
            if node_id == self.node_id:
                self._store_validated(signed, op)  # validated above: this node is in the space
                return
            await self._call(nodes[node_id], "publish", send)

        results = await asyncio.gather(*(write(n) for n in awaited), return_exceptions=True)
        stored = sum(1 for r in results if r is None)
        for node_id, r in zip(awaited, results):
            if isinstance(r, KizunaError):
                log.warning("holder %s did not store op %s: %s %s", node_id.hex()[:16], hash_.hex()[:16], r.code, r.message)
        needed = placement.quorum(len(holder_ids))
        if stored < needed:
            refusals = [r for r in results if isinstance(r, KizunaError) and not isinstance(r, UNREACHABLE)]
            if refusals and stored == 0:
                raise refusals[0]
            for r in results:
                if isinstance(r, BaseException) and not isinstance(r, KizunaError):
                    log.error("publish to a holder failed unexpectedly", exc_info=r)
            skipped = f" ({len(down)} marked down, not waited on)" if down else ""
            raise Unavailable(f"stored on {stored} of {len(holder_ids)} holders; quorum is {needed}{skipped}")
        return group_dht_pb2.PublishResponse(address=address, op_hash=hash_, stored=stored, holders=len(holder_ids))

    def _others_to_ask(self, space: bytes, address: bytes) -> list[group_dht_pb2.NodeInfo]:
        """Peers to read from: live holders, then the live rest of the space; the ones
        marked down last (holders first among them)."""
        nodes = self._nodes_in_space(space)
        if not nodes:
            raise FailedPrecondition("this node is not in the space and knows no node that is")
        holder_ids = placement.holders(address, nodes, self.replication)
        holders = [nodes[n] for n in holder_ids if n != self.node_id]
        rest = [p for n, p in nodes.items() if p is not None and n not in holder_ids]
        return self.peers.live_first(holders + rest)

    def _believe_entry(self, signed: common_pb2.Signed, space: bytes, address: bytes) -> bool:
        """Whether an op another node answered with is a valid STORE_ENTRY of this address."""
        try:
            op = check_op(signed, space)
            record = self._store.get_space(space)
            if record is not None:
                check_author_in_space(op, record)
        except KizunaError as exc:
            log.warning("ignoring an invalid op from a peer: %s", exc.message)
            return False
        return op.kind == group_dht_pb2.STORE_ENTRY and blake2b_256(op.entry) == address

    async def get(self, space: bytes, address: bytes, local_only: bool = False) -> group_dht_pb2.GetResponse:
        """The op that stored the entry at `address`: from this node, else from the first
        holder (then any node of the space) that answers with one that validates."""
        check_hash(space, "space")
        check_hash(address, "address")
        signed = self._store.entry_op(space, address)
        if signed is not None or local_only:
            return group_dht_pb2.GetResponse(found=signed is not None, op=signed)
        for peer in self._others_to_ask(space, address):
            try:
                answer = await self._call(peer, "get", lambda a, t: self._transport.get(a, space, address, t))
            except KizunaError:
                continue
            if answer.found and self._believe_entry(answer.op, space, address):
                return group_dht_pb2.GetResponse(found=True, op=answer.op)
        return group_dht_pb2.GetResponse(found=False)

    def _local_links(self, space: bytes, base: bytes, tag_prefix: bytes) -> tuple[dict[bytes, common_pb2.Signed], set[bytes]]:
        creates = {}
        for address, signed in self._store.link_creates(space, base):
            if group_dht_pb2.Op.FromString(signed.body).tag.startswith(tag_prefix):
                creates[address] = signed
        return creates, self._store.deleted_links(space, base)

    def _believe_link(self, link: group_dht_pb2.Link, space: bytes, base: bytes, tag_prefix: bytes) -> bool:
        try:
            op = check_op(link.create, space)
        except KizunaError as exc:
            log.warning("ignoring an invalid link from a peer: %s", exc.message)
            return False
        return (
            op.kind == group_dht_pb2.CREATE_LINK
            and op.base == base
            and op.tag.startswith(tag_prefix)
            and op_hash(link.create) == link.address
        )

    async def get_links(
        self, space: bytes, base: bytes, tag_prefix: bytes = b"", local_only: bool = False, with_targets: bool = False
    ) -> group_dht_pb2.GetLinksResponse:
        """The live links under a base: the creates this node and every holder know of,
        minus the deletes any of them know of, ordered by (timestamp, address).

        The holders are asked in parallel; those the peer table marks down are asked only
        when none of the others answered, and the rest of the space when no holder knew
        of any link."""
        check_hash(space, "space")
        check_hash(base, "base")
        creates, deleted = self._local_links(space, base, tag_prefix)
        targets: dict[bytes, common_pb2.Signed] = {}
        if not local_only:
            holder_ids = set(self.holders(space, base))
            peers = [p for p in self._others_to_ask(space, base) if p.node_id in holder_ids]
            is_down = {p.node_id: self.peers.is_down(p.node_id) for p in peers}
            live = [p for p in peers if not is_down[p.node_id]]
            down = [p for p in peers if is_down[p.node_id]]
            ask = lambda a, t: self._transport.get_links(a, space, base, tag_prefix, t, with_targets)  # noqa: E731
            answers = await asyncio.gather(*(self._call(p, "get_links", ask) for p in live), return_exceptions=True)
            if down and not any(isinstance(a, group_dht_pb2.GetLinksResponse) for a in answers):
                answers += await asyncio.gather(*(self._call(p, "get_links", ask) for p in down), return_exceptions=True)
            if not creates and not any(isinstance(a, group_dht_pb2.GetLinksResponse) and a.links for a in answers):
                # Nothing at the holders: links published while the writer saw fewer nodes of
                # the space sit elsewhere, so ask the rest of the space's live nodes too.
                rest = [p for p in self._others_to_ask(space, base)
                        if p.node_id not in holder_ids and not self.peers.is_down(p.node_id)]
                answers += await asyncio.gather(*(self._call(p, "get_links", ask) for p in rest), return_exceptions=True)
            answered = [a for a in answers if isinstance(a, group_dht_pb2.GetLinksResponse)]
            for answer in answered:
                for link in answer.links:
                    if link.address not in creates and self._believe_link(link, space, base, tag_prefix):
                        creates[link.address] = link.create
            for answer in answered:
                deleted.update(self._believed_deletes(answer.deletes, space, base, creates))
                if with_targets:
                    for signed in answer.targets:
                        try:
                            address = blake2b_256(group_dht_pb2.Op.FromString(signed.body).entry)
                        except Exception:  # noqa: BLE001 - a peer's garbage is not believed
                            continue
                        if address not in targets and self._believe_entry(signed, space, address):
                            targets[address] = signed
        live = []
        for address, signed in creates.items():
            if address not in deleted:
                live.append((group_dht_pb2.Op.FromString(signed.body).timestamp, address, signed))
        live.sort(key=lambda item: (item[0], item[1]))
        return group_dht_pb2.GetLinksResponse(
            links=[group_dht_pb2.Link(address=address, create=signed) for _, address, signed in live],
            deleted=sorted(deleted),
            deletes=self._store.delete_ops(space, base) if local_only else [],
            targets=self._targets(space, live, targets) if with_targets else [],
        )

    def _targets(self, space: bytes, live, fetched: dict) -> list[common_pb2.Signed]:
        """The STORE_ENTRY ops of the live links' targets: held here, or believed from peers."""
        out = []
        for _, _, signed in live:
            target = group_dht_pb2.Op.FromString(signed.body).target
            held = self._store.entry_op(space, target) or fetched.get(target)
            if held is not None:
                out.append(held)
        return out

    def _believed_deletes(self, deletes, space: bytes, base: bytes, creates: dict) -> set[bytes]:
        """The links another node's DELETE_LINK ops delete, counting only those signed by
        the link's author or by the owner of the inbox the link sits in."""
        out = set()
        for signed in deletes:
            try:
                op = check_op(signed, space)
            except KizunaError:
                continue
            create = creates.get(op.link_address)
            if op.kind != group_dht_pb2.DELETE_LINK or op.base != base or create is None:
                continue
            inboxes = (anchors.inbox_anchor(op.author), anchors.invites_anchor(op.author))
            if create.author == op.author or base in inboxes:
                out.add(op.link_address)
        return out

    # peers

    async def exchange_peers(
        self, sender: group_dht_pb2.NodeInfo, known: list[group_dht_pb2.NodeInfo]
    ) -> group_dht_pb2.ExchangePeersResponse:
        """Records the sender and what it knows (newer wins, never about this node);
        answers with this node and every peer it knows."""
        check_node_info(sender, "from")
        self._merge([sender, *known])
        if sender.node_id != self.node_id:
            self.peers.mark_up(sender.node_id)
        return group_dht_pb2.ExchangePeersResponse(node=self.node_info(), known=self.peers.all())

    def _merge(self, infos) -> None:
        for info in infos:
            if self.peers.merge(info):
                log.debug("peer %s at %s is in %d spaces", info.node_id.hex()[:16], info.address, len(info.spaces))

    async def exchange_with_peers(self) -> None:
        """One round of peer exchange with every bootstrap address and known peer, in parallel."""
        me = self.node_info()
        known = self.peers.all()
        by_address = {a: None for a in self._bootstrap}
        for peer in known:
            by_address[peer.address] = peer
        by_address.pop(self.address, None)

        async def exchange(address: str, peer):
            call = lambda a, t: self._transport.exchange_peers(a, me, known, t)  # noqa: E731
            try:
                if peer is not None:
                    answer = await self._call(peer, "exchange_peers", call)
                else:
                    answer = await call(address, self._call_timeout)
            except KizunaError:
                return
            self._merge([answer.node, *answer.known])
            self.peers.mark_up(answer.node.node_id)

        await asyncio.gather(*(exchange(a, p) for a, p in by_address.items()))

