"""The lobby's workflows on temporary LevelDB stores, with in-memory ports."""

import pytest

from kizuna.v1 import common_pb2, lobby_pb2
from kizuna_node.common import anchors
from kizuna_node.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from kizuna_node.common.hashing import blake2b_256
from kizuna_node.common.retry import RetryPolicy
from kizuna_node.lobby.lobby import Lobby
from kizuna_node.lobby.servicer import Authenticator
from kizuna_node.lobby.store import LobbyStore
from tests.helpers import eventually, run
from tests.unit.lobby_fakes import FAST_POLICY, drain, encrypted_message, make_lobbies


def message_signals(signals):
    return [s.message.message for s in signals if s.WhichOneof("signal") == "message"]


def test_create_group_invites_each_member_and_commits_invite_and_groups(tmp_path):
    async def scenario():
        lobbies, agents, *_ = await make_lobbies(tmp_path, ["alice", "bobby", "charlie"])
        bob_signals = lobbies["bobby"].signals.subscribe(agents["bobby"])
        info, outcomes = await lobbies["alice"].invites.create_group(agents["alice"], "trip", ["bobby", "charlie"])
        assert [o.status for o in outcomes] == [lobby_pb2.DELIVERED, lobby_pb2.DELIVERED]
        groups, details = lobbies["alice"].groups.get_groups(agents["alice"])
        assert list(groups.group_uuids) == [info.group_uuid]
        chain = lobbies["alice"].history.get_source_chain(agents["alice"], 0, 100)
        types = [common_pb2.Action.FromString(s.body).entry_type for s in chain]
        assert types[-2:] == ["invite", "groups"]
        got = drain(bob_signals)
        assert got[0].invite.group.group_uuid == info.group_uuid
        bob_groups, bob_details = lobbies["bobby"].groups.get_groups(agents["bobby"])
        assert list(bob_groups.group_uuids) == []  # an invite is not an acceptance
        assert bob_details[0].state == lobby_pb2.INVITED

    run(scenario())


def test_clone_failure_commits_nothing_and_sends_no_invite(tmp_path):
    async def scenario():
        lobbies, agents, conductor, remote, _ = await make_lobbies(tmp_path, ["alice", "bobby"])
        before = len(lobbies["alice"].history.get_source_chain(agents["alice"], 0, 100))
        calls_before = sum(remote.calls.values())
        conductor.refuse_clone = "the node's DHT refused the space"
        with pytest.raises(FailedPrecondition, match="refused"):
            await lobbies["alice"].invites.create_group(agents["alice"], "trip", ["bobby"])
        assert len(lobbies["alice"].history.get_source_chain(agents["alice"], 0, 100)) == before
        assert sum(remote.calls.values()) == calls_before
        assert lobbies["bobby"].groups.get_groups(agents["bobby"])[1] == []

    run(scenario())


async def _group(lobbies, agents):
    info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "trip", ["bobby", "charlie"])
    return info.group_uuid


def test_message_reaches_each_receiver_once_with_time_received(tmp_path):
    async def scenario():
        lobbies, agents, *_ = await make_lobbies(tmp_path, ["alice", "bobby", "charlie"])
        group = await _group(lobbies, agents)
        subs = {n: lobbies[n].signals.subscribe(agents[n]) for n in ("bobby", "charlie")}
        record, outcomes, _ = await lobbies["alice"].messaging.send_group_message(agents["alice"], group, "hello")
        assert {o.status for o in outcomes} == {lobby_pb2.DELIVERED}
        for name, sub in subs.items():
            messages = [s.message.message for s in drain(sub) if s.WhichOneof("signal") == "message"]
            assert len(messages) == 1
            assert messages[0].entry.payload == "hello"
            assert messages[0].entry.author == agents["alice"]
            stored, _ = lobbies[name].history.get_messages(agents[name], group, 10, "")
            assert stored[0].entry.HasField("time_received")

    run(scenario())


def test_duplicate_delivery_is_ignored(tmp_path):
    async def scenario():
        lobbies, agents, conductor, *_ = await make_lobbies(tmp_path, ["alice", "bobby"])
        info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "pair", ["bobby"])
        signed = await encrypted_message(conductor, agents["alice"], [agents["bobby"]], info.group_uuid, "once")
        sub = lobbies["bobby"].signals.subscribe(agents["bobby"])
        await lobbies["bobby"].messaging.receive_group_message(agents["bobby"], signed)
        await lobbies["bobby"].messaging.receive_group_message(agents["bobby"], signed)
        assert len(message_signals(drain(sub))) == 1
        assert len(lobbies["bobby"].history.get_messages(agents["bobby"], info.group_uuid, 10, "")[0]) == 1

    run(scenario())


