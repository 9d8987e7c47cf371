"""Encrypted file chunks and attachments: a tampered chunk or file is DATA_LOSS and never
handed on as the file; a file that is not the size it said stores nothing; the DHT takes a
file chunk only in a group's space, from a member, at most one chunk big."""

import os

import pytest

from kizuna.v1 import common_pb2, group_dht_pb2, lobby_pb2
from kizuna_node.common import dna, file_chunks
from kizuna_node.common.errors import DataLoss, InvalidArgument, PermissionDenied
from kizuna_node.group_dht.store import DhtStore
from kizuna_node.group_dht.validation import validate_op
from kizuna_node.lobby.store import LobbyStore
from tests.helpers import Agent, run
from tests.unit.lobby_fakes import make_lobbies

CHUNK = file_chunks.CHUNK_BYTES


async def _pieces(data: bytes, size: int = 300_000):
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def _group_with_a_file(tmp_path, content: bytes):
    """alice sends bobby a message with `content` as its file: (lobbies, agents, dht, bobby's record)."""
    lobbies, agents, _, _, dht = await make_lobbies(tmp_path, ["alice", "bobby"])
    info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "files", ["bobby"])
    await lobbies["bobby"].groups.accept_group(agents["bobby"], info.group_uuid)
    header = lobby_pb2.FileHeader(group_uuid=info.group_uuid, name="notes.bin", size=len(content), payload="here")
    record, outcomes, _ = await lobbies["alice"].attachments.send_file(agents["alice"], header, _pieces(content))
    assert [o.status for o in outcomes] == [lobby_pb2.DELIVERED]
    return lobbies, agents, dht, lobbies["bobby"].store.get_message(agents["bobby"], record.message_hash)


async def _fetch(lobby, agent, record):
    """The chunks the lobby yields before it stops, and the error it stopped with (or None)."""
    chunks = []
    try:
        async for chunk in lobby.attachments.fetch_file(agent, record.entry.group_uuid, record.message_hash):
            chunks.append(chunk.data)
    except DataLoss as exc:
        return chunks, exc
    return chunks, None


def test_a_file_sent_comes_back_whole_from_the_group_space_and_its_chunks_are_ciphertext(tmp_path):
    content = os.urandom(2 * CHUNK + 1234)

    async def scenario():
        lobbies, agents, dht, record = await _group_with_a_file(tmp_path, content)
        ref = record.entry.attachments[0]
        assert (record.entry.payload, ref.name, ref.size, len(ref.chunks)) == ("here", "notes.bin", len(content), 3)
        stored = [group_dht_pb2.Op.FromString(dht.entries[a].body) for a in ref.chunks]
        assert {op.entry_type for op in stored} == {file_chunks.ENTRY_TYPE}
        assert not any(content[i:i + 64] in op.entry for op in stored for i in range(0, len(content), 4096))
        sent = [op for op in dht.published if op.entry_type == "message"]
        assert all(ref.key not in op.entry for op in sent)  # the key travels inside the Megolm ciphertext only
        chunks, error = await _fetch(lobbies["bobby"], agents["bobby"], record)
        assert error is None and b"".join(chunks) == content
    run(scenario())


def test_a_tampered_chunk_is_data_loss_and_the_file_never_completes(tmp_path):
    content = os.urandom(2 * CHUNK + 10)

    async def scenario():
        lobbies, agents, dht, record = await _group_with_a_file(tmp_path, content)
        address = record.entry.attachments[0].chunks[2]
        op = group_dht_pb2.Op.FromString(dht.entries[address].body)
        op.entry = bytes([op.entry[0] ^ 1]) + op.entry[1:]
        dht.entries[address] = Agent().sign(**{f.name: v for f, v in op.ListFields()})
        chunks, error = await _fetch(lobbies["bobby"], agents["bobby"], record)
        assert "chunk 2" in str(error) and chunks == [content[:CHUNK]]  # chunk 1 was held back, chunk 2 refused
    run(scenario())


