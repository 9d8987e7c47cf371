"""Anti-entropy between GroupDhtNodes on temporary LevelDBs over the in-memory transport:
a node that missed writes is repaired, a gone holder's addresses move to the next nodes in
line, a round where nothing differs is small, a peer's invalid op is never stored, and an
unreachable peer does not hold a round up."""

import asyncio

from kizuna.v1 import group_dht_pb2
from kizuna_node.common.hashing import blake2b_256
from kizuna_node.group_dht.sync import DIGEST_LEN, SLICES, Summary
from kizuna_node.common.errors import InvalidArgument
from tests.helpers import Agent, async_test
from tests.unit.test_group_dht_nodes import (  # noqa: F401 - fixtures
    agents, entry_op, group, holds_entry, join_all, make_node, network)

__all__ = ["agents", "group", "make_node", "network"]


def entries(agent, space, count, tag="op"):
    return [entry_op(agent, space, f"{tag} {i}".encode()) for i in range(count)]


async def should_hold_all(node, nodes, space, ops) -> bool:
    """Whether `node` holds every op of `ops` whose holders (as `nodes[0]` places them) include it."""
    for signed in ops:
        address = blake2b_256(group_dht_pb2.Op.FromString(signed.body).entry)
        if node.node_id in nodes[0].holders(space, address) and not await holds_entry(node, space, address):
            return False
    return True


@async_test
async def test_a_node_that_missed_writes_is_repaired_by_one_round_and_a_second_round_is_clean(
        make_node, network, agents, group):
    nodes = [make_node(f"n{i}") for i in range(4)]
    await join_all(nodes, agents, group)
    space = group[0]
    away = nodes[3]
    network.down.add("mem://n3")
    ops = entries(agents[0], space, 40)
    for signed in ops:
        await nodes[0].publish(signed)
    await asyncio.gather(*(n.settle() for n in nodes))
    network.down.discard("mem://n3")
    assert not await should_hold_all(away, nodes, space, ops)

    repaired = await away.sync_with_peers(space)

    assert repaired > 0
    assert await should_hold_all(away, nodes, space, ops)
    assert await away.sync_with_peers(space) == 0
    stats = next(s.sync for s in (await away.list_spaces()).spaces if s.space == space)
    assert stats.ops_repaired == repaired and stats.clean_rounds >= 3
    assert stats.clean_round_bytes / stats.clean_rounds < 400  # a clean round: one small request, an empty answer


@async_test
async def test_a_gone_holder_is_replaced_and_its_addresses_reach_r_live_holders(make_node, network, agents, group):
    nodes = [make_node(f"n{i}", gone_after=0.01) for i in range(5)]
    await join_all(nodes, agents[:4] + [agents[0]], group)
    space = group[0]
    ops = entries(agents[0], space, 30)
    for signed in ops:
        await nodes[0].publish(signed)
    gone = nodes[4]
    network.down.add("mem://n4")
    survivors = nodes[:4]
    for node in survivors:  # every survivor fails a call to it, and waits past gone_after
        await node.exchange_with_peers()
    await asyncio.sleep(0.02)
    addresses = [blake2b_256(group_dht_pb2.Op.FromString(s.body).entry) for s in ops]
    assert all(gone.node_id not in survivors[0].holders(space, a) for a in addresses)

    for node in survivors:
        await node.sync_with_peers(space)

    for address in addresses:
        holders = survivors[0].holders(space, address)
        assert len(holders) == 3
        for node in survivors:
            if node.node_id in holders:
                assert await holds_entry(node, space, address)


@async_test
async def test_an_invalid_op_a_peer_offers_is_refused_and_never_stored(make_node, network, agents, group):
    nodes = [make_node(f"n{i}") for i in range(2)]
    await join_all(nodes, agents, group)
    space = group[0]
    outsider = Agent()  # not a member of the group
    forged = entry_op(outsider, space, b"from outside")
    store = nodes[0]._ctx.store  # the peer holds it anyway (a node that validates nothing)
    store.put_op(blake2b_256(forged.body), forged, group_dht_pb2.Op.FromString(forged.body))

    assert await nodes[1].sync_with_peers(space) == 0
    assert not await holds_entry(nodes[1], space, blake2b_256(b"from outside"))
    stats = next(s.sync for s in (await nodes[1].list_spaces()).spaces if s.space == space)
    assert stats.ops_refused == 1


