"""Hostile call_remote requests sent straight to bobby's lobby on three real nodes, and app
tokens revoked through the conductor.

The attacker either owns a key of its own (an outsider) or has compromised alice's node: it
can ask alice's conductor to sign anything (Sign with alice's node secret). Each refusal is
checked three ways: the status and its message, bobby's stored state (GetMessages of the
group and GetGroups are unchanged), and bobby's signal stream (after the refusal alice sends
a legit message, and that is the only new event bobby's UI sees).
"""

import os
import re
import uuid

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kizuna import cli
from kizuna.client import Client, ClientError
from kizuna.v1 import common_pb2, conductor_pb2, conductor_pb2_grpc, lobby_pb2, lobby_pb2_grpc
from kizuna_node.common import dna
from kizuna_node.common.hashing import blake2b_256, now_micros
from tests.helpers import run
from tests.integration.network import create_group, make_clients, make_network, peer_channel, wait_until

pytestmark = pytest.mark.integration

NAMES = ("alice", "bobby", "charlie")
HOUR_MICROS = 3600 * 1_000_000
RPC_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    with make_network(tmp_path_factory.mktemp("refusals-net")) as network:
        yield network


@pytest.fixture(scope="module")
def group(network):
    """A group alice made with bobby and charlie, accepted by both."""

    async def make():
        async with make_clients(network, NAMES) as clients:
            created = await create_group(clients, "Refusals", ["bobby", "charlie"])
            return created.group.group_uuid

    return run(make())


# ---------------------------------------------------------------- the attacker's tools


class Outsider:
    """An ed25519 key of the attacker's own: a member of no group."""

    def __init__(self):
        self._key = Ed25519PrivateKey.generate()
        self.public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)


