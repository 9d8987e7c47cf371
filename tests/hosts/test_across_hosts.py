"""The seed's scenario on three hosts of their own (network namespaces on a bridge), every
lobby↔lobby and DHT↔DHT call over TLS pinned to the peer's certificate: the online path,
the banner, a blocked group, a blocked member; what crosses the wire; refused connections;
and a host partitioned away that gets everything exactly once when it comes back."""

import sys
import uuid

import pytest

from kizuna.v1 import lobby_pb2
from tests.helpers import run
from tests.hosts.hostnet import NetemUnavailable
from tests.integration.network import make_clients, messages, outcomes_by_name, wait_until
# The seed's scenario, as the loopback suite plays it, here across the hosts (the `network`
# fixture of tests/hosts/conftest.py).
from tests.integration.test_seed_scenario import (
    _create_group,
    test_alice_messages_bobby_and_charlie_and_each_stream_gets_it_once,
    test_blocked_group_gives_no_signal_and_no_history_and_alice_still_sees_delivered,
    test_blocked_member_means_the_message_arrives_with_a_warning_naming_them,
    test_first_message_shows_the_banner_until_the_group_is_accepted,
)

pytestmark = pytest.mark.integration

# collected here, so pytest runs them again with this directory's `network`
__all__ = [
    "test_alice_messages_bobby_and_charlie_and_each_stream_gets_it_once",
    "test_first_message_shows_the_banner_until_the_group_is_accepted",
    "test_blocked_group_gives_no_signal_and_no_history_and_alice_still_sees_delivered",
    "test_blocked_member_means_the_message_arrives_with_a_warning_naming_them",
]

NAMES = ("alice", "bobby", "charlie")
HEAL_TIMEOUT = 60.0


def test_each_node_listens_for_peers_on_its_own_host_address(network, hosts):
    for name in NAMES:
        node = network.node(name)
        assert node["lobby_advertise"].startswith(f"{hosts.address[name]}:")
        assert node["dht_advertise"].startswith(f"{hosts.address[name]}:")
        assert node["lobby"].startswith("unix:") and node["conductor"].startswith("unix:")


