"""Anti-entropy: each node of a space asks its peers, in paced and bounded rounds, which ops
they hold that it should hold and it lacks, then fetches, validates and stores them.

A round with one peer: this node sends a digest per slice of the address ring of the ops
it holds at the addresses both of them should hold (a few hundred bytes); the peer
compares them with the same digests over what it holds there and lists the op hashes of
the slices that differ; this node fetches the ones it lacks. Every address is on R
holders, so asking each peer of a space covers every address this node should hold. Nothing differing costs one small request and
an empty answer.

Rounds run with every peer of a space when this node starts, when the space's set of live
nodes changes (a node joined, or one is gone: the next nodes in line become holders), with
a peer that answers again after failing, and with a peer whose summary differed from this
node's when it asked (it may hold what this node lacks: two nodes that see a holder gone
at different moments repair each other at once, not at the next paced round; once per
interval per peer at most); otherwise with a few peers at a time, the least recently
asked first. Each round with a peer runs on its own in the background (a
few at once, each call under the call timeout), peers marked down are skipped, and a peer
with a round still running is not asked again: an unreachable peer holds nothing up."""

import asyncio
import dataclasses
import logging
import time

from kizuna.v1 import common_pb2, group_dht_pb2
from kizuna_node.common import metrics
from kizuna_node.common.background import round_failed
from kizuna_node.common.errors import FailedPrecondition, InvalidArgument, KizunaError
from kizuna_node.common.hashing import HASH_LEN, now_micros
from kizuna_node.group_dht import placement
from kizuna_node.group_dht.catch_up import GroupCatchUp
from kizuna_node.group_dht.context import NodeContext
from kizuna_node.group_dht.holding import Holding
from kizuna_node.group_dht.validation import check_hash, op_hash

log = logging.getLogger("kizuna.group_dht")

SLICES = 16  # slices of the address ring: by the first 4 bits of an address
DIGEST_LEN = 8
SYNC_INTERVAL = 5.0  # seconds between the paced rounds of a space
TICK = 1.0  # how often the loop looks for a changed node set or a returned peer
FANOUT = 3  # peers asked per paced round
PARALLEL = 4  # peers asked at once
MAX_HASHES = 1024  # op hashes per summary answer (then it is truncated)
MAX_FETCH = 128  # ops per FetchOps call
MAX_FETCH_BYTES = 4 * 1024 * 1024  # an answer stops short of this (file chunks are big ops)
MAX_PAGES = 8  # summary pages per peer per round: the rest waits for the next round
MAX_KEPT_SUMMARIES = 4096  # (space, peer) summaries kept between rounds
KIND_ORDER = {group_dht_pb2.STORE_ENTRY: 0, group_dht_pb2.CREATE_LINK: 1, group_dht_pb2.DELETE_LINK: 2}


def slice_of(address: bytes) -> int:
    return address[0] * SLICES // 256


@dataclasses.dataclass
class Summary:
    digests: list[bytes]
    counts: list[int]
    hashes: list[list[bytes]]  # per slice, the op hashes summarized (unsorted)

    @classmethod
    def empty(cls) -> "Summary":
        return cls([bytes(DIGEST_LEN)] * SLICES, [0] * SLICES, [[] for _ in range(SLICES)])

    def add(self, address: bytes, hash_: bytes) -> None:
        i = slice_of(address)
        self.digests[i] = bytes(a ^ b for a, b in zip(self.digests[i], hash_[:DIGEST_LEN]))
        self.counts[i] += 1
        self.hashes[i].append(hash_)


class HolderCache:
    """Which nodes hold each address, for one space's node set: recomputed when it changes."""

    def __init__(self):
        self._nodes: dict[bytes, frozenset] = {}
        self._holders: dict[bytes, dict[bytes, frozenset]] = {}

    def holders(self, space: bytes, nodes: frozenset, address: bytes, replication: int) -> frozenset:
        if self._nodes.get(space) != nodes:
            self._nodes[space], self._holders[space] = nodes, {}
        by_address = self._holders[space]
        held = by_address.get(address)
        if held is None:
            held = by_address[address] = frozenset(placement.holders(address, nodes, replication))
        return held