class Attacker:
    """Raw gRPC to bobby's lobby and to the conductors (with their node secrets)."""

    def __init__(self, network):
        self.network = network
        self._channels = []

    def _channel(self, address):
        channel = grpc.aio.insecure_channel(address)
        self._channels.append(channel)
        return channel

    async def close(self):
        for channel in self._channels:
            await channel.close()

    def conductor(self, node: str):
        return conductor_pb2_grpc.ConductorStub(self._channel(self.network.node(node)["conductor"]))

    def lobby(self, name: str):
        return lobby_pb2_grpc.LobbyStub(self._channel(self.network.lobby_address(name)))

    def peer_lobby(self, name: str):
        """The node's LobbyPeer, over TLS as another node reaches it."""
        channel = peer_channel(self.network.node(self.network.agent(name)["node"]))
        self._channels.append(channel)
        return lobby_pb2_grpc.LobbyPeerStub(channel)

    async def sign_as(self, name: str, data: bytes) -> bytes:
        """A real signature by agent `name`, from its (compromised) node's conductor."""
        answer = await self.conductor(name).Sign(
            conductor_pb2.SignRequest(agent=self.network.agent_key(name), data=data),
            metadata=self.network.conductor_metadata(name), timeout=RPC_TIMEOUT,
        )
        return answer.signature

    async def signed(self, signer, body: bytes, author: bytes | None = None) -> common_pb2.Signed:
        """Signed{body} signed by `signer` (an agent name or an Outsider), claiming `author`
        (default: the signer itself)."""
        if isinstance(signer, Outsider):
            signature, key = signer.sign(body), signer.public
        else:
            signature, key = await self.sign_as(signer, body), self.network.agent_key(signer)
        return common_pb2.Signed(body=body, signature=signature, author=author if author is not None else key)

    async def message(self, signer, group_uuid: str, payload: str, receivers=("bobby", "charlie"),
                      author: bytes | None = None) -> common_pb2.Signed:
        """A MessageEntry signed like a lobby signs one (without time_received): its text
        encrypted by the signer's (compromised) conductor, the group key handed straight
        to each receiver's conductor; an outsider, who has no conductor, sends bytes."""
        key = signer.public if isinstance(signer, Outsider) else self.network.agent_key(signer)
        entry = common_pb2.MessageEntry(
            author=author if author is not None else key,
            receiver=[self.network.agent_key(r) for r in receivers],
            group_uuid=group_uuid, time_sent=now_micros(),
        )
        if isinstance(signer, Outsider):
            entry.encrypted.session_id, entry.encrypted.ciphertext = "outsider", os.urandom(64)
        else:
            entry.encrypted.CopyFrom(await self._encrypt(signer, group_uuid, payload, receivers))
        return await self.signed(signer, entry.SerializeToString(), author=author)

    async def _encrypt(self, signer: str, group_uuid: str, payload: str, receivers) -> common_pb2.EncryptedPayload:
        holders = []
        for name in receivers:
            agents = await self.conductor(name).ListAgents(conductor_pb2.ListAgentsRequest(),
                                                           metadata=self.network.conductor_metadata(name),
                                                           timeout=RPC_TIMEOUT)
            agent = next(a for a in agents.agents if a.agent == self.network.agent_key(name))
            holders.append(conductor_pb2.KeyHolder(agent=agent.agent, olm_identity_key=agent.olm_identity_key,
                                                   olm_fallback_key=agent.olm_fallback_key))
        answer = await self.conductor(signer).EncryptGroupMessage(
            conductor_pb2.EncryptGroupMessageRequest(agent=self.network.agent_key(signer), group_uuid=group_uuid,
                                                     plaintext=payload.encode(), receivers=holders),
            metadata=self.network.conductor_metadata(signer), timeout=RPC_TIMEOUT)
        for share in answer.key_shares:
            receiver = common_pb2.KeyShare.FromString(share.body).receiver
            name = next(n for n in receivers if self.network.agent_key(n) == receiver)
            await self.conductor(name).ImportGroupKeys(
                conductor_pb2.ImportGroupKeysRequest(agent=receiver, key_shares=[share]),
                metadata=self.network.conductor_metadata(name), timeout=RPC_TIMEOUT)
        return answer.encrypted

    async def envelope(self, signer, method: str, request, target: bytes, *, timestamp: int | None = None,
                       nonce: bytes | None = None, author: bytes | None = None) -> lobby_pb2.RemoteCall:
        """A RemoteCall whose Envelope is signed by `signer` (claiming `author`)."""
        envelope = common_pb2.Envelope(
            method=method, body=request.SerializeToString(),
            timestamp=now_micros() if timestamp is None else timestamp,
            nonce=os.urandom(16) if nonce is None else nonce, target=target,
        )
        return lobby_pb2.RemoteCall(envelope=await self.signed(signer, envelope.SerializeToString(), author=author))

    async def message_call(self, signer, signed_message, to: str = "bobby", target: str | None = None,
                           **envelope_args) -> lobby_pb2.RemoteCall:
        request = lobby_pb2.ReceiveGroupMessageRequest(to_agent=self.network.agent_key(to), message=signed_message)
        target_key = self.network.agent_key(target or to)
        return await self.envelope(signer, "ReceiveGroupMessage", request, target_key, **envelope_args)

    async def receive_group_message(self, call: lobby_pb2.RemoteCall, at: str = "bobby"):
        return await self.peer_lobby(at).ReceiveGroupMessage(call, timeout=RPC_TIMEOUT)

    async def receive_invite(self, call: lobby_pb2.RemoteCall, at: str = "bobby"):
        return await self.peer_lobby(at).ReceiveInvite(call, timeout=RPC_TIMEOUT)


