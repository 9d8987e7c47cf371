"""A node's life: a clone its DHT refuses, and restarts that keep everything it had."""

import grpc
import pytest

from kizuna import net
from kizuna.chain import verify_source_chain
from kizuna.client import ClientError
from kizuna.v1 import common_pb2, conductor_pb2, conductor_pb2_grpc, group_dht_pb2, group_dht_pb2_grpc, lobby_pb2
from tests.helpers import run
from tests.integration.network import TIMEOUT, make_clients, make_network

pytestmark = pytest.mark.integration


def _entry_types(chain):
    return [common_pb2.Action.FromString(s.body).entry_type for s in chain]


def test_clone_refused_by_the_dht_fails_create_group_and_commits_and_sends_nothing(tmp_path):
    # alice's DHT holds at most one space (the Lobby space), so it refuses the group's.
    with make_network(tmp_path, extra_args={"alice": {"group_dht": ["--max-spaces", "1"]}}) as network:
        async def scenario():
            async with make_clients(network, ("alice", "bobby", "charlie")) as clients:
                chain_before = await clients["alice"].source_chain()
                with pytest.raises(ClientError) as refused:
                    await clients["alice"].create_group("Doomed", ["bobby", "charlie"])
                assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
                assert "clone failed" in refused.value.details
                assert "maximum of 1 spaces" in refused.value.details

                chain_after = await clients["alice"].source_chain()
                assert len(chain_after) == len(chain_before)
                assert "invite" not in _entry_types(chain_after)
                assert (await clients["alice"].groups()).groups == common_pb2.Groups()
                # CreateGroup sends its invites before it answers; none went out.
                for invitee in ("bobby", "charlie"):
                    assert (await clients[invitee].groups()).details == []
                    assert [e for e in clients[invitee].events_so_far() if e.kind == "invite"] == []

        run(scenario())


def _without_receipts(record) -> bytes:
    copy = type(record)()
    copy.CopyFrom(record)
    del copy.receipts[:]
    return copy.SerializeToString()


async def _snapshot(network, name):
    """Everything a node keeps for its agent, read through its three services."""
    agent = network.agent_key(name)
    async with grpc.aio.insecure_channel(network.conductor_address(name)) as channel:
        conductor = conductor_pb2_grpc.ConductorStub(channel)
        secret = network.conductor_metadata(name)
        agents = (await conductor.ListAgents(conductor_pb2.ListAgentsRequest(), metadata=secret)).agents
        cells = (await conductor.ListCells(conductor_pb2.ListCellsRequest(agent=agent), metadata=secret)).cells
    async with grpc.aio.insecure_channel(network.dht_address(name)) as channel:
        spaces = (await group_dht_pb2_grpc.GroupDhtStub(channel).ListSpaces(group_dht_pb2.ListSpacesRequest(),
                                                                            metadata=secret)).spaces
    async with make_clients(network, (name,), signals=False) as clients:
        client = clients[name]
        groups = await client.groups()
        chain = await client.source_chain()
        # receipts keep arriving on the author's copies; the messages themselves must not change
        histories = {g: [_without_receipts(r) for r in await client.all_history(g)] for g in groups.groups.group_uuids}
    return {
        "agents": sorted(a.agent for a in agents),
        "cells": sorted(c.SerializeToString() for c in cells),
        "spaces": sorted((s.space, s.ops) for s in spaces),
        "groups": groups.SerializeToString(),
        "chain": [s.SerializeToString() for s in chain],
        "histories": histories,
    }


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_restarting_every_service_of_a_node_keeps_agents_cells_chain_groups_history_and_ops(tmp_path, kill):
    with make_network(tmp_path) as network:
        async def before():
            async with make_clients(network, ("alice", "bobby", "charlie")) as clients:
                created = await clients["alice"].create_group("Keepers", ["bobby", "charlie"])
                group = created.group.group_uuid
                await clients["bobby"].wait_for(lambda e: e.kind == "invite", TIMEOUT)
                await clients["bobby"].accept(group)
                for i in range(5):
                    await clients["alice"].send(group, f"message {i}")
                    await clients["bobby"].send(group, f"reply {i}")
                await clients["bobby"].block_agent(network.agent_key("charlie"))
            return await _snapshot(network, "bobby")

        saved = run(before())
        assert len(saved["cells"]) == 2  # the Lobby cell and the group's clone cell
        assert len(saved["histories"]) == 1 and len(next(iter(saved["histories"].values()))) == 10
        assert any(ops > 0 for _, ops in saved["spaces"])

        net.stop_node(tmp_path, "bobby", kill=kill)
        assert not any(s["running"] for s in net.status(tmp_path)["bobby"].values())
        net.start_node(tmp_path, "bobby")

        restored = run(_snapshot(network, "bobby"))
        # Every op is still held; the Lobby space may have gained the agent info the lobby
        # publishes again at start.
        saved_ops, restored_ops = dict(saved.pop("spaces")), dict(restored.pop("spaces"))
        assert restored_ops.keys() == saved_ops.keys()
        assert all(restored_ops[space] >= ops for space, ops in saved_ops.items())
        assert restored == saved
        chain = [common_pb2.Signed.FromString(raw) for raw in restored["chain"]]
        verify_source_chain(chain)
        assert _entry_types(chain) == ["invite", "groups", "blocked_agents"]

        async def still_works():
            async with make_clients(network, ("alice", "bobby")) as clients:
                group = next(iter(saved["histories"]))
                sent = await clients["alice"].send(group, "after the restart")
                # Straight to bobby, or (when alice's lobby saw him fail a moment ago, as after
                # a SIGKILL) through his inbox in the group's space.
                assert {o.status for o in sent.outcomes} <= {lobby_pb2.DELIVERED, lobby_pb2.STORED_IN_DHT}
                if lobby_pb2.STORED_IN_DHT in {o.status for o in sent.outcomes}:
                    await clients["bobby"].sync_inbox()
                await clients["bobby"].wait_for(lambda e: e.kind == "message" and e.record.entry.payload == "after the restart", TIMEOUT)

        run(still_works())