def _probe(hosts, on: str, *args: str) -> str:
    result = hosts.run_on(on, sys.executable, "-m", "tests.hosts.probe", *args, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_from_another_host_a_plaintext_call_to_a_peer_port_fails(network, hosts):
    for service in ("lobby", "dht"):
        answer = _probe(hosts, "alice", "plaintext", network.node("bobby")[f"{service}_advertise"])
        assert answer.startswith("UNAVAILABLE"), answer


def test_from_another_host_tls_pinned_to_the_wrong_certificate_fails_and_the_right_one_answers(network, hosts):
    bobby = network.node("bobby")
    wrong = f"{network.node('charlie')['tls_dir']}/node.crt"
    right = f"{bobby['tls_dir']}/node.crt"
    for service in ("lobby", "dht"):
        address = bobby[f"{service}_advertise"]
        refused = _probe(hosts, "alice", "pinned", address, wrong)
        assert refused.startswith("UNAVAILABLE") and "handshake" in refused.lower(), refused
        assert _probe(hosts, "alice", "pinned", address, right) == "OK"


def test_a_capture_on_the_bridge_during_a_send_holds_no_part_of_the_messages_text(network, hosts):
    text = f"Meet at the old mill at dawn, bring the map {uuid.uuid4().hex}"
    marker = f"plaintext-control-{uuid.uuid4().hex}".encode()
    bobby_lobby = network.node("bobby")["lobby_advertise"]
    lobby_port = int(bobby_lobby.rsplit(":", 1)[1])

    async def scenario():
        async with make_clients(network, NAMES) as clients:
            created = await _create_group(clients, "Over the wire")
            group = created.group.group_uuid
            with hosts.capture() as captured:
                # The control: bytes sent in the clear between two hosts are in the capture.
                host, port = bobby_lobby.rsplit(":", 1)
                control = hosts.run_on("alice", sys.executable, "-c",
                                       f"import socket; s = socket.create_connection(({host!r}, {port}), timeout=5);"
                                       f" s.sendall({marker!r}); s.close()", timeout=60)
                assert control.returncode == 0, control.stderr
                sent = await clients["alice"].send(group, text)
                for name in ("bobby", "charlie"):
                    await wait_until(clients[name], lambda n=name: messages(clients[n], group, text), f"{name} got it")
            return sent, captured

    sent, captured = run(scenario())
    assert {lobby_pb2.DeliveryStatus.Name(o.status) for o in sent.outcomes} == {"DELIVERED"}
    assert captured.contains(marker), "the capture does not see plaintext between hosts: it proves nothing"
    assert captured.tcp_payload_bytes(lobby_port) > 2 * len(text), "the message did not cross the bridge"
    data = text.encode()
    windows = {data[i:i + 8] for i in range(len(data) - 7)}
    leaked = sorted(w for w in windows if captured.contains(w))
    assert not leaked, f"the capture holds parts of the message's text: {leaked[:5]}"


def test_latency_and_loss_between_hosts_deliver_every_message_once(network, hosts):
    try:
        hosts.shape("charlie", delay_ms=50, loss_percent=1.0)
        shaped = "netem: 50 ms, 1% loss"
    except NetemUnavailable:
        # This kernel has no netem: a 256 kbit/s link whose queue drops what would wait
        # past 20 ms gives charlie queueing latency and tail-drop loss instead.
        hosts.congest("charlie", rate_kbit=256, queue_ms=20)
        shaped = "tbf: 256 kbit/s, 20 ms queue"
    try:
        async def scenario():
            async with make_clients(network, NAMES) as clients:
                created = await _create_group(clients, "Slow link")
                group = created.group.group_uuid
                texts = [f"over a slow link {i}" for i in range(10)]
                for text in texts:
                    await clients["alice"].send(group, text)
                await wait_until(clients["charlie"], lambda: all(messages(clients["charlie"], group, t) for t in texts),
                                 "charlie got all ten", HEAL_TIMEOUT)
                return [len(messages(clients["charlie"], group, t)) for t in texts]

        assert run(scenario(), timeout=HEAL_TIMEOUT * 2) == [1] * 10
        counters = hosts.link_counters("charlie")
        print(f"charlie's link ({shaped}): {counters}")
        assert counters["packets"] > 0, "nothing charlie sent went through the shaped link"
    finally:
        hosts.unshape("charlie")


def test_a_host_partitioned_away_gets_everything_exactly_once_when_the_partition_heals(network, hosts):
    texts = [f"while charlie is cut off {i}" for i in range(5)]

    async def scenario():
        async with make_clients(network, NAMES) as clients:
            created = await _create_group(clients, "Across a partition")
            group = created.group.group_uuid
            await clients["charlie"].accept(group)
            hosts.partition("charlie")
            try:
                outcomes = []
                for text in texts:
                    sent = await clients["alice"].send(group, text)
                    outcomes.append(outcomes_by_name(network, sent.outcomes))
                await wait_until(clients["bobby"], lambda: all(messages(clients["bobby"], group, t) for t in texts),
                                 "bobby got all five while charlie was away")
                charlie_while_away = [e for t in texts for e in messages(clients["charlie"], group, t)]
            finally:
                hosts.heal("charlie")
            await wait_until(clients["charlie"], lambda: all(messages(clients["charlie"], group, t) for t in texts),
                             "charlie got all five after the partition healed", HEAL_TIMEOUT)
            history = await clients["charlie"].history(group, page_size=50)
            return group, outcomes, charlie_while_away, clients["charlie"], history

    group, outcomes, while_away, charlie, history = run(scenario(), timeout=HEAL_TIMEOUT * 3)
    assert all(lobby_pb2.DeliveryStatus.Name(o["bobby"].status) == "DELIVERED" for o in outcomes)
    assert all(lobby_pb2.DeliveryStatus.Name(o["charlie"].status) != "DELIVERED" for o in outcomes)
    assert while_away == []
    assert [len(messages(charlie, group, t)) for t in texts] == [1] * len(texts)
    payloads = [r.entry.payload for r in history.messages]
    assert sorted(p for p in payloads if p in texts) == sorted(texts)  # each once in the history too
