"""The seed's group messaging, online path, on three real nodes (nine processes)."""

import pytest

from kizuna.v1 import lobby_pb2
from tests.helpers import run
from tests.integration.network import TIMEOUT, make_clients, make_network, messages

pytestmark = pytest.mark.integration

NAMES = ("alice", "bobby", "charlie")


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    with make_network(tmp_path_factory.mktemp("seed-net")) as network:
        yield network


async def _create_group(clients, name="Weekend trip"):
    created = await clients["alice"].create_group(name, ["bobby", "charlie"])
    group = created.group.group_uuid
    for invitee in ("bobby", "charlie"):
        await clients[invitee].wait_for(lambda e: e.kind == "invite" and e.group_uuid == group, TIMEOUT)
    return created


async def _sentinel(clients, group, receivers):
    """Sends one more message and waits for it, so anything before it has surely arrived."""
    await clients["alice"].send(group, "sentinel")
    for name in receivers:
        await clients[name].wait_for(lambda e: e.kind == "message" and e.record.entry.payload == "sentinel", TIMEOUT)


def test_alice_messages_bobby_and_charlie_and_each_stream_gets_it_once(network):
    async def scenario():
        async with make_clients(network, NAMES) as clients:
            created = await _create_group(clients)
            group = created.group.group_uuid
            assert [lobby_pb2.DeliveryStatus.Name(o.status) for o in created.invites] == ["DELIVERED", "DELIVERED"]
            for invitee in ("bobby", "charlie"):
                invite = next(e for e in clients[invitee].events_so_far() if e.kind == "invite")
                assert invite.signal.invite.inviter == network.agent_key("alice")
                assert invite.signal.invite.group.name == "Weekend trip"

            sent = await clients["alice"].send(group, "Hiking on Saturday?")
            receivers = {network.agent_key("bobby"), network.agent_key("charlie")}
            assert {o.receiver for o in sent.outcomes} == receivers
            assert {o.status for o in sent.outcomes} == {lobby_pb2.DELIVERED}

            for name in ("bobby", "charlie"):
                event = await clients[name].wait_for(lambda e: e.kind == "message", TIMEOUT)
                entry = event.record.entry
                assert entry.author == network.agent_key("alice")
                assert set(entry.receiver) == receivers
                assert entry.group_uuid == group
                assert entry.payload == "Hiking on Saturday?"
                assert entry.time_sent == sent.message.entry.time_sent
                assert not event.warning

            await _sentinel(clients, group, ("bobby", "charlie"))
            for name in ("bobby", "charlie"):
                assert len(messages(clients[name], group, "Hiking on Saturday?")) == 1
                stored = [r for r in await clients[name].all_history(group) if r.entry.payload == "Hiking on Saturday?"]
                assert len(stored) == 1
                assert stored[0].entry.HasField("time_received")
                assert stored[0].entry.time_received >= stored[0].entry.time_sent

    run(scenario())


def test_first_message_shows_the_banner_until_the_group_is_accepted(network):
    async def scenario():
        async with make_clients(network, NAMES) as clients:
            group = (await _create_group(clients, "Banner")).group.group_uuid
            await clients["alice"].send(group, "first")
            first = await clients["bobby"].wait_for(lambda e: e.kind == "message" and e.group_uuid == group, TIMEOUT)
            assert first.first_message
            assert first.actions == ("accept", "delete", "block")

            groups = await clients["bobby"].accept(group)
            assert group in groups.group_uuids
            await clients["alice"].send(group, "second")
            second = await clients["bobby"].wait_for(lambda e: e.kind == "message" and e.group_uuid == group, TIMEOUT)
            assert second.record.entry.payload == "second"
            assert not second.first_message
            assert second.actions == ()

    run(scenario())


def test_blocked_group_gives_no_signal_and_no_history_and_alice_still_sees_delivered(network):
    async def scenario():
        async with make_clients(network, NAMES) as clients:
            group = (await _create_group(clients, "Blocked")).group.group_uuid
            groups = await clients["bobby"].block(group)
            assert group in groups.blocked

            sent = await clients["alice"].send(group, "can anyone hear me")
            assert {o.status for o in sent.outcomes} == {lobby_pb2.DELIVERED}
            await _sentinel(clients, group, ("charlie",))
            assert messages(clients["bobby"], group) == []
            assert await clients["bobby"].all_history(group) == []
            assert len(messages(clients["charlie"], group, "can anyone hear me")) == 1

    run(scenario())


def test_blocked_member_means_the_message_arrives_with_a_warning_naming_them(network):
    async def scenario():
        async with make_clients(network, NAMES) as clients:
            group = (await _create_group(clients, "Warned")).group.group_uuid
            await clients["charlie"].block_agent(network.agent_key("bobby"))
            try:
                await clients["alice"].send(group, "hello both")
                event = await clients["charlie"].wait_for(lambda e: e.kind == "message" and e.group_uuid == group, TIMEOUT)
                assert event.record.entry.payload == "hello both"
                assert list(event.record.blocked_members) == [network.agent_key("bobby")]
                assert "bobby" in event.warning
                plain = await clients["bobby"].wait_for(lambda e: e.kind == "message" and e.group_uuid == group, TIMEOUT)
                assert not plain.warning
            finally:
                await clients["charlie"].unblock_agent(network.agent_key("bobby"))

    run(scenario())


def test_ui_calls_without_a_valid_token_are_unauthenticated(network):
    async def scenario():
        from kizuna.client import Client, ClientError

        import grpc

        async with Client(network.lobby_address("alice"), "not-a-token") as stranger:
            with pytest.raises(ClientError) as refused:
                await stranger.groups()
            assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED

    run(scenario())
