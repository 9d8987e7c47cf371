"""One Kizuna node on this machine: `kizuna node init` makes its directory (TLS key and
certificate, node secret, `kizuna.toml`) and `kizuna node run` runs its three services from
that file until stopped.

Settings come from `DIR/kizuna.toml`, then environment variables `KIZUNA_<SECTION>_<KEY>`
(`KIZUNA_LISTEN_LOBBY_PEER=0.0.0.0:7700`), then flags, each overriding the one before.
`kizuna net up` builds its nodes with the same `init`, `load_config` and `node_record`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

CONFIG_FILE = "kizuna.toml"
DEFAULT_UI = "127.0.0.1:7600"
DEFAULT_LOBBY_PEER = "0.0.0.0:7700"
DEFAULT_DHT_PEER = "0.0.0.0:7701"
MAX_SOCKET_PATH = 107

# section -> key -> (type, default)
SCHEMA = {
    "node": {"name": (str, "")},
    "listen": {
        "ui": (str, DEFAULT_UI),
        "lobby_peer": (str, DEFAULT_LOBBY_PEER),
        "dht_peer": (str, DEFAULT_DHT_PEER),
        "advertise_host": (str, ""),
    },
    "network": {"bootstrap": (list, [])},
}

TEMPLATE = """\
# A Kizuna node. Environment variables KIZUNA_<SECTION>_<KEY> (KIZUNA_LISTEN_LOBBY_PEER)
# override what is here; flags of `kizuna node run` override both.

[node]
# The name of this node's agent, and its username.
name = {name}

[listen]
# The Lobby service for this machine's UIs, in plaintext: loopback host:port or unix:PATH.
ui = {ui}
# Other nodes reach this one here, over TLS with the certificate in tls/ (fingerprint
# {fingerprint}).
lobby_peer = {lobby_peer}
dht_peer = {dht_peer}
# The host or address other nodes dial; needed when the peer listeners bind 0.0.0.0.
advertise_host = {advertise_host}

[network]
# Any one known node's DHT: "HOST:PORT", or "HOST:PORT#FINGERPRINT" to pin its certificate.
bootstrap = {bootstrap}
"""


class ConfigError(Exception):
    """The node's directory or settings are missing or wrong; the message says how."""


def _toml_value(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def socket_dir(directory: Path) -> Path:
    """Where the node-internal Unix sockets go: DIR/run, readable by this user only."""
    return Path(directory) / "run"


def tls_dir(directory: Path) -> Path:
    return Path(directory) / "tls"


def init(directory, name: str, ui: str = DEFAULT_UI, lobby_peer: str = DEFAULT_LOBBY_PEER,
         dht_peer: str = DEFAULT_DHT_PEER, advertise_host: str = "", bootstrap=()) -> dict:
    """Makes a node's directory: its TLS identity, its secret and its config file. A
    directory that already has a config keeps it (and its keys): init is safe to repeat."""
    from kizuna_node.common import node_secret, tls  # the node's own keys: made where the services make them

    directory = Path(directory).resolve()
    if not name:
        raise ConfigError("a node needs a name (--name): its agent's name and username")
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    longest = socket_dir(directory) / "conductor.sock"
    if len(str(longest)) > MAX_SOCKET_PATH:
        raise ConfigError(f"{directory} is too deep for the node's Unix sockets ({longest} is longer than"
                          f" {MAX_SOCKET_PATH} bytes); choose a shorter directory")
    identity = tls.load_or_create(tls_dir(directory))
    node_secret.load_or_create(str(directory / node_secret.DEFAULT_FILE))
    path = directory / CONFIG_FILE
    if not path.exists():
        text = TEMPLATE.format(
            name=_toml_value(name), ui=_toml_value(ui), lobby_peer=_toml_value(lobby_peer),
            dht_peer=_toml_value(dht_peer), advertise_host=_toml_value(advertise_host),
            bootstrap=_toml_value(list(bootstrap)), fingerprint=identity.fingerprint)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return load_config(directory, env={})


def _coerce(section: str, key: str, value, source: str):
    kind, _ = SCHEMA[section][key]
    if kind is list:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    elif isinstance(value, str):
        return value
    raise ConfigError(f"{source}: {section}.{key} must be {'a list of strings' if kind is list else 'a string'}")


def load_config(directory, env=None, overrides=None) -> dict:
    """The node's settings: `DIR/kizuna.toml`, then `env` (default os.environ), then
    `overrides` ({"listen.ui": value, ...}, from flags; None values are not given)."""
    directory = Path(directory).resolve()
    path = directory / CONFIG_FILE
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no node in {directory} (no {CONFIG_FILE}; run `kizuna node init --dir {directory}`)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    env = os.environ if env is None else env
    config = {}
    for section, keys in SCHEMA.items():
        given = data.get(section, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        unknown = set(given) - set(keys)
        if unknown:
            raise ConfigError(f"{path}: unknown setting(s) {', '.join(f'{section}.{k}' for k in sorted(unknown))}")
        for key, (_, default) in keys.items():
            value = _coerce(section, key, given[key], str(path)) if key in given else default
            env_name = f"KIZUNA_{section}_{key}".upper()
            if env_name in env:
                value = _coerce(section, key, env[env_name], env_name)
            flag = (overrides or {}).get(f"{section}.{key}")
            if flag is not None:
                value = _coerce(section, key, flag, f"--{key.replace('_', '-')}")
            config[f"{section}.{key}"] = value
    if not config["node.name"]:
        raise ConfigError(f"{path}: node.name is empty")
    config["directory"] = str(directory)
    return config


def _advertised(listen: str, advertise_host: str, what: str) -> str:
    host, _, port = listen.rpartition(":")
    if advertise_host:
        return f"{advertise_host}:{port}"
    if host in ("0.0.0.0", "::", "[::]", ""):
        raise ConfigError(f"listen.{what} binds {listen}: set listen.advertise_host (or --advertise-host) to the"
                          f" address other nodes reach this machine at")
    return listen


def node_record(config: dict) -> dict:
    """What `kizuna net` records of a node: the addresses of its three services (node-local
    ones for the DHT and conductor, the UI's), its peer listeners, and where it keeps things."""
    from kizuna_node.common import tls

    directory = Path(config["directory"])
    sockets = socket_dir(directory)
    advertise_host = config["listen.advertise_host"]
    return {
        "name": config["node.name"],
        "data_dir": str(directory),
        "group_dht": f"unix:{sockets / 'dht.sock'}",
        "conductor": f"unix:{sockets / 'conductor.sock'}",
        "lobby": config["listen.ui"],
        "lobby_peer": config["listen.lobby_peer"],
        "dht_peer": config["listen.dht_peer"],
        "lobby_advertise": _advertised(config["listen.lobby_peer"], advertise_host, "lobby_peer"),
        "dht_advertise": _advertised(config["listen.dht_peer"], advertise_host, "dht_peer"),
        "tls_dir": str(tls_dir(directory)),
        "fingerprint": tls.load(tls_dir(directory)).fingerprint,
        "bootstrap": list(config["network.bootstrap"]),
    }


def bootstrap_address(record: dict) -> str:
    """How another node names this one to bootstrap from: its DHT's peer address, pinned."""
    return f"{record['dht_advertise']}#{record['fingerprint']}"
