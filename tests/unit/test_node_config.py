"""`kizuna node init` and a node's settings: the file, then the environment, then flags."""

import stat

import pytest

from kizuna import node


def test_init_makes_the_keys_the_secret_and_the_config_each_readable_by_the_owner_only(tmp_path):
    config = node.init(tmp_path / "n", "alice", lobby_peer="127.0.0.1:7700", dht_peer="127.0.0.1:7701")
    for private in ("tls/node.key", "node.secret"):
        assert stat.S_IMODE((tmp_path / "n" / private).stat().st_mode) == 0o600, private
    assert stat.S_IMODE((tmp_path / "n").stat().st_mode) == 0o700
    assert config["node.name"] == "alice" and config["listen.lobby_peer"] == "127.0.0.1:7700"
    record = node.node_record(config)
    assert record["conductor"] == f"unix:{tmp_path / 'n' / 'run' / 'conductor.sock'}"
    assert len(record["fingerprint"]) == 64


def test_init_again_keeps_the_identity_and_the_settings(tmp_path):
    first = node.node_record(node.init(tmp_path, "alice", lobby_peer="127.0.0.1:7700", dht_peer="127.0.0.1:7701"))
    again = node.node_record(node.init(tmp_path, "bobby", lobby_peer="127.0.0.1:1", dht_peer="127.0.0.1:2"))
    assert again == first


def test_settings_come_from_the_file_then_the_environment_then_flags(tmp_path):
    node.init(tmp_path, "alice", ui="127.0.0.1:1000", lobby_peer="127.0.0.1:7700", dht_peer="127.0.0.1:7701")
    env = {"KIZUNA_LISTEN_UI": "127.0.0.1:2000", "KIZUNA_NETWORK_BOOTSTRAP": "10.0.0.2:7701, 10.0.0.3:7701"}
    from_env = node.load_config(tmp_path, env=env)
    assert from_env["listen.ui"] == "127.0.0.1:2000"
    assert from_env["network.bootstrap"] == ["10.0.0.2:7701", "10.0.0.3:7701"]
    assert from_env["listen.lobby_peer"] == "127.0.0.1:7700"  # from the file
    flagged = node.load_config(tmp_path, env=env, overrides={"listen.ui": "unix:/tmp/ui.sock"})
    assert flagged["listen.ui"] == "unix:/tmp/ui.sock"


def test_listening_on_every_address_needs_an_advertised_host(tmp_path):
    config = node.init(tmp_path, "alice")  # the defaults bind 0.0.0.0
    with pytest.raises(node.ConfigError, match="advertise_host"):
        node.node_record(config)
    record = node.node_record(node.load_config(tmp_path, env={"KIZUNA_LISTEN_ADVERTISE_HOST": "192.0.2.7"}))
    assert record["lobby_advertise"] == "192.0.2.7:7700" and record["dht_advertise"] == "192.0.2.7:7701"


def test_a_bad_config_file_is_a_readable_error(tmp_path):
    with pytest.raises(node.ConfigError, match="kizuna node init"):
        node.load_config(tmp_path)
    (tmp_path / node.CONFIG_FILE).write_text('[node]\nname = "a"\n[listen]\nport = 1\n')
    with pytest.raises(node.ConfigError, match="unknown setting.*listen.port"):
        node.load_config(tmp_path)
    (tmp_path / node.CONFIG_FILE).write_text("[node\n")
    with pytest.raises(node.ConfigError, match="not valid TOML"):
        node.load_config(tmp_path)
