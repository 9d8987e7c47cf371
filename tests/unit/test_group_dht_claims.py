"""The checks behind "a group space is its members' nodes' alone", on GroupDhtNodes over
the in-memory transport: a node's claim to a group space (signed by a member agent for
that node and space), who counts in placement, and the caller proofs a read carries."""

import pytest

from kizuna.v1 import group_dht_pb2
from kizuna_node.common import anchors, dna, group_state, space_claims
from kizuna_node.common.errors import InvalidArgument, PermissionDenied, ResourceExhausted, Unauthenticated
from kizuna_node.common.hashing import blake2b_256, now_micros
from kizuna_node.group_dht import callers
from kizuna_node.group_dht.callers import Callers, caller_metadata
from tests.helpers import Agent, async_test
from tests.unit.test_group_dht_nodes import (  # noqa: F401 - fixtures
    agents, connect, group, join_all, make_node, network)

__all__ = ["agents", "group", "make_node", "network"]


def test_a_claim_stands_only_for_the_node_and_space_it_was_signed_for():
    agent, node, other = Agent(), b"n" * 32, b"o" * 32
    claim = agent.claim(node, b"s" * 32)
    assert space_claims.is_signed_claim(claim, node, b"s" * 32)
    assert not space_claims.is_signed_claim(claim, other, b"s" * 32)  # carried to another node
    assert not space_claims.is_signed_claim(claim, node, b"t" * 32)
    moved = group_dht_pb2.SpaceClaim()
    moved.CopyFrom(claim)
    moved.timestamp += 1
    assert not space_claims.is_signed_claim(moved, node, b"s" * 32)


@async_test
async def test_a_group_join_without_the_agents_claim_for_this_node_is_refused_and_changes_nothing(make_node, agents, group):
    node, elsewhere = make_node("n0"), make_node("n1")
    space, props = group
    for claim in (None, agents[0].claim(elsewhere.node_id, space), agents[1].claim(node.node_id, space)):
        with pytest.raises(InvalidArgument, match="the agent's claim, signed for this node and space"):
            await node.join_space(space, agents[0].public, "group", props, claim=claim)
    assert (await node.list_spaces()).spaces == []


@async_test
async def test_a_node_counts_in_a_group_space_only_with_a_current_members_claim(make_node, agents, group):
    space, props = group
    nodes = [make_node(f"n{i}") for i in range(3)]
    await join_all(nodes, agents, group)
    intruder = make_node("intruder")  # its own copy of the DNA, joined for a member it does not host
    await intruder.join_space(space, agents[3].public, "group", props, claim=agents[3].claim(intruder.node_id, space))
    stranger = Agent()
    intruder._ctx.store.put_space(_with_claims(intruder._ctx.store.get_space(space),
                                               [stranger.claim(intruder.node_id, space)]))
    await connect([*nodes, intruder])
    ids = {n.node_id for n in nodes}
    assert set(nodes[0]._ctx.nodes_in_space(space)) == ids  # the stranger's claim does not count

    removal = agents[0].group_update(group_state.GroupState.initial(props), "remove", [agents[2].public], space)
    await nodes[0].publish(removal)
    assert set(nodes[0]._ctx.nodes_in_space(space)) == ids - {nodes[2].node_id}  # checked against members now
    assert [c.agent for c in nodes[2].node_info().claims] == [agents[2].public]  # shown, not counted
    with pytest.raises(PermissionDenied, match="read by its members' nodes only"):
        nodes[0]._ctx.check_reader(nodes[2].node_id, space)
    nodes[0]._ctx.check_reader(nodes[1].node_id, space)
    nodes[0]._ctx.check_reader(nodes[2].node_id, dna.LOBBY_DNA_HASH)
    # the removed member's node still reads the group's updates: how it learns it was removed
    updates, removal_address = anchors.group_updates_anchor(space), blake2b_256(
        group_dht_pb2.Op.FromString(removal.body).entry)
    nodes[0]._ctx.check_reader(nodes[2].node_id, space, base=updates)
    nodes[0]._ctx.check_reader(nodes[2].node_id, space, address=removal_address)
    with pytest.raises(PermissionDenied):
        nodes[0]._ctx.check_reader(intruder.node_id, space, base=updates)  # a stranger's claim: never a member


def _with_claims(record, claims):
    del record.claims[:]
    record.claims.extend(claims)
    return record


class _Clock:
    def __init__(self):
        self.now = now_micros()

    def __call__(self):
        return self.now


@async_test
async def test_a_caller_proof_is_taken_once_fresh_for_this_node_and_method_from_a_known_node(make_node, monkeypatch):
    called, caller, stranger = make_node("called"), make_node("caller"), make_node("stranger", bootstrap=[])
    await connect([called, caller])
    clock = _Clock()
    checks = Callers(called._ctx, b"the called node's certificate", clock)
    identity = caller._gossip._identity

    def proof(method="Get", certificate=b"the called node's certificate", who=identity):
        return caller_metadata(who, certificate, method)

    assert checks.authenticate(proof(), "Get") == caller.node_id
    replayed = proof()
    checks.authenticate(replayed, "Get")
    refusals = {
        "taken before": replayed,
        "another call": proof("GetLinks"),
        "another call than Get on this node": proof(certificate=b"another node's certificate"),
        "is not known here": proof(who=stranger._gossip._identity),
        "needs the calling node's proof": (),
        "does not parse": ((callers.METADATA_KEY, b"\xff not a proof"),),
    }
    for words, metadata in refusals.items():
        with pytest.raises(Unauthenticated, match=words):
            checks.authenticate(metadata, "Get")
    stale = proof()
    clock.now += callers.WINDOW_MICROS + 1_000_000
    with pytest.raises(Unauthenticated, match="stale"):
        checks.authenticate(stale, "Get")
    clock.now = now_micros()
    forged = group_dht_pb2.CallerProof.FromString(proof()[0][1])
    forged.nonce = b"x" * callers.NONCE_LEN
    with pytest.raises(Unauthenticated, match="not signed by node"):
        checks.authenticate(((callers.METADATA_KEY, forged.SerializeToString()),), "Get")

    monkeypatch.setattr(callers, "MAX_NONCES", 3)
    monkeypatch.setattr(callers, "now_micros", clock)  # the proofs are dated by the test's clock too
    full = Callers(called._ctx, b"c", clock)
    for _ in range(3):
        full.authenticate(proof(certificate=b"c"), "Get")
    with pytest.raises(ResourceExhausted):
        full.authenticate(proof(certificate=b"c"), "Get")
    clock.now += 3 * callers.WINDOW_MICROS  # the proofs taken are past any window: forgotten, room again
    assert full.authenticate(proof(certificate=b"c"), "Get") == caller.node_id
