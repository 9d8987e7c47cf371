"""A local Kizuna network: each node's three services as background processes.

`up` starts (or restarts) every node of a directory and creates one agent per node. Each
node is a node directory as `kizuna node init` makes it (`DIR/<node>/kizuna.toml`, its TLS
identity and secret), run as `kizuna node run` runs one: the conductor and the DHT's
node-local side on Unix sockets, the UI on loopback (or a Unix socket), lobby and DHT peers
over TLS pinned to each node's certificate. `DIR/network.json` records every node's
addresses, pids and extra arguments and every agent's key and app token, so
`kizuna --as AGENT`, scripts, grpcurl and tests can find them. Processes run detached with
their logs in `DIR/logs/<node>-<service>.log`.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kizuna import node as node_config
from kizuna.v1 import conductor_pb2, conductor_pb2_grpc, group_dht_pb2, group_dht_pb2_grpc, lobby_pb2, lobby_pb2_grpc

# Start order: a conductor needs its DHT, a lobby needs both.
SERVICES = ("group_dht", "conductor", "lobby")
DEFAULT_NODES = ("alice", "bobby", "charlie")
CONFIG_NAME = "network.json"
HOST = "127.0.0.1"
# The peer listeners of a node on a host address of its own (a test host's namespace).
PEER_PORTS = (7700, 7701)
POLL_SECONDS = 0.1
RPC_TIMEOUT = 10.0


class NetError(Exception):
    """A local network could not be started, found or stopped; the message says why."""


class NotFound(NetError):
    """No such network, node or agent."""


@dataclass
class Network:
    """What `DIR/network.json` says about a local network."""

    directory: Path
    nodes: dict = field(default_factory=dict)
    agents: dict = field(default_factory=dict)
    exit_with_pid: int | None = None

    def agent(self, name: str) -> dict:
        """The agent record (node, agent, encryption_key, app_token, username) of `name`,
        which may be the agent's name or its username."""
        if name in self.agents:
            return self.agents[name]
        for record in self.agents.values():
            if record.get("username") == name:
                return record
        known = ", ".join(sorted(self.agents)) or "none"
        raise NotFound(f"no agent named {name!r} in {self.directory / CONFIG_NAME} (known: {known})")

    def node(self, name: str) -> dict:
        if name not in self.nodes:
            known = ", ".join(sorted(self.nodes)) or "none"
            raise NotFound(f"no node named {name!r} in {self.directory / CONFIG_NAME} (known: {known})")
        return self.nodes[name]

    def lobby_address(self, name: str) -> str:
        """The lobby address of agent `name`'s node."""
        return self.node(self.agent(name)["node"])["lobby"]

    def conductor_address(self, name: str) -> str:
        return self.node(self.agent(name)["node"])["conductor"]

    def dht_address(self, name: str) -> str:
        return self.node(self.agent(name)["node"])["group_dht"]

    def token(self, name: str) -> str:
        return self.agent(name)["app_token"]

    def agent_key(self, name: str) -> bytes:
        return base64.b64decode(self.agent(name)["agent"])

    def conductor_metadata(self, name: str) -> tuple:
        """Metadata carrying the node's secret, for calls to its conductor."""
        return conductor_metadata(self.node(name))

    def usernames_by_key(self) -> dict[bytes, str]:
        """Every known agent key mapped to its username (or name)."""
        return {base64.b64decode(r["agent"]): (r.get("username") or n) for n, r in self.agents.items()}

    def to_json(self) -> dict:
        return {"nodes": self.nodes, "agents": self.agents, "exit_with_pid": self.exit_with_pid}


# ---------------------------------------------------------------- configuration


def pick_free_ports(count: int, host: str = HOST) -> list[int]:
    """`count` distinct ports that were free on `host` a moment ago. All sockets stay bound
    until every port is picked, so no port is returned twice."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def config_path(directory) -> Path:
    return Path(directory) / CONFIG_NAME


def write_json_atomic(path: Path, data: dict) -> None:
    """Writes `data` to `path` so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def save(network: Network) -> None:
    write_json_atomic(config_path(network.directory), network.to_json())