def test_blocked_group_gets_nothing_but_sender_sees_delivered(tmp_path):
    async def scenario():
        lobbies, agents, *_ = await make_lobbies(tmp_path, ["alice", "bobby", "charlie"])
        group = await _group(lobbies, agents)
        await lobbies["bobby"].groups.block_group(agents["bobby"], group)
        sub = lobbies["bobby"].signals.subscribe(agents["bobby"])
        _, outcomes, _ = await lobbies["alice"].messaging.send_group_message(agents["alice"], group, "anyone?")
        assert {o.status for o in outcomes} == {lobby_pb2.DELIVERED}
        assert message_signals(drain(sub)) == []
        assert lobbies["bobby"].history.get_messages(agents["bobby"], group, 10, "")[0] == []

    run(scenario())


def test_blocked_member_gives_warning_naming_them(tmp_path):
    async def scenario():
        lobbies, agents, *_ = await make_lobbies(tmp_path, ["alice", "bobby", "charlie"])
        group = await _group(lobbies, agents)
        await lobbies["charlie"].directory.agent_info(agents["bobby"])
        await lobbies["charlie"].groups.set_agent_blocked(agents["charlie"], agents["bobby"], True)
        sub = lobbies["charlie"].signals.subscribe(agents["charlie"])
        await lobbies["alice"].messaging.send_group_message(agents["alice"], group, "hi all")
        record = message_signals(drain(sub))[0]
        assert list(record.blocked_members) == [agents["bobby"]]
        assert "bobby" in record.warning

    run(scenario())


def test_blocking_or_unblocking_oneself_is_refused_naming_what_was_asked(tmp_path):
    async def scenario():
        lobbies, agents, *_ = await make_lobbies(tmp_path, ["alice"])
        for blocked, verb in ((True, "block"), (False, "unblock")):
            with pytest.raises(InvalidArgument) as refused:
                await lobbies["alice"].groups.set_agent_blocked(agents["alice"], agents["alice"], blocked)
            assert refused.value.message == f"an agent cannot {verb} itself"

    run(scenario())


def test_forged_message_is_refused_and_not_stored(tmp_path):
    async def scenario():
        lobbies, agents, conductor, *_ = await make_lobbies(tmp_path, ["alice", "bobby"])
        info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "pair", ["bobby"])
        forged = await encrypted_message(conductor, agents["alice"], [agents["bobby"]], info.group_uuid, "x",
                                         sign_as=agents["bobby"])
        with pytest.raises(PermissionDenied):
            await lobbies["bobby"].messaging.receive_group_message(agents["bobby"], forged)
        assert lobbies["bobby"].history.get_messages(agents["bobby"], info.group_uuid, 10, "")[0] == []

    run(scenario())


def test_unreachable_receiver_gets_it_through_the_group_dht_sealed_and_catches_up_once(tmp_path):
    async def scenario():
        lobbies, agents, _, remote, dht = await make_lobbies(tmp_path, ["alice", "bobby", "charlie"])
        group = await _group(lobbies, agents)
        remote.down.add("lobby-charlie")
        _, outcomes, _ = await lobbies["alice"].messaging.send_group_message(agents["alice"], group, "while you were out")
        by_receiver = {o.receiver: o for o in outcomes}
        assert by_receiver[agents["bobby"]].status == lobby_pb2.DELIVERED
        stored = by_receiver[agents["charlie"]]
        assert stored.status == lobby_pb2.STORED_IN_DHT
        # the group key, sent first, found charlie down: the message went straight to the DHT
        assert stored.attempts == 0 and stored.address in dht.entries
        assert b"while you were out" not in dht.entries[stored.address].SerializeToString()

        remote.down.clear()
        sub = lobbies["charlie"].signals.subscribe(agents["charlie"])
        assert await lobbies["charlie"].catch_up.sync_inbox(agents["charlie"]) == (0, 1)
        assert [r.entry.payload for r in message_signals(drain(sub))] == ["while you were out"]
        assert await lobbies["charlie"].catch_up.sync_inbox(agents["charlie"]) == (0, 0)
        assert dht.links[anchors.inbox_anchor(agents["charlie"])] == []  # the link is retired

    run(scenario())


