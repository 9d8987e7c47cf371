"""Reading ops back: an entry from this node or the first node that answers with one that
validates, the live links under a base merged from its holders, and what of another node's
answer is believed."""

import asyncio
import logging
import time

from kizuna.v1 import common_pb2, group_dht_pb2
from kizuna_node.common import anchors
from kizuna_node.common.errors import FailedPrecondition, KizunaError
from kizuna_node.common.hashing import blake2b_256
from kizuna_node.group_dht import placement
from kizuna_node.group_dht.context import NodeContext
from kizuna_node.group_dht.validation import check_author_in_space, check_hash, check_op, op_hash

log = logging.getLogger("kizuna.group_dht")

SETTLE_SECONDS = 60.0  # how long after a space's nodes change reads look past its holders
MAX_VIEWS = 4096  # spaces whose node sets are remembered for that


def believe_entry(signed: common_pb2.Signed, space: bytes, address: bytes,
                  space_record: group_dht_pb2.Space | None) -> bool:
    """Whether an op another node answered with is a valid STORE_ENTRY of this address (by
    a member of the space, as far as this node's record of it knows)."""
    try:
        op = check_op(signed, space)
        if space_record is not None:
            check_author_in_space(op, space_record)
    except KizunaError as exc:
        log.warning("ignoring an invalid op from a peer: %s", exc.message)
        return False
    return op.kind == group_dht_pb2.STORE_ENTRY and blake2b_256(op.entry) == address


def believe_link(link: group_dht_pb2.Link, space: bytes, base: bytes, tag_prefix: bytes) -> bool:
    """Whether a link another node answered with is a valid CREATE_LINK under this base and tag prefix."""
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


def believed_deletes(deletes, space: bytes, base: bytes, creates: dict[bytes, common_pb2.Signed]) -> set[bytes]:
    """The links (of `creates`, link address -> CREATE_LINK op) another node's DELETE_LINK
    ops delete, counting only those signed by the link's author or by the owner of the
    inbox the link sits in."""
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


