"""The banner rule: the first message (the lobby flags it) of a group not among the accepted
group_uuids shows accept / delete / block, once, decided against a Groups entry that is
never stale."""

import grpc
import pytest

from kizuna.client import BANNER_ACTIONS, Client, ClientError, is_first_message
from kizuna.v1 import common_pb2, lobby_pb2
from tests.helpers import run


# ------------------------------------------------------------------ the decision


def test_group_not_in_groups_entry_is_first_message():
    assert is_first_message("g1", common_pb2.Groups(group_uuids=["g2"]))


def test_accepted_group_is_not_first_message():
    assert not is_first_message("g1", common_pb2.Groups(group_uuids=["g0", "g1"]))


def test_blocked_only_group_is_first_message():
    assert is_first_message("g1", common_pb2.Groups(blocked=["g1"]))


def test_a_later_message_of_a_group_not_accepted_is_not_first():
    assert not is_first_message("g1", common_pb2.Groups(group_uuids=["g2"]), first_in_history=False)


def test_no_groups_entry_yet_means_first_message():
    assert is_first_message("g1", None)
    assert is_first_message("g1", common_pb2.Groups())


# ------------------------------------------------------------------ the client's refresh logic


class StubLobby:
    """Stands in for the Lobby stub: a Groups entry the test changes, and counts of calls."""

    def __init__(self, accepted=(), blocked=()):
        self.groups = common_pb2.Groups(group_uuids=list(accepted), blocked=list(blocked))
        self.get_groups_calls = 0
        self.metadata_seen = []

    async def GetGroups(self, request, metadata=None, timeout=None):
        self.get_groups_calls += 1
        self.metadata_seen.append(metadata)
        answer = lobby_pb2.GetGroupsResponse()
        answer.groups.CopyFrom(self.groups)
        return answer

    async def AcceptGroup(self, request, metadata=None, timeout=None):
        self.groups.group_uuids.append(request.group_uuid)
        return lobby_pb2.GroupResponse(groups=self.groups)

    async def DeleteGroup(self, request, metadata=None, timeout=None):
        if request.group_uuid in self.groups.group_uuids:
            self.groups.group_uuids.remove(request.group_uuid)
        return lobby_pb2.GroupResponse(groups=self.groups)

    async def BlockGroup(self, request, metadata=None, timeout=None):
        if request.group_uuid in self.groups.group_uuids:
            self.groups.group_uuids.remove(request.group_uuid)
        self.groups.blocked.append(request.group_uuid)
        return lobby_pb2.GroupResponse(groups=self.groups)


def make_client(stub: StubLobby) -> Client:
    return Client("127.0.0.1:1", "token-abc", stub=stub)  # no channel: every call goes to the stub


def message_signal(group_uuid, payload="hi", warning="", first=True):
    record = lobby_pb2.MessageRecord(
        entry=common_pb2.MessageEntry(author=b"a" * 32, group_uuid=group_uuid, payload=payload, time_sent=1),
        warning=warning,
    )
    return lobby_pb2.Signal(message=lobby_pb2.MessageSignal(message=record, first_message=first))


def test_message_from_unaccepted_group_gets_banner():
    async def scenario():
        client = make_client(StubLobby(accepted=["other"]))
        await client.groups()
        return await client.to_event(message_signal("g1"))

    event = run(scenario())
    assert event.kind == "message" and event.group_uuid == "g1"
    assert event.first_message is True
    assert event.actions == BANNER_ACTIONS == ("accept", "delete", "block")
    assert event.record.entry.payload == "hi"


def test_only_the_first_message_of_a_group_not_accepted_gets_the_banner():
    async def scenario():
        client = make_client(StubLobby())
        return [await client.to_event(message_signal("g1", text, first=text == "one")) for text in ("one", "two")]

    first, second = run(scenario())
    assert first.first_message is True and first.actions == BANNER_ACTIONS
    assert second.first_message is False and second.actions == ()


def test_message_from_accepted_group_has_no_banner_and_no_refetch():
    async def scenario():
        stub = StubLobby(accepted=["g1"])
        client = make_client(stub)
        await client.groups()
        event = await client.to_event(message_signal("g1"))
        return event, stub.get_groups_calls

    event, calls = run(scenario())
    assert event.first_message is False and event.actions == ()
    assert calls == 1  # the cached accepted set answered


def test_stale_cache_is_refetched_before_showing_the_banner():
    async def scenario():
        stub = StubLobby()
        client = make_client(stub)
        await client.groups()  # cached: nothing accepted
        stub.groups.group_uuids.append("g1")  # accepted elsewhere (another UI of the agent)
        event = await client.to_event(message_signal("g1"))
        return event, stub.get_groups_calls

    event, calls = run(scenario())
    assert event.first_message is False
    assert calls == 2