def test_a_receiver_that_just_failed_goes_straight_to_the_dht(tmp_path):
    async def scenario():
        lobbies, agents, _, remote, dht = await make_lobbies(tmp_path, ["alice", "bobby"])
        info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "pair", ["bobby"])
        remote.down.add("lobby-bobby")
        await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, "one")
        calls = remote.calls["lobby-bobby"]
        _, outcomes, _ = await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, "two")
        assert outcomes[0].status == lobby_pb2.STORED_IN_DHT
        assert remote.calls["lobby-bobby"] == calls  # no call_remote: the liveness memory decided
        remote.down.clear()
        lobbies["alice"].liveness.succeeded(agents["bobby"])
        _, outcomes, _ = await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, "three")
        assert outcomes[0].status == lobby_pb2.DELIVERED

    run(scenario())


def test_when_the_dht_cannot_take_it_either_it_is_queued_and_the_outbox_delivers_later(tmp_path):
    async def scenario():
        lobbies, agents, _, remote, dht = await make_lobbies(tmp_path, ["alice", "bobby"])
        info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "pair", ["bobby"])
        remote.down.add("lobby-bobby")
        dht.down = True
        _, outcomes, _ = await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, "queued")
        assert outcomes[0].status == lobby_pb2.QUEUED
        outbox = lobbies["alice"].outbox
        assert [item.kind for item in outbox.pending()] == ["group_key", "message"]  # the key goes first
        assert await outbox.work_once(lobbies["alice"].delivery.deliver_now, lobbies["alice"].delivery.on_outbox_outcome) == 0
        assert len(outbox) == 2

        remote.down.clear()
        dht.down = False
        lobbies["alice"].liveness.succeeded(agents["bobby"])
        for item in outbox.pending():  # due now rather than after its backoff
            item.next_attempt = 0
            outbox.enqueue(item)
        alice_sub = lobbies["alice"].signals.subscribe(agents["alice"])
        assert await outbox.work_once(lobbies["alice"].delivery.deliver_now, lobbies["alice"].delivery.on_outbox_outcome) == 2
        assert len(outbox) == 0
        deliveries = [s.delivery for s in drain(alice_sub) if s.WhichOneof("signal") == "delivery"]
        assert [d.outcome.status for d in deliveries] == [lobby_pb2.DELIVERED]
        assert [r.entry.payload for r in lobbies["bobby"].history.get_messages(agents["bobby"], info.group_uuid, 10, "")[0]] == ["queued"]

    run(scenario())


def test_a_refusal_is_not_retried_and_does_not_fall_back(tmp_path):
    async def scenario():
        lobbies, agents, _, remote, dht = await make_lobbies(tmp_path, ["alice", "bobby"])
        info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "pair", ["bobby"])
        remote.refusing["lobby-bobby"] = ("PERMISSION_DENIED", "the sender is not a member")
        calls, published = remote.calls["lobby-bobby"], len(dht.published)
        _, outcomes, _ = await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, "no")
        assert outcomes[0].status == lobby_pb2.FAILED
        assert "PERMISSION_DENIED" in outcomes[0].detail and "not a member" in outcomes[0].detail
        assert remote.calls["lobby-bobby"] == calls + 2  # the group key, then the message: each refused once
        assert len(dht.published) == published and len(lobbies["alice"].outbox) == 0

    run(scenario())


def test_history_pages_newest_first_without_gaps(tmp_path):
    async def scenario():
        lobbies, agents, *_ = await make_lobbies(tmp_path, ["alice", "bobby"])
        info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "pair", ["bobby"])
        for i in range(7):
            await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, f"m{i}")
        seen, token = [], ""
        while True:
            page, token = lobbies["alice"].history.get_messages(agents["alice"], info.group_uuid, 3, token)
            seen += [r.entry.payload for r in page]
            if not token:
                break
        assert seen == [f"m{i}" for i in reversed(range(7))]
        with pytest.raises(InvalidArgument):
            lobbies["alice"].history.get_messages(agents["alice"], info.group_uuid, 3, "not-a-token")

    run(scenario())


