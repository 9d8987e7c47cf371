"""Faults a crash or a hostile peer would find, on real processes: each test here failed on
the code before its fix."""

import asyncio
import os
import signal
import time
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kizuna import net
from kizuna.client import ClientError
from kizuna.v1 import group_dht_pb2, group_dht_pb2_grpc
from kizuna_node.common.hashing import blake2b_256, now_micros
from kizuna_node.group_dht import peers
from tests.helpers import eventually, run
from tests.integration.test_refusals import Attacker, Outsider
from tests.integration.network import (create_group, make_clients, make_network, messages, outcomes_by_name,
                                       peer_channel, status_name, stop_node, wait_dead, wait_until)

pytestmark = pytest.mark.integration

NAMES = ("alice", "bobby", "charlie")


def test_a_lobby_restarted_while_every_peer_is_down_serves_its_ui(tmp_path):
    # Its agent's info can't reach a quorum of holders (2 of 3 nodes are down), which
    # used to lock the UI out of every call until the peers came back.
    with make_network(tmp_path) as network:
        async def before():
            async with make_clients(network, NAMES) as clients:
                created = await create_group(clients, "Alone", ["bobby", "charlie"])
                await clients["alice"].send(created.group.group_uuid, "before the crash")
                return created.group.group_uuid
        group = run(before())
        for name in ("bobby", "charlie"):
            net.stop_node(tmp_path, name, kill=True)
        lobby_pid = net.load(tmp_path).node("alice")["pids"]["lobby"]
        os.kill(lobby_pid, signal.SIGKILL)
        wait_dead(lobby_pid)
        net.start_node(tmp_path, "alice")

        async def after():
            async with make_clients(network, ("alice",)) as clients:
                alice = clients["alice"]
                groups = await alice.groups()
                history = await alice.all_history(group)
                answer = await alice.send(group, "while everyone is away")
                return groups, history, answer
        groups, history, answer = run(after())
        assert list(groups.groups.group_uuids) == [group]
        assert [r.entry.payload for r in history] == ["before the crash"]
        assert {status_name(o.status) for o in answer.outcomes} <= {"QUEUED", "STORED_IN_DHT"}
        assert len(answer.outcomes) == 2

        for name in ("bobby", "charlie"):
            net.start_node(tmp_path, name)

        async def back():
            async with make_clients(network, ("bobby",)) as clients:
                bobby = clients["bobby"]
                await bobby.sync_inbox()
                await wait_until(bobby, lambda: messages(bobby, group, "while everyone is away"),
                                 "bobby gets what alice sent while he was away", 60)
        run(back())


SLOW_TRIES = {"lobby": ["--retry-attempt-timeout", "20", "--retry-budget", "30"]}


def _crash_alice_mid_call(tmp_path, network, start_call, started, what: str) -> None:
    """bobby's lobby frozen (SIGSTOP), so alice's lobby (started with SLOW_TRIES) is still
    trying him: `start_call(alice)` is begun, and once `started(alice)` holds, alice's lobby
    is SIGKILLed (the call fails at her UI). Then bobby's lobby is killed too, with the
    request still unread in its socket, so only alice's lobby, once back, can still bring
    it to him; both are started again."""
    bobby_lobby = net.load(tmp_path).node("bobby")["pids"]["lobby"]
    alice_lobby = net.load(tmp_path).node("alice")["pids"]["lobby"]
    os.kill(bobby_lobby, signal.SIGSTOP)
    try:
        async def crash():
            async with make_clients(network, ("alice",), signals=False) as clients:
                alice = clients["alice"]
                calling = asyncio.ensure_future(start_call(alice))
                await eventually(lambda: started(alice), what, 20)
                assert not calling.done()
                os.kill(alice_lobby, signal.SIGKILL)
                with pytest.raises(ClientError):
                    await calling
        run(crash())
        wait_dead(alice_lobby)
    finally:
        os.kill(bobby_lobby, signal.SIGKILL)
        os.kill(bobby_lobby, signal.SIGCONT)
    wait_dead(bobby_lobby)
    net.start_node(tmp_path, "bobby")
    net.start_node(tmp_path, "alice")


def test_a_send_cut_short_by_a_lobby_crash_reaches_every_receiver_after_restart(tmp_path):
    # bobby's lobby is frozen, so alice's lobby is still trying him (long tries, by its
    # flags) when it is SIGKILLed: the message is in her history already. It used to be
    # shown as sent and never reach him: nothing of it was in her outbox.
    with make_network(tmp_path, extra_args={"alice": SLOW_TRIES}) as network:
        async def before():
            async with make_clients(network, NAMES) as clients:
                created = await create_group(clients, "Crash", ["bobby", "charlie"])
                return created.group.group_uuid
        group = run(before())

        async def in_history(alice):
            return [r for r in await alice.all_history(group) if r.entry.payload == "cut short"]
        _crash_alice_mid_call(tmp_path, network, lambda alice: alice.send(group, "cut short"), in_history,
                              "the message in alice's history while it is being sent")

        async def after():
            async with make_clients(network, ("bobby", "charlie")) as clients:
                for name, client in clients.items():
                    await wait_until(client, lambda c=client: messages(c, group, "cut short"),
                                     f"{name} gets the message the crash cut short", 60)
                return {name: len(messages(client, group, "cut short")) for name, client in clients.items()}
        assert run(after()) == {"bobby": 1, "charlie": 1}


