"""The signal hub on a temporary LevelDB: per-agent seqs, the replay after `since`, acks,
expiry and the bound per agent, groups left; and, through the lobby, the banner flag and
idempotent sends."""

import asyncio

import pytest

from kizuna.v1 import common_pb2, lobby_pb2
from kizuna_node.common.errors import InvalidArgument
from kizuna_node.lobby import signals as signals_module
from kizuna_node.lobby.signals import SignalHub
from kizuna_node.lobby.store import LobbyStore
from tests.helpers import run
from tests.unit.lobby_fakes import drain, make_lobbies

ALICE, BOBBY = b"a" * 32, b"b" * 32


def delivery(group_uuid="g1", n=0):
    return lobby_pb2.Signal(delivery=lobby_pb2.DeliverySignal(message_hash=bytes([n]) * 32, group_uuid=group_uuid))


def message(group_uuid, text="hi"):
    record = lobby_pb2.MessageRecord(entry=common_pb2.MessageEntry(group_uuid=group_uuid, payload=text))
    return lobby_pb2.Signal(message=lobby_pb2.MessageSignal(message=record))


def in_group(store: LobbyStore) -> LobbyStore:
    """The store, with ALICE and BOBBY in the accepted group g1."""
    with store.batch() as batch:
        for agent in (ALICE, BOBBY):
            store.put_group_info(batch, agent, lobby_pb2.GroupInfo(group_uuid="g1", state=lobby_pb2.ACCEPTED))
    return store


def make_hub(path, **bounds) -> SignalHub:
    return SignalHub(in_group(LobbyStore(str(path))), **bounds)


def seqs(signals):
    return [s.seq for s in signals]


def replayed(hub, agent, since=0):
    return list(hub.replay(agent, since, hub.last_seq(agent)))


def test_each_agent_gets_its_own_strictly_increasing_seqs_which_go_on_after_a_restart(tmp_path):
    store = in_group(LobbyStore(str(tmp_path / "lobby")))
    hub = SignalHub(store)
    for _ in range(3):
        hub.emit_signal(ALICE, delivery())
    hub.emit_signal(BOBBY, delivery())
    assert seqs(replayed(hub, ALICE)) == [1, 2, 3] and seqs(replayed(hub, BOBBY)) == [1]
    hub.ack(ALICE, 3)
    store.close()  # the lobby restarts
    hub = SignalHub(LobbyStore(str(tmp_path / "lobby")))
    hub.emit_signal(ALICE, delivery())
    assert seqs(replayed(hub, ALICE)) == [4]  # acked ones gone, the seq not reused
    assert hub.queued_by_agent() == {ALICE: 1, BOBBY: 1}


def test_a_stream_replays_what_follows_since_then_gets_live_signals_without_gap_or_duplicate(tmp_path):
    hub = make_hub(tmp_path / "lobby")
    for n in range(4):
        hub.emit_signal(ALICE, delivery(n=n))
    subscription = hub.subscribe(ALICE, since=2)
    hub.emit_signal(ALICE, delivery(n=9))
    assert subscription.replayed_to == 4
    assert seqs(hub.replay(ALICE, 2, subscription.replayed_to)) == [3, 4]
    assert seqs(drain(subscription)) == [5]


def test_two_streams_of_one_agent_see_the_same_signals(tmp_path):
    hub = make_hub(tmp_path / "lobby")
    hub.emit_signal(ALICE, delivery())
    first, second = hub.subscribe(ALICE), hub.subscribe(ALICE)
    hub.emit_signal(ALICE, delivery(n=1))
    assert [seqs(hub.replay(ALICE, 0, s.replayed_to)) + seqs(drain(s)) for s in (first, second)] == [[1, 2]] * 2


def test_an_acked_signal_is_not_replayed_and_acking_past_the_last_seq_is_refused(tmp_path):
    hub = make_hub(tmp_path / "lobby")
    for _ in range(3):
        hub.emit_signal(ALICE, delivery())
    assert hub.ack(ALICE, 2) == 1
    assert seqs(replayed(hub, ALICE)) == [3]
    with pytest.raises(InvalidArgument, match="past this agent's last signal"):
        hub.ack(ALICE, 4)
    assert hub.queued_by_agent() == {ALICE: 1}


