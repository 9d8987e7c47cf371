"""Rendezvous placement and quorum arithmetic."""

import os

from kizuna_node.common.hashing import blake2b_256
from kizuna_node.group_dht import placement


def test_holders_are_the_top_scores_and_do_not_depend_on_input_order():
    nodes = [os.urandom(32) for _ in range(7)]
    address = os.urandom(32)
    chosen = placement.holders(address, nodes, 3)
    assert chosen == placement.holders(address, list(reversed(nodes)), 3)
    expected = sorted(nodes, key=lambda n: blake2b_256(address + n), reverse=True)[:3]
    assert chosen == expected


def test_fewer_nodes_than_replication_means_all_hold():
    nodes = [os.urandom(32) for _ in range(2)]
    assert sorted(placement.holders(os.urandom(32), nodes, 3)) == sorted(nodes)


def test_different_addresses_spread_over_different_holders():
    nodes = [os.urandom(32) for _ in range(10)]
    sets = {tuple(placement.holders(os.urandom(32), nodes, 3)) for _ in range(20)}
    assert len(sets) > 1


def test_quorum_is_a_strict_majority_of_holders():
    assert [placement.quorum(n) for n in range(1, 7)] == [1, 2, 2, 3, 3, 4]
