"""call_remote against a real gRPC server: the real Lobby with the real RemoteLobbies over
a ChannelPool, sending to a receiver lobby (a grpc.aio server on port 0) that refuses.
A non-transient refusal is not retried and does not fall back to the DHT or the outbox;
a transient one is retried and falls back."""

import base64

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kizuna.v1 import common_pb2, conductor_pb2, group_dht_pb2, lobby_pb2, lobby_pb2_grpc
from kizuna_node.common import anchors, tls
from kizuna_node.common.channels import ChannelPool
from kizuna_node.common.retry import RetryPolicy
from kizuna_node.lobby.directory import Directory
from kizuna_node.lobby.lobby import Lobby
from kizuna_node.lobby.ports import RemoteLobbies
from kizuna_node.lobby.store import LobbyStore
from tests.helpers import async_test
from tests.unit.lobby_fakes import FakeConductor, FakeDht, NodeConductor

# Room for every attempt: a test that sees one call saw no retry, not a spent budget.
POLICY = RetryPolicy(attempts=3, backoff_initial=0.01, backoff_max=0.02, attempt_timeout=2.0, budget=10.0)


class RefusingLobby(lobby_pb2_grpc.LobbyPeerServicer):
    """A receiver's lobby that takes invites and group keys, and answers every
    ReceiveGroupMessage with `code`."""

    def __init__(self, code: grpc.StatusCode):
        self.code = code
        self.message_calls = 0
        self.invite_calls = 0

    async def ReceiveInvite(self, request, context):
        self.invite_calls += 1
        return lobby_pb2.ReceiveInviteResponse()

    async def ReceiveGroupKeys(self, request, context):
        body = lobby_pb2.ReceiveGroupKeysRequest.FromString(common_pb2.Envelope.FromString(request.envelope.body).body)
        return lobby_pb2.ReceiveGroupKeysResponse(results=[lobby_pb2.ReceiverResult(agent=a) for a in body.to_agents])

    async def ReceiveGroupMessage(self, request, context):
        self.message_calls += 1
        await context.abort(self.code, f"refused by the test receiver ({self.code.name})")


class Setup:
    def __init__(self, tmp_path, code):
        self.tmp_path = tmp_path
        self.receiver_lobby = RefusingLobby(code)

    async def __aenter__(self):
        self.server = grpc.aio.server()
        lobby_pb2_grpc.add_LobbyPeerServicer_to_server(self.receiver_lobby, self.server)
        receiver_tls = tls.load_or_create(self.tmp_path / "receiver-tls")
        port = self.server.add_secure_port("127.0.0.1:0", receiver_tls.server_credentials())
        await self.server.start()
        self.receiver_address = f"127.0.0.1:{port}"

        self.conductor, self.dht, self.pool = FakeConductor(), FakeDht(), ChannelPool()
        self.alice = self.conductor.make_agent("alice")
        self.bobby = self.conductor.make_agent("bobby")
        self.store = LobbyStore(str(self.tmp_path / "alice"))
        self.lobby = Lobby(self.store, NodeConductor(self.conductor, self.alice), self.dht, RemoteLobbies(self.pool),
                           "127.0.0.1:1", "dht", POLICY)
        await self.lobby.hosting.host_agents()
        # bobby's agent info in the (fake) Lobby space names the refusing server as his lobby.
        bobby = conductor_pb2.Agent()
        bobby.CopyFrom(self.conductor.agents[self.bobby])
        bobby.encryption_key = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        await Directory(self.dht, self.conductor.sign).publish_agent_info(
            bobby, "bobby", self.receiver_address, "dht", receiver_tls.certificate_der)
        group, invites = await self.lobby.invites.create_group(
            self.alice, "Refused", [base64.b64encode(self.bobby).decode()])
        assert [lobby_pb2.DeliveryStatus.Name(o.status) for o in invites] == ["DELIVERED"]
        assert self.receiver_lobby.invite_calls == 1
        self.group = group.group_uuid
        return self

    def dht_contents(self):
        return (sorted(self.dht.entries), {base: len(links) for base, links in self.dht.links.items() if links})

    async def __aexit__(self, *exc):
        await self.pool.close()
        await self.server.stop(None)
        self.store.close()


@pytest.mark.parametrize("code", [
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
], ids=lambda c: c.name)
@async_test
async def test_a_non_transient_refusal_is_not_retried_and_does_not_fall_back(tmp_path, code):
    async with Setup(tmp_path, code) as s:
        before = s.dht_contents()
        record, outcomes, _ = await s.lobby.messaging.send_group_message(s.alice, s.group, "are you there?")

        assert len(outcomes) == 1
        outcome = outcomes[0]
        assert outcome.receiver == s.bobby
        assert lobby_pb2.DeliveryStatus.Name(outcome.status) == "FAILED"
        assert code.name in outcome.detail
        assert "refused by the test receiver" in outcome.detail
        assert outcome.address == b""
        assert s.receiver_lobby.message_calls == 1
        assert outcome.attempts == 1
        assert s.dht_contents() == before  # nothing sealed, nothing linked
        assert len(s.lobby.outbox) == 0 and s.lobby.outbox.pending() == []
        assert record.entry.payload == "are you there?"


@async_test
async def test_a_transient_refusal_is_retried_then_stored_in_the_receivers_dht_inbox(tmp_path):
    async with Setup(tmp_path, grpc.StatusCode.UNAVAILABLE) as s:
        before_entries, _ = s.dht_contents()
        _, [outcome], _ = await s.lobby.messaging.send_group_message(s.alice, s.group, "are you there?")

        assert lobby_pb2.DeliveryStatus.Name(outcome.status) == "STORED_IN_DHT", outcome
        assert s.receiver_lobby.message_calls == POLICY.attempts
        assert outcome.attempts == POLICY.attempts
        new = [s.dht.entries[a] for a in s.dht.entries if a not in before_entries]
        assert len(new) == 1 and outcome.address in s.dht.entries
        op = group_dht_pb2.Op.FromString(s.dht.entries[outcome.address].body)
        assert op.entry_type == "message"  # not sealed: its text is the group's ciphertext already
        assert b"are you there?" not in op.entry
        links = s.dht.links[anchors.inbox_anchor(s.bobby)]
        assert [group_dht_pb2.Op.FromString(l.create.body).target for l in links] == [outcome.address]
        assert len(s.lobby.outbox) == 0
