"""Writing an op with a quorum: validated, then stored on the holders of its basis address in
parallel, succeeding when a strict majority of them stored it."""

import asyncio
import logging

from kizuna.v1 import common_pb2, group_dht_pb2
from kizuna_node.common import metrics
from kizuna_node.common.errors import UNREACHABLE, FailedPrecondition, KizunaError, Unavailable
from kizuna_node.common.retry import RetryPolicy, call_with_policy
from kizuna_node.group_dht import placement
from kizuna_node.group_dht.catch_up import GroupCatchUp
from kizuna_node.group_dht.context import NodeContext
from kizuna_node.group_dht.holding import Holding
from kizuna_node.group_dht.validation import basis_address, check_op, group_update_of, op_hash

log = logging.getLogger("kizuna.group_dht")

# A reachable holder whose write failed fast (its channel still reconnecting, say) is sent
# the op again in the background, for a few seconds at most.
HOLDER_RETRY = RetryPolicy(attempts=4, backoff_initial=0.25, backoff_max=1.0, attempt_timeout=1.0, budget=3.0)


class Writer:
    def __init__(self, ctx: NodeContext, catch_up: GroupCatchUp, holding: Holding):
        self._ctx = ctx
        self._store = ctx.store
        self._catch_up = catch_up
        self._holding = holding

    def _hand_off(self, space: bytes, address: bytes, signed: common_pb2.Signed) -> None:
        """An op a writer sent here that this node is not a holder of, as far as it knows the
        space (the writer knew fewer of its nodes): sent on to the holders it does know of, in
        the background, so that readers asking the holders find it. Anti-entropy compares only
        what both sides should hold, so it would not move such an op."""
        ctx = self._ctx
        nodes = ctx.nodes_in_space(space)
        holder_ids = placement.holders(address, nodes, ctx.replication)
        if ctx.node_id in holder_ids:
            return
        for node_id in holder_ids:
            peer = nodes[node_id]
            ctx.background.spawn(ctx.calls.quietly("hand off", peer.address, lambda p=peer: ctx.calls.call_publish(p, signed)))

    async def publish(self, signed: common_pb2.Signed, local_only: bool = False) -> group_dht_pb2.PublishResponse:
        """Validates the op and writes it to the holders of its basis address in parallel;
        succeeds when a quorum stored it (what was stored stays stored either way).

        A holder the peer table marks down is not waited on: it counts as not stored (but
        still among the holders the quorum is taken of) and is sent the op in the
        background, so that one that is back after all still gets it."""
        try:
            return await self._publish(signed, local_only)
        except KizunaError as exc:
            if not isinstance(exc, UNREACHABLE):  # refused: the op, not the holders
                metrics.DHT_OPS_REFUSED.labels(exc.code).inc()
            raise

    async def _publish(self, signed: common_pb2.Signed, local_only: bool) -> group_dht_pb2.PublishResponse:
        ctx = self._ctx
        op = check_op(signed)
        address, hash_ = basis_address(op), op_hash(signed)
        if local_only:
            validated = await self._catch_up.validate(signed, self._store.get_space(op.space))
            if self._holding.store_validated(signed, validated) and group_update_of(op) is None:
                self._hand_off(op.space, address, signed)
            return group_dht_pb2.PublishResponse(address=address, op_hash=hash_, stored=1, holders=1)
        record = self._store.get_space(op.space)
        nodes = ctx.nodes_in_space(op.space)
        if not nodes:
            raise FailedPrecondition("this node is not in the op's space and knows no node that is")
        if group_update_of(op) is not None:
            holder_ids = list(nodes)  # every node of a group checks its members against its updates
        else:
            holder_ids = placement.holders(address, nodes, ctx.replication)
        if record is not None:
            await self._catch_up.validate(signed, record, holder=ctx.node_id in holder_ids)
        down = [n for n in holder_ids if n != ctx.node_id and ctx.peers.is_down(n)]
        for node_id in down:
            log.debug("holder %s is marked down: op %s sent to it in the background", node_id.hex()[:16], hash_.hex()[:16])
            peer = nodes[node_id]
            ctx.background.spawn(ctx.calls.quietly("publish", peer.address, lambda p=peer: ctx.calls.call_publish(p, signed)))
        awaited = [n for n in holder_ids if n not in down]

        async def write(node_id: bytes):
            if node_id == ctx.node_id:
                self._holding.store_validated(signed, op)  # validated above: this node is in the space
                return
            await ctx.calls.call_publish(nodes[node_id], signed)

        results = await asyncio.gather(*(write(n) for n in awaited), return_exceptions=True)
        stored = sum(1 for r in results if r is None)
        for node_id, r in zip(awaited, results):
            if isinstance(r, KizunaError):
                log.warning("holder %s did not store op %s: %s %s", node_id.hex()[:16], hash_.hex()[:16], r.code, r.message)
            if isinstance(r, UNREACHABLE):
                self._send_again(nodes[node_id], signed)
        needed = placement.quorum(len(holder_ids))
        if stored < needed:
            metrics.DHT_QUORUM_FAILURES.inc()
            refusals = [r for r in results if isinstance(r, KizunaError) and not isinstance(r, UNREACHABLE)]
            if refusals and stored == 0:
                raise refusals[0]
            for r in results:
                if isinstance(r, BaseException) and not isinstance(r, KizunaError):
                    log.error("publish to a holder failed unexpectedly", exc_info=r)
            skipped = f" ({len(down)} marked down, not waited on)" if down else ""
            raise Unavailable(f"stored on {stored} of {len(holder_ids)} holders; quorum is {needed}{skipped}")
        return group_dht_pb2.PublishResponse(address=address, op_hash=hash_, stored=stored, holders=len(holder_ids))

    def _send_again(self, peer: group_dht_pb2.NodeInfo, signed: common_pb2.Signed) -> None:
        """Tries a holder that did not answer again in the background, under HOLDER_RETRY."""
        calls = self._ctx.calls

        def again():
            return call_with_policy(HOLDER_RETRY, f"publish to {peer.address}",
                                    lambda _timeout: calls.call_publish(peer, signed))

        self._ctx.background.spawn(calls.quietly("publish", peer.address, again))