async def refused(call) -> grpc.aio.AioRpcError:
    """Awaits `call`, which must fail; returns its error."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


# ---------------------------------------------------------------- "nothing stored, nothing signalled"


class BobbysView:
    """What bobby's lobby shows for the group before a hostile call: history, groups, UI events."""

    def __init__(self, bobby: Client, group_uuid: str):
        self.bobby = bobby
        self.group = group_uuid

    async def snapshot(self):
        history = [r.message_hash for r in await self.bobby.all_history(self.group)]
        groups = await self.bobby.groups()
        self.history, self.groups = history, groups.SerializeToString(deterministic=True)
        self.events = len(self.bobby.events_so_far())
        return self

    async def assert_unchanged(self, alice: Client, expect_new: tuple[str, ...] = ()):
        """Nothing stored: GetGroups and the history are as before but for `expect_new`
        payloads and a legit sentinel from alice; nothing signalled: the only new UI
        events are message events for those, in order."""
        sentinel = f"legit {uuid.uuid4()}"
        sent = await alice.send(self.group, sentinel)
        assert {o.status for o in sent.outcomes} == {lobby_pb2.DELIVERED}
        await wait_until(
            self.bobby,
            lambda: any(e.kind == "message" and e.record.entry.payload == sentinel for e in self.bobby.events_so_far()),
            "alice's legit message reaches bobby's UI",
        )
        new_events = self.bobby.events_so_far()[self.events:]
        assert [(e.kind, e.record.entry.payload if e.record else None) for e in new_events] == [
            ("message", p) for p in (*expect_new, sentinel)
        ]
        history = await self.bobby.all_history(self.group)
        new_records = [r for r in history if r.message_hash not in set(self.history)]
        assert sorted(r.entry.payload for r in new_records) == sorted([*expect_new, sentinel])
        assert len(history) == len(self.history) + len(expect_new) + 1
        groups = await self.bobby.groups()
        assert groups.SerializeToString(deterministic=True) == self.groups


def scenario(network, group, body):
    """Runs `body(attacker, clients, view)` with alice's and bobby's UIs open (signals on)."""

    async def go():
        attacker = Attacker(network)
        try:
            async with make_clients(network, ("alice", "bobby")) as clients:
                view = await BobbysView(clients["bobby"], group).snapshot()
                await body(attacker, clients, view)
        finally:
            await attacker.close()

    run(go())


def assert_status(error: grpc.aio.AioRpcError, code: grpc.StatusCode, *words: str):
    assert error.code() == code, f"{error.code().name}: {error.details()}"
    for word in words:
        assert word in error.details(), error.details()


# ---------------------------------------------------------------- (a) forged signatures


def test_envelope_signed_by_another_key_than_its_author_is_permission_denied_and_nothing_lands(network, group):
    async def body(attacker, clients, view):
        message = await attacker.message("alice", group, "forged envelope")
        call = await attacker.message_call(Outsider(), message, author=network.agent_key("alice"))
        error = await refused(attacker.receive_group_message(call))
        assert_status(error, grpc.StatusCode.PERMISSION_DENIED, "envelope", "signature does not verify")
        await view.assert_unchanged(clients["alice"])

    scenario(network, group, body)


def test_message_signed_by_another_key_than_its_author_in_a_valid_envelope_is_permission_denied(network, group):
    async def body(attacker, clients, view):
        outsider = Outsider()
        message = await attacker.message(outsider, group, "forged message", author=network.agent_key("alice"))
        call = await attacker.message_call("alice", message)
        error = await refused(attacker.receive_group_message(call))
        assert_status(error, grpc.StatusCode.PERMISSION_DENIED, "message", "signature does not verify")
        await view.assert_unchanged(clients["alice"])

    scenario(network, group, body)


def _detached(call: lobby_pb2.RemoteCall, signature: bytes) -> lobby_pb2.RemoteCall:
    return lobby_pb2.RemoteCall(envelope=call.envelope, item_signature=signature)


def test_message_sent_unsigned_in_its_envelope_with_its_signature_beside_it_lands(network, group):
    async def body(attacker, clients, view):
        message = await attacker.message("alice", group, "signature beside the envelope")
        unsigned = common_pb2.Signed(body=message.body, author=message.author)
        call = _detached(await attacker.message_call("alice", unsigned), message.signature)
        await attacker.receive_group_message(call)
        await view.assert_unchanged(clients["alice"], expect_new=("signature beside the envelope",))

    scenario(network, group, body)


def test_detached_item_signature_over_another_body_is_permission_denied_and_nothing_lands(network, group):
    async def body(attacker, clients, view):
        message = await attacker.message("alice", group, "the one alice signed")
        swapped = await attacker.message("alice", group, "the one the envelope carries")
        unsigned = common_pb2.Signed(body=swapped.body, author=swapped.author)
        call = _detached(await attacker.message_call("alice", unsigned), message.signature)
        error = await refused(attacker.receive_group_message(call))
        assert_status(error, grpc.StatusCode.PERMISSION_DENIED, "message", "signature does not verify")
        await view.assert_unchanged(clients["alice"])

    scenario(network, group, body)