@async_test
async def test_rounds_go_on_while_a_peer_stalls(make_node, network, agents, group):
    nodes = [make_node(f"n{i}") for i in range(3)]
    await join_all(nodes, agents, group)
    space = group[0]

    async def written_while_away(tag):
        network.down.add("mem://n2")
        ops = entries(agents[0], space, 10, tag)
        for signed in ops:
            await nodes[0].publish(signed)
        await asyncio.gather(*(n.settle() for n in nodes[:2]))
        network.down.discard("mem://n2")
        return ops

    first = await written_while_away("first")
    network.stalled.add("mem://n1")  # answers nothing until released
    await nodes[2].start()
    try:
        await asyncio.wait_for(_until(lambda: should_hold_all(nodes[2], nodes, space, first)), timeout=10)
        second = entries(agents[0], space, 10, "second")
        for signed in second:  # n1 would hang a quorum write: n0 alone takes these
            await nodes[0].publish(signed, local_only=True)
        nodes[2].peers.mark_down(nodes[0].node_id)
        nodes[2].peers.mark_up(nodes[0].node_id)  # n0 answers again: a round with it, n1 still stalled
        await asyncio.wait_for(_until(lambda: should_hold_all(nodes[2], nodes, space, second)), timeout=10)
        assert ("sync_summary", "mem://n1") in network.calls and not network.release.is_set()
    finally:
        network.release.set()
        await nodes[2].stop()


@async_test
async def test_a_peer_whose_summary_differed_asks_back_at_once_not_at_its_next_paced_round(
        make_node, network, agents, group):
    nodes = [make_node(f"n{i}", sync_interval=3600) for i in range(3)]
    await join_all(nodes, agents, group)
    space = group[0]
    behind = nodes[2]
    await behind.start()
    try:
        async def rounds_done():  # the round at start and the first paced one, with both peers
            return stats_of(await behind.list_spaces(), space).rounds >= 4

        await asyncio.wait_for(_until(rounds_done), timeout=10)
        ops = entries(agents[0], space, 10)
        for signed in ops:
            await nodes[0].publish(signed, local_only=True)
        assert not await should_hold_all(behind, nodes, space, ops)

        await nodes[0].sync_with_peers(space)  # n0 asks n2: n2's summary differs from n0's

        await asyncio.wait_for(_until(lambda: should_hold_all(behind, nodes, space, ops)), timeout=10)
    finally:
        await behind.stop()


def stats_of(listed, space):
    return next(s.sync for s in listed.spaces if s.space == space)


async def _until(condition):
    while not await condition():
        await asyncio.sleep(0.05)


@async_test
async def test_a_summary_of_the_wrong_shape_is_invalid_argument(make_node, agents, group):
    node = make_node("n0")
    await node.join_space(group[0], agents[0].public, "group", group[1], claim=agents[0].claim(node.node_id, group[0]))
    for request in (
        group_dht_pb2.SyncSummaryRequest(space=group[0], node_id=b"x" * 32, digests=b"", counts=[]),
        group_dht_pb2.SyncSummaryRequest(space=b"short", node_id=b"x" * 32),
        group_dht_pb2.SyncSummaryRequest(space=group[0], node_id=b"x" * 32, digests=bytes(SLICES * DIGEST_LEN),
                                         counts=[0] * SLICES, start_after=b"bad"),
    ):
        try:
            node.sync_summary(request)
        except InvalidArgument:
            continue
        raise AssertionError(f"accepted {request}")
    empty = Summary.empty()
    answer = node.sync_summary(group_dht_pb2.SyncSummaryRequest(
        space=group[0], node_id=b"x" * 32, digests=b"".join(empty.digests), counts=empty.counts))
    assert list(answer.differing) == [] and not answer.op_hashes


@async_test
async def test_a_kept_summary_brought_up_to_date_equals_one_built_afresh(make_node, network, agents, group):
    nodes = [make_node(f"n{i}") for i in range(4)]
    await join_all(nodes, agents, group)
    space = group[0]
    sync = nodes[0]._sync
    other = nodes[1].node_id
    for signed in entries(agents[0], space, 30, "first"):
        await nodes[0].publish(signed)
    before = sum(sync._summary(space, other).counts)  # kept from here on
    for signed in entries(agents[0], space, 30, "then"):
        await nodes[0].publish(signed)

    kept = sync._summary(space, other)

    all_nodes = frozenset(sync._ctx.nodes_in_space(space)) | {other, nodes[0].node_id}
    fresh = sync._build_summary(space, other, all_nodes)
    assert (kept.digests, kept.counts) == (fresh.digests, fresh.counts)
    assert sum(kept.counts) > before > 0
