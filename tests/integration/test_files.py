"""Files and pins on real processes: a file sent with a message reaches a member online and
one away during the send, byte for byte; no byte of it is stored in the clear on any node;
a file over the limit is refused with nothing stored; a pin is seen by every member."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import grpc
import plyvel
import pytest

from kizuna import net
from kizuna.v1 import group_dht_pb2, group_dht_pb2_grpc
from tests.helpers import eventually
from kizuna.client import ClientError
from tests.integration.network import (
    create_group,
    make_clients,
    make_network,
    messages,
    outcomes_by_name,
    run,
    status_name,
    wait_until,
)

pytestmark = pytest.mark.integration

CATCH_UP = 60.0
MIB = 1024 * 1024


def _store_bytes(data_dir: Path):
    """(where, bytes) of every record and every file of a node's three stores."""
    for store in ("conductor", "dht", "lobby"):
        db = plyvel.DB(str(data_dir / store), create_if_missing=False)
        try:
            for key, value in db.iterator():
                yield f"{store} record {key[:12]!r}", key + value
        finally:
            db.close()
        for path in (data_dir / store).iterdir():
            if path.is_file():
                yield str(path), path.read_bytes()


def test_a_10_mib_file_reaches_a_member_online_and_one_away_byte_for_byte_and_no_node_stores_it_in_the_clear(tmp_path):
    nodes = ("alice", "bobby", "charlie", "dave")  # dave's node holds the Lobby space, not the group's
    content = os.urandom(10 * MIB)
    source = tmp_path / "holiday.bin"
    source.write_bytes(content)
    with make_network(tmp_path / "net", nodes=nodes) as network:
        async def send_while_charlie_is_away():
            async with make_clients(network, ("alice", "bobby", "charlie")) as clients:
                group = (await create_group(clients, "Files", ["bobby", "charlie"])).group.group_uuid
            net.stop_node(tmp_path / "net", "charlie", kill=True)
            async with make_clients(network, ("alice", "bobby")) as clients:
                seen = []
                answer = await clients["alice"].send_file(group, source, text="the photos",
                                                          progress=lambda done, size: seen.append((done, size)))
                outcomes = {name: status_name(o.status) for name, o in outcomes_by_name(network, answer.outcomes).items()}
                assert outcomes == {"bobby": "DELIVERED", "charlie": "STORED_IN_DHT"}
                assert seen[-1] == (len(content), len(content))
                bobby = clients["bobby"]
                await wait_until(bobby, lambda: messages(bobby, group, "the photos"), "bobby gets the message")
                record = messages(bobby, group, "the photos")[0].record
                ref = record.entry.attachments[0]
                assert (ref.name, ref.size) == ("holiday.bin", len(content))
                fetched = await bobby.fetch_file(record, tmp_path / "bobby.bin")
                assert fetched.read_bytes() == content
                return group
        group = run(send_while_charlie_is_away())
        net.start_node(tmp_path / "net", "charlie")

        async def charlie_catches_up():
            async with make_clients(network, ("charlie",)) as clients:
                charlie = clients["charlie"]
                await charlie.sync_inbox()
                await wait_until(charlie, lambda: messages(charlie, group, "the photos"), "charlie catches up", CATCH_UP)
                return await charlie.fetch_file(messages(charlie, group, "the photos")[0].record, tmp_path)
        fetched = run(charlie_catches_up())
        assert fetched == tmp_path / "holiday.bin" and hashlib.sha256(fetched.read_bytes()).digest() == \
            hashlib.sha256(content).digest()
        net.down(tmp_path / "net")
        needles = [content[i:i + 64] for i in range(0, len(content), MIB)]
        for name in nodes:
            for where, data in _store_bytes(Path(network.node(name)["data_dir"])):
                assert not any(needle in data for needle in needles), f"the file's plaintext in {name}'s {where}"


def test_a_file_over_64_mib_is_refused_and_nothing_is_stored(tmp_path):
    with make_network(tmp_path, nodes=("alice", "bobby")) as network:
        async def refused():
            async with make_clients(network, ("alice", "bobby")) as clients:
                group = (await create_group(clients, "Huge", ["bobby"])).group.group_uuid
                spaces_before = await _ops_in(network, group)
                path = tmp_path / "huge.bin"
                with path.open("wb") as f:  # 64 MiB and a byte, refused from its header alone
                    f.truncate(64 * MIB + 1)  # sparse: no 64 MiB written to the disk
                with pytest.raises(ClientError) as refused:
                    await clients["alice"].send_file(group, path)
                assert refused.value.code.name == "INVALID_ARGUMENT" and "67108864" in refused.value.details, str(refused.value)
                assert await _ops_in(network, group) == spaces_before
                assert not (await clients["alice"].history(group)).messages
        run(refused())