def test_accept_delete_and_unknown_group(tmp_path):
    async def scenario():
        lobbies, agents, *_ = await make_lobbies(tmp_path, ["alice", "bobby"])
        info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "pair", ["bobby"])
        groups = await lobbies["bobby"].groups.accept_group(agents["bobby"], info.group_uuid)
        assert list(groups.group_uuids) == [info.group_uuid]
        await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, "one")
        groups = await lobbies["bobby"].groups.delete_group(agents["bobby"], info.group_uuid)
        assert list(groups.group_uuids) == []
        assert lobbies["bobby"].groups.get_groups(agents["bobby"])[1] == []
        with pytest.raises(NotFound):
            await lobbies["bobby"].groups.accept_group(agents["bobby"], "no-such-group")
        # a later message brings the group back, as a first message again
        await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, "two")
        details = lobbies["bobby"].groups.get_groups(agents["bobby"])[1]
        assert [d.state for d in details] == [lobby_pb2.INVITED]
        assert [r.entry.payload for r in lobbies["bobby"].history.get_messages(agents["bobby"], info.group_uuid, 10, "")[0]] == ["two"]

    run(scenario())


def test_source_chain_is_hash_linked_and_signed(tmp_path):
    async def scenario():
        lobbies, agents, *_ = await make_lobbies(tmp_path, ["alice", "bobby"])
        await lobbies["alice"].invites.create_group(agents["alice"], "pair", ["bobby"])
        await lobbies["alice"].groups.set_agent_blocked(agents["alice"], agents["bobby"], True)
        chain = lobbies["alice"].history.get_source_chain(agents["alice"], 0, 100)
        prev = b""
        for seq, signed in enumerate(chain):
            action = common_pb2.Action.FromString(signed.body)
            assert action.seq == seq and action.prev_action == prev
            assert action.entry_hash == blake2b_256(action.entry)
            prev = blake2b_256(signed.body)
        assert len(chain) == 3

    run(scenario())


def _receipts_heard(subscription):
    return [r for s in drain(subscription) if s.WhichOneof("signal") == "receipt" for r in s.receipt.receipts]


def test_a_receipt_owed_when_the_lobby_stops_goes_out_after_its_restart_and_only_once(tmp_path):
    async def scenario():
        lobbies, agents, conductor, remote, dht = await make_lobbies(tmp_path, ["alice", "bobby"])
        info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "trip", ["bobby"])
        await lobbies["bobby"].groups.accept_group(agents["bobby"], info.group_uuid)
        alice_hears = lobbies["alice"].signals.subscribe(agents["alice"])
        lobbies["bobby"].receipts.batch_seconds = 3600  # it would go out long after the "crash"
        record, _, _ = await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, "hello")
        await lobbies["bobby"].receipts.mark_read(agents["bobby"], info.group_uuid, [record.message_hash])
        await lobbies["bobby"].close()  # stops before the batch went out
        lobbies["bobby"].store.close()
        assert _receipts_heard(alice_hears) == []

        async def restart():
            store = LobbyStore(str(tmp_path / "bobby"))
            lobby = Lobby(store, conductor.nodes["bobby"], dht, remote, "lobby-bobby", "dht", FAST_POLICY,
                          receipt_batch_seconds=0.01)
            remote.lobbies["lobby-bobby"] = lobby
            await lobby.hosting.host_agents()
            return lobby

        bobby = await restart()
        assert bobby.receipts.resume_receipts() == 2
        heard = []
        await eventually(lambda: heard.extend(_receipts_heard(alice_hears)) or len(heard) == 2,
                         "alice hears both receipts", 5)
        await eventually(lambda: not list(bobby.store.owed_receipts()), "the receipts are owed no more", 5)
        assert sorted((r.message_hash, bool(r.delivered_at), bool(r.read_at)) for r in heard) == [
            (record.message_hash, True, False), (record.message_hash, True, True)]
        await bobby.close()
        bobby.store.close()
        bobby = await restart()
        assert bobby.receipts.resume_receipts() == 0  # sent: owed no more
        await bobby.close()

    run(scenario())


