"""Offline members (issue 3) on real processes: "offline" is a node whose processes were
SIGKILLed. A message for a receiver that can't be reached goes, sealed to it, to the
group's DHT space (STORED_IN_DHT), or when the DHT can't take it either waits in the
sender's durable outbox (QUEUED); either way it reaches each UI exactly once."""

import os
import signal
import uuid
from pathlib import Path

import plyvel
import pytest

from kizuna import net
from kizuna.v1 import lobby_pb2
from tests.helpers import run
from tests.integration.network import (
    create_group,
    deliveries,
    make_clients,
    make_network,
    messages,
    outcomes_by_name,
    settle,
    start_node,
    status_name,
    stop_node,
    wait_dead,
    wait_until,
)

pytestmark = pytest.mark.integration

NAMES = ("alice", "bobby", "charlie")
# Catch-up runs at lobby start and then periodically (5 s by default); the outbox backs
# off up to 5 s. Waits for what comes that way get this much.
CATCH_UP = 30.0
ARRIVED = (lobby_pb2.DELIVERED, lobby_pb2.STORED_IN_DHT)


def _key(record):
    entry = record.entry
    return (record.message_hash, entry.payload, entry.author, entry.time_sent)


async def _group_with_everyone(network, name):
    async with make_clients(network, NAMES) as clients:
        created = await create_group(clients, name, ["bobby", "charlie"])
        return created.group.group_uuid


def test_charlie_offline_gets_all_50_from_the_dht_once_in_order_after_restart(tmp_path):
    with make_network(tmp_path) as network:
        group = run(_group_with_everyone(network, "Fifty"))
        net.stop_node(tmp_path, "charlie", kill=True)

        async def while_charlie_is_away():
            async with make_clients(network, ("alice", "bobby")) as clients:
                answers = [await clients["alice"].send(group, f"offline {i:02d}") for i in range(50)]
                await wait_until(clients["bobby"], lambda: len(messages(clients["bobby"], group)) >= 50,
                                 "bobby's UI shows the 50 messages")
                return answers, [e.record for e in messages(clients["bobby"], group)]

        answers, bobby_live = run(while_charlie_is_away())
        sent = [a.message for a in answers]
        for i, answer in enumerate(answers):
            outcomes = outcomes_by_name(network, answer.outcomes)
            assert set(outcomes) == {"bobby", "charlie"}, f"message {i}"
            assert status_name(outcomes["bobby"].status) == "DELIVERED", f"message {i}: {outcomes['bobby']}"
            assert status_name(outcomes["charlie"].status) == "STORED_IN_DHT", f"message {i}: {outcomes['charlie']}"
            assert len(outcomes["charlie"].address) == 32, f"message {i}: {outcomes['charlie']}"
        assert len({a.message.message_hash for a in answers}) == 50
        assert [r.message_hash for r in bobby_live] == [r.message_hash for r in sent]

        net.start_node(tmp_path, "charlie")

        async def after_charlie_is_back():
            async with make_clients(network, NAMES) as clients:
                charlie, bobby = clients["charlie"], clients["bobby"]
                await wait_until(charlie, lambda: len(messages(charlie, group)) >= 50,
                                 "charlie's UI shows the 50 messages after his restart", CATCH_UP)
                await settle(clients["alice"], [bobby, charlie], group)
                got = [e.record for e in messages(charlie, group)]
                return got, await charlie.all_history(group), await bobby.all_history(group)

        got, charlie_history, bobby_history = run(after_charlie_is_back())
        *offline, last = got
        assert last.entry.payload.startswith("sentinel"), [r.entry.payload for r in got]
        # Each exactly once, decrypted, in time_sent order, as alice sent them.
        assert [r.message_hash for r in offline] == [r.message_hash for r in sent]
        assert [r.entry.payload for r in offline] == [f"offline {i:02d}" for i in range(50)]
        assert [r.entry.time_sent for r in offline] == sorted(r.entry.time_sent for r in offline)
        assert all(r.entry.author == network.agent_key("alice") for r in offline)
        assert [_key(r) for r in charlie_history] == [_key(r) for r in bobby_history]
        assert len(charlie_history) == 51