class Reader:
    def __init__(self, ctx: NodeContext):
        self._ctx = ctx
        self._store = ctx.store
        self._views: dict[bytes, tuple[frozenset, float]] = {}  # space -> (its nodes, when they last changed)

    def _unsettled(self, space: bytes) -> bool:
        """Whether this node's view of the space changed in the last SETTLE_SECONDS (it has just
        started, or a node joined, left or came back): a writer may then have known other
        nodes than it does, and placed ops where these holders are not. Once the views have
        settled, writes reach the holders, and the holders an op was handed to send it on."""
        nodes = frozenset(self._ctx.nodes_in_space(space))
        now = time.monotonic()
        seen = self._views.get(space)
        if seen is None or seen[0] != nodes:
            if seen is None and len(self._views) >= MAX_VIEWS:
                self._views.pop(next(iter(self._views)))
            self._views[space] = seen = (nodes, now)
        return now - seen[1] < SETTLE_SECONDS

    def _others_to_ask(self, space: bytes, address: bytes) -> list[group_dht_pb2.NodeInfo]:
        """Peers to read from: live holders, then the live rest of the space; the ones
        marked down last (holders first among them)."""
        nodes = self._ctx.nodes_in_space(space)
        if not nodes:
            raise FailedPrecondition("this node is not in the space and knows no node that is")
        holder_ids = placement.holders(address, nodes, self._ctx.replication)
        holders = [nodes[n] for n in holder_ids if n != self._ctx.node_id]
        rest = [p for n, p in nodes.items() if p is not None and n not in holder_ids]
        return self._ctx.peers.live_first(holders + rest)

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
                answer = await self._ctx.calls.call_get(peer, space, address)
            except KizunaError:
                continue
            if answer.found and believe_entry(answer.op, space, address, self._store.get_space(space)):
                return group_dht_pb2.GetResponse(found=True, op=answer.op)
        return group_dht_pb2.GetResponse(found=False)

    def _local_links(self, space: bytes, base: bytes, tag_prefix: bytes) -> tuple[dict[bytes, common_pb2.Signed], set[bytes]]:
        creates = {}
        for address, signed in self._store.link_creates(space, base):
            if group_dht_pb2.Op.FromString(signed.body).tag.startswith(tag_prefix):
                creates[address] = signed
        return creates, self._store.deleted_links(space, base)

    async def get_links(
        self, space: bytes, base: bytes, tag_prefix: bytes = b"", local_only: bool = False, with_targets: bool = False,
        holders_only: bool = False,
    ) -> group_dht_pb2.GetLinksResponse:
        """The live links under a base: the creates this node and every holder know of,
        minus the deletes any of them know of, ordered by (timestamp, address).

        The holders are asked in parallel; those the peer table marks down are asked only
        when none of the others answered, and the rest of the space when no holder knew
        of any link (unless `holders_only`)."""
        check_hash(space, "space")
        check_hash(base, "base")
        creates, deleted = self._local_links(space, base, tag_prefix)
        targets: dict[bytes, common_pb2.Signed] = {}
        if not local_only:
            answered = await self._ask_for_links(space, base, tag_prefix, with_targets, bool(creates), holders_only)
            for answer in answered:
                for link in answer.links:
                    if link.address not in creates and believe_link(link, space, base, tag_prefix):
                        creates[link.address] = link.create
            for answer in answered:
                deleted.update(believed_deletes(answer.deletes, space, base, creates))
                if with_targets:
                    self._believe_targets(answer.targets, space, targets)
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

    async def _ask_for_links(self, space: bytes, base: bytes, tag_prefix: bytes, with_targets: bool,
                             held_here: bool, holders_only: bool = False) -> list[group_dht_pb2.GetLinksResponse]:
        """The answers of the holders (those marked down only when no other answered), and of
        the rest of the space's live nodes when neither this node nor a holder knew of a link
        (never with `holders_only`)."""
        calls, peers_table = self._ctx.calls, self._ctx.peers
        holder_ids = set(self._ctx.holders(space, base))
        peers = [p for p in self._others_to_ask(space, base) if p.node_id in holder_ids]
        is_down = {p.node_id: peers_table.is_down(p.node_id) for p in peers}
        live = [p for p in peers if not is_down[p.node_id]]
        down = [p for p in peers if is_down[p.node_id]]

        async def ask(group):
            return await asyncio.gather(*(calls.call_get_links(p, space, base, tag_prefix, with_targets) for p in group),
                                        return_exceptions=True)

        answers = await ask(live)
        if down and not any(isinstance(a, group_dht_pb2.GetLinksResponse) for a in answers):
            answers += await ask(down)
        if (not held_here and not holders_only and not any(isinstance(a, group_dht_pb2.GetLinksResponse) and a.links for a in answers)
                and self._unsettled(space)):
            # Nothing at the holders while the space's nodes were changing: links published
            # while the writer saw other nodes of the space may sit elsewhere, so ask the rest
            # of the space's live nodes too. (An empty inbox read every few seconds would
            # otherwise ask every node of the Lobby space each time.)
            answers += await ask([p for p in self._others_to_ask(space, base)
                                  if p.node_id not in holder_ids and not peers_table.is_down(p.node_id)])
        return [a for a in answers if isinstance(a, group_dht_pb2.GetLinksResponse)]

    def _believe_targets(self, answered: list[common_pb2.Signed], space: bytes, targets: dict) -> None:
        """Adds to `targets` (entry address -> STORE_ENTRY op) the ones of a peer's answer that validate."""
        for signed in answered:
            try:
                address = blake2b_256(group_dht_pb2.Op.FromString(signed.body).entry)
            except Exception:  # noqa: BLE001 - a peer's garbage is not believed
                continue
            if address not in targets and believe_entry(signed, space, address, self._store.get_space(space)):
                targets[address] = signed

    def _targets(self, space: bytes, live, fetched: dict) -> list[common_pb2.Signed]:
        """The STORE_ENTRY ops of the live links' targets: held here, or believed from peers."""
        out = []
        for _, _, signed in live:
            target = group_dht_pb2.Op.FromString(signed.body).target
            held = self._store.entry_op(space, target) or fetched.get(target)
            if held is not None:
                out.append(held)
        return out