def save_token(network: Network, name: str, app_token: str) -> None:
    """Records `app_token` as the token of agent `name` (its name or username), read
    afresh from disk so nothing written meanwhile is lost."""
    current = load(network.directory)
    current.agent(name)["app_token"] = app_token
    save(current)
    network.agent(name)["app_token"] = app_token


def load(directory) -> Network:
    """The network recorded in `DIR/network.json`."""
    directory = Path(directory).resolve()
    path = config_path(directory)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotFound(f"no network in {directory} (no {CONFIG_NAME}; run `kizuna net up --dir {directory}`)") from None
    except json.JSONDecodeError as exc:
        raise NetError(f"{path} is not valid JSON: {exc}") from None
    return Network(
        directory=directory,
        nodes=data.get("nodes", {}),
        agents=data.get("agents", {}),
        exit_with_pid=data.get("exit_with_pid"),
    )


def _load_or_new(directory) -> Network:
    directory = Path(directory).resolve()
    if config_path(directory).exists():
        return load(directory)
    return Network(directory=directory)


def add_nodes(network: Network, names, placement=None) -> None:
    """Makes a node directory (`kizuna node init`) for every node in `names` that the
    network doesn't know yet and records its addresses (in memory; `save` writes them).
    Known nodes keep theirs. `placement` ({node: {"host", "ui", "wrap"}}) puts a node's peer
    listeners on another host address (fixed ports), its UI on a Unix socket, and runs its
    services under a command prefix (`ip netns exec NS`)."""
    new = [n for n in names if n not in network.nodes]
    if not new:
        return
    ports = iter(pick_free_ports(len(new) * 6))
    for name in new:
        where = (placement or {}).get(name, {})
        directory = network.directory / name
        ui, lobby_peer, dht_peer = (f"{HOST}:{next(ports)}" for _ in range(3))
        if "host" in where:
            lobby_peer, dht_peer = f"{where['host']}:{PEER_PORTS[0]}", f"{where['host']}:{PEER_PORTS[1]}"
        if where.get("ui") == "unix":
            ui = f"unix:{node_config.socket_dir(directory) / 'lobby.sock'}"
        try:
            config = node_config.init(directory, name, ui=ui, lobby_peer=lobby_peer, dht_peer=dht_peer)
        except node_config.ConfigError as exc:
            raise NetError(str(exc)) from None
        record = node_config.node_record(config)
        record["pids"] = {}
        record["extra_args"] = {}
        record["wrap"] = list(where.get("wrap", []))
        # each service's Prometheus /metrics, on loopback
        record["metrics"] = {service: f"{HOST}:{next(ports)}" for service in SERVICES}
        network.nodes[name] = record


# ---------------------------------------------------------------- processes


def service_command(network: Network, name: str, service: str) -> list[str]:
    """The command line that runs node `name`'s `service`, wired to the node's own other
    services over their Unix sockets (and, for its DHT, bootstrapped from every other node's,
    each pinned to its certificate, and from the node's own bootstrap list), with its extra args."""
    node = network.nodes[name]
    data_dir = Path(node["data_dir"])
    secret = ["--node-secret-file", str(secret_path(node))]
    base = [sys.executable, "-m", f"kizuna_node.{service}.server", "--listen", node[service]]
    if service == "group_dht":
        peers = [node_config.bootstrap_address(n) for other, n in network.nodes.items() if other != name]
        peers += node.get("bootstrap", [])
        args = ["--peer-listen", node["dht_peer"], "--advertise", node["dht_advertise"], "--tls-dir", node["tls_dir"],
                "--data-dir", str(data_dir / "dht"), *secret]
        if peers:
            args += ["--bootstrap", ",".join(peers)]
    elif service == "conductor":
        args = ["--data-dir", str(data_dir / "conductor"), "--dht", node["group_dht"], *secret]
    else:
        args = ["--peer-listen", node["lobby_peer"], "--advertise", node["lobby_advertise"],
                "--tls-dir", node["tls_dir"], "--data-dir", str(data_dir / "lobby"), "--conductor", node["conductor"],
                "--dht", node["group_dht"], "--dht-peer-address", node["dht_advertise"], *secret]
    if service in node.get("metrics", {}):
        args += ["--metrics-listen", node["metrics"][service]]
    extra = list(node.get("extra_args", {}).get(service, []))
    return list(node.get("wrap", [])) + base + args + extra


