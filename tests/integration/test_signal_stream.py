"""The signal stream on real processes: it resumes across a SIGKILL of the lobby with nothing
lost or twice, two streams see the same backlog, an acked signal is not replayed, and a
send repeated with its transaction id (also across a lobby restart) stores one message."""

import asyncio
import os
import signal

import grpc
import pytest

from kizuna import net
from kizuna.client import Client, ClientError
from kizuna.v1 import admin_pb2, admin_pb2_grpc
from tests.helpers import run
from tests.integration.network import (create_group, make_clients, make_network, messages, start_node, status_name,
                                       wait_dead, wait_until)

pytestmark = pytest.mark.integration

NAMES = ("alice", "bobby")


async def sigkill_lobby(directory, name) -> None:
    pid = net.load(directory).node(name)["pids"]["lobby"]
    os.kill(pid, signal.SIGKILL)
    await asyncio.to_thread(wait_dead, pid)


def payloads(client, group):
    return [e.record.entry.payload for e in messages(client, group)]


def test_a_watching_client_resumes_across_a_lobby_sigkill_with_every_message_once_in_seq_order(tmp_path):
    with make_network(tmp_path, nodes=NAMES) as network:
        async def scenario():
            async with make_clients(network, NAMES) as clients:
                alice, bobby = clients["alice"], clients["bobby"]
                group = (await create_group(clients, "Resume", ["bobby"])).group.group_uuid
                sent = [f"message {i}" for i in range(9)]
                for text in sent[:3]:
                    await alice.send(group, text)
                await wait_until(bobby, lambda: len(messages(bobby, group)) == 3, "bobby sees the first three")
                await sigkill_lobby(tmp_path, "bobby")
                away = [await alice.send(group, text) for text in sent[3:6]]
                await start_node(tmp_path, "bobby")
                for text in sent[6:]:
                    await alice.send(group, text)
                await wait_until(bobby, lambda: len(messages(bobby, group)) >= 9, "bobby sees all nine", 90)
                history = await bobby.all_history(group)
                return group, sent, away, bobby, history
        group, sent, away, bobby, history = run(scenario())
        assert all(status_name(o.status) in ("QUEUED", "STORED_IN_DHT") for a in away for o in a.outcomes)
        assert payloads(bobby, group) == sent  # each once, in the order sent
        seqs = [e.seq for e in bobby.events_so_far() if e.seq]
        assert seqs == sorted(set(seqs))  # strictly increasing across the restart: no duplicate
        assert bobby.reconnects >= 1
        assert sorted(r.entry.payload for r in history) == sorted(sent)


def test_two_streams_see_the_same_backlog_and_an_acked_signal_is_not_replayed(tmp_path):
    with make_network(tmp_path, nodes=NAMES) as network:
        async def admin_count(name):
            node = network.node(name)
            async with grpc.aio.insecure_channel(node["lobby"]) as channel:
                listed = await admin_pb2_grpc.LobbyAdminStub(channel).ListQueuedSignals(
                    admin_pb2.ListQueuedSignalsRequest(), metadata=net.conductor_metadata(node))
            return {q.agent: q.count for q in listed.agents}.get(network.agent_key(name), 0)

        async def scenario():
            async with make_clients(network, NAMES) as clients:
                group = (await create_group(clients, "Backlog", ["bobby"])).group.group_uuid
            async with make_clients(network, ("alice",)) as clients:  # bobby has no stream open now
                for text in ("one", "two", "three"):
                    await clients["alice"].send(group, text)
                watchers = [Client.from_network(tmp_path, "bobby", auto_ack=False) for _ in range(2)]
                try:
                    for watcher in watchers:
                        await watcher.start_signals()
                        await wait_until(watcher, lambda w=watcher: len(messages(w, group)) == 3, "the backlog")
                    await clients["alice"].send(group, "four")
                    for watcher in watchers:
                        await wait_until(watcher, lambda w=watcher: len(messages(w, group)) == 4, "the live one")
                    seen = [[(e.seq, e.kind) for e in w.events_so_far()] for w in watchers]
                    kept_before = await admin_count("bobby")
                    second = messages(watchers[0], group)[1].seq
                    kept_after = await watchers[0].ack(second)
                    kept_shown = await admin_count("bobby")
                finally:
                    for watcher in watchers:
                        await watcher.close()
                async with Client.from_network(tmp_path, "bobby", auto_ack=False) as later:
                    await later.start_signals()
                    await wait_until(later, lambda: len(messages(later, group)) == 2, "the signals not acked")
                    replayed = [e.seq for e in later.events_so_far()]
                with pytest.raises(ClientError) as refused:
                    await watchers[0].ack(10**6)
                return seen, kept_before, kept_after, kept_shown, second, replayed, refused.value
        seen, kept_before, kept_after, kept_shown, second, replayed, refused = run(scenario())
        # the invite was acked by bobby's first client, which took it: three kept, one live
        assert seen[0] == seen[1] and [kind for _, kind in seen[0]] == ["message"] * 4
        assert kept_before == 4 and kept_shown == kept_after == len([seq for seq, _ in seen[0] if seq > second]) == 2
        assert replayed and min(replayed) == second + 1 and replayed == sorted(replayed)
        assert refused.code == grpc.StatusCode.INVALID_ARGUMENT and "past this agent's last signal" in refused.details


def test_a_send_retried_five_times_with_its_transaction_id_across_a_lobby_restart_stores_one_message(tmp_path):
    with make_network(tmp_path, nodes=NAMES) as network:
        async def scenario():
            async with make_clients(network, NAMES) as clients:
                group = (await create_group(clients, "Once", ["bobby"])).group.group_uuid
                answers = [await clients["alice"].send(group, "just once", transaction_id="retry-me") for _ in range(3)]
                with pytest.raises(ClientError) as refused:
                    await clients["alice"].send(group, "bad id", transaction_id="x" * 65)
            await sigkill_lobby(tmp_path, "alice")
            await start_node(tmp_path, "alice")
            async with make_clients(network, NAMES) as clients:
                for _ in range(2):
                    answers.append(await clients["alice"].send(group, "just once", transaction_id="retry-me"))
                await clients["bobby"].sync_inbox()
                histories = {name: await clients[name].all_history(group) for name in NAMES}
            return answers, refused.value, histories
        answers, refused, histories = run(scenario())
        assert len({a.message.message_hash for a in answers}) == 1
        assert [a.lobby_calls for a in answers[1:]] == [0] * 4
        assert {status_name(o.status) for a in answers for o in a.outcomes} == {"DELIVERED"}
        assert {name: [r.entry.payload for r in h] for name, h in histories.items()} == \
            {"alice": ["just once"], "bobby": ["just once"]}
        assert refused.code == grpc.StatusCode.INVALID_ARGUMENT and "transaction_id" in refused.details