def test_signals_past_their_age_are_dropped_and_not_replayed(tmp_path, monkeypatch):
    clock = [10**15]
    monkeypatch.setattr(signals_module, "now_micros", lambda: clock[0])
    hub = make_hub(tmp_path / "lobby", max_age_seconds=60)
    hub.emit_signal(ALICE, delivery())
    clock[0] += 30 * 10**6
    hub.emit_signal(ALICE, delivery())
    clock[0] += 40 * 10**6  # the first is 70 s old, the second 40 s
    assert seqs(replayed(hub, ALICE)) == [2]
    assert hub.expire() == 1
    assert hub.queued_by_agent() == {ALICE: 1}


def test_past_the_bound_per_agent_the_oldest_signal_goes(tmp_path):
    hub = make_hub(tmp_path / "lobby", max_kept=3)
    for _ in range(5):
        hub.emit_signal(ALICE, delivery())
    assert seqs(replayed(hub, ALICE)) == [3, 4, 5]
    assert hub.queued_by_agent() == {ALICE: 3}


def test_typing_is_published_live_without_a_seq_and_never_kept(tmp_path):
    hub = make_hub(tmp_path / "lobby")
    subscription = hub.subscribe(ALICE)
    hub.emit_signal(ALICE, lobby_pb2.Signal(typing=lobby_pb2.TypingSignal(typing=common_pb2.Typing(group_uuid="g1"))))
    assert seqs(drain(subscription)) == [0]
    assert replayed(hub, ALICE) == [] and hub.queued_by_agent() == {}


def test_a_since_past_the_last_seq_moves_the_seq_on_and_a_huge_one_is_refused(tmp_path):
    hub = make_hub(tmp_path / "lobby")
    assert hub.subscribe(ALICE, since=40).replayed_to == 40
    hub.emit_signal(ALICE, delivery())
    assert seqs(replayed(hub, ALICE, since=40)) == [41]
    with pytest.raises(InvalidArgument, match="since is at most"):
        hub.subscribe(ALICE, since=2**64 - 1)


def test_signals_of_groups_left_deleted_or_blocked_are_not_replayed_but_the_departure_is(tmp_path):
    store = LobbyStore(str(tmp_path / "lobby"))
    hub = SignalHub(store)
    with store.batch() as batch:
        store.put_group_info(batch, ALICE, lobby_pb2.GroupInfo(group_uuid="kept", state=lobby_pb2.ACCEPTED))
        store.put_group_info(batch, ALICE, lobby_pb2.GroupInfo(group_uuid="left", departed=True))
        store.put_group_info(batch, ALICE, lobby_pb2.GroupInfo(group_uuid="blocked", state=lobby_pb2.BLOCKED))
        store.put_group_info(batch, ALICE, lobby_pb2.GroupInfo(group_uuid="deleted", state=lobby_pb2.INVITED))
        store.forget_group(batch, ALICE, "deleted")
    for group_uuid in ("kept", "left", "blocked", "deleted", "unknown"):
        signal = message(group_uuid)
        signal.message.message.message_hash = group_uuid.encode().ljust(32, b".")
        with store.batch() as batch:  # as the lobby keeps a message: in its history, in the same write
            store.put_message(batch, ALICE, signal.message.message)
        hub.emit_signal(ALICE, signal)
    hub.emit_signal(ALICE, lobby_pb2.Signal(group_update=lobby_pb2.GroupUpdateSignal(
        group=lobby_pb2.GroupInfo(group_uuid="left", departed=True))))
    kinds = [(s.WhichOneof("signal"), s.seq) for s in replayed(hub, ALICE)]
    assert kinds == [("message", 1), ("group_update", 6)]
    assert replayed(hub, ALICE)[0].message.message.entry.payload == "hi"  # read back from the history