def secret_path(node: dict) -> Path:
    """The node's secret: the conductor makes it at its first start; the lobby and the
    node's operator read it for node-internal calls."""
    return Path(node["data_dir"]) / "node.secret"


def conductor_metadata(node: dict) -> tuple:
    """Metadata for a node-internal call (to the node's conductor, or its DHT's reads): the node's secret."""
    return (("x-kizuna-node-secret", secret_path(node).read_text().strip()),)


class _WithNodeSecret(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, secret_file):
        self._secret_file = secret_file

    def intercept_unary_unary(self, continuation, details, request):
        secret = ("x-kizuna-node-secret", Path(self._secret_file).read_text().strip())
        return continuation(details._replace(metadata=(*(details.metadata or ()), secret)), request)


def node_local_channel(address: str, secret_file) -> grpc.Channel:
    """A plaintext channel to a node's own service (its DHT, say) whose every call carries
    the node's secret from `secret_file` (read at each call: the node may make it later)."""
    return grpc.intercept_channel(grpc.insecure_channel(address), _WithNodeSecret(secret_file))


def _log_path(network: Network, name: str, service: str) -> Path:
    return network.directory / "logs" / f"{name}-{service}.log"


# Runs a server as a grandchild, so it belongs to no Python process that might not reap it:
# the shim forks, reports the server's pid on stdout and exits; the server execs with the
# shim's stderr (the log) as its stdout and stderr.
_DAEMONIZE = """
import os, sys
pid = os.fork()
if pid:
    os.write(1, str(pid).encode())
    os._exit(0)
os.dup2(2, 1)
try:
    os.execvp(sys.argv[1], sys.argv[1:])
except OSError as exc:
    os.write(2, f"cannot start {sys.argv[1]}: {exc}\\n".encode())
    os._exit(127)
"""