def test_banner_without_cache_fetches_groups():
    async def scenario():
        stub = StubLobby()
        client = make_client(stub)
        event = await client.to_event(message_signal("g1"))
        return event, stub.get_groups_calls

    event, calls = run(scenario())
    assert event.first_message is True
    assert calls == 1


def test_accept_refreshes_cache_so_next_message_has_no_banner():
    async def scenario():
        stub = StubLobby()
        client = make_client(stub)
        first = await client.to_event(message_signal("g1"))
        await client.accept("g1")
        calls_before = stub.get_groups_calls
        second = await client.to_event(message_signal("g1"))
        return first, second, client.cached_groups, stub.get_groups_calls - calls_before

    first, second, cached, refetches = run(scenario())
    assert first.first_message is True
    assert second.first_message is False
    assert "g1" in cached.group_uuids
    assert refetches == 0


def test_delete_after_accept_shows_banner_again():
    async def scenario():
        stub = StubLobby(accepted=["g1"])
        client = make_client(stub)
        await client.groups()
        await client.delete("g1")
        return await client.to_event(message_signal("g1"))

    assert run(scenario()).first_message is True


def test_block_updates_cached_blocked_list():
    async def scenario():
        client = make_client(StubLobby(accepted=["g1"]))
        await client.groups()
        await client.block("g1")
        return client.cached_groups

    cached = run(scenario())
    assert "g1" in cached.blocked and "g1" not in cached.group_uuids


def test_warning_is_carried_to_the_event():
    async def scenario():
        client = make_client(StubLobby(accepted=["g1"]))
        return await client.to_event(message_signal("g1", warning="blocked member: charlie"))

    assert run(scenario()).warning == "blocked member: charlie"


def test_invite_signal_becomes_invite_event_without_banner():
    async def scenario():
        client = make_client(StubLobby())
        signal = lobby_pb2.Signal(
            invite=lobby_pb2.InviteSignal(group=lobby_pb2.GroupInfo(group_uuid="g9", name="friends"), inviter=b"b" * 32)
        )
        return await client.to_event(signal), client.group_info("g9")

    event, info = run(scenario())
    assert event.kind == "invite" and event.group_uuid == "g9"
    assert event.first_message is False and event.actions == ()
    assert info.name == "friends"


def test_a_receipt_signal_of_a_batch_becomes_one_event_per_receipt_in_order():
    receipts = [common_pb2.Receipt(message_hash=bytes([i]) * 32, group_uuid=f"g{i}", receiver=b"r" * 32,
                                   delivered_at=1000 + i) for i in range(3)]
    signal = lobby_pb2.Signal(receipt=lobby_pb2.ReceiptSignal(receipts=receipts))

    async def scenario():
        client = make_client(StubLobby())
        return await client.to_events(signal), await client.to_event(signal)

    events, first = run(scenario())
    assert [(e.kind, e.group_uuid, e.receipt) for e in events] == [("receipt", f"g{i}", receipts[i]) for i in range(3)]
    assert all(list(e.signal.receipt.receipts) == [e.receipt] for e in events)
    assert first.receipt == receipts[0]
    assert run(make_client(StubLobby()).to_events(lobby_pb2.Signal(receipt=lobby_pb2.ReceiptSignal()))) == []


def test_every_call_carries_the_bearer_token():
    async def scenario():
        stub = StubLobby()
        await make_client(stub).groups()
        return stub.metadata_seen

    assert run(scenario()) == [(("authorization", "Bearer token-abc"),)]


def test_events_flow_through_queue_and_wait_for():
    async def scenario():
        client = make_client(StubLobby(accepted=["g1"]))
        for signal in (message_signal("g1", "one"), message_signal("g2", "two")):
            await client.feed_signal(signal)
        found = await client.wait_for(lambda e: e.first_message, timeout=1)
        with pytest.raises(TimeoutError):
            await client.next_event(timeout=0.05)
        return found, client.events_so_far()

    found, seen = run(scenario())
    assert found.record.entry.payload == "two"
    assert [e.record.entry.payload for e in seen] == ["one", "two"]


def test_client_error_reads_as_status_and_details():
    err = ClientError(grpc.StatusCode.NOT_FOUND, "no group g1")
    assert str(err) == "NOT_FOUND: no group g1"
    assert err.code is grpc.StatusCode.NOT_FOUND


def test_a_given_stub_is_kept_after_close_and_no_channel_is_opened():
    async def scenario():
        stub = StubLobby()
        async with make_client(stub) as client:
            await client.groups()
        await client.groups()
        return stub.get_groups_calls

    assert run(scenario()) == 2
