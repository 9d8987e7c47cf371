"""Several agents per node, and delivery per node: a message to a group whose receivers
share nodes is one call_remote per other node (none for the receivers the sender's own
lobby hosts), each receiver's outcome and the seed's rules its own; a node that cannot be
reached has its receivers' copies put in the DHT; receipts come back in one call per node."""

import asyncio

import pytest

from kizuna import net
from tests.integration.test_metrics import scrape, value
from tests.integration.network import (
    TIMEOUT, create_group, make_clients, make_network, messages, outcomes_by_name, run, start_node, status_name,
    stop_node, wait_until)

pytestmark = pytest.mark.integration

NODES = ("alice", "bobby", "charlie")
AGENTS = [a for node in NODES for a in net.agent_names(node, 2)]  # alice, alice-2, bobby, bobby-2, ...


@pytest.fixture
def network(tmp_path):
    with make_network(tmp_path / "net", nodes=NODES, agents_per_node=2) as network:
        yield network


def test_each_agent_has_its_own_keys_and_token_and_node(network):
    assert sorted(network.agents) == sorted(AGENTS)
    assert len({r["agent"] for r in network.agents.values()}) == 6
    assert len({r["app_token"] for r in network.agents.values()}) == 6
    assert {network.agent(a)["node"] for a in AGENTS} == set(NODES)
    assert network.agent("bobby-2")["node"] == "bobby"


def test_one_call_per_other_node_carries_every_receiver_and_each_keeps_its_own_rules(network):
    async def scenario():
        async with make_clients(network, AGENTS) as clients:
            invitees = [a for a in AGENTS if a != "alice"]
            group = (await create_group(clients, "many", invitees)).group.group_uuid
            await clients["bobby-2"].block_agent(network.agent_key("alice-2"))
            await clients["charlie-2"].block(group)

            answer = await clients["alice"].send(group, "hello, everyone")

            assert answer.lobby_calls == 2  # one per other node, none for alice-2 beside her: not five receivers
            outcomes = outcomes_by_name(network, answer.outcomes)
            assert sorted(outcomes) == sorted(invitees)
            assert {status_name(o.status) for o in outcomes.values()} == {"DELIVERED"}
            for name in ("alice-2", "bobby", "bobby-2", "charlie"):
                await wait_until(clients[name], lambda c=clients[name]: messages(c, group, "hello, everyone"),
                                 f"{name} sees the message")
            [seen] = messages(clients["bobby-2"], group, "hello, everyone")
            assert "blocked by you" in seen.record.warning  # bobby-2 blocked alice-2, a member
            assert not messages(clients["bobby"], group, "hello, everyone")[0].record.warning
            history = (await clients["charlie-2"].history(group)).messages
            assert not [m for m in history if m.entry.payload == "hello, everyone"]  # blocked group: nothing

            async def receipts():
                mine = [m for m in (await clients["alice"].history(group)).messages
                        if m.entry.payload == "hello, everyone"]
                return {r.receiver for r in mine[0].receipts if r.delivered_at}

            took = {network.agent_key(n) for n in ("alice-2", "bobby", "bobby-2", "charlie")}
            deadline = asyncio.get_running_loop().time() + TIMEOUT
            while await receipts() != took:
                assert asyncio.get_running_loop().time() < deadline, "the receipts of the four receivers reach alice"
                await clients["alice"].wait_for(lambda e: e.kind == "receipt", TIMEOUT)

    run(scenario())
    lobbies = {name: scrape(network.node(name)["metrics"]["lobby"]) for name in NODES}

    def calls(node, method):
        return value(lobbies[node], "kizuna_rpcs_total", service="lobby", method=method, code="OK")

    # alice-2 got her invite and the message in-process, and sent her receipt the same way
    assert calls("alice", "ReceiveInvites") + calls("alice", "ReceiveInvite") == 0
    assert calls("alice", "ReceiveGroupMessages") + calls("alice", "ReceiveGroupMessage") == 0
    assert calls("bobby", "ReceiveGroupMessages") == calls("charlie", "ReceiveGroupMessages") == 1
    # bobby's and bobby-2's receipts in one call; charlie's alone (charlie-2 blocked the group): two in all
    assert calls("alice", "ReceiveReceipts") == 2
    assert calls("alice", "ReceiveReceipt") == 0


def test_an_unreachable_node_has_each_of_its_receivers_copy_put_in_the_dht(network, tmp_path):
    async def scenario():
        async with make_clients(network, AGENTS) as clients:
            invitees = [a for a in AGENTS if a != "alice"]
            group = (await create_group(clients, "away", invitees)).group.group_uuid
            for name in ("bobby", "bobby-2"):
                await clients[name].close()
            await stop_node(tmp_path / "net", "bobby")

            answer = await clients["alice"].send(group, "while bobby's node is away")

            outcomes = {n: status_name(o.status) for n, o in outcomes_by_name(network, answer.outcomes).items()}
            assert outcomes == {"alice-2": "DELIVERED", "bobby": "STORED_IN_DHT", "bobby-2": "STORED_IN_DHT",
                                "charlie": "DELIVERED", "charlie-2": "DELIVERED"}
            await start_node(tmp_path / "net", "bobby")
        async with make_clients(network, ["bobby", "bobby-2"]) as back:
            for name, client in back.items():
                await client.sync_inbox()
                await wait_until(client, lambda c=client: messages(c, group, "while bobby's node is away"),
                                 f"{name} catches up", timeout=TIMEOUT)

    run(scenario())