def test_detached_item_signature_beside_an_already_signed_item_is_invalid_argument(network, group):
    async def body(attacker, clients, view):
        message = await attacker.message("alice", group, "signed twice")
        call = _detached(await attacker.message_call("alice", message), message.signature)
        error = await refused(attacker.receive_group_message(call))
        assert_status(error, grpc.StatusCode.INVALID_ARGUMENT, "item_signature")
        await view.assert_unchanged(clients["alice"])

    scenario(network, group, body)


# ---------------------------------------------------------------- (b) replay


def test_replayed_envelope_is_permission_denied_and_the_message_arrives_exactly_once(network, group):
    async def body(attacker, clients, view):
        message = await attacker.message("alice", group, "sent once")
        call = await attacker.message_call("alice", message)
        await attacker.receive_group_message(call)  # the first one is a valid call_remote
        error = await refused(attacker.receive_group_message(call))
        assert_status(error, grpc.StatusCode.PERMISSION_DENIED, "replayed")
        await view.assert_unchanged(clients["alice"], expect_new=("sent once",))

    scenario(network, group, body)


# ---------------------------------------------------------------- (c) wrong target


def test_envelope_targeting_an_agent_this_lobby_does_not_host_is_permission_denied_and_nothing_lands(network, group):
    """Documented (lobby.proto Envelope): the receiver checks `target` is an agent it hosts.
    charlie is hosted on another node: a wrong target, refused with PERMISSION_DENIED."""

    async def body(attacker, clients, view):
        message = await attacker.message("alice", group, "for charlie, sent to bobby")
        call = await attacker.message_call("alice", message, to="charlie")
        error = await refused(attacker.receive_group_message(call, at="bobby"))
        assert_status(error, grpc.StatusCode.PERMISSION_DENIED, "not an agent this lobby hosts")
        await view.assert_unchanged(clients["alice"])

    scenario(network, group, body)


def test_envelope_for_bobby_carrying_a_call_to_charlie_is_permission_denied_and_nothing_lands(network, group):
    async def body(attacker, clients, view):
        message = await attacker.message("alice", group, "envelope says bobby, call says charlie")
        call = await attacker.message_call("alice", message, to="charlie", target="bobby")
        error = await refused(attacker.receive_group_message(call))
        assert_status(error, grpc.StatusCode.PERMISSION_DENIED, "addressed to another agent")
        await view.assert_unchanged(clients["alice"])

    scenario(network, group, body)


# ---------------------------------------------------------------- (d) non-member sender


def test_outsider_signing_both_message_and_envelope_is_permission_denied_as_a_non_member(network, group):
    async def body(attacker, clients, view):
        outsider = Outsider()
        message = await attacker.message(outsider, group, "let me in")
        call = await attacker.message_call(outsider, message)
        error = await refused(attacker.receive_group_message(call))
        assert_status(error, grpc.StatusCode.PERMISSION_DENIED, "not a member")
        await view.assert_unchanged(clients["alice"])

    scenario(network, group, body)


def test_outsider_relaying_alices_valid_message_in_its_own_envelope_is_permission_denied(network, group):
    async def body(attacker, clients, view):
        message = await attacker.message("alice", group, "relayed by an outsider")
        call = await attacker.message_call(Outsider(), message)
        error = await refused(attacker.receive_group_message(call))
        assert_status(error, grpc.StatusCode.PERMISSION_DENIED, "caller is not the message's author")
        await view.assert_unchanged(clients["alice"])

    scenario(network, group, body)


# ---------------------------------------------------------------- (e) stale timestamp


@pytest.mark.parametrize("offset", [-HOUR_MICROS, HOUR_MICROS], ids=["an_hour_ago", "an_hour_ahead"])
def test_envelope_timestamped_outside_the_window_is_permission_denied_as_stale(network, group, offset):
    async def body(attacker, clients, view):
        message = await attacker.message("alice", group, f"stale {offset}")
        call = await attacker.message_call("alice", message, timestamp=now_micros() + offset)
        error = await refused(attacker.receive_group_message(call))
        assert_status(error, grpc.StatusCode.PERMISSION_DENIED, "stale")
        await view.assert_unchanged(clients["alice"])

    scenario(network, group, body)