async def _ops_in(network, group_uuid: str) -> dict:
    """Each node's op count in the group's space."""
    counts = {}
    for name in network.nodes:
        async with grpc.aio.insecure_channel(network.node(name)["group_dht"]) as channel:
            listed = await group_dht_pb2_grpc.GroupDhtStub(channel).ListSpaces(group_dht_pb2.ListSpacesRequest(),
                                                                                metadata=network.conductor_metadata(name))
            counts[name] = {s.space: s.ops for s in listed.spaces if s.properties.group_uuid == group_uuid}
    return counts


def test_a_pin_by_one_member_is_seen_by_the_other_and_an_unpin_too(tmp_path):
    with make_network(tmp_path, nodes=("alice", "bobby")) as network:
        async def pins():
            async with make_clients(network, ("alice", "bobby")) as clients:
                alice, bobby = clients["alice"], clients["bobby"]
                group = (await create_group(clients, "Pins", ["bobby"])).group.group_uuid
                sent = (await alice.send(group, "the meeting is at 10")).message
                await wait_until(bobby, lambda: messages(bobby, group, "the meeting is at 10"), "bobby gets it")
                answer = await bobby.pin(group, sent.message_hash)
                assert list(answer.group.pinned) == [sent.message_hash]
                await wait_until(alice, lambda: any(e.kind == "group_update" and e.update.update.change == "pin"
                                                    for e in alice.events_so_far()), "alice sees the pin")
                assert [r.message_hash for r in await alice.pins(group)] == [sent.message_hash]
                with pytest.raises(ClientError) as unknown:
                    await alice.pin(group, bytes(32))
                assert unknown.value.code.name == "NOT_FOUND"
                await alice.unpin(group, sent.message_hash)
                await wait_until(bobby, lambda: any(e.kind == "group_update" and e.update.update.change == "unpin"
                                                    for e in bobby.events_so_far()), "bobby sees the unpin")
                assert await bobby.pins(group) == []
                with pytest.raises(ClientError) as not_pinned:
                    await bobby.unpin(group, sent.message_hash)
                assert not_pinned.value.code.name == "NOT_FOUND"
        run(pins())


def kizuna(directory, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kizuna", "--dir", str(directory), *args],
                          capture_output=True, text=True, timeout=120)


def test_the_cli_sends_a_file_with_a_progress_bar_shows_it_in_history_fetches_it_and_pins_its_message(tmp_path):
    content = os.urandom(MIB + 7)
    (tmp_path / "report.pdf").write_bytes(content)
    directory = tmp_path / "net"
    with make_network(directory, nodes=("alice", "bobby")):
        assert kizuna(directory, "--as", "alice", "create-group", "Docs", "bobby").returncode == 0
        assert kizuna(directory, "--as", "bobby", "accept", "Docs").returncode == 0
        sent = kizuna(directory, "--as", "alice", "send-file", "Docs", str(tmp_path / "report.pdf"), "--text", "q3")
        assert sent.returncode == 0, sent.stderr
        assert "sending report.pdf [" in sent.stderr and "100%" in sent.stderr and "1.0 MiB of 1.0 MiB" in sent.stderr
        message = sent.stdout.split("(")[2].split(")")[0]  # "report.pdf (1.0 MiB) sent to Docs at ... (hash)"
        history = kizuna(directory, "--as", "bobby", "history", "Docs").stdout
        assert f"{message}  alice: q3  [file: report.pdf, 1.0 MiB]" in history
        (tmp_path / "inbox").mkdir()
        fetched = kizuna(directory, "--as", "bobby", "fetch-file", "Docs", message, str(tmp_path / "inbox"))
        assert fetched.returncode == 0, fetched.stderr
        assert "fetching report.pdf [" in fetched.stderr and "SHA-256 checked" in fetched.stdout
        assert (tmp_path / "inbox" / "report.pdf").read_bytes() == content
        assert kizuna(directory, "--as", "bobby", "pin", "Docs", message).returncode == 0
        eventually(lambda: message in kizuna(directory, "--as", "alice", "pins", "Docs").stdout,
                   "alice's pins show bobby's pin", 30.0, interval=0.5)
        assert kizuna(directory, "--as", "alice", "unpin", "Docs", message).returncode == 0
        eventually(lambda: "no pinned messages" in kizuna(directory, "--as", "bobby", "pins", "Docs").stdout,
                   "bobby's pins show alice's unpin", 30.0, interval=0.5)