def _damage_a_table(store_dir: Path) -> Path:
    """Flips bytes in the middle of the store's largest table file."""
    table = max(store_dir.glob("*.ldb"), key=lambda p: p.stat().st_size)
    data = bytearray(table.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    table.write_bytes(bytes(data))
    return table


def _history_in_tables(tmp_path, network, alone: bool = False) -> str:
    """alice sends 200 messages to a new group, and her node is restarted: her lobby's log
    is then written into table files (read once at start, not since). `alone`: bobby's and
    charlie's nodes are stopped first, so no receipt rewrites her history after the
    restart. The group's uuid."""
    async def some_history():
        async with make_clients(network, NAMES) as clients:
            created = await create_group(clients, "Damaged", ["bobby", "charlie"])
            for i in range(200):
                await clients["alice"].send(created.group.group_uuid, f"message {i} " + "x" * 200)
            return created.group.group_uuid
    group = run(some_history())
    for name in ("bobby", "charlie", "alice") if alone else ("alice",):
        net.stop_node(tmp_path, name)
    net.start_node(tmp_path, "alice")
    return group


def test_a_node_whose_store_is_damaged_refuses_to_start_and_says_why(tmp_path):
    with make_network(tmp_path) as network:
        _history_in_tables(tmp_path, network)
        net.stop_node(tmp_path, "alice")
        store_dir = Path(network.node("alice")["data_dir"]) / "lobby"
        _damage_a_table(store_dir)

        with pytest.raises(net.NetError) as refused:
            net.start_node(tmp_path, "alice")
        said = str(refused.value)
        assert "alice's lobby exited while starting" in said
        assert f"the store at {store_dir} is damaged" in said
        log = (tmp_path / "logs" / "alice-lobby.log").read_text()
        assert "Traceback" not in log
        assert net.status(tmp_path)["alice"]["lobby"]["running"] is False


def _damage_every_block_in_place(table: Path) -> None:
    """Flips 64 bytes every 2 KiB of a table file, writing into the file as it is (never
    truncated: a running LevelDB reads it through a memory map)."""
    with open(table, "r+b") as f:
        for offset in range(1024, table.stat().st_size - 64, 2048):
            f.seek(offset)
            data = f.read(64)
            f.seek(offset)
            f.write(bytes(b ^ 0xFF for b in data))
        f.flush()
        os.fsync(f.fileno())


def test_damage_found_while_serving_is_data_loss_and_turns_health_not_serving(tmp_path):
    with make_network(tmp_path) as network:
        group = _history_in_tables(tmp_path, network, alone=True)
        lobby = network.node("alice")["lobby"]

        def health(service=""):
            """The lobby's health status for `service` (None while it has none yet)."""
            with grpc.insecure_channel(lobby) as channel:
                try:
                    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                                     timeout=10).status
                except grpc.RpcError:
                    return None
        # the Lobby service turns SERVING once the lobby has started (read what it reads at start)
        eventually(lambda: health("kizuna.v1.Lobby") == health_pb2.HealthCheckResponse.SERVING,
                   "alice's lobby has started", 30)

        async def read_history():
            async with make_clients(network, ("alice",), signals=False) as clients:
                return len(await clients["alice"].all_history(group))
        for table in (Path(network.node("alice")["data_dir"]) / "lobby").glob("*.ldb"):
            _damage_every_block_in_place(table)

        with pytest.raises(ClientError) as refused:
            run(read_history())
        assert refused.value.code == grpc.StatusCode.DATA_LOSS, refused.value
        assert "store is damaged" in refused.value.details
        assert health() == health("kizuna.v1.Lobby") == health_pb2.HealthCheckResponse.NOT_SERVING
        log = (tmp_path / "logs" / "alice-lobby.log").read_text()
        assert "the store is damaged" in log and "Traceback" not in log