# ---------------------------------------------------------------- (f) method mismatch


def test_envelope_signed_for_receive_invite_sent_to_receive_group_message_is_permission_denied(network, group):
    async def body(attacker, clients, view):
        message = await attacker.message("alice", group, "wrong method")
        request = lobby_pb2.ReceiveGroupMessageRequest(to_agent=network.agent_key("bobby"), message=message)
        call = await attacker.envelope("alice", "ReceiveInvite", request, network.agent_key("bobby"))
        error = await refused(attacker.receive_group_message(call))
        assert_status(error, grpc.StatusCode.PERMISSION_DENIED, "signed for ReceiveInvite, not ReceiveGroupMessage")
        await view.assert_unchanged(clients["alice"])

    scenario(network, group, body)


def test_envelope_signed_for_receive_group_message_sent_to_receive_invite_is_permission_denied(network, group):
    async def body(attacker, clients, view):
        message = await attacker.message("alice", group, "wrong method the other way")
        call = await attacker.message_call("alice", message)
        error = await refused(attacker.receive_invite(call))
        assert_status(error, grpc.StatusCode.PERMISSION_DENIED, "signed for ReceiveGroupMessage, not ReceiveInvite")
        await view.assert_unchanged(clients["alice"])

    scenario(network, group, body)


# ---------------------------------------------------------------- invites


def _invite(inviter: bytes, members: list[bytes], name: str = "Hostile") -> common_pb2.Invite:
    properties = common_pb2.GroupProperties(
        group_uuid=str(uuid.uuid4()), name=name, creator=inviter, initial_members=members,
        network_seed=os.urandom(16).hex(),
    )
    return common_pb2.Invite(
        group_uuid=properties.group_uuid, initial_members=members, timestamp=now_micros(),
        properties=properties, dna_hash=dna.group_dna_hash(properties),
    )


async def _invite_call(attacker, signer_of_invite, signer_of_envelope, invite, author=None):
    signed_invite = await attacker.signed(signer_of_invite, invite.SerializeToString(), author=author)
    request = lobby_pb2.ReceiveInviteRequest(to_agent=attacker.network.agent_key("bobby"), invite=signed_invite)
    return await attacker.envelope(signer_of_envelope, "ReceiveInvite", request, attacker.network.agent_key("bobby"))


def test_invite_from_an_inviter_outside_its_own_group_is_permission_denied(network, group):
    async def body(attacker, clients, view):
        outsider = Outsider()
        alice, bobby = network.agent_key("alice"), network.agent_key("bobby")
        call = await _invite_call(attacker, outsider, outsider, _invite(alice, [alice, bobby]))
        error = await refused(attacker.receive_invite(call))
        assert_status(error, grpc.StatusCode.PERMISSION_DENIED, "inviter is not a member")
        await view.assert_unchanged(clients["alice"])

    scenario(network, group, body)


def test_invite_whose_dna_hash_does_not_match_its_properties_is_permission_denied(network, group):
    async def body(attacker, clients, view):
        alice, bobby = network.agent_key("alice"), network.agent_key("bobby")
        invite = _invite(alice, [alice, bobby])
        invite.dna_hash = blake2b_256(b"some other group")
        call = await _invite_call(attacker, "alice", "alice", invite)
        error = await refused(attacker.receive_invite(call))
        assert_status(error, grpc.StatusCode.PERMISSION_DENIED, "DNA hash does not match")
        await view.assert_unchanged(clients["alice"])

    scenario(network, group, body)


def test_outsider_relaying_alices_valid_invite_in_its_own_envelope_is_permission_denied(network, group):
    async def body(attacker, clients, view):
        alice, bobby = network.agent_key("alice"), network.agent_key("bobby")
        call = await _invite_call(attacker, "alice", Outsider(), _invite(alice, [alice, bobby]))
        error = await refused(attacker.receive_invite(call))
        assert_status(error, grpc.StatusCode.PERMISSION_DENIED, "caller is not the inviter")
        await view.assert_unchanged(clients["alice"])

    scenario(network, group, body)


