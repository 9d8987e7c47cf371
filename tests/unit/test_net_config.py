"""The local network's configuration: free ports, network.json round trip and atomic write,
and the command lines each node's services get."""

import json
import socket
import sys

import pytest

from kizuna import net


def test_picked_ports_are_distinct_and_bindable():
    ports = net.pick_free_ports(12)
    assert len(set(ports)) == 12
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_network_json_round_trip(tmp_path):
    network = net.Network(directory=tmp_path.resolve(), exit_with_pid=1234)
    net.add_nodes(network, ["alice", "bobby"])
    network.agents["alice"] = {
        "node": "alice", "agent": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "encryption_key": "eA==", "app_token": "tok-a", "username": "alice",
    }
    net.save(network)
    loaded = net.load(tmp_path)
    assert loaded.nodes == network.nodes
    assert loaded.agents == network.agents
    assert loaded.exit_with_pid == 1234
    assert loaded.lobby_address("alice") == network.nodes["alice"]["lobby"]
    assert loaded.token("alice") == "tok-a"
    assert loaded.agent_key("alice") == bytes(range(32))
    assert loaded.agent("alice")["node"] == "alice"
    data = json.loads((tmp_path / "network.json").read_text())
    assert set(data["nodes"]["alice"]) >= {"group_dht", "conductor", "lobby", "data_dir", "pids", "extra_args"}


def test_new_nodes_get_distinct_ports_and_known_nodes_keep_theirs(tmp_path):
    network = net.Network(directory=tmp_path)
    net.add_nodes(network, ["alice", "bobby"])
    alice_before = dict(network.nodes["alice"])
    net.add_nodes(network, ["alice", "bobby", "charlie"])
    assert network.nodes["alice"] == alice_before
    tcp = [n[s] for n in network.nodes.values() for s in ("lobby", "lobby_peer", "dht_peer")]
    assert len(set(tcp)) == 9
    assert all(a.startswith("127.0.0.1:") for a in tcp)
    sockets = [n[s] for n in network.nodes.values() for s in ("group_dht", "conductor")]
    assert len(set(sockets)) == 6
    assert all(a.startswith(f"unix:{tmp_path}/") for a in sockets)


def test_unknown_agent_or_node_is_a_readable_error(tmp_path):
    network = net.Network(directory=tmp_path)
    with pytest.raises(net.NetError, match="no agent named 'zed'"):
        network.token("zed")
    with pytest.raises(net.NetError, match="no node named 'zed'"):
        network.node("zed")


def test_load_without_network_json_says_how_to_start_one(tmp_path):
    with pytest.raises(net.NetError, match="kizuna net up"):
        net.load(tmp_path)


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "network.json"
    net.write_json_atomic(path, {"v": 1})
    net.write_json_atomic(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["network.json"]


def test_failed_atomic_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "network.json"
    net.write_json_atomic(path, {"v": 1})
    with pytest.raises(TypeError):
        net.write_json_atomic(path, {"v": object()})
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["network.json"]


def test_command_lines_wire_each_node_to_its_own_services(tmp_path):
    network = net.Network(directory=tmp_path)
    net.add_nodes(network, ["alice", "bobby", "charlie"])
    network.nodes["alice"]["extra_args"] = {"group_dht": ["--max-spaces", "1"]}
    alice = network.nodes["alice"]

    dht = net.service_command(network, "alice", "group_dht")
    assert dht[:3] == [sys.executable, "-m", "kizuna_node.group_dht.server"]
    assert dht[dht.index("--listen") + 1] == alice["group_dht"]
    bootstrap = dht[dht.index("--bootstrap") + 1].split(",")
    assert sorted(bootstrap) == sorted(f"{network.nodes[n]['dht_advertise']}#{network.nodes[n]['fingerprint']}"
                                       for n in ("bobby", "charlie"))
    assert dht[dht.index("--peer-listen") + 1] == alice["dht_peer"]
    assert dht[dht.index("--tls-dir") + 1] == alice["tls_dir"]
    assert dht[-2:] == ["--max-spaces", "1"]

    conductor = net.service_command(network, "alice", "conductor")
    assert conductor[conductor.index("--dht") + 1] == alice["group_dht"]
    assert conductor[conductor.index("--data-dir") + 1].endswith("alice/conductor")

    lobby = net.service_command(network, "bobby", "lobby")
    assert lobby[lobby.index("--conductor") + 1] == network.nodes["bobby"]["conductor"]
    assert lobby[lobby.index("--dht") + 1] == network.nodes["bobby"]["group_dht"]
    assert lobby[lobby.index("--dht-peer-address") + 1] == network.nodes["bobby"]["dht_advertise"]
    assert lobby[lobby.index("--peer-listen") + 1] == network.nodes["bobby"]["lobby_peer"]
    assert "--max-spaces" not in lobby


def test_status_of_stopped_network_reports_nothing_running(tmp_path):
    network = net.Network(directory=tmp_path)
    net.add_nodes(network, ["alice"])
    network.nodes["alice"]["pids"] = {"lobby": 999_999_999}
    net.save(network)
    report = net.status(tmp_path)
    assert set(report["alice"]) == set(net.SERVICES)
    assert all(not s["running"] and not s["healthy"] for s in report["alice"].values())