def test_a_kept_message_signal_holds_no_text_and_is_not_replayed_once_its_history_is_gone(tmp_path):
    store = LobbyStore(str(tmp_path / "lobby"))
    hub = SignalHub(store)
    signal = message("g1", text="secret words")
    signal.message.message.message_hash = b"m" * 32
    with store.batch() as batch:
        store.put_group_info(batch, ALICE, lobby_pb2.GroupInfo(group_uuid="g1", state=lobby_pb2.ACCEPTED))
        store.put_message(batch, ALICE, signal.message.message)
    hub.emit_signal(ALICE, signal)
    assert not any(b"secret words" in value for _, value in store._signals.items())
    assert [s.message.message.entry.payload for s in replayed(hub, ALICE)] == ["secret words"]
    with store.batch() as batch:
        store.forget_group(batch, ALICE, "g1")  # a deleted group's history goes with it
    assert replayed(hub, ALICE) == []


# ------------------------------------------------------------------ through the lobby


def test_only_the_first_message_of_a_group_not_accepted_is_flagged_and_again_after_a_delete(tmp_path):
    async def scenario():
        lobbies, agents, *_ = await make_lobbies(tmp_path, ["alice", "bobby"])
        info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "pair", ["bobby"])
        hears = lobbies["bobby"].signals.subscribe(agents["bobby"])
        for text in ("one", "two"):
            await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, text)
        await lobbies["bobby"].groups.delete_group(agents["bobby"], info.group_uuid)
        await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, "three")
        await lobbies["bobby"].groups.accept_group(agents["bobby"], info.group_uuid)
        await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, "four")
        return [(s.message.message.entry.payload, s.message.first_message) for s in drain(hears)
                if s.WhichOneof("signal") == "message"]

    assert run(scenario()) == [("one", True), ("two", False), ("three", True), ("four", False)]


async def make_pair(tmp_path):
    """alice and bobby in a group both accepted: (lobbies, agents, group_uuid, alice's send)."""
    lobbies, agents, *_ = await make_lobbies(tmp_path, ["alice", "bobby"])
    info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "pair", ["bobby"])
    await lobbies["bobby"].groups.accept_group(agents["bobby"], info.group_uuid)
    transactions = lobbies["alice"].transactions

    def send(transaction_id, text):
        return transactions.send_group_message(agents["alice"], transaction_id, info.group_uuid, text)
    return lobbies, agents, info.group_uuid, send


def test_a_send_repeated_with_its_transaction_id_answers_the_same_and_stores_one_message(tmp_path):
    async def scenario():
        lobbies, agents, group, send = await make_pair(tmp_path)
        answers = [await send("tx-1", "once") for _ in range(5)]
        other = await send("tx-2", "once")
        histories = [lobbies[n].history.get_messages(agents[n], group, 10, "")[0] for n in ("alice", "bobby")]
        return answers, other, histories

    answers, other, histories = run(scenario())
    assert len({record.message_hash for record, _, _ in answers}) == 1
    assert [calls for _, _, calls in answers[1:]] == [0] * 4
    assert [[o.status for o in outcomes] for _, outcomes, _ in answers] == [[lobby_pb2.DELIVERED]] * 5
    assert other[0].message_hash != answers[0][0].message_hash
    assert [len(h) for h in histories] == [2, 2]


@pytest.mark.parametrize("transaction_id", ["x" * 65, "tab\there", "é"])
def test_a_bad_transaction_id_is_refused_and_nothing_is_sent(tmp_path, transaction_id):
    async def scenario():
        lobbies, agents, group, send = await make_pair(tmp_path)
        with pytest.raises(InvalidArgument, match="transaction_id is 1 to 64 printable ASCII"):
            await send(transaction_id, "never")
        return lobbies["alice"].history.get_messages(agents["alice"], group, 10, "")[0]

    assert run(scenario()) == []


def test_a_repeat_made_while_the_first_send_is_under_way_waits_for_it_and_sends_nothing(tmp_path):
    async def scenario():
        lobbies, agents, group, send = await make_pair(tmp_path)
        answers = await asyncio.gather(*(send("tx", "once") for _ in range(3)))
        return answers, lobbies["bobby"].history.get_messages(agents["bobby"], group, 10, "")[0]

    answers, history = run(scenario())
    assert len({record.message_hash for record, _, _ in answers}) == 1
    assert [r.entry.payload for r in history] == ["once"]