def test_a_file_that_does_not_match_its_sha256_is_data_loss_and_its_last_chunk_is_held_back(tmp_path):
    content = os.urandom(CHUNK + 10)

    async def scenario():
        lobbies, agents, _, record = await _group_with_a_file(tmp_path, content)
        record.entry.attachments[0].sha256 = bytes(32)
        store: LobbyStore = lobbies["bobby"].store
        with store.batch() as batch:
            store.put_message(batch, agents["bobby"], record)
        chunks, error = await _fetch(lobbies["bobby"], agents["bobby"], record)
        assert "SHA-256" in str(error) and chunks == [content[:CHUNK]]
    run(scenario())


@pytest.mark.parametrize("sent, said", [(b"x" * 1000, 999), (b"x" * 1000, 1001), (b"x", file_chunks.MAX_FILE_BYTES + 1)])
def test_a_file_not_the_size_its_header_says_or_over_64_mib_is_refused_with_nothing_stored(tmp_path, sent, said):
    async def scenario():
        lobbies, agents, _, _, dht = await make_lobbies(tmp_path, ["alice", "bobby"])
        info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "files", ["bobby"])
        published = len(dht.published)
        header = lobby_pb2.FileHeader(group_uuid=info.group_uuid, name="f", size=said)
        with pytest.raises(InvalidArgument):
            await lobbies["alice"].attachments.send_file(agents["alice"], header, _pieces(sent))
        assert len(dht.published) == published
        assert not lobbies["alice"].history.get_messages(agents["alice"], info.group_uuid, 50, "", b"", 0, False, b"")[0]
    run(scenario())


def test_open_chunk_refuses_a_changed_ciphertext_a_moved_chunk_and_another_key():
    key = file_chunks.new_key()
    address, ciphertext = file_chunks.seal_chunk(key, 3, b"some bytes")
    assert file_chunks.open_chunk(key, 3, address, ciphertext) == b"some bytes"
    changed = ciphertext[:-1] + bytes([ciphertext[-1] ^ 1])
    with pytest.raises(DataLoss, match="address"):
        file_chunks.open_chunk(key, 3, address, changed)
    with pytest.raises(DataLoss, match="key"):
        file_chunks.open_chunk(key, 4, address, ciphertext)
    with pytest.raises(DataLoss, match="key"):
        file_chunks.open_chunk(file_chunks.new_key(), 3, address, ciphertext)


@pytest.fixture
def space_of():
    members = [Agent(), Agent()]
    props = common_pb2.GroupProperties(group_uuid="g-1", name="g", creator=members[0].public,
                                       initial_members=[m.public for m in members])
    group = group_dht_pb2.Space(space=dna.group_dna_hash(props), template="group", properties=props)
    lobby = group_dht_pb2.Space(space=dna.LOBBY_DNA_HASH, template="lobby")
    return members, group, lobby


def _chunk(agent, space, size):
    return agent.sign(space=space.space, kind=group_dht_pb2.STORE_ENTRY, entry_type=file_chunks.ENTRY_TYPE,
                      entry=b"c" * size)


def test_the_dht_takes_a_full_chunk_from_a_member_of_a_group_and_refuses_the_rest(tmp_path, space_of):
    (member, _), group, lobby = space_of
    store = DhtStore(str(tmp_path / "db"))
    try:
        assert validate_op(_chunk(member, group, file_chunks.MAX_CHUNK_ENTRY_BYTES), group, store).entry_type == "file_chunk"
        with pytest.raises(InvalidArgument, match="at most"):
            validate_op(_chunk(member, group, file_chunks.MAX_CHUNK_ENTRY_BYTES + 1), group, store)
        with pytest.raises(PermissionDenied, match="group's space"):
            validate_op(_chunk(member, lobby, 100), lobby, store)
        with pytest.raises(PermissionDenied, match="not a member"):
            validate_op(_chunk(Agent(), group, 100), group, store)
        big_message = member.sign(space=group.space, kind=group_dht_pb2.STORE_ENTRY, entry_type="message",
                                  entry=b"m" * file_chunks.CHUNK_BYTES)
        with pytest.raises(InvalidArgument, match="limit"):  # only a chunk may be that big
            validate_op(big_message, group, store)
    finally:
        store.close()