class AntiEntropy:
    def __init__(self, ctx: NodeContext, catch_up: GroupCatchUp, holding: Holding, interval: float = SYNC_INTERVAL):
        self._ctx = ctx
        self._store = ctx.store
        self._catch_up = catch_up
        self._holding = holding
        self.interval = interval
        self._cache = HolderCache()
        # (space, peer) -> (store epoch, position, node set, summary): kept, and brought up to
        # date with the ops stored since, while the space's node set stays the same
        self._summaries: dict[tuple[bytes, bytes], tuple[int, int, frozenset, Summary]] = {}
        self._stats: dict[bytes, group_dht_pb2.SyncStats] = {}
        self._node_sets: dict[bytes, frozenset] = {}
        self._last_paced: dict[bytes, float] = {}
        self._last_asked: dict[bytes, float] = {}  # node id -> when last asked
        self._returned: set[bytes] = set()
        self._ask_back: dict[bytes, set[bytes]] = {}  # space -> peers whose summary differed from ours
        self._asked_back_at: dict[tuple[bytes, bytes], float] = {}
        self._wake = asyncio.Event()
        self._running: set[tuple[bytes, bytes]] = set()
        self._limit = asyncio.Semaphore(PARALLEL)

    # what a node should hold

    def _summary(self, space: bytes, other: bytes) -> Summary:
        """The digests of the ops this node holds in the space that both it and `other`
        should hold: both sides of a round summarize the same addresses, so the digests
        differ only where one of them lacks an op. Kept, and brought up to date with the ops
        stored since, until the space's nodes change: a round reads only what is new."""
        me = self._ctx.node_id
        nodes = frozenset(self._ctx.nodes_in_space(space)) | {other, me}
        key = (space, other)
        epoch, position = self._store.generation(space)
        kept = self._summaries.get(key)
        if kept is not None and kept[0] == epoch and kept[2] == nodes:
            added = self._store.added_since(space, kept[1])
            if added is not None:
                summary = kept[3]
                for address, hash_, every in added:
                    if every or {other, me} <= self._cache.holders(space, nodes, address, self._ctx.replication):
                        summary.add(address, hash_)
                self._summaries[key] = (epoch, position, nodes, summary)
                return summary
        summary = self._build_summary(space, other, nodes)
        if len(self._summaries) >= MAX_KEPT_SUMMARIES:
            self._summaries.pop(next(iter(self._summaries)))
        self._summaries[key] = (epoch, position, nodes, summary)
        return summary

    def _build_summary(self, space: bytes, other: bytes, nodes: frozenset) -> Summary:
        me = self._ctx.node_id
        summary = Summary.empty()
        for address, hash_, every in self._store.held(space):
            if not every:
                holders = self._cache.holders(space, nodes, address, self._ctx.replication)
                if other not in holders or me not in holders:
                    continue
            summary.add(address, hash_)
        return summary

    # the answering side

    def answer_summary(self, request: group_dht_pb2.SyncSummaryRequest) -> group_dht_pb2.SyncSummaryResponse:
        check_hash(request.space, "space")
        check_hash(request.node_id, "node_id")
        if len(request.digests) != SLICES * DIGEST_LEN or len(request.counts) != SLICES:
            raise InvalidArgument(f"a summary has {SLICES} digests of {DIGEST_LEN} bytes and {SLICES} counts")
        if request.start_after:
            check_hash(request.start_after, "start_after")
        if self._store.get_space(request.space) is None:
            raise FailedPrecondition("this node is not in that space")
        mine = self._summary(request.space, request.node_id)
        differing = [i for i in range(SLICES)
                     if mine.digests[i] != request.digests[i * DIGEST_LEN:(i + 1) * DIGEST_LEN]
                     or mine.counts[i] != request.counts[i]]
        if differing and not request.start_after:
            self._asked_by_differing(request.space, request.node_id)
        hashes = sorted(h for i in differing for h in mine.hashes[i] if h > request.start_after)
        return group_dht_pb2.SyncSummaryResponse(op_hashes=hashes[:MAX_HASHES], truncated=len(hashes) > MAX_HASHES,
                                                 differing=differing)

    def answer_fetch(self, request: group_dht_pb2.FetchOpsRequest) -> group_dht_pb2.FetchOpsResponse:
        check_hash(request.space, "space")
        if len(request.op_hashes) > MAX_FETCH:
            raise InvalidArgument(f"at most {MAX_FETCH} op hashes per call")
        for hash_ in request.op_hashes:
            check_hash(hash_, "op hash")
        answer, size = group_dht_pb2.FetchOpsResponse(), 0
        for hash_ in request.op_hashes:  # in order, stopping short of MAX_FETCH_BYTES: ask again for the rest
            op = self._store.get_signed(request.space, hash_)
            if op is None:
                continue
            size += op.ByteSize()
            if answer.ops and size > MAX_FETCH_BYTES:
                break
            answer.ops.append(op)
        return answer

    # the asking side

    def stats(self, space: bytes) -> group_dht_pb2.SyncStats:
        return self._stats.setdefault(space, group_dht_pb2.SyncStats())

    def _asked_by_differing(self, space: bytes, node_id: bytes) -> None:
        key = (space, node_id)
        now = time.monotonic()
        if now - self._asked_back_at.get(key, -self.interval) < self.interval:
            return
        if len(self._asked_back_at) > 4 * MAX_HASHES:  # bounded: forget the oldest
            self._asked_back_at.pop(next(iter(self._asked_back_at)))
        self._asked_back_at[key] = now
        self._ask_back.setdefault(space, set()).add(node_id)
        self._wake.set()

    def peer_returned(self, node_id: bytes) -> None:
        """A peer that was failing answered: it is asked at the next tick."""
        self._returned.add(node_id)
        self._wake.set()

    async def run(self) -> None:
        """Rounds until cancelled: every space with every peer at once, then as the module says."""
        for space in self._spaces():
            self._node_sets[space] = self._live_nodes(space)
        await self._rounds({space: self.live_peers(space) for space in self._spaces()})
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), TICK)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._rounds(self._due())
            except Exception as exc:  # noqa: BLE001 - anti-entropy must outlive one bad round
                await round_failed(log, "anti-entropy round", exc)

    def _spaces(self) -> list[bytes]:
        return [record.space for record in self._store.list_spaces()]

    def _live_nodes(self, space: bytes) -> frozenset:
        return frozenset(self._ctx.nodes_in_space(space))

    def live_peers(self, space: bytes) -> list[group_dht_pb2.NodeInfo]:
        """The space's peers not gone, nor marked down."""
        return [p for n, p in self._ctx.nodes_in_space(space).items()
                if p is not None and not self._ctx.peers.is_down(n)]

    def _due(self) -> dict[bytes, list[group_dht_pb2.NodeInfo]]:
        """space -> the peers to ask now."""
        now = time.monotonic()
        returned, self._returned = self._returned, set()
        ask_back, self._ask_back = self._ask_back, {}
        due = {}
        for space in self._spaces():
            peers = self.live_peers(space)
            wanted = returned | ask_back.get(space, set())
            nodes = self._live_nodes(space)
            if self._node_sets.get(space) != nodes:
                self._node_sets[space] = nodes
                log.info("space %s: its live nodes changed (%d now): syncing with every peer", space.hex()[:16],
                         len(nodes))
                due[space] = peers
            elif space not in self._last_paced or now - self._last_paced[space] >= self.interval:
                self._last_paced[space] = now
                paced = sorted(peers, key=lambda p: self._last_asked.get(p.node_id, 0.0))[:FANOUT]
                due[space] = paced + [p for p in peers if p.node_id in wanted and p not in paced]
            else:
                due[space] = [p for p in peers if p.node_id in wanted]
        return {space: peers for space, peers in due.items() if peers}

    async def _rounds(self, due: dict[bytes, list[group_dht_pb2.NodeInfo]]) -> None:
        """Starts a round with each (space, peer) due that has none running, PARALLEL at
        most at once, in the background: the loop never waits on a slow peer."""
        for space, peers in due.items():
            for peer in peers:
                key = (space, peer.node_id)
                if key not in self._running:
                    self._running.add(key)
                    self._ctx.background.spawn(self._round(space, peer, key))

    async def _round(self, space: bytes, peer: group_dht_pb2.NodeInfo, key) -> None:
        try:
            async with self._limit:
                self._last_asked[peer.node_id] = time.monotonic()
                await self.sync_with(space, peer)
        except KizunaError as exc:
            log.debug("anti-entropy with %s failed: %s %s", peer.address, exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - one bad round must not end the others
            await round_failed(log, f"anti-entropy round with {peer.address}", exc)
        finally:
            self._running.discard(key)

    async def sync_with(self, space: bytes, peer: group_dht_pb2.NodeInfo) -> int:
        """One round with one peer: the ops this node lacks and should hold, fetched,
        validated and stored; how many were stored."""
        stats = self.stats(space)
        mine = self._summary(space, peer.node_id)
        request = group_dht_pb2.SyncSummaryRequest(space=space, node_id=self._ctx.node_id,
                                                   digests=b"".join(mine.digests), counts=mine.counts)
        stored, clean = 0, True
        for _ in range(MAX_PAGES):
            answer = await self._ctx.calls.call_sync_summary(peer, request)
            if not answer.differing:
                break
            clean = False
            missing = [h for h in answer.op_hashes if len(h) == HASH_LEN and not self._store.has_op(space, h)]
            stored += await self._fetch(space, peer, missing)
            if not answer.truncated or not answer.op_hashes:
                break
            request.start_after = answer.op_hashes[-1]
        stats.rounds += 1
        stats.last_round_micros = now_micros()
        metrics.DHT_SYNC_ROUNDS.labels("clean" if clean else "differing").inc()
        metrics.DHT_OPS_REPAIRED.inc(stored)
        if clean:
            stats.clean_rounds += 1
            stats.clean_round_bytes += request.ByteSize() + answer.ByteSize()
        if stored:
            stats.ops_repaired += stored
            stats.last_repair_micros = stats.last_round_micros
            log.info("space %s: %d ops repaired from %s", space.hex()[:16], stored, peer.address)
        return stored

    async def _fetch(self, space: bytes, peer: group_dht_pb2.NodeInfo, missing: list[bytes]) -> int:
        """Fetches the ops by hash and stores each that validates: entries before the links
        that name them, deletes last, older before newer."""
        fetched: list[tuple[common_pb2.Signed, group_dht_pb2.Op]] = []
        asking = list(missing)
        while asking:
            answer = await self._ctx.calls.call_fetch_ops(peer, space, asking[:MAX_FETCH])
            wanted = set(asking[:MAX_FETCH])
            got = {op_hash(signed) for signed in answer.ops} & wanted
            # a short answer (too many bytes at once) is asked on from the first op it left out
            asking = asking[MAX_FETCH:] if not got else [h for h in asking if h not in got]
            for signed in answer.ops:
                if op_hash(signed) not in wanted:
                    continue
                try:
                    fetched.append((signed, group_dht_pb2.Op.FromString(signed.body)))
                except Exception:  # noqa: BLE001 - a peer's garbage is not stored
                    self.stats(space).ops_refused += 1
        fetched.sort(key=lambda item: (KIND_ORDER.get(item[1].kind, 3), item[1].timestamp))
        stored = 0
        for signed, _ in fetched:
            try:
                record = self._store.get_space(space)
                op = await self._catch_up.validate(signed, record)
                self._holding.store_validated(signed, op)
                stored += 1
            except KizunaError as exc:
                self.stats(space).ops_refused += 1
                log.warning("anti-entropy: op %s from %s refused: %s %s", op_hash(signed).hex()[:16], peer.address,
                            exc.code, exc.message)
        return stored