def test_forged_invite_envelope_is_permission_denied(network, group):
    async def body(attacker, clients, view):
        alice, bobby = network.agent_key("alice"), network.agent_key("bobby")
        invite = _invite(alice, [alice, bobby])
        signed_invite = await attacker.signed("alice", invite.SerializeToString())
        request = lobby_pb2.ReceiveInviteRequest(to_agent=bobby, invite=signed_invite)
        call = await attacker.envelope(Outsider(), "ReceiveInvite", request, bobby, author=alice)
        error = await refused(attacker.receive_invite(call))
        assert_status(error, grpc.StatusCode.PERMISSION_DENIED, "envelope", "signature does not verify")
        await view.assert_unchanged(clients["alice"])

    scenario(network, group, body)


# ---------------------------------------------------------------- (g) app tokens


def _conductor(network, node):
    channel = grpc.insecure_channel(network.node(node)["conductor"])
    return channel, conductor_pb2_grpc.ConductorStub(channel)


def _tokens_of(network, node, agent: bytes) -> dict:
    channel, stub = _conductor(network, node)
    with channel:
        listed = stub.ListAppTokens(conductor_pb2.ListAppTokensRequest(agent=agent),
                                    metadata=network.conductor_metadata(node), timeout=RPC_TIMEOUT)
    return {t.token_id: t for t in listed.tokens}


def _issue(network, node: str, agent: bytes):
    channel, stub = _conductor(network, node)
    with channel:
        return stub.IssueAppToken(conductor_pb2.IssueAppTokenRequest(agent=agent),
                                  metadata=network.conductor_metadata(node), timeout=RPC_TIMEOUT)


def _revoke(network, node: str, token_id: str):
    channel, stub = _conductor(network, node)
    with channel:
        return stub.RevokeAppToken(conductor_pb2.RevokeAppTokenRequest(token_id=token_id),
                                   metadata=network.conductor_metadata(node), timeout=RPC_TIMEOUT)


async def _get_groups_with(network, token: str):
    async with Client(network.lobby_address("alice"), token) as client:
        return await client.groups()


async def _unauthenticated_with(network, token: str) -> ClientError:
    with pytest.raises(ClientError) as caught:
        await _get_groups_with(network, token)
    return caught.value


def test_app_token_revoked_before_its_first_use_is_unauthenticated_and_listed_as_revoked(network, group):
    alice = network.agent_key("alice")
    issued = _issue(network, "alice", alice)
    assert _tokens_of(network, "alice", alice)[issued.token.token_id].revoked is False
    revoked = _revoke(network, "alice", issued.token.token_id).token
    assert revoked.revoked and revoked.token_id == issued.token.token_id
    error = run(_unauthenticated_with(network, issued.app_token))
    assert error.code == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in error.details
    assert _tokens_of(network, "alice", alice)[issued.token.token_id].revoked is True
    # alice's original token is untouched
    assert group in run(_get_groups_with(network, network.token("alice"))).groups.group_uuids


def test_app_token_used_then_revoked_is_unauthenticated_at_the_lobby(network, group):
    alice = network.agent_key("alice")
    issued = _issue(network, "alice", alice)
    assert group in run(_get_groups_with(network, issued.app_token)).groups.group_uuids  # works
    _revoke(network, "alice", issued.token.token_id)
    assert _tokens_of(network, "alice", alice)[issued.token.token_id].revoked is True
    error = run(_unauthenticated_with(network, issued.app_token))
    assert error.code == grpc.StatusCode.UNAUTHENTICATED


def test_send_with_a_token_revoked_after_it_sent_is_unauthenticated_and_nothing_is_stored_or_sent(network, group):
    """A token the lobby has seen is checked by the conductor in the call that signs the
    message: once revoked, the next send is refused before anything is stored or sent."""
    alice = network.agent_key("alice")
    issued = _issue(network, "alice", alice)

    async def go():
        async with make_clients(network, ("alice", "bobby")) as clients:
            async with Client(network.lobby_address("alice"), issued.app_token) as app:
                sent = await app.send(group, "before the revocation")
                assert {o.status for o in sent.outcomes} == {lobby_pb2.DELIVERED}
                view = await BobbysView(clients["bobby"], group).snapshot()
                alice_history = [r.message_hash for r in await clients["alice"].all_history(group)]
                _revoke(network, "alice", issued.token.token_id)
                with pytest.raises(ClientError) as caught:
                    await app.send(group, "after the revocation")
                assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
                assert "revoked" in caught.value.details
                assert [r.message_hash for r in await clients["alice"].all_history(group)] == alice_history
                await view.assert_unchanged(clients["alice"])

    run(go())