def test_charlie_offline_when_the_group_is_created_gets_the_invite_then_the_messages(tmp_path):
    with make_network(tmp_path) as network:
        net.stop_node(tmp_path, "charlie", kill=True)

        async def while_charlie_is_away():
            async with make_clients(network, ("alice", "bobby")) as clients:
                created = await create_group(clients, "Without charlie", ["bobby", "charlie"])
                group = created.group.group_uuid
                answers = [await clients["alice"].send(group, f"hello {i}") for i in range(3)]
                return created, answers

        created, answers = run(while_charlie_is_away())
        group = created.group.group_uuid
        invites = outcomes_by_name(network, created.invites)
        assert status_name(invites["bobby"].status) == "DELIVERED"
        assert status_name(invites["charlie"].status) == "STORED_IN_DHT", invites["charlie"]
        assert len(invites["charlie"].address) == 32
        for answer in answers:
            outcomes = outcomes_by_name(network, answer.outcomes)
            assert status_name(outcomes["bobby"].status) == "DELIVERED"
            assert status_name(outcomes["charlie"].status) == "STORED_IN_DHT", outcomes["charlie"]

        net.start_node(tmp_path, "charlie")

        async def after_charlie_is_back():
            async with make_clients(network, NAMES) as clients:
                charlie = clients["charlie"]
                await wait_until(charlie, lambda: len(messages(charlie, group)) >= 3,
                                 "charlie's UI shows the invite and the 3 messages after his restart", CATCH_UP)
                await settle(clients["alice"], [clients["bobby"], charlie], group)
                return charlie.events_so_far(), await charlie.all_history(group)

        events, history = run(after_charlie_is_back())
        kinds = [(e.kind, e.group_uuid) for e in events if e.kind in ("invite", "message")]
        assert kinds[0] == ("invite", group), kinds
        assert kinds.count(("invite", group)) == 1
        invite = next(e for e in events if e.kind == "invite")
        assert invite.signal.invite.inviter == network.agent_key("alice")
        assert invite.group.name == "Without charlie"
        got = [e.record for e in events if e.kind == "message"]
        assert [r.message_hash for r in got[:3]] == [a.message.message_hash for a in answers]
        assert [r.entry.payload for r in got[:3]] == ["hello 0", "hello 1", "hello 2"]
        assert len(got) == 4  # and the sentinel
        assert sorted(r.message_hash for r in history) == sorted(r.message_hash for r in got)


def test_every_node_but_alices_offline_queues_then_delivers_everything_once(tmp_path):
    with make_network(tmp_path) as network:
        group = run(_group_with_everyone(network, "Alone"))
        receivers = ("bobby", "charlie")

        async def scenario():
            async with make_clients(network, ("alice",)) as alice_clients:
                alice = alice_clients["alice"]
                for name in receivers:
                    await stop_node(tmp_path, name, kill=True)
                answers = [await alice.send(group, f"queued {i}") for i in range(10)]
                for i, answer in enumerate(answers):
                    outcomes = outcomes_by_name(network, answer.outcomes)
                    # 3 member nodes, R = 3: the quorum is 2, and only alice's node is up.
                    assert {n: status_name(o.status) for n, o in outcomes.items()} == \
                        {"bobby": "QUEUED", "charlie": "QUEUED"}, f"message {i}: {outcomes}"
                sent = {a.message.message_hash for a in answers}

                for name in receivers:
                    await start_node(tmp_path, name)
                keys = {network.agent_key(n): n for n in receivers}

                def final_outcomes():
                    return {(d.message_hash, keys.get(d.outcome.receiver)): d.outcome
                            for d in deliveries(alice, group) if d.outcome.status in ARRIVED}

                async with make_clients(network, receivers) as clients:
                    for name in receivers:
                        await wait_until(clients[name], lambda c=clients[name]: len(messages(c, group)) >= 10,
                                         f"{name}'s UI shows the 10 queued messages", CATCH_UP)
                    await wait_until(alice, lambda: len(final_outcomes()) >= 20,
                                     "alice's UI hears DELIVERED or STORED_IN_DHT for every (message, receiver)",
                                     CATCH_UP)
                    await settle(alice, list(clients.values()), group)
                    seen = {name: [e.record for e in messages(clients[name], group)] for name in receivers}
                    histories = {name: await clients[name].all_history(group) for name in receivers}
                return sent, final_outcomes(), deliveries(alice, group), seen, histories

        sent, final, signals, seen, histories = run(scenario())
        assert set(final) == {(h, n) for h in sent for n in receivers}, final
        assert {status_name(o.status) for o in final.values()} <= {"DELIVERED", "STORED_IN_DHT"}
        assert all(d.group_uuid for d in signals)
        for name in receivers:
            *queued, last = seen[name]
            assert last.entry.payload.startswith("sentinel")
            hashes = [r.message_hash for r in queued]
            assert len(hashes) == 10 and set(hashes) == sent, f"{name}: {[r.entry.payload for r in queued]}"
            assert {r.entry.payload for r in queued} == {f"queued {i}" for i in range(10)}
            assert len(histories[name]) == 11
            assert {r.message_hash for r in histories[name]} == sent | {last.message_hash}


