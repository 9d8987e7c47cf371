"""The lobby's side of end-to-end encryption, on the in-memory ports: what goes to other
lobbies and to the DHT carries no text; a message that comes before its key waits for it
and asks its author; a receiver's unusable keys do not stop a send."""

import asyncio
import base64
import uuid

from kizuna.v1 import common_pb2, lobby_pb2
from kizuna_node.common.errors import PermissionDenied
from tests.helpers import run
from tests.unit.lobby_fakes import drain, make_lobbies


def message_signals(signals):
    return [s.message.message for s in signals if s.WhichOneof("signal") == "message"]


async def _wait(condition, what, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"not within {timeout}s: {what}"
        await asyncio.sleep(0.01)


def test_no_call_to_another_lobby_and_no_op_in_the_dht_carries_a_messages_text(tmp_path):
    async def scenario():
        lobbies, agents, _, remote, dht = await make_lobbies(tmp_path, ["alice", "bobby", "charlie"])
        info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "wire", ["bobby", "charlie"])
        await lobbies["bobby"].groups.accept_group(agents["bobby"], info.group_uuid)
        texts = [f"online {uuid.uuid4().hex}", f"offline {uuid.uuid4().hex}", f"reply {uuid.uuid4().hex}"]
        await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, texts[0])
        remote.down.add("lobby-charlie")  # the next goes to charlie's inbox in the group's DHT
        _, outcomes, _ = await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, texts[1])
        assert {o.status for o in outcomes} == {lobby_pb2.DELIVERED, lobby_pb2.STORED_IN_DHT}
        remote.down.clear()
        await lobbies["charlie"].catch_up.sync_inbox(agents["charlie"])
        await lobbies["bobby"].messaging.send_group_message(agents["bobby"], info.group_uuid, texts[2])
        for name in ("alice", "bobby", "charlie"):
            history, _ = lobbies[name].history.get_messages(agents[name], info.group_uuid, 10, "")
            assert sorted(r.entry.payload for r in history) == sorted(texts)  # every text arrived
        wire = [request.SerializeToString() for _, request in remote.requests] + \
               [op.SerializeToString() for op in dht.published]
        assert {method for method, _ in remote.requests} >= {"ReceiveGroupKeys", "ReceiveGroupMessage"}
        assert any(op.entry_type == "message" for op in dht.published)
        for text in texts:
            assert not any(text.encode() in sent for sent in wire), text

    run(scenario())


def test_a_message_whose_key_never_came_is_held_then_shown_once_after_asking_its_author(tmp_path):
    async def scenario():
        lobbies, agents, _, remote, _ = await make_lobbies(tmp_path, ["alice", "bobby"])
        lobbies["bobby"].group_keys.hold_seconds = 0.01
        info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "lost key", ["bobby"])
        remote.refusing_methods["ReceiveGroupKeys"] = ("PERMISSION_DENIED", "the test drops every key share")
        sub = lobbies["bobby"].signals.subscribe(agents["bobby"])
        _, outcomes, _ = await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, "later")
        assert outcomes[0].status == lobby_pb2.DELIVERED  # bobby's lobby holds it
        assert message_signals(drain(sub)) == []
        assert [agent for agent, _ in lobbies["bobby"].store.all_held()] == [agents["bobby"]]
        shown = []
        await _wait(lambda: shown.extend(message_signals(drain(sub))) or shown, "bobby asks alice and decrypts it")
        assert [r.entry.payload for r in shown] == ["later"]
        assert lobbies["bobby"].store.all_held() == []
        assert [method for method, _ in remote.requests].count("RequestGroupKey") == 1
        history, _ = lobbies["bobby"].history.get_messages(agents["bobby"], info.group_uuid, 10, "")
        assert [r.entry.payload for r in history] == ["later"]

    run(scenario())


def _session_of(signed):
    return common_pb2.MessageEntry.FromString(signed.body).encrypted.session_id


def test_a_removed_member_asking_for_a_later_sessions_key_is_refused(tmp_path):
    async def scenario():
        lobbies, agents, _, remote, _ = await make_lobbies(tmp_path, ["alice", "bobby", "charlie"])
        info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "rotating", ["bobby", "charlie"])
        await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, "all of us")
        first = _session_of(_last_message(remote.requests))
        await lobbies["alice"].group_changes.change_group(agents["alice"], info.group_uuid, "remove",
                                                          [base64.b64encode(agents["bobby"]).decode()])
        await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, "two left")
        later = _session_of(_last_message(remote.requests))
        assert later != first

        async def ask(session_id):
            request = lobby_pb2.RequestGroupKeyRequest(to_agent=agents["alice"], group_uuid=info.group_uuid,
                                                       session_id=session_id)
            return await lobbies["bobby"].group_keys._calls.call_remote(
                agents["bobby"], agents["alice"], "RequestGroupKey", request, lobbies["bobby"].group_keys._retry_policy)
        try:
            await ask(later)
        except PermissionDenied as refused:
            assert "not meant for that agent" in refused.message
        else:
            raise AssertionError("a removed member got the key of a session made after its removal")
        response, _ = await ask(first)  # the session he was in stays his to ask for
        assert response.key_share.author == agents["alice"]

    run(scenario())


def _last_message(requests) -> common_pb2.Signed:
    """The message the last ReceiveGroupMessage(s) call carried, its signature put back."""
    remote_call = [r for m, r in requests if m in ("ReceiveGroupMessage", "ReceiveGroupMessages")][-1]
    body = common_pb2.Envelope.FromString(remote_call.envelope.body).body
    message = lobby_pb2.ReceiveGroupMessagesRequest.FromString(body).message
    return message


def test_a_key_request_refused_for_good_is_not_asked_again_and_the_message_stays_held(tmp_path):
    async def scenario():
        lobbies, agents, _, remote, _ = await make_lobbies(tmp_path, ["alice", "bobby"])
        lobbies["bobby"].group_keys.hold_seconds = 0.01
        info, _ = await lobbies["alice"].invites.create_group(agents["alice"], "refusing", ["bobby"])
        remote.refusing_methods["ReceiveGroupKeys"] = ("PERMISSION_DENIED", "the test drops every key share")
        remote.refusing_methods["RequestGroupKey"] = ("PERMISSION_DENIED", "the session was not meant for that agent")
        await lobbies["alice"].messaging.send_group_message(agents["alice"], info.group_uuid, "never for you")
        asks = lambda: [m for m, _ in remote.requests].count("RequestGroupKey")  # noqa: E731
        # the asking is over (nothing left to ask again) after one refused request
        await _wait(lambda: asks() == 1 and not lobbies["bobby"].group_keys._asking, "bobby asks once, then stops")
        assert asks() == 1
        assert len(lobbies["bobby"].store.all_held()) == 1

    run(scenario())
