"""The outbox on disk: a message to many receivers is kept once, its items refer to it, and
it goes with the last of them (or at the next start, if a stop came in between)."""

import os

from kizuna.v1 import common_pb2, lobby_pb2
from kizuna_node.common.hashing import blake2b_256
from kizuna_node.common.store import u64
from kizuna_node.lobby.store import LobbyStore, outbox_key

RECEIVERS = 200


def _items(body: bytes, receivers: int = RECEIVERS, queued_at: int = 1_000) -> list[lobby_pb2.OutboxItem]:
    signed = common_pb2.Signed(body=body, author=b"a" * 32, signature=b"s" * 64)
    return [lobby_pb2.OutboxItem(author=b"a" * 32, receiver=i.to_bytes(32, "big"), kind="message", signed=signed,
                                 group_uuid="g", space=b"d" * 32, queued_at=queued_at, next_attempt=queued_at)
            for i in range(receivers)]


def _disk_bytes(path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


def test_a_message_to_many_receivers_is_kept_once_and_each_item_reads_back_whole(tmp_path):
    body = os.urandom(64 * 1024)  # a message to a large group: its receivers are in its body
    store = LobbyStore(str(tmp_path / "lobby"))
    items = _items(body)
    store.put_outbox_items(items)
    store.close()

    assert _disk_bytes(tmp_path / "lobby") < 4 * len(body), "the body was written once per receiver"
    store = LobbyStore(str(tmp_path / "lobby"))
    read = store.outbox_items()
    assert [i.receiver for i in read] == [i.receiver for i in items]
    assert all(i.signed.body == body and i.signed_hash == blake2b_256(body) for i in read)
    store.close()


def test_what_an_item_carries_goes_with_the_last_item_that_refers_to_it(tmp_path):
    store = LobbyStore(str(tmp_path / "lobby"))
    first, second = _items(b"first" * 100, 3), _items(b"second" * 100, 3, queued_at=2_000)
    store.put_outbox_items(first + second)
    store.remove_outbox_items(first[:2])
    assert [i.signed.body for i in store.outbox_items()] == [b"first" * 100] + [b"second" * 100] * 3
    store.remove_outbox_items(first[2:])
    assert store._outbox_signed.get(blake2b_256(b"first" * 100)) is None
    assert store._outbox_signed.get(blake2b_256(b"second" * 100)) is not None
    store.remove_outbox_items(second)
    assert store.outbox_items() == [] and list(store._outbox_signed.keys()) == []
    store.close()


def test_items_in_flight_are_not_read_when_skipped(tmp_path):
    store = LobbyStore(str(tmp_path / "lobby"))
    items = _items(b"body", 4)
    store.put_outbox_items(items)
    skipped = {outbox_key(items[0]), outbox_key(items[2])}
    assert [i.receiver for i in store.outbox_items(skip=skipped)] == [items[1].receiver, items[3].receiver]
    store.close()


def test_a_body_left_by_a_stop_between_the_two_writes_is_swept_at_start_and_an_old_whole_item_still_reads(tmp_path):
    store = LobbyStore(str(tmp_path / "lobby"))
    orphan = blake2b_256(b"orphan")
    store._outbox_signed.put(orphan, common_pb2.Signed(body=b"orphan").SerializeToString())
    whole = _items(b"written whole", 1)[0]  # as a lobby before this change wrote it
    store._outbox.put(u64(whole.queued_at) + whole.receiver + blake2b_256(whole.signed.body)[:16], whole.SerializeToString())
    store.close()

    store = LobbyStore(str(tmp_path / "lobby"))
    assert store._outbox_signed.get(orphan) is None
    [read] = store.outbox_items()
    assert read.signed.body == b"written whole" and read.signed_hash == blake2b_256(b"written whole")
    store.remove_outbox_items([read])
    assert store.outbox_items() == []
    store.close()