def _scan_leveldb(path: Path):
    """Every (key, value) of a LevelDB directory."""
    db = plyvel.DB(str(path), create_if_missing=False)
    try:
        return list(db.iterator())
    finally:
        db.close()


def test_a_payload_stored_in_the_dht_is_not_readable_without_the_receivers_key(tmp_path):
    with make_network(tmp_path) as network:
        group = run(_group_with_everyone(network, "Canary"))
        net.stop_node(tmp_path, "charlie", kill=True)
        canary = f"plaintext-canary-{uuid.uuid4()}"

        async def send():
            async with make_clients(network, ("alice",), signals=False) as clients:
                return await clients["alice"].send(group, canary)

        answer = run(send())
        outcomes = outcomes_by_name(network, answer.outcomes)
        assert status_name(outcomes["charlie"].status) == "STORED_IN_DHT", outcomes["charlie"]

        net.stop_node(tmp_path, "alice", kill=False)
        dht_dir = Path(network.node("alice")["data_dir"]) / "dht"
        records = _scan_leveldb(dht_dir)
        assert records, f"nothing in {dht_dir}"
        needles = (canary.encode(), canary.split("-", 2)[2].encode())
        for key, value in records:
            for needle in needles:
                assert needle not in key and needle not in value, f"{needle!r} in the DHT under {key[:40]!r}"
        assert any(b"sealed_group_key" in value for _, value in records), "no group key for charlie in alice's DHT"
        # Nor in the files themselves (log, tables, anything left behind).
        for path in dht_dir.iterdir():
            if path.is_file():
                data = path.read_bytes()
                assert not any(needle in data for needle in needles), f"the canary is in {path}"


def test_alices_lobby_killed_right_after_queued_still_delivers_after_restart(tmp_path):
    with make_network(tmp_path) as network:
        group = run(_group_with_everyone(network, "Outbox"))
        receivers = ("bobby", "charlie")
        for name in receivers:
            net.stop_node(tmp_path, name, kill=True)

        async def send():
            async with make_clients(network, ("alice",), signals=False) as clients:
                return await clients["alice"].send(group, "survives a crash")

        answer = run(send())
        lobby_pid = net.load(tmp_path).node("alice")["pids"]["lobby"]
        os.kill(lobby_pid, signal.SIGKILL)
        outcomes = outcomes_by_name(network, answer.outcomes)
        assert {n: status_name(o.status) for n, o in outcomes.items()} == {"bobby": "QUEUED", "charlie": "QUEUED"}
        wait_dead(lobby_pid)

        for name in receivers:
            net.start_node(tmp_path, name)
        net.start_node(tmp_path, "alice")
        assert net.load(tmp_path).node("alice")["pids"]["lobby"] != lobby_pid

        async def after_restart():
            async with make_clients(network, NAMES) as clients:
                alice = clients["alice"]
                for name in receivers:
                    await wait_until(clients[name], lambda c=clients[name]: messages(c, group, "survives a crash"),
                                     f"{name}'s UI shows the queued message", CATCH_UP)
                keys = {network.agent_key(n) for n in receivers}
                await wait_until(
                    alice,
                    lambda: {d.outcome.receiver for d in deliveries(alice, group)
                             if d.message_hash == answer.message.message_hash and d.outcome.status in ARRIVED} == keys,
                    "alice's restarted UI hears that both received it", CATCH_UP)
                await settle(alice, [clients[n] for n in receivers], group)
                return {n: (messages(clients[n], group, "survives a crash"), await clients[n].all_history(group))
                        for n in receivers}

        for name, (events, history) in run(after_restart()).items():
            assert len(events) == 1, name
            assert events[0].record.message_hash == answer.message.message_hash
            assert [r.entry.payload for r in history if r.entry.payload == "survives a crash"] == ["survives a crash"], name
