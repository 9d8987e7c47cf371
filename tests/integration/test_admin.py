"""The operator's view of a node (LobbyAdmin, `kizuna admin`), on real processes: the
outbox of a lobby whose receivers are all down, through the CLI and through grpcurl."""

import json
import subprocess
import sys

import pytest

from kizuna import net
from tests.helpers import eventually, run
from tests.integration.network import create_group, make_clients, make_network, outcomes_by_name, status_name
from tests.integration.test_grpcurl import GRPCURL, grpcurl_args

pytestmark = pytest.mark.integration

NAMES = ("alice", "bobby", "charlie")


def kizuna(directory, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kizuna", "--dir", str(directory), *args],
                          capture_output=True, text=True, timeout=60)


def test_the_outbox_of_a_lobby_whose_receivers_are_all_down_is_shown_and_retried(tmp_path):
    # alice's outbox waits two minutes before a second try: only `admin retry` brings the
    # queued items out within the test
    patient = {"alice": {"lobby": ["--outbox-backoff-initial", "60", "--outbox-backoff-max", "600"]}}
    with make_network(tmp_path, extra_args=patient) as network:
        async def queue_two():
            async with make_clients(network, NAMES) as clients:
                created = await create_group(clients, "Waiting", ["bobby", "charlie"])
                await clients["alice"].send(created.group.group_uuid, "hello")  # its group key goes with this one
                for name in ("bobby", "charlie"):
                    net.stop_node(tmp_path, name, kill=True)
                return created.group.group_uuid, await clients["alice"].send(created.group.group_uuid, "for later")
        group, answer = run(queue_two())
        assert {n: status_name(o.status) for n, o in outcomes_by_name(network, answer.outcomes).items()} == \
            {"bobby": "QUEUED", "charlie": "QUEUED"}
        item = answer.message.message_hash.hex()

        shown = kizuna(tmp_path, "admin", "outbox", "alice")
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert lines[-1] == "2 items in node alice's outbox"
        assert sorted(line.split("  ")[1] for line in lines[:-1]) == ["from alice to bobby", "from alice to charlie"]
        assert all(line.startswith(f"message {item[:16]}") and f"group {group}" in line for line in lines[:-1])

        node = network.node("alice")
        secret = net.secret_path(node).read_text().strip()
        listed = subprocess.run(grpcurl_args(["-H", f"x-kizuna-node-secret: {secret}", "-d", "{}", node["lobby"],
                                              "kizuna.v1.LobbyAdmin/ListOutbox"]),
                                capture_output=True, text=True, timeout=30)
        assert listed.returncode == 0, listed.stderr
        body = json.loads(listed.stdout)
        assert body["total"] == 2 and {i["kind"] for i in body["items"]} == {"message"}
        refused = subprocess.run(grpcurl_args(["-d", "{}", node["lobby"], "kizuna.v1.LobbyAdmin/ListOutbox"]),
                                 capture_output=True, text=True, timeout=30)
        assert refused.returncode != 0 and "PermissionDenied" in refused.stdout + refused.stderr

        for name in ("bobby", "charlie"):
            net.start_node(tmp_path, name)
        retried = kizuna(tmp_path, "admin", "retry", "alice", "--item", item[:12])
        assert retried.returncode == 0, retried.stderr
        assert retried.stdout.strip() == "2 items of node alice's outbox are being tried now"

        def emptied():
            out = kizuna(tmp_path, "admin", "outbox", "alice").stdout
            if out.splitlines()[-1] == "0 items in node alice's outbox":
                return True
            # a try made while their nodes were still starting found nobody: try again
            kizuna(tmp_path, "admin", "retry", "alice")
            return False
        eventually(emptied, "alice's outbox empties once bobby and charlie are back", 90, interval=2)

        signals = kizuna(tmp_path, "admin", "signals", "alice")
        assert signals.returncode == 0, signals.stderr
        spaces = kizuna(tmp_path, "admin", "spaces", "alice")
        assert spaces.returncode == 0 and "the Lobby space" in spaces.stdout and "group Waiting" in spaces.stdout
        for line in spaces.stdout.splitlines():
            assert "held by 3 nodes" in line, line  # every node is back in each space


if not GRPCURL.exists():
    pytest.skip(f"{GRPCURL} is missing: install the test extras (make install)", allow_module_level=True)


def test_blocked_agents_lists_what_block_agent_and_unblock_agent_left(tmp_path):
    with make_network(tmp_path):
        as_charlie = ("--as", "charlie")
        assert kizuna(tmp_path, *as_charlie, "blocked-agents").stdout.strip() == "no blocked agents"
        blocked = kizuna(tmp_path, *as_charlie, "block-agent", "bobby")
        assert blocked.returncode == 0, blocked.stderr
        listed = kizuna(tmp_path, *as_charlie, "blocked-agents")
        assert listed.returncode == 0 and listed.stdout.split() == ["bobby"]
        assert kizuna(tmp_path, *as_charlie, "unblock-agent", "bobby").returncode == 0
        assert kizuna(tmp_path, *as_charlie, "blocked-agents").stdout.strip() == "no blocked agents"
        itself = kizuna(tmp_path, *as_charlie, "unblock-agent", "charlie")
        assert itself.returncode == 2 and "cannot unblock itself" in itself.stderr