def _spawn(network: Network, name: str, service: str) -> int:
    log_path = _log_path(network, name, service)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    Path(network.nodes[name]["data_dir"]).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("KIZUNA_EXIT_WITH_PID", None)
    if network.exit_with_pid:
        env["KIZUNA_EXIT_WITH_PID"] = str(network.exit_with_pid)
    with open(log_path, "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name} {service}\n".encode())
        log.flush()
        shim = subprocess.run(
            [sys.executable, "-c", _DAEMONIZE, *service_command(network, name, service)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
            env=env,
            timeout=30,
        )
    try:
        pid = int(shim.stdout)
    except ValueError:
        raise NetError(f"could not start {name}'s {service} (see {log_path})") from None
    network.nodes[name].setdefault("pids", {})[service] = pid
    return pid


def _is_ours(pid: int, service: str) -> bool:
    """Whether `pid` still runs a Kizuna `service` (guards against a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # no /proc to ask: trust the record
    return f"kizuna_node.{service}.server".encode() in cmdline


def is_alive(pid: int | None) -> bool:
    """Whether process `pid` exists and is not a zombie (False for no pid)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    except (OSError, IndexError):
        pass
    return True


def _running(node: dict, service: str) -> int | None:
    pid = node.get("pids", {}).get(service)
    if pid and is_alive(pid) and _is_ours(pid, service):
        return pid
    return None


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _terminate(pids: list[int], timeout: float, kill: bool = False) -> None:
    """Sends SIGTERM (SIGKILL with `kill`) to `pids`, waits up to `timeout`, then SIGKILLs the rest."""
    for pid in pids:
        _signal(pid, signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(is_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    for pid in pids:
        if is_alive(pid):
            _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while any(is_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)


def _log_tail(network: Network, name: str, service: str, lines: int = 15) -> str:
    try:
        text = _log_path(network, name, service).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def check_health(address: str, timeout: float = 1.0) -> bool:
    """Whether the server at `address` answers the standard health check with SERVING."""
    with grpc.insecure_channel(address) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.RpcError:
            return False
    return answer.status == health_pb2.HealthCheckResponse.SERVING


def _wait_healthy(network: Network, waiting: list[tuple[str, str]], timeout: float) -> None:
    """Polls every (node, service) in `waiting` until its health says SERVING; fails fast
    when a process dies and with the log's tail when the deadline passes."""
    deadline = time.monotonic() + timeout
    pending = list(waiting)
    while pending:
        for name, service in list(pending):
            node = network.nodes[name]
            pid = node["pids"].get(service)
            if not is_alive(pid):
                tail = _log_tail(network, name, service)
                raise NetError(
                    f"{name}'s {service} exited while starting (log {_log_path(network, name, service)}):\n{tail}"
                )
            if check_health(node[service], timeout=min(1.0, max(0.1, deadline - time.monotonic()))):
                pending.remove((name, service))
        if not pending:
            return
        if time.monotonic() >= deadline:
            name, service = pending[0]
            tail = _log_tail(network, name, service)
            raise NetError(
                f"{name}'s {service} at {network.nodes[name][service]} not healthy after {timeout:.0f}s"
                f" (log {_log_path(network, name, service)}):\n{tail}"
            )
        time.sleep(POLL_SECONDS)


def _start(network: Network, names: list[str], timeout: float) -> None:
    """Starts the services of `names` that aren't running, layer by layer (every DHT, then
    every conductor, then every lobby), each layer healthy before the next starts, and the
    DHTs knowing one another before the lobbies publish their agents' infos."""
    deadline = time.monotonic() + timeout
    try:
        for service in SERVICES:
            waiting = []
            for name in names:
                if _running(network.nodes[name], service) is None:
                    _spawn(network, name, service)
                waiting.append((name, service))
            _wait_healthy(network, waiting, max(0.5, deadline - time.monotonic()))
            if service == "group_dht":
                _wait_peers(network, names, deadline)
    finally:
        save(network)


def _known_peers(node: dict) -> int:
    with grpc.insecure_channel(node["group_dht"]) as channel:
        try:
            listed = group_dht_pb2_grpc.GroupDhtStub(channel).ListSpaces(
                group_dht_pb2.ListSpacesRequest(), metadata=conductor_metadata(node), timeout=1.0)
        except (grpc.RpcError, OSError):
            return 0
    return len(listed.peers)


def _wait_peers(network: Network, names: list[str], deadline: float) -> None:
    """Waits until the DHT of each node in `names` knows every other running node's DHT (its
    first peer exchange, over TLS, is done), or `deadline` passes: then the nodes go on and
    find one another by gossip, a little later."""
    running = [n for n in network.nodes if _running(network.nodes[n], "group_dht") is not None]
    pending = [n for n in names if n in running]
    while pending and time.monotonic() < deadline:
        pending = [n for n in pending if _known_peers(network.nodes[n]) < len(running) - 1]
        if pending:
            time.sleep(POLL_SECONDS)


def _stop(network: Network, names: list[str], timeout: float, kill: bool = False) -> None:
    """Stops the services of `names`, lobbies first, and forgets their pids."""
    for service in reversed(SERVICES):
        pids = []
        for name in names:
            pid = _running(network.nodes[name], service)
            if pid is not None:
                pids.append(pid)
        _terminate(pids, timeout, kill=kill)
        for name in names:
            network.nodes[name].get("pids", {}).pop(service, None)
    save(network)


# ---------------------------------------------------------------- agents


def _metadata(token: str) -> tuple:
    return (("authorization", f"Bearer {token}"),)


TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def _call_until(what: str, call, deadline: float):
    """`call()` again while it fails with a transient status (the nodes of a fresh network
    are still finding one another), until `deadline`."""
    while True:
        try:
            return call()
        except grpc.RpcError as exc:
            if exc.code() not in TRANSIENT or time.monotonic() >= deadline:
                raise NetError(f"{what}: {exc.code().name}: {exc.details()}") from None
        time.sleep(0.25)


def numbered_nodes(count: int) -> tuple[str, ...]:
    """`count` node names: n01, n02, ... (wide enough to sort in order)."""
    if count < 1:
        raise NetError("a network has at least one node")
    width = max(2, len(str(count)))
    return tuple(f"n{i:0{width}d}" for i in range(1, count + 1))


def agent_names(node: str, count: int) -> list[str]:
    """The agents of a node with `count` of them: the node's own name, then NODE-2, NODE-3, ..."""
    return [node] + [f"{node}-{i}" for i in range(2, count + 1)]


def _ensure_agent(network: Network, name: str, deadline: float, agent: str | None = None, lock=None) -> None:
    """Creates agent `agent` (default: the node's name) on node `name` (once) and sets its
    username to the agent's name. `lock`, when given, guards the network record (agents
    made on several nodes at once)."""
    agent = agent or name
    lock = lock or contextlib.nullcontext()
    node = network.nodes[name]
    record = network.agents.get(agent)
    if record is None:
        with grpc.insecure_channel(node["conductor"]) as channel:
            stub = conductor_pb2_grpc.ConductorStub(channel)
            created = _call_until(
                f"creating agent {agent} on {node['conductor']}",
                lambda: stub.CreateAgent(conductor_pb2.CreateAgentRequest(name=agent), timeout=RPC_TIMEOUT,
                                         metadata=conductor_metadata(node)),
                deadline,
            )
        record = {
            "node": name,
            "agent": base64.b64encode(created.agent.agent).decode(),
            "encryption_key": base64.b64encode(created.agent.encryption_key).decode(),
            "app_token": created.app_token,
            "username": "",
        }
        with lock:
            network.agents[agent] = record
            save(network)
    if record.get("username") != agent:
        with grpc.insecure_channel(node["lobby"]) as channel:
            stub = lobby_pb2_grpc.LobbyStub(channel)
            _call_until(
                f"setting {agent}'s username on {node['lobby']}",
                lambda: stub.SetUsername(
                    lobby_pb2.SetUsernameRequest(username=agent),
                    metadata=_metadata(record["app_token"]),
                    timeout=RPC_TIMEOUT,
                ),
                deadline,
            )
        with lock:
            record["username"] = agent
            save(network)


def _ensure_agents(network: Network, names, deadline: float) -> None:
    """Each node's agents (`agents_per_node` of its record), made on all nodes at once."""
    lock = threading.Lock()

    def one_node(name):
        for agent in agent_names(name, network.nodes[name].get("agents_per_node", 1)):
            _ensure_agent(network, name, deadline, agent, lock)

    with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(names), 8) or 1) as pool:
        for done in [pool.submit(one_node, name) for name in names]:
            done.result()


# ---------------------------------------------------------------- the API


def up(directory, nodes=DEFAULT_NODES, exit_with_pid=None, extra_args=None, timeout=30, placement=None,
       agents_per_node: int | None = None) -> Network:
    """Starts every node of `directory` (those already recorded and `nodes`), restarting any
    that still run, and makes sure each node has its agents (`agents_per_node`, default the
    number recorded, else one: NODE, NODE-2, ...), each with its own keys, chain and app
    token, and its username set to its name.

    `extra_args` ({node: {service: [args]}}) replaces the recorded extra arguments of the
    nodes it names; `exit_with_pid` makes the servers stop when that process is gone;
    `placement` is as `add_nodes` takes it."""
    network = _load_or_new(directory)
    network.directory.mkdir(parents=True, exist_ok=True)
    add_nodes(network, nodes, placement)
    network.exit_with_pid = exit_with_pid
    for name, per_service in (extra_args or {}).items():
        if name not in network.nodes:
            raise NetError(f"extra_args for unknown node {name!r}")
        unknown = set(per_service) - set(SERVICES)
        if unknown:
            raise NetError(f"extra_args for unknown service(s) {sorted(unknown)} (services: {', '.join(SERVICES)})")
        network.nodes[name]["extra_args"] = {svc: list(args) for svc, args in per_service.items()}
    save(network)
    if agents_per_node is not None:
        if agents_per_node < 1:
            raise NetError("agents_per_node must be at least 1")
        for node in network.nodes.values():
            node["agents_per_node"] = agents_per_node
    save(network)
    names = list(network.nodes)
    _stop(network, names, timeout=10)
    deadline = time.monotonic() + timeout
    _start(network, names, timeout)
    _ensure_agents(network, names, deadline)
    return network


def down(directory, timeout=10) -> Network:
    """Stops every process of the network: SIGTERM, then SIGKILL what's left after `timeout`."""
    network = load(directory)
    _stop(network, list(network.nodes), timeout)
    return network


def stop_node(directory, node, kill=False, timeout=10) -> Network:
    """Stops one node; `kill` sends SIGKILL, as when a machine goes offline."""
    network = load(directory)
    network.node(node)
    _stop(network, [node], timeout, kill=kill)
    return network


def start_node(directory, node, timeout=30) -> Network:
    """Starts one node again with its recorded ports, data and extra arguments."""
    network = load(directory)
    network.node(node)
    _start(network, [node], timeout)
    return network


def status(directory) -> dict:
    """{node: {service: {"address", "pid", "running", "healthy"}}}."""
    network = load(directory)
    report = {}
    for name, node in network.nodes.items():
        report[name] = {}
        for service in SERVICES:
            pid = _running(node, service)
            report[name][service] = {
                "address": node[service],
                "pid": pid,
                "running": pid is not None,
                "healthy": pid is not None and check_health(node[service]),
            }
    return report


def run_node(directory, record: dict, timeout: float = 30, on_ready=None) -> int:
    """Runs one node in the foreground (`kizuna node run`): its three services from its
    node record, its agent (made on first run, username set to the node's name), until
    SIGINT or SIGTERM, or until one of its services exits; then stops them all. DIR's
    network.json then describes this one node, so `kizuna --dir DIR --as NAME` chats
    through it. `on_ready(network)` runs once it serves. Returns a process exit code."""
    network = _load_or_new(directory)
    network.directory.mkdir(parents=True, exist_ok=True)
    name = record["name"]
    known = network.nodes.get(name, {})
    record = {**record, "pids": known.get("pids", {}), "extra_args": known.get("extra_args", {}), "wrap": []}
    network.nodes = {name: record}
    network.exit_with_pid = os.getpid()  # the services stop by themselves if this process is killed
    save(network)
    stopping = []
    previous = {sig: signal.signal(sig, lambda *_: stopping.append(True)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _stop(network, [name], timeout=10)  # left from a run that was killed
        deadline = time.monotonic() + timeout
        _start(network, [name], timeout)
        _ensure_agent(network, name, deadline)
        if on_ready is not None:
            on_ready(network)
        while not stopping:
            dead = [s for s in SERVICES if _running(network.nodes[name], s) is None]
            if dead:
                print(f"{name}'s {dead[0]} exited (log {_log_path(network, name, dead[0])}):\n"
                      f"{_log_tail(network, name, dead[0])}", file=sys.stderr)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop(network, [name], timeout=10)
