"""The CLI as a script uses it, on real processes: `--json` output that parses (NDJSON for
`history` and `watch`), exit codes that tell usage, not found, refused, unauthenticated and
unreachable apart, `KIZUNA_TOKEN`, and a revoked token replaced by `tokens issue --save`."""

import json
import os
import queue
import subprocess
import sys
import threading
import time

import pytest

from kizuna import cli, net
from tests.integration.network import make_network

pytestmark = pytest.mark.integration

TIMEOUT = 60.0


def kizuna(directory, *argv, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kizuna", "--dir", str(directory), *argv], capture_output=True,
                          text=True, timeout=TIMEOUT, env={**os.environ, **(env or {})})


def as_json(directory, *argv, env=None):
    done = kizuna(directory, "--json", *argv, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def error_of(done: subprocess.CompletedProcess) -> dict:
    """The JSON error a failed `--json` command writes on stderr (one line, no traceback)."""
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stderr
    return json.loads(done.stderr)["error"]


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli")
    with make_network(directory, nodes=("alice", "bobby")) as network:
        yield network


@pytest.fixture(scope="module")
def group(network):
    created = as_json(network.directory, "--as", "alice", "create-group", "Scripts", "bobby")
    assert created["group"]["name"] == "Scripts"
    assert [o["status"] for o in created["invites"]] == ["DELIVERED"]
    uuid = created["group"]["group_uuid"]
    assert uuid in as_json(network.directory, "--as", "bobby", "accept", uuid)["group_uuids"]
    return uuid


def test_json_output_of_send_history_and_reply_parses_and_names_what_happened(network, group):
    directory = network.directory
    sent = [as_json(directory, "--as", "alice", "send", group, f"note {i}") for i in range(3)]
    assert all(answer["outcomes"][0]["status"] == "DELIVERED" for answer in sent)
    # a script passes the hash as --json printed it (base64) to reply
    replied = as_json(directory, "--as", "bobby", "reply", group, sent[0]["message"]["message_hash"], "seen")
    assert replied["message"]["entry"]["reply_to"] == sent[0]["message"]["message_hash"]

    history = kizuna(directory, "--as", "bobby", "history", group, "--json")
    assert history.returncode == 0, history.stderr
    records = [json.loads(line) for line in history.stdout.splitlines()]  # one JSON document per line
    assert [r["entry"]["payload"] for r in records] == ["note 0", "note 1", "note 2", "seen"]
    assert [r["message_hash"] for r in records[:3]] == [a["message"]["message_hash"] for a in sent]

    groups = as_json(directory, "--as", "bobby", "groups")
    assert [g["group_uuid"] for g in groups["details"]] == [group]


def test_watch_json_prints_one_document_per_event_as_it_arrives(network, group):
    directory = network.directory
    watch = subprocess.Popen([sys.executable, "-m", "kizuna", "--dir", str(directory), "--as", "bobby", "watch",
                              "--json", "--timeout", str(TIMEOUT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in watch.stdout], daemon=True).start()
    try:
        assert "watching as bobby" in watch.stderr.readline()  # the stream is open
        as_json(directory, "--as", "alice", "send", group, "live one")
        deadline = time.monotonic() + TIMEOUT
        while True:
            event = json.loads(lines.get(timeout=max(0.1, deadline - time.monotonic())))
            assert set(event) >= {"kind", "group_uuid", "signal"}
            if event["kind"] == "message" and event["signal"]["message"]["message"]["entry"]["payload"] == "live one":
                break
        assert event["group_uuid"] == group
    finally:
        watch.kill()
        watch.wait(timeout=TIMEOUT)


@pytest.mark.parametrize("argv, exit_code, kind", [
    (("--as", "alice", "send", "no-such-group", "hi"), cli.EXIT_NOT_FOUND, "not found"),
    (("--as", "nobody", "groups"), cli.EXIT_NOT_FOUND, "not found"),
    (("--as", "bobby", "history", "Scripts", "--from-message", "zz"), cli.EXIT_USAGE, "usage"),
    (("--as", "bobby", "rename", "Scripts", "Mine now"), cli.EXIT_REFUSED, "refused"),  # bobby is no admin
    (("--as", "bobby", "unblock-agent", "bobby"), cli.EXIT_USAGE, "usage"),
])
def test_exit_codes_tell_usage_not_found_and_refused_apart(network, group, argv, exit_code, kind):
    done = kizuna(network.directory, "--json", *argv)
    assert done.returncode == exit_code, done.stderr
    error = error_of(done)
    assert error["exit_code"] == exit_code and error["kind"] == kind and error["message"]


def test_a_wrong_token_is_unauthenticated_and_kizuna_token_is_the_default(network, group):
    done = kizuna(network.directory, "--as", "alice", "groups", env={"KIZUNA_TOKEN": "not-a-token"})
    assert done.returncode == cli.EXIT_UNAUTHENTICATED, done.stderr
    assert "tokens issue alice --save" in done.stderr and "Traceback" not in done.stderr
    good = net.load(network.directory).token("alice")
    assert kizuna(network.directory, "--as", "alice", "groups", env={"KIZUNA_TOKEN": good}).returncode == 0


def test_after_revoking_its_own_token_the_cli_gets_back_in_with_tokens_issue_save(network, group):
    directory = network.directory
    listed = as_json(directory, "tokens", "list", "bobby")["tokens"]
    in_use = net.load(directory).token("bobby")
    for entry in listed:  # revoke every token bobby has, the one network.json holds among them
        if not entry["token"].get("revoked"):
            assert kizuna(directory, "tokens", "revoke", entry["token"]["token_id"]).returncode == 0
    locked_out = kizuna(directory, "--as", "bobby", "groups")
    assert locked_out.returncode == cli.EXIT_UNAUTHENTICATED, locked_out.stderr

    issued = as_json(directory, "tokens", "issue", "bobby", "--save")
    assert issued["saved"] is True and issued["app_token"] != in_use
    assert net.load(directory).token("bobby") == issued["app_token"]
    assert as_json(directory, "--as", "bobby", "groups")["groups"]["group_uuids"] == [group]


def test_a_stopped_node_is_unreachable(network, group):
    net.stop_node(network.directory, "bobby")
    try:
        done = kizuna(network.directory, "--json", "--as", "bobby", "groups")
        assert done.returncode == cli.EXIT_UNREACHABLE, done.stderr
        assert error_of(done)["kind"] == "unreachable"
    finally:
        net.start_node(network.directory, "bobby")