def test_receipts_for_an_unreachable_author_stay_owed_and_go_out_later_with_nothing_put_in_the_dht(tmp_path):
    async def scenario():
        lobbies, agents, _, remote, dht = await make_lobbies(tmp_path, ["alice", "bobby"])
        info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "trip", ["bobby"])
        await lobbies["bobby"].groups.accept_group(agents["bobby"], info.group_uuid)
        alice_hears = lobbies["alice"].signals.subscribe(agents["alice"])
        bobby = lobbies["bobby"]
        bobby.receipts.batch_seconds = 0.01
        bobby.receipts.retry = RetryPolicy(backoff_initial=0.05, backoff_max=0.05)
        remote.down.add("lobby-alice")  # bobby's lobby cannot reach alice's; alice's reaches his
        published = len(dht.published)
        record, outcomes, _ = await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid,
                                                                                "hello")
        assert [o.status for o in outcomes] == [lobby_pb2.DELIVERED]
        await eventually(lambda: remote.calls["lobby-alice"] >= 3, "bobby's lobby tries the receipt again and again", 5)
        assert len(list(bobby.store.owed_receipts())) == 1  # still owed
        assert len(dht.published) == published  # nothing put in alice's inbox
        remote.down.discard("lobby-alice")
        heard = []
        await eventually(lambda: heard.extend(_receipts_heard(alice_hears)) or heard, "alice hears the receipt", 5)
        assert [(r.message_hash, r.receiver) for r in heard] == [(record.message_hash, agents["bobby"])]
        await eventually(lambda: not list(bobby.store.owed_receipts()), "the receipt is owed no more", 5)
        assert len(dht.published) == published
        await bobby.close()
        await lobbies["alice"].close()

    run(scenario())


def test_mark_read_counts_a_message_named_twice_once_and_owes_one_read_receipt(tmp_path):
    async def scenario():
        lobbies, agents, *_ = await make_lobbies(tmp_path, ["alice", "bobby"])
        info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "trip", ["bobby"])
        await lobbies["bobby"].groups.accept_group(agents["bobby"], info.group_uuid)
        lobbies["bobby"].receipts.batch_seconds = 3600  # still owed when we look
        record, _, _ = await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, "hello")
        h = record.message_hash
        assert await lobbies["bobby"].receipts.mark_read(agents["bobby"], info.group_uuid, [h, h]) == 1
        assert await lobbies["bobby"].receipts.mark_read(agents["bobby"], info.group_uuid, [h]) == 0
        owed = [due.receipt for _, _, due in lobbies["bobby"].store.owed_receipts()]
        assert sorted((r.message_hash, bool(r.read_at)) for r in owed) == [(h, False), (h, True)]
        await lobbies["bobby"].close()

    run(scenario())


def test_a_batch_of_receipts_that_cannot_be_signed_goes_out_on_a_later_try(tmp_path):
    async def scenario():
        lobbies, agents, conductor, *_ = await make_lobbies(tmp_path, ["alice", "bobby"])
        info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "trip", ["bobby"])
        await lobbies["bobby"].groups.accept_group(agents["bobby"], info.group_uuid)
        alice_hears = lobbies["alice"].signals.subscribe(agents["alice"])
        bobby = lobbies["bobby"]
        bobby.receipts.batch_seconds = 0.01
        bobby.receipts.retry = RetryPolicy(backoff_initial=0.05, backoff_max=0.05)
        bobby_conductor = conductor.nodes["bobby"]
        bobby_conductor.fail_next_signs(2)  # bobby signs nothing but the receipt batch (and its envelope)
        record, _, _ = await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, "hello")
        heard = []
        await eventually(lambda: heard.extend(_receipts_heard(alice_hears)) or heard, "alice hears the receipt", 5)
        assert bobby_conductor.failing_signs == 0
        assert [(r.message_hash, r.receiver) for r in heard] == [(record.message_hash, agents["bobby"])]
        await eventually(lambda: not list(bobby.store.owed_receipts()), "the receipt is owed no more", 5)
        await bobby.close()

    run(scenario())


def test_a_revoked_token_sending_to_no_group_is_unauthenticated_and_forgotten(tmp_path):
    async def scenario():
        lobbies, agents, conductor, *_ = await make_lobbies(tmp_path, ["alice", "bobby"])
        info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "trip", ["bobby"])
        alice = lobbies["alice"]
        auth = Authenticator(conductor.nodes["alice"], alice.hosting)

        def send(group_uuid, payload):
            return lambda agent, app_token: alice.messaging.send_group_message(agent, group_uuid, payload,
                                                                               app_token=app_token)

        await auth.send_as("token-alice", send(info.group_uuid, "while the token is good"))
        await auth.send_as("token-alice", send(info.group_uuid, "the token checked as it signs"))
        assert auth.knows("token-alice")
        del conductor.tokens["token-alice"]  # revoked
        with pytest.raises(Unauthenticated):  # not "no such group"
            await auth.send_as("token-alice", send("no-such-group", "after"))
        assert not auth.knows("token-alice")
        with pytest.raises(Unauthenticated):
            await auth.send_as("token-alice", send(info.group_uuid, "after"))
        await alice.close()

    run(scenario())