def test_revoking_an_unknown_token_id_is_not_found(network):
    channel, stub = _conductor(network, "alice")
    with channel, pytest.raises(grpc.RpcError) as caught:
        stub.RevokeAppToken(conductor_pb2.RevokeAppTokenRequest(token_id="0000000000000000"),
                            metadata=network.conductor_metadata("alice"), timeout=RPC_TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_token_commands_need_the_node_secret(network):
    channel, stub = _conductor(network, "alice")
    with channel:
        for call, request in ((stub.IssueAppToken, conductor_pb2.IssueAppTokenRequest(agent=network.agent_key("alice"))),
                              (stub.ListAppTokens, conductor_pb2.ListAppTokensRequest()),
                              (stub.RevokeAppToken, conductor_pb2.RevokeAppTokenRequest(token_id="00"))):
            with pytest.raises(grpc.RpcError) as caught:
                call(request, metadata=(("x-kizuna-node-secret", "wrong"),), timeout=RPC_TIMEOUT)
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


# ---------------------------------------------------------------- the CLI's token commands


def kizuna(network, capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        cli.main(["--dir", str(network.directory), *argv])
    out, err = capsys.readouterr()
    return done.value.code, out, err


ISSUED = re.compile(r"issued token ([0-9a-f]{16}) for (\S+)")


def parse_issued(out: str) -> tuple[str, str]:
    """(token id, app token) from `kizuna tokens issue`'s output: the id on the first line,
    the token alone on the indented second one."""
    lines = out.splitlines()
    match = ISSUED.search(lines[0])
    assert match, out
    return match.group(1), lines[1].strip()


def test_cli_tokens_issue_gives_a_token_that_works_at_the_agents_lobby(network, group, capsys):
    code, out, err = kizuna(network, capsys, "tokens", "issue", "alice")
    assert code == 0, err
    token_id, app_token = parse_issued(out)
    assert group in run(_get_groups_with(network, app_token)).groups.group_uuids
    assert token_id in _tokens_of(network, "alice", network.agent_key("alice"))


def test_cli_tokens_list_then_revoke_shows_it_revoked_and_the_token_is_unauthenticated(network, capsys):
    code, out, err = kizuna(network, capsys, "tokens", "issue", "alice")
    assert code == 0, err
    token_id, app_token = parse_issued(out)

    code, out, err = kizuna(network, capsys, "tokens", "list", "alice")
    assert code == 0, err
    line = next(line for line in out.splitlines() if token_id in line)
    assert "alice" in line and "active" in line
    assert app_token not in out  # the list names tokens by id, never shows them

    code, out, err = kizuna(network, capsys, "tokens", "revoke", token_id)
    assert code == 0, err
    assert f"revoked token {token_id}" in out
    assert _tokens_of(network, "alice", network.agent_key("alice"))[token_id].revoked is True

    code, out, err = kizuna(network, capsys, "tokens", "list")
    assert code == 0, err
    assert "revoked" in next(line for line in out.splitlines() if token_id in line)

    error = run(_unauthenticated_with(network, app_token))
    assert error.code == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in error.details


def test_cli_tokens_revoke_before_first_use_makes_the_token_unusable(network, capsys):
    code, out, err = kizuna(network, capsys, "tokens", "issue", "alice")
    assert code == 0, err
    token_id, app_token = parse_issued(out)
    code, out, err = kizuna(network, capsys, "tokens", "revoke", token_id, "--node", "alice")
    assert code == 0, err
    error = run(_unauthenticated_with(network, app_token))
    assert error.code == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in error.details


def test_cli_tokens_revoke_of_an_unknown_id_is_one_line_and_not_found(network, capsys):
    code, out, err = kizuna(network, capsys, "tokens", "revoke", "ffffffffffffffff")
    assert code == 3  # not found
    assert err.startswith("kizuna: ") and len(err.strip().splitlines()) == 1
    assert "ffffffffffffffff" in err