def test_a_flood_of_cheap_calls_from_one_sender_meets_the_receive_rate_limit(tmp_path):
    # Each call carries a message an outsider signed, refused after the rate limit is
    # taken: cheap enough that the flood outruns the limit, which real sends never did.
    rate, burst, calls = 50, 100, 600
    limits = {"lobby": ["--messages-per-second", str(rate), "--message-burst", str(burst)]}
    with make_network(tmp_path, extra_args={"bobby": limits}) as network:
        async def flood():
            async with make_clients(network, NAMES) as clients:
                created = await create_group(clients, "Flooded", ["bobby", "charlie"])
                group = created.group.group_uuid
                attacker, outsider = Attacker(network), Outsider()
                try:
                    message = await attacker.message(outsider, group, "flood")
                    prepared = [await attacker.message_call(outsider, message) for _ in range(calls)]
                    peer = attacker.peer_lobby("bobby")
                    limit = asyncio.Semaphore(64)

                    async def one(call):
                        async with limit:
                            try:
                                await peer.ReceiveGroupMessage(call, timeout=30)
                                return "OK", ""
                            except grpc.aio.AioRpcError as exc:
                                return exc.code().name, exc.details()
                    started = time.monotonic()
                    answers = await asyncio.gather(*(one(call) for call in prepared))
                    elapsed = time.monotonic() - started
                finally:
                    await attacker.close()
                sent = await clients["alice"].send(group, "still heard")
                await wait_until(clients["bobby"], lambda: messages(clients["bobby"], group, "still heard"),
                                 "alice's message reaches bobby after the flood")
                history = [r.entry.payload for r in await clients["bobby"].all_history(group)]
                return answers, elapsed, sent, history
        answers, elapsed, sent, history = run(flood())
        codes = [code for code, _ in answers]
        exhausted = [details for code, details in answers if code == "RESOURCE_EXHAUSTED"]
        let_through = len(codes) - len(exhausted)
        assert exhausted and all(f"more than {rate} messages per second" in d for d in exhausted)
        assert let_through <= burst + rate * elapsed + 1, (let_through, elapsed)
        assert set(codes) == {"PERMISSION_DENIED", "RESOURCE_EXHAUSTED"}  # none of the flood was taken
        assert {status_name(o.status) for o in sent.outcomes} == {"DELIVERED"}
        assert history == ["still heard"]


def _fake_node_info(space: bytes, address: str, timestamp: int):
    """A node info as anyone can make one: its own key, any address, any spaces."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    info = group_dht_pb2.NodeInfo(node_id=blake2b_256(public), address=address, spaces=[space],
                                  timestamp=timestamp, public_key=public)
    info.signature = key.sign(peers.signing_bytes(info))
    return info


def test_fake_dht_peers_claiming_a_group_space_hold_nothing_and_far_future_ones_are_refused(tmp_path, free_port):
    with make_network(tmp_path) as network:
        async def scenario():
            async with make_clients(network, NAMES) as clients:
                created = await create_group(clients, "Targeted", ["bobby", "charlie"])
                group, space = created.group.group_uuid, created.group.dna_hash
                # twelve nodes that do not exist, at ports nobody serves, told to alice's DHT
                fakes = [_fake_node_info(space, f"127.0.0.1:{free_port()}", now_micros()) for _ in range(12)]
                async with peer_channel(network.node("alice"), "dht") as channel:
                    dht = group_dht_pb2_grpc.GroupDhtStub(channel)
                    request = group_dht_pb2.ExchangePeersRequest(known=fakes[1:])
                    getattr(request, "from").CopyFrom(fakes[0])
                    await dht.ExchangePeers(request, timeout=10)
                    future = _fake_node_info(space, "127.0.0.1:1", now_micros() + 3600 * 1_000_000)
                    request = group_dht_pb2.ExchangePeersRequest()
                    getattr(request, "from").CopyFrom(future)
                    with pytest.raises(grpc.aio.AioRpcError) as refused:
                        await dht.ExchangePeers(request, timeout=10)
                assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "in the future" in refused.value.details()

                await stop_node(tmp_path, "charlie", kill=True)
                answer = await clients["alice"].send(group, "for charlie, through the DHT")
                return answer
        answer = run(scenario())
        outcomes = outcomes_by_name(network, answer.outcomes)
        assert status_name(outcomes["bobby"].status) == "DELIVERED"
        # the group space's real holders (alice's and bobby's nodes) took it: the fakes did not count
        assert status_name(outcomes["charlie"].status) == "STORED_IN_DHT"


def test_a_group_created_as_the_lobby_crashes_still_invites_every_member_after_restart(tmp_path):
    with make_network(tmp_path, extra_args={"alice": SLOW_TRIES}) as network:
        async def listed(alice):
            return list((await alice.groups()).groups.group_uuids)
        _crash_alice_mid_call(tmp_path, network, lambda alice: alice.create_group("Interrupted", ["bobby", "charlie"]),
                              listed, "the group in alice's Groups while its invites go out")

        async def after():
            async with make_clients(network, ("bobby",)) as clients:
                bobby = clients["bobby"]

                async def invited():
                    return [d for d in (await bobby.groups()).details if d.name == "Interrupted"]
                await eventually(invited, "bobby is invited to the group the crash cut short", 60, interval=0.5)
        run(after())

