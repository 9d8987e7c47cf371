"""Property-based fuzzing of every RPC of the three servers of a real node (issue 4).

One real two-node network (alice, bobby) per module; every request goes to alice's
conductor, lobby and group_dht over plain sync gRPC. A baseline (two groups of alice and
bobby, messages both ways, a spare app token) lets valid requests and their mutations
reach deep code paths.

For each RPC, hypothesis sends
  * random requests built from the request's protobuf descriptor, their fields drawn from
    edge values and from a pool of values that mean something on this network (agent keys,
    DNA hashes, group uuids, tokens, valid signed ops ...); for the call_remote targets and
    Publish also freshly *signed* random envelopes / ops, so they pass the signature check;
  * mutations of valid requests that still parse (field swaps, fields set from the pool,
    splices), sent as raw bytes;
  * malformed wire bytes (bit flips, truncations, insertions) that need not parse,
with valid, missing and garbage credentials. Each answer must be OK or a status that is
neither INTERNAL nor UNKNOWN, with details; afterwards the server's health says SERVING; and
the node's stored state (conductor agents, cells, tokens; lobby groups, source chain,
messages; DHT spaces and op counts) changed only by calls that succeeded.

Runs are derandomized (reproducible in CI); a failure prints the minimal request.
"""

import base64
import hashlib
import os
import time
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from google.protobuf import descriptor as pb_descriptor
from google.protobuf import message_factory
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from kizuna import net as kizuna_net
from kizuna.v1 import (
    admin_pb2,
    common_pb2,
    conductor_pb2,
    conductor_pb2_grpc,
    group_dht_pb2,
    group_dht_pb2_grpc,
    lobby_pb2,
    lobby_pb2_grpc,
)
from kizuna_node.common import anchors, dna
from kizuna_node.common.sealing import seal, sealed_aad
from tests.integration.network import make_network, peer_channel

pytestmark = pytest.mark.integration

RPC_TIMEOUT = 20.0
# Examples per RPC and kind of input; three kinds per RPC, 34 RPCs.
RANDOM_EXAMPLES = int(os.environ.get("KIZUNA_FUZZ_RANDOM", "35"))
MUTATED_EXAMPLES = int(os.environ.get("KIZUNA_FUZZ_MUTATED", "35"))
WIRE_EXAMPLES = int(os.environ.get("KIZUNA_FUZZ_WIRE", "15"))

FD = pb_descriptor.FieldDescriptor
BAD_CODES = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED)

SERVICES = {
    "conductor": conductor_pb2.DESCRIPTOR.services_by_name["Conductor"],
    "lobby_peer": lobby_pb2.DESCRIPTOR.services_by_name["LobbyPeer"],
    "lobby": lobby_pb2.DESCRIPTOR.services_by_name["Lobby"],
    "group_dht": group_dht_pb2.DESCRIPTOR.services_by_name["GroupDht"],
    "lobby_admin": admin_pb2.DESCRIPTOR.services_by_name["LobbyAdmin"],
}

# Which parts of the stored state a call may change when it succeeds (empty: read only).
# The order is the order the properties run in: state-changing calls that can take the
# baseline apart (deleting / blocking groups, leaving spaces, fake peers) come last.
ALL = ("conductor", "lobby", "group_dht")
CONDUCTOR_RPCS = {
    "ListAgents": (),
    "ListCells": (),
    "Sign": (),
    "SignBatch": (),
    "ResolveToken": (),
    "Decrypt": (),
    "DecryptBatch": (),
    "ListAppTokens": (),
    "DecryptGroupMessages": (),
    "ListGroupSessions": (),
    # Ratchets the session on, or shares it anew: the keystore's state, nothing the others see.
    "EncryptGroupMessage": ("conductor",),
    "ShareGroupKey": ("conductor",),
    "ImportGroupKeys": ("conductor",),
    "CreateAgent": ("conductor",),
    "IssueAppToken": ("conductor",),
    "RevokeAppToken": ("conductor",),
    "CloneDna": ("conductor", "group_dht"),
    "DeleteCloneCell": ("conductor", "group_dht", "lobby"),
}
LOBBY_RPCS = {
    "GetGroups": (),
    "GetConversations": (),
    "GetAgentByUsername": (),
    "GetMessages": (),
    "GetSourceChain": (),
    "GetBlockedAgents": (),
    "Signals": (),
    "FetchFile": (),
    # "Never stored": typing is checked like a read.
    "SetTyping": (),
    "SyncInbox": ALL,
    # Drops the agent's kept signals up to a seq: the lobby's store only.
    "AckSignals": ("lobby",),
    "SendGroupMessage": ALL,
    "SendFile": ALL,
    "PinMessage": ALL,
    "UnpinMessage": ALL,
    "MarkRead": ALL,
    "CreateGroup": ALL,
    "SetUsername": ALL,
    "BlockAgent": ALL,
    "UnblockAgent": ALL,
    "AcceptGroup": ALL,
    "UnblockGroup": ALL,
    "RenameGroup": ALL,
    "AddMembers": ALL,
    "RemoveMembers": ALL,
    "BlockGroup": ALL,
    "DeleteGroup": ALL,
    "LeaveGroup": ALL,
}
LOBBY_PEER_RPCS = {
    "ReceiveTyping": (),
    "ReceiveGroupMessage": ALL,
    "ReceiveReceipt": ALL,
    "ReceiveInvite": ALL,
    "ReceiveGroupUpdate": ALL,
    "ReceiveGroupMessages": ALL,
    "ReceiveReceipts": ALL,
    "ReceiveInvites": ALL,
    "ReceiveGroupKeys": ALL,
    "RequestGroupKey": ("conductor",),
}
DHT_RPCS = {
    "ListSpaces": (),
    "Get": (),
    "GetLinks": (),
    "Publish": ("group_dht",),
    "JoinSpace": ("group_dht",),
    "LeaveSpace": ("group_dht",),
    "ExchangePeers": ("group_dht",),
    # Anti-entropy: a summary and a fetch only read.
    "SyncSummary": (),
    "FetchOps": (),
}
ADMIN_RPCS = {
    "ListOutbox": (),
    "ListQueuedSignals": (),
    "RetryOutbox": ("lobby",),
}
TABLES = {"conductor": CONDUCTOR_RPCS, "lobby_peer": LOBBY_PEER_RPCS, "lobby": LOBBY_RPCS, "group_dht": DHT_RPCS,
          "lobby_admin": ADMIN_RPCS}
# Every RPC of the descriptors is fuzzed: one this file does not know yet (see
# test_every_rpc_has_its_own_entry) as if it could change everything, before the tail of
# calls that take the baseline apart.
ALL_RPCS = {}
for _service, _table in TABLES.items():
    _unknown = {m: ALL for m in SERVICES[_service].methods_by_name if m not in _table}
    _known = [m for m in _table if m in SERVICES[_service].methods_by_name]
    _tail = {"lobby": 6, "lobby_peer": 0}.get(_service, 2)
    _order = _known[:len(_known) - _tail] + list(_unknown) + _known[len(_known) - _tail:]
    ALL_RPCS[_service] = {m: _table.get(m, ALL) for m in _order}

COUNTS: dict[str, int] = {}

# call_remote targets: the request their envelope carries and its Signed field.
REMOTE_REQUESTS = {
    "ReceiveInvite": (lobby_pb2.ReceiveInviteRequest, "invite"),
    "ReceiveGroupMessage": (lobby_pb2.ReceiveGroupMessageRequest, "message"),
}
for _method, _request, _field in (("ReceiveGroupUpdate", "ReceiveGroupUpdateRequest", "update"),
                                  ("ReceiveReceipt", "ReceiveReceiptRequest", "receipt"),
                                  ("ReceiveTyping", "ReceiveTypingRequest", "typing")):
    if hasattr(lobby_pb2, _request):
        _class = getattr(lobby_pb2, _request)
        _signed = [f.name for f in _class.DESCRIPTOR.fields if f.type == FD.TYPE_MESSAGE
                   and f.message_type.full_name == "kizuna.v1.Signed"]
        REMOTE_REQUESTS[_method] = (_class, _signed[0] if _signed else _field)
REMOTE_INNER = {"ReceiveGroupUpdate": "GroupUpdate",
                "ReceiveReceipt": "Receipts" if hasattr(common_pb2, "Receipts") else "Receipt",
                "ReceiveTyping": "Typing"}


def message_class(descriptor):
    if isinstance(descriptor, type):
        return descriptor
    return message_factory.GetMessageClass(descriptor)


def public_key(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def now_micros() -> int:
    return time.time_ns() // 1000


# ---------------------------------------------------------------- the network and its baseline


class Node:
    """alice's three servers, their stubs and raw callables, and the baseline's values."""

    def __init__(self, network):
        self.network = network
        self.addresses = {
            "conductor": network.conductor_address("alice"),
            "lobby": network.lobby_address("alice"),
            "group_dht": network.dht_address("alice"),
        }
        self.channels = {s: grpc.insecure_channel(a) for s, a in self.addresses.items()}
        self.channels["lobby_peer"] = peer_channel(network.node("alice"), aio=False)
        self.channels["lobby_admin"] = self.channels["lobby"]
        self.bobby_channel = grpc.insecure_channel(network.conductor_address("bobby"))
        self.conductor = conductor_pb2_grpc.ConductorStub(self.channels["conductor"])
        self.lobby = lobby_pb2_grpc.LobbyStub(self.channels["lobby"])
        self.dht = group_dht_pb2_grpc.GroupDhtStub(self.channels["group_dht"])
        self.bobby_conductor = conductor_pb2_grpc.ConductorStub(self.bobby_channel)
        self.bobby_lobby = lobby_pb2_grpc.LobbyStub(grpc.insecure_channel(network.lobby_address("bobby")))
        self.secret_md = network.conductor_metadata("alice")
        self.bobby_secret_md = network.conductor_metadata("bobby")
        self.token_md = (("authorization", f"Bearer {network.token('alice')}"),)
        self.bobby_token_md = (("authorization", f"Bearer {network.token('bobby')}"),)
        self.alice = network.agent_key("alice")
        self.bobby = network.agent_key("bobby")
        self.stranger_private = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"fuzz stranger").digest())
        self.stranger = public_key(self.stranger_private)
        self._raw = {}

    def close(self):
        for channel in [*self.channels.values(), self.bobby_channel]:
            channel.close()

    def raw(self, service: str, method: str):
        """A callable that sends raw request bytes and returns raw response bytes."""
        key = (service, method)
        if key not in self._raw:
            md = SERVICES[service].methods_by_name[method]
            path = f"/{SERVICES[service].full_name}/{method}"
            make = self.channels[service].unary_stream if md.server_streaming else self.channels[service].unary_unary
            self._raw[key] = make(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        return self._raw[key]

    # signing, as the agents' conductors or as a stranger with a key of its own

    def sign(self, signer: str, data: bytes) -> bytes:
        if signer == "stranger":
            return self.stranger_private.sign(data)
        stub, key, md = (
            (self.conductor, self.alice, self.secret_md) if signer == "alice"
            else (self.bobby_conductor, self.bobby, self.bobby_secret_md)
        )
        try:
            return stub.Sign(conductor_pb2.SignRequest(agent=key, data=data), metadata=md, timeout=RPC_TIMEOUT).signature
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:  # too much to sign: send it unsigned
                raise
            return bytes(64)

    def key_of(self, signer: str) -> bytes:
        return {"alice": self.alice, "bobby": self.bobby, "stranger": self.stranger}[signer]

    def signed(self, signer: str, body: bytes, author: bytes | None = None) -> common_pb2.Signed:
        return common_pb2.Signed(body=body, signature=self.sign(signer, body),
                                 author=self.key_of(signer) if author is None else author)

    def remote_call(self, signer: str, method: str, request, target: bytes | None = None,
                    timestamp: int | None = None, nonce: bytes | None = None) -> lobby_pb2.RemoteCall:
        envelope = common_pb2.Envelope(
            method=method, body=request.SerializeToString(),
            timestamp=now_micros() if timestamp is None else timestamp,
            nonce=os.urandom(16) if nonce is None else nonce,
            target=self.alice if target is None else target,
        )
        return lobby_pb2.RemoteCall(envelope=self.signed(signer, envelope.SerializeToString()))

    # the stored state, through read RPCs

    def snapshot(self, parts) -> dict:
        out = {}
        if "conductor" in parts:
            agents = self.conductor.ListAgents(conductor_pb2.ListAgentsRequest(), metadata=self.secret_md,
                                               timeout=RPC_TIMEOUT).agents
            out["agents"] = sorted((a.agent, a.encryption_key, a.name, a.created) for a in agents)
            cells = self.conductor.ListCells(conductor_pb2.ListCellsRequest(agent=self.alice), metadata=self.secret_md,
                                             timeout=RPC_TIMEOUT).cells
            out["alice cells"] = sorted(c.SerializeToString(deterministic=True) for c in cells)
            tokens = self.conductor.ListAppTokens(conductor_pb2.ListAppTokensRequest(), metadata=self.secret_md,
                                                  timeout=RPC_TIMEOUT).tokens
            out["tokens"] = sorted((t.token_id, t.agent, t.revoked) for t in tokens)
        if "lobby" in parts:
            groups = self.lobby.GetGroups(lobby_pb2.GetGroupsRequest(), metadata=self.token_md, timeout=RPC_TIMEOUT)
            out["groups"] = groups.groups.SerializeToString(deterministic=True)
            out["group details"] = sorted(d.SerializeToString(deterministic=True) for d in groups.details)
            chain, seq = [], 0
            while True:
                page = self.lobby.GetSourceChain(lobby_pb2.GetSourceChainRequest(from_seq=seq, limit=1000),
                                                 metadata=self.token_md, timeout=RPC_TIMEOUT).actions
                chain += [hashlib.blake2b(a.body, digest_size=16).digest() for a in page]
                if len(page) < 1000:
                    break
                seq = common_pb2.Action.FromString(page[-1].body).seq + 1
            out["source chain"] = chain
            for name, group in (("group one", self.group1), ("group two", self.group2)):
                messages = self.lobby.GetMessages(lobby_pb2.GetMessagesRequest(group_uuid=group.group_uuid, page_size=500),
                                                  metadata=self.token_md, timeout=RPC_TIMEOUT).messages
                out[f"{name} messages"] = [m.message_hash for m in messages]
        if "group_dht" in parts:
            spaces = self.dht.ListSpaces(group_dht_pb2.ListSpacesRequest(), metadata=self.secret_md, timeout=RPC_TIMEOUT)
            out["spaces"] = sorted((s.space, s.template, tuple(sorted(s.agents)), s.ops) for s in spaces.spaces)
            out["peers"] = sorted(p.node_id for p in spaces.peers)
        return out

    def healthy(self, service: str) -> bool:
        return kizuna_net.check_health(self.addresses[service], timeout=5.0)

    def log_tail(self, service: str, lines: int = 14) -> str:
        """The end of the service's log: its last traceback, if any, else its last lines."""
        path = Path(self.network.directory) / "logs" / f"alice-{service}.log"
        try:
            text = path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        starts = [i for i, line in enumerate(text) if line.startswith("Traceback")]
        if starts:
            start = max(0, starts[-1] - 1)
            end = start + 1 + next((j for j, line in enumerate(text[start + 1:]) if not line.startswith((" ", "Traceback"))),
                                   len(text) - start - 1) + 1
            return "\n".join(text[start:end][-lines * 2:])
        return "\n".join(text[-lines:])

    # the baseline

    def build_baseline(self):
        tok = self.token_md
        created = self.lobby.CreateGroup(lobby_pb2.CreateGroupRequest(name="fuzz base", participants=["bobby"]),
                                         metadata=tok, timeout=RPC_TIMEOUT)
        self.group1 = created.group
        created2 = self.lobby.CreateGroup(
            lobby_pb2.CreateGroupRequest(name="fuzz spare", participants=[base64.b64encode(self.bobby).decode()]),
            metadata=tok, timeout=RPC_TIMEOUT)
        self.group2 = created2.group
        for group in (self.group1, self.group2):
            self._until(lambda g=group: self.bobby_lobby.AcceptGroup(lobby_pb2.GroupRequest(group_uuid=g.group_uuid),
                                                                      metadata=self.bobby_token_md, timeout=RPC_TIMEOUT))
        sent = self.lobby.SendGroupMessage(lobby_pb2.SendGroupMessageRequest(group_uuid=self.group1.group_uuid,
                                                                             payload="hello bobby"),
                                           metadata=tok, timeout=RPC_TIMEOUT)
        self.message_hash = sent.message.message_hash
        for i in range(3):
            self.bobby_lobby.SendGroupMessage(lobby_pb2.SendGroupMessageRequest(group_uuid=self.group1.group_uuid,
                                                                                payload=f"hello alice {i}"),
                                              metadata=self.bobby_token_md, timeout=RPC_TIMEOUT)
        self._until(lambda: self._assert_messages(4))
        page = self.lobby.GetMessages(lobby_pb2.GetMessagesRequest(group_uuid=self.group1.group_uuid, page_size=2),
                                      metadata=tok, timeout=RPC_TIMEOUT)
        self.page_token = page.next_page_token
        spare = self.conductor.IssueAppToken(conductor_pb2.IssueAppTokenRequest(agent=self.alice),
                                             metadata=self.secret_md, timeout=RPC_TIMEOUT)
        self.spare_token, self.spare_token_id = spare.app_token, spare.token.token_id
        agents = self.conductor.ListAgents(conductor_pb2.ListAgentsRequest(), metadata=self.secret_md,
                                           timeout=RPC_TIMEOUT).agents
        self.alice_encryption_key = next(a.encryption_key for a in agents if a.agent == self.alice)
        cells = self.conductor.ListCells(conductor_pb2.ListCellsRequest(agent=self.alice), metadata=self.secret_md,
                                         timeout=RPC_TIMEOUT).cells
        self.props1 = next(c.properties for c in cells if c.dna_hash == self.group1.dna_hash)
        self.props2 = next(c.properties for c in cells if c.dna_hash == self.group2.dna_hash)
        # A group bobby might invite alice to, that does not exist yet.
        self.props_new = common_pb2.GroupProperties(group_uuid="fuzz-new-group", name="new", creator=self.bobby,
                                                    initial_members=[self.bobby, self.alice], network_seed="seed")
        # A valid sealed box for alice, a valid op of alice's in group one, its entry and links.
        self.aad = sealed_aad("message", self.group1.dna_hash, self.alice)
        self.sealed = seal(self.alice, self.alice_encryption_key, b"sealed fuzz plaintext", self.aad)
        entry = b"fuzz entry"
        self.entry_address = hashlib.blake2b(entry, digest_size=32).digest()
        self.op = group_dht_pb2.Op(space=self.group1.dna_hash, kind=group_dht_pb2.STORE_ENTRY, author=self.alice,
                                   timestamp=now_micros(), entry_type="fuzz", entry=entry)
        self.signed_op = self.signed("alice", self.op.SerializeToString())
        published = self.dht.Publish(group_dht_pb2.PublishRequest(op=self.signed_op), timeout=RPC_TIMEOUT)
        self.op_hash = published.op_hash
        self.link_base = anchors.inbox_anchor(self.bobby)
        link = group_dht_pb2.Op(space=self.group1.dna_hash, kind=group_dht_pb2.CREATE_LINK, author=self.alice,
                                timestamp=now_micros(), base=self.link_base, target=self.entry_address, tag=b"fuzz")
        self.signed_link = self.signed("alice", link.SerializeToString())
        self.link_hash = self.dht.Publish(group_dht_pb2.PublishRequest(op=self.signed_link), timeout=RPC_TIMEOUT).op_hash
        spaces = self.dht.ListSpaces(group_dht_pb2.ListSpacesRequest(), metadata=self.secret_md, timeout=RPC_TIMEOUT)
        self.node_id = spaces.node_id
        self.peer_infos = list(spaces.peers)
        # Valid call_remote requests from bobby to alice (each usable once: its nonce is then spent).
        # bobby's Megolm session for group one, its key shared with alice (the share kept for
        # ImportGroupKeys and ReceiveGroupKeys, where alice already holding it changes nothing)
        agents = self.conductor.ListAgents(conductor_pb2.ListAgentsRequest(), metadata=self.secret_md,
                                           timeout=RPC_TIMEOUT).agents
        alice_agent = next(a for a in agents if a.agent == self.alice)
        self.alice_holder = conductor_pb2.KeyHolder(agent=self.alice, olm_identity_key=alice_agent.olm_identity_key,
                                                    olm_fallback_key=alice_agent.olm_fallback_key)
        bobby_agent = next(a for a in self.bobby_conductor.ListAgents(
            conductor_pb2.ListAgentsRequest(), metadata=self.bobby_secret_md, timeout=RPC_TIMEOUT).agents
            if a.agent == self.bobby)
        self.bobby_holder = conductor_pb2.KeyHolder(agent=self.bobby, olm_identity_key=bobby_agent.olm_identity_key,
                                                    olm_fallback_key=bobby_agent.olm_fallback_key)
        encrypted = self.bobby_conductor.EncryptGroupMessage(conductor_pb2.EncryptGroupMessageRequest(
            agent=self.bobby, group_uuid=self.group1.group_uuid, plaintext=b"remote fuzz", receivers=[self.alice_holder]),
            metadata=self.bobby_secret_md, timeout=RPC_TIMEOUT)
        self.encrypted = encrypted.encrypted
        self.key_share = self.bobby_conductor.ShareGroupKey(conductor_pb2.ShareGroupKeyRequest(
            agent=self.bobby, group_uuid=self.group1.group_uuid, session_id=self.encrypted.session_id,
            receiver=self.alice_holder), metadata=self.bobby_secret_md, timeout=RPC_TIMEOUT).key_share
        self.conductor.ImportGroupKeys(conductor_pb2.ImportGroupKeysRequest(agent=self.alice, key_shares=[
            self.key_share]), metadata=self.secret_md, timeout=RPC_TIMEOUT)
        sessions = self.conductor.ListGroupSessions(conductor_pb2.ListGroupSessionsRequest(agent=self.alice),
                                                    metadata=self.secret_md, timeout=RPC_TIMEOUT).sessions
        self.alice_session = next(s.session_id for s in sessions if s.outbound)
        message = common_pb2.MessageEntry(author=self.bobby, receiver=[self.alice], group_uuid=self.group1.group_uuid,
                                          encrypted=self.encrypted, time_sent=now_micros())
        self.signed_message = self.signed("bobby", message.SerializeToString())
        self.receive_message_request = lobby_pb2.ReceiveGroupMessageRequest(to_agent=self.alice,
                                                                          message=self.signed_message)
        invite = common_pb2.Invite(group_uuid=self.props_new.group_uuid, initial_members=self.props_new.initial_members,
                                   timestamp=now_micros(), properties=self.props_new,
                                   dna_hash=dna.group_dna_hash(self.props_new))
        self.signed_invite = self.signed("bobby", invite.SerializeToString())
        self.receive_invite_request = lobby_pb2.ReceiveInviteRequest(to_agent=self.alice, invite=self.signed_invite)
        self.remote_message = self.remote_call("bobby", "ReceiveGroupMessage", self.receive_message_request)
        self.remote_invite = self.remote_call("bobby", "ReceiveInvite", self.receive_invite_request)
        messages = self.lobby.GetMessages(lobby_pb2.GetMessagesRequest(group_uuid=self.group1.group_uuid),
                                          metadata=self.token_md, timeout=RPC_TIMEOUT).messages
        self.bobby_message_hashes = [m.message_hash for m in messages if m.entry.author == self.bobby]
        # A clone cell of alice's own, for DeleteCloneCell to delete.
        self.props_alone = common_pb2.GroupProperties(group_uuid="fuzz-alone", name="alone", creator=self.alice,
                                                      initial_members=[self.alice], network_seed="alone")
        try:
            self.conductor.CloneDna(conductor_pb2.CloneDnaRequest(agent=self.alice, template="group",
                                                                  properties=self.props_alone),
                                    metadata=self.secret_md, timeout=RPC_TIMEOUT)
        except grpc.RpcError:
            pass
        self.valid_inner = {
            "ReceiveTyping": [common_pb2.Typing(group_uuid=self.group1.group_uuid, agent=self.bobby, typing=True,
                                                timestamp=now_micros())],
            "ReceiveReceipt": [self._receipts(common_pb2.Receipt(
                message_hash=self.message_hash, group_uuid=self.group1.group_uuid, receiver=self.bobby,
                delivered_at=now_micros(), read_at=now_micros()))],
            "ReceiveGroupUpdate": [common_pb2.GroupUpdate(
                group_uuid=self.group2.group_uuid, seq=1, change="leave", subjects=[self.bobby], members=[self.alice],
                admins=[self.alice], name="fuzz spare", timestamp=now_micros())],
        }
        self.remote_typing = self.remote_inner("bobby", "ReceiveTyping", self.valid_inner["ReceiveTyping"][0])
        self.remote_receipt = self.remote_inner("bobby", "ReceiveReceipt", self.valid_inner["ReceiveReceipt"][0])
        self.remote_update = self.remote_inner("bobby", "ReceiveGroupUpdate", self.valid_inner["ReceiveGroupUpdate"][0])
        self.remote_messages = self.remote_call("bobby", "ReceiveGroupMessages", lobby_pb2.ReceiveGroupMessagesRequest(
            to_agents=[self.alice], message=self.receive_message_request.message))
        self.remote_invites = self.remote_call("bobby", "ReceiveInvites", lobby_pb2.ReceiveInvitesRequest(
            to_agents=[self.alice], invite=self.signed_invite))
        self.remote_keys = self.remote_call("bobby", "ReceiveGroupKeys", lobby_pb2.ReceiveGroupKeysRequest(
            to_agents=[self.alice], key_shares=[self.key_share]))
        self.remote_key_request = self.remote_call("bobby", "RequestGroupKey", lobby_pb2.RequestGroupKeyRequest(
            to_agent=self.alice, group_uuid=self.group1.group_uuid, session_id=self.alice_session))
        self.remote_receipts = self.remote_call("bobby", "ReceiveReceipts", lobby_pb2.ReceiveReceiptsRequest(
            to_agent=self.alice, receipts=[self.signed("bobby", self.valid_inner["ReceiveReceipt"][0].SerializeToString())]))

    @staticmethod
    def _receipts(receipt):
        if REMOTE_INNER["ReceiveReceipt"] == "Receipts":
            return common_pb2.Receipts(receipts=[receipt])
        return receipt

    def remote_inner(self, signer, method, inner, inner_signer=None, **envelope):
        """A RemoteCall of `method` to alice carrying `inner`, signed by `inner_signer`."""
        request_class, field = REMOTE_REQUESTS[method]
        signed = self.signed(inner_signer or signer, inner.SerializeToString())
        request = request_class(to_agent=self.alice, **{field: signed})
        return self.remote_call(signer, method, request, **envelope)

    def _assert_messages(self, count):
        got = self.lobby.GetMessages(lobby_pb2.GetMessagesRequest(group_uuid=self.group1.group_uuid),
                                     metadata=self.token_md, timeout=RPC_TIMEOUT).messages
        assert len(got) >= count, f"{len(got)} messages"

    @staticmethod
    def _until(call, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                return call()
            except (grpc.RpcError, AssertionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    # values that mean something here, for random requests

    def pools(self):
        b64 = lambda k: base64.b64encode(k).decode()  # noqa: E731
        bytes_pool = [
            self.alice, self.bobby, self.stranger, dna.LOBBY_DNA_HASH, self.group1.dna_hash, self.group2.dna_hash,
            dna.group_dna_hash(self.props_new), self.message_hash, self.entry_address, self.op_hash, self.link_hash,
            self.link_base, anchors.invites_anchor(self.alice), anchors.inbox_anchor(self.alice),
            anchors.username_anchor("alice"), anchors.username_anchor("bobby"), self.node_id, self.aad,
            self.signed_op.body, self.signed_op.signature, self.signed_message.body, self.signed_message.signature,
            self.signed_invite.body, b"fuzz", b"username:alice", b"message", b"invite",
            self.remote_message.envelope.SerializeToString(), self.sealed.SerializeToString(),
        ]
        string_pool = [
            self.group1.group_uuid, self.group2.group_uuid, "alice", "bobby", "fuzz", "group", "lobby", "invite",
            "message", "agent_info", "sealed_message", "ReceiveInvite", "ReceiveGroupMessage", self.spare_token_id,
            self.network.token("bobby"), self.spare_token, b64(self.alice), b64(self.bobby), b64(self.stranger),
            base64.urlsafe_b64encode(self.bobby).decode(), self.page_token, self.addresses["group_dht"],
            self.network.dht_address("bobby"), self.props_new.group_uuid,
        ]
        message_pool = {
            "kizuna.v1.GroupProperties": [self.props1, self.props2, self.props_new],
            "kizuna.v1.Signed": [self.signed_op, self.signed_link, self.signed_message, self.signed_invite,
                                 self.remote_message.envelope, self.remote_invite.envelope],
            "kizuna.v1.SealedBox": [self.sealed],
            "kizuna.v1.EncryptedPayload": [self.encrypted],
            "kizuna.v1.KeyHolder": [self.alice_holder, self.bobby_holder],
            "kizuna.v1.NodeInfo": self.peer_infos,
        }
        int_pool = [now_micros(), now_micros() - 10 ** 9, now_micros() + 10 ** 12, 2, 50, 500, 501, 1000, 1001]
        return bytes_pool, string_pool, message_pool, int_pool

    def valid_requests(self, method: str) -> list:
        """Valid requests of each RPC (most of them succeed; some only the first time)."""
        c, l, d = conductor_pb2, lobby_pb2, group_dht_pb2
        g1, g2 = self.group1.group_uuid, self.group2.group_uuid
        return {
            "CreateAgent": [c.CreateAgentRequest(name="fuzz-agent")],
            "ListOutbox": [admin_pb2.ListOutboxRequest(), admin_pb2.ListOutboxRequest(limit=5)],
            "ListQueuedSignals": [admin_pb2.ListQueuedSignalsRequest()],
            "RetryOutbox": [admin_pb2.RetryOutboxRequest(), admin_pb2.RetryOutboxRequest(receiver=self.bobby)],
            "ListAgents": [c.ListAgentsRequest()],
            "CloneDna": [c.CloneDnaRequest(agent=self.alice, template="group", properties=self.props1)],
            "ListCells": [c.ListCellsRequest(agent=self.alice)],
            "Sign": [c.SignRequest(agent=self.alice, data=b"fuzz data")],
            "SignBatch": [c.SignBatchRequest(agent=self.alice, data=[b"fuzz", b"data"])],
            "ResolveToken": [c.ResolveTokenRequest(app_token=self.spare_token)],
            "Decrypt": [c.DecryptRequest(agent=self.alice, sealed=self.sealed, aad=self.aad)],
            "DecryptBatch": [c.DecryptBatchRequest(agent=self.alice, items=[
                c.DecryptItem(sealed=self.sealed, aad=self.aad), c.DecryptItem(sealed=self.sealed, aad=b"wrong")])],
            "IssueAppToken": [c.IssueAppTokenRequest(agent=self.alice)],
            "ListAppTokens": [c.ListAppTokensRequest(agent=self.alice), c.ListAppTokensRequest()],
            "RevokeAppToken": [c.RevokeAppTokenRequest(token_id=self.spare_token_id)],
            "SetUsername": [l.SetUsernameRequest(username="alice")],
            "GetAgentByUsername": [l.GetAgentByUsernameRequest(username="bobby")],
            "GetGroups": [l.GetGroupsRequest()],
            "GetBlockedAgents": [l.GetBlockedAgentsRequest()],
            "CreateGroup": [l.CreateGroupRequest(name="fuzz made", participants=["bobby"])],
            "AcceptGroup": [l.GroupRequest(group_uuid=g1)],
            "DeleteGroup": [l.GroupRequest(group_uuid=g2)],
            "BlockGroup": [l.GroupRequest(group_uuid=g2)],
            "UnblockGroup": [l.GroupRequest(group_uuid=g2)],
            "BlockAgent": [l.AgentRequest(agent=self.bobby)],
            "UnblockAgent": [l.AgentRequest(agent=self.bobby)],
            "SendGroupMessage": [l.SendGroupMessageRequest(group_uuid=g1, payload="fuzz hello"),
                                 l.SendGroupMessageRequest(group_uuid=g1, payload="fuzz once", transaction_id="fuzz-1")],
            # one request on the wire: a SendFile stream that ends after its header
            "SendFile": [l.SendFileRequest(header=l.FileHeader(group_uuid=g1, name="fuzz.txt", size=4))],
            "FetchFile": [l.FetchFileRequest(group_uuid=g1, message_hash=self.bobby_message_hashes[0])],
            "PinMessage": [l.PinRequest(group_uuid=g1, message_hash=self.bobby_message_hashes[0])],
            "UnpinMessage": [l.PinRequest(group_uuid=g1, message_hash=self.bobby_message_hashes[0])],
            "GetMessages": [l.GetMessagesRequest(group_uuid=g1, page_size=2, page_token=self.page_token)],
            "GetSourceChain": [l.GetSourceChainRequest(from_seq=1, limit=3)],
            "Signals": [l.SignalsRequest(), l.SignalsRequest(since=1)],
            "AckSignals": [l.AckSignalsRequest(seq=0), l.AckSignalsRequest(seq=1)],
            "SyncInbox": [l.SyncInboxRequest()],
            "ReceiveInvite": [self.remote_invite],
            "ReceiveGroupMessage": [self.remote_message],
            "Publish": [d.PublishRequest(op=self.signed_op), d.PublishRequest(op=self.signed_link, local_only=True)],
            "Get": [d.GetRequest(space=self.group1.dna_hash, address=self.entry_address)],
            "GetLinks": [d.GetLinksRequest(space=self.group1.dna_hash, base=self.link_base, tag_prefix=b"fu")],
            "JoinSpace": [d.JoinSpaceRequest(space=self.group1.dna_hash, agent=self.alice, template="group",
                                             properties=self.props1)],
            "LeaveSpace": [d.LeaveSpaceRequest(space=self.group2.dna_hash, agent=self.alice)],
            "ListSpaces": [d.ListSpacesRequest()],
            "ExchangePeers": [d.ExchangePeersRequest(**{"from": p}) for p in self.peer_infos[:1]]
            or [d.ExchangePeersRequest()],
            "DeleteCloneCell": [c.DeleteCloneCellRequest(agent=self.alice, dna_hash=dna.group_dna_hash(self.props_alone))],
            "GetConversations": [l.GetConversationsRequest()],
            "SetTyping": [l.SetTypingRequest(group_uuid=g1, typing=True)],
            "MarkRead": [l.MarkReadRequest(group_uuid=g1, message_hashes=self.bobby_message_hashes)],
            "RenameGroup": [l.RenameGroupRequest(group_uuid=g2, name="fuzz renamed")],
            "AddMembers": [l.MembersRequest(group_uuid=g2, participants=[base64.b64encode(self.stranger).decode()])],
            "RemoveMembers": [l.MembersRequest(group_uuid=g2, participants=[base64.b64encode(self.stranger).decode()])],
            "LeaveGroup": [l.GroupRequest(group_uuid=g2)],
            "ReceiveTyping": [self.remote_typing],
            "ReceiveReceipt": [self.remote_receipt],
            "ReceiveGroupUpdate": [self.remote_update],
            "ReceiveGroupMessages": [self.remote_messages],
            "ReceiveReceipts": [self.remote_receipts],
            "ReceiveInvites": [self.remote_invites],
            "ReceiveGroupKeys": [self.remote_keys],
            "RequestGroupKey": [self.remote_key_request],
            "EncryptGroupMessage": [c.EncryptGroupMessageRequest(agent=self.alice, group_uuid=g1, plaintext=b"fuzz",
                                                                 receivers=[self.bobby_holder])],
            "DecryptGroupMessages": [c.DecryptGroupMessagesRequest(items=[c.GroupCiphertext(
                agent=self.alice, group_uuid=g1, sender=self.bobby, encrypted=self.encrypted)])],
            "ImportGroupKeys": [c.ImportGroupKeysRequest(agent=self.alice, key_shares=[self.key_share])],
            "ShareGroupKey": [c.ShareGroupKeyRequest(agent=self.alice, group_uuid=g1, session_id=self.alice_session,
                                                     receiver=self.bobby_holder)],
            "ListGroupSessions": [c.ListGroupSessionsRequest(agent=self.alice)],
            "SyncSummary": [d.SyncSummaryRequest(space=self.group1.dna_hash, node_id=self.alice,
                                                 digests=bytes(8 * 16), counts=[0] * 16)],
            "FetchOps": [d.FetchOpsRequest(space=self.group1.dna_hash, op_hashes=[self.op_hash])],
        }.get(method) or [message_class(self.input_type(method))()]

    @staticmethod
    def input_type(method):
        for service in SERVICES.values():
            if method in service.methods_by_name:
                return service.methods_by_name[method].input_type
        raise KeyError(method)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fuzz-net")
    # No periodic catch-up: it would publish (retire inbox links) while properties run.
    quiet = {"lobby": ["--sync-interval", "3600"]}
    with make_network(directory, nodes=("alice", "bobby"), extra_args={"alice": quiet, "bobby": quiet}) as network:
        n = Node(network)
        try:
            n.build_baseline()
            yield n
        finally:
            n.close()
    total = sum(COUNTS.values())
    if total:
        # One line for the CI log: how many requests the properties sent.
        print(f"\nfuzzed {total} requests: " + ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items())))


# ---------------------------------------------------------------- strategies


EDGE_STRINGS = ["", " ", "\x00", "é", "名前", "🙂" * 3, "a" * 64, "a" * 65, "a" * 1000, "../../etc/passwd",
                "%s%n", "Bearer", "\u202e", "a\nb"]
INT_BOUNDS = {
    FD.TYPE_INT32: (-(2 ** 31), 2 ** 31 - 1), FD.TYPE_SINT32: (-(2 ** 31), 2 ** 31 - 1),
    FD.TYPE_SFIXED32: (-(2 ** 31), 2 ** 31 - 1), FD.TYPE_INT64: (-(2 ** 63), 2 ** 63 - 1),
    FD.TYPE_SINT64: (-(2 ** 63), 2 ** 63 - 1), FD.TYPE_SFIXED64: (-(2 ** 63), 2 ** 63 - 1),
    FD.TYPE_UINT32: (0, 2 ** 32 - 1), FD.TYPE_FIXED32: (0, 2 ** 32 - 1),
    FD.TYPE_UINT64: (0, 2 ** 64 - 1), FD.TYPE_FIXED64: (0, 2 ** 64 - 1),
}


def bytes_strategy(pool):
    huge = st.builds(lambda n, b: b * (n // max(1, len(b)) + 1),
                     st.sampled_from([1024 * 1024 + 1, 65 * 1024, 70 * 1024]), st.binary(min_size=1, max_size=8))
    return st.one_of(
        st.sampled_from(pool),
        st.binary(max_size=40),
        st.sampled_from([0, 1, 16, 31, 32, 33, 63, 64, 65]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
        st.sampled_from(pool).flatmap(lambda v: st.integers(0, max(0, len(v) - 1)).map(
            lambda i: v[:i] + bytes([v[i] ^ 1]) + v[i + 1:] if v else b"\x01")),
        huge,
    )


def string_strategy(pool):
    return st.one_of(
        st.sampled_from(pool),
        st.sampled_from(EDGE_STRINGS),
        st.text(max_size=40),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=1, max_size=40),
        st.sampled_from([65, 70 * 1024]).map(lambda n: "x" * n),
    )


def int_strategy(field_type, pool):
    lo, hi = INT_BOUNDS[field_type]
    extremes = [lo, hi, 0, 1, -1, hi // 2] if lo < 0 else [lo, hi, 0, 1]
    return st.one_of(
        st.sampled_from([v for v in extremes + pool if lo <= v <= hi]),
        st.integers(lo, hi),
        st.integers(-2000, 2000).filter(lambda v: lo <= v <= hi),
    )


def field_strategy(field, pools, depth):
    bytes_pool, string_pool, message_pool, int_pool = pools
    t = field.type
    if t == FD.TYPE_BYTES:
        return bytes_strategy(bytes_pool)
    if t == FD.TYPE_STRING:
        return string_strategy(string_pool)
    if t == FD.TYPE_BOOL:
        return st.booleans()
    if t == FD.TYPE_ENUM:
        values = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(values), st.integers(-5, 2 ** 31 - 1))
    if t in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return st.floats(allow_nan=True, width=32 if t == FD.TYPE_FLOAT else 64)
    if t == FD.TYPE_MESSAGE:
        known = list(message_pool.get(field.message_type.full_name, []))
        if depth >= 3:
            return st.sampled_from(known) if known else st.just(message_class(field.message_type)())
        generated = message_strategy(field.message_type, pools, depth + 1)
        return st.one_of(st.sampled_from(known), generated) if known else generated
    return int_strategy(t, int_pool)


def _is_repeated(field) -> bool:
    if hasattr(field, "is_repeated"):
        return field.is_repeated
    return field.label == FD.LABEL_REPEATED


def message_strategy(descriptor, pools, depth=0):
    """Random messages of `descriptor`: each field left unset or drawn from its strategy."""
    cls = message_class(descriptor)
    fields = {}
    for field in descriptor.fields:
        value = field_strategy(field, pools, depth)
        if _is_repeated(field):
            many = None
            if depth == 0 and field.type in (FD.TYPE_BYTES, FD.TYPE_STRING):
                small = pools[0] if field.type == FD.TYPE_BYTES else pools[1]
                many = st.integers(99, 120).flatmap(
                    lambda n, e=st.sampled_from(small): st.lists(e, min_size=n, max_size=n))
            value = st.lists(value, max_size=4 if depth == 0 else 2)
            if many is not None:
                value = st.one_of(value, many)
        fields[field.name] = value

    @st.composite
    def build(draw):
        msg = cls()
        for name, strategy in fields.items():
            if not draw(st.booleans()):
                continue
            set_field(msg, descriptor.fields_by_name[name], draw(strategy))
        return msg

    return build()


def set_field(msg, field, value):
    if _is_repeated(field):
        target = getattr(msg, field.name)
        del target[:]
        if field.type == FD.TYPE_MESSAGE:
            for v in value:
                target.add().CopyFrom(v)
        else:
            target.extend(value)
    elif field.type == FD.TYPE_MESSAGE:
        getattr(msg, field.name).CopyFrom(value)
    else:
        setattr(msg, field.name, value)


@st.composite
def parseable_mutation(draw, bases, pools, descriptor):
    """A valid request changed so that it still parses: fields swapped, set from the pool,
    cleared, or another request's bytes spliced on (protobuf merges them)."""
    msg = type(draw(st.sampled_from(bases)))()
    msg.CopyFrom(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["set", "clear", "swap", "splice", "nested"]))
        field = draw(st.sampled_from(list(descriptor.fields))) if len(descriptor.fields) else None
        if field is None:
            kind = "splice"
        if kind == "set":
            value = draw(field_strategy(field, pools, 1))
            set_field(msg, field, [value] if _is_repeated(field) else value)
        elif kind == "clear":
            msg.ClearField(field.name)
        elif kind == "swap":
            if field.type == FD.TYPE_MESSAGE or _is_repeated(field):
                continue  # only scalar fields are swapped
            same = [f for f in descriptor.fields if f.type == field.type and not _is_repeated(f)]
            other = draw(st.sampled_from(same))
            a, b = getattr(msg, field.name), getattr(msg, other.name)
            setattr(msg, field.name, b)
            setattr(msg, other.name, a)
        elif kind == "nested" and field.type == FD.TYPE_MESSAGE and not _is_repeated(field):
            inner = getattr(msg, field.name)
            inner_fields = list(inner.DESCRIPTOR.fields)
            if inner_fields:
                f = draw(st.sampled_from(inner_fields))
                v = draw(field_strategy(f, pools, 2))
                set_field(inner, f, [v] if _is_repeated(f) else v)
        elif kind == "splice":
            other = draw(message_strategy(descriptor, pools, depth=2))
            msg.MergeFromString(other.SerializeToString())
    return msg.SerializeToString()


@st.composite
def wire_mutation(draw, bases):
    """A valid request's bytes, damaged: bits flipped, truncated, bytes inserted, deleted or
    duplicated, a tag byte rewritten. The result need not parse."""
    raw = bytearray(draw(st.sampled_from(bases)).SerializeToString())
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "dup", "tag", "garbage"]))
        n = len(raw)
        i = draw(st.integers(0, n)) if n else 0
        if kind == "flip" and n:
            i = min(i, n - 1)
            raw[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del raw[i:]
        elif kind == "insert":
            raw[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and n:
            del raw[i:i + draw(st.integers(1, 8))]
        elif kind == "dup" and n:
            j = draw(st.integers(i, n))
            raw[j:j] = raw[i:j]
        elif kind == "tag":
            raw[i:i] = bytes([draw(st.sampled_from([0x00, 0x07, 0x0a, 0x0b, 0x12, 0x1f, 0x78, 0xff]))])
        elif kind == "garbage":
            raw = bytearray(draw(st.binary(max_size=64)))
    return bytes(raw)


def metadata_strategy(node, service):
    garbage = st.text(alphabet=[chr(c) for c in range(0x20, 0x7f)], max_size=40)
    if service in ("conductor", "lobby_admin"):
        secret = node.secret_md[0][1]
        return st.one_of(
            st.just(node.secret_md), st.just(node.secret_md), st.just(node.secret_md), st.just(()),
            st.just(node.bobby_secret_md),
            garbage.map(lambda g: (("x-kizuna-node-secret", g),)),
            st.just((("x-kizuna-node-secret", secret[:-1]),)),
            st.just((("authorization", f"Bearer {node.network.token('alice')}"),)),
        )
    if service == "lobby":
        token = node.network.token("alice")
        return st.one_of(
            st.just(node.token_md), st.just(node.token_md), st.just(node.token_md), st.just(()),
            st.just(node.bobby_token_md),
            st.just((("authorization", f"bearer   {token}  "),)),
            st.just((("authorization", f"Basic {token}"),)),
            st.just((("authorization", "Bearer "),)),
            garbage.map(lambda g: (("authorization", f"Bearer {g}"),)),
            garbage.map(lambda g: (("authorization", g),)),
            st.just(node.secret_md),
        )
    return st.one_of(st.just(()), garbage.map(lambda g: (("authorization", g),)))


# ---------------------------------------------------------------- the signed random inputs


@st.composite
def signed_random(draw, node, method, pools):
    """For the call_remote targets and Publish: random content, *correctly signed* (by alice's
    or bobby's conductor or by a stranger's key), so it gets past the signature checks."""
    bytes_pool, string_pool, message_pool, int_pool = pools
    signer = draw(st.sampled_from(["bobby", "stranger"] if method != "Publish" else ["alice", "stranger"]))
    key = node.key_of(signer)
    agents = st.sampled_from([node.alice, node.bobby, node.stranger])
    if method == "Publish":
        op = group_dht_pb2.Op(
            space=draw(st.sampled_from([dna.LOBBY_DNA_HASH, node.group1.dna_hash, node.group2.dna_hash]) | bytes_strategy(bytes_pool)),
            kind=draw(st.sampled_from([0, 1, 2, 3, 7])),
            author=draw(st.just(key) | agents),
            timestamp=draw(st.sampled_from([now_micros(), 0, -1, now_micros() + 10 ** 12]) | st.integers(0, 2 ** 63 - 1)),
            entry_type=draw(st.sampled_from(["fuzz", "agent_info", "message", "", "x" * 65])),
            entry=draw(bytes_strategy(bytes_pool)),
            base=draw(bytes_strategy(bytes_pool)),
            target=draw(bytes_strategy(bytes_pool)),
            tag=draw(st.sampled_from([b"", b"fuzz", b"username:alice", b"username:fuzz", b"t" * 1025]) | st.binary(max_size=16)),
            link_address=draw(st.sampled_from([node.link_hash, node.op_hash]) | bytes_strategy(bytes_pool)),
        )
        body = op.SerializeToString()
        if draw(st.booleans()):
            body = draw(st.sampled_from([body[:-1], body + b"\xff", body]))
        signed = common_pb2.Signed(body=body, signature=node.sign(signer, body), author=draw(st.just(key) | agents))
        return group_dht_pb2.PublishRequest(op=signed, local_only=draw(st.booleans()))
    group = draw(st.sampled_from([node.group1.group_uuid, node.group2.group_uuid, "fuzz-new-group"]) | string_strategy(string_pool))
    if method in REMOTE_INNER:
        inner_class = getattr(common_pb2, REMOTE_INNER[method])
        inner = draw(st.sampled_from(node.valid_inner[method]) | message_strategy(inner_class.DESCRIPTOR, pools, depth=1))
        if "group_uuid" in inner_class.DESCRIPTOR.fields_by_name and draw(st.booleans()):
            inner.group_uuid = group
        request_class, field = REMOTE_REQUESTS[method]
        inner_signer = draw(st.sampled_from([signer, "stranger"]))
        request = request_class(to_agent=draw(st.just(node.alice) | agents),
                                **{field: node.signed(inner_signer, inner.SerializeToString())})
    elif method == "ReceiveGroupMessage":
        entry = common_pb2.MessageEntry(
            author=draw(st.just(key) | agents), receiver=draw(st.lists(agents, max_size=3)), group_uuid=group,
            payload=draw(st.just("") | string_strategy(string_pool)), time_sent=draw(st.integers(-(2 ** 63), 2 ** 63 - 1)),
            encrypted=draw(st.sampled_from([node.encrypted, common_pb2.EncryptedPayload()]) |
                           message_strategy(common_pb2.EncryptedPayload.DESCRIPTOR, pools, depth=1)))
        if draw(st.booleans()):
            entry.time_received = draw(st.integers(0, 2 ** 63 - 1))
        body = entry.SerializeToString()
        inner_signer = draw(st.sampled_from([signer, "stranger"]))
        request = lobby_pb2.ReceiveGroupMessageRequest(to_agent=draw(st.just(node.alice) | agents),
                                                       message=node.signed(inner_signer, body))
    else:
        props = draw(st.sampled_from(message_pool["kizuna.v1.GroupProperties"]) |
                     message_strategy(common_pb2.GroupProperties.DESCRIPTOR, pools, depth=2))
        invite = common_pb2.Invite(
            group_uuid=draw(st.just(props.group_uuid) | st.just(group)),
            initial_members=list(props.initial_members) if draw(st.booleans()) else draw(st.lists(agents, max_size=3)),
            timestamp=now_micros(), properties=props,
            dna_hash=draw(st.sampled_from([dna.group_dna_hash(props)]) | bytes_strategy(bytes_pool)))
        inner_signer = draw(st.sampled_from([signer, "stranger"]))
        request = lobby_pb2.ReceiveInviteRequest(to_agent=draw(st.just(node.alice) | agents),
                                                 invite=node.signed(inner_signer, invite.SerializeToString()))
    other = "ReceiveInvite" if method != "ReceiveInvite" else "ReceiveGroupMessage"
    return node.remote_call(
        signer, draw(st.sampled_from([method, method, other, ""])), request,
        target=draw(st.just(node.alice) | agents),
        timestamp=draw(st.sampled_from([None, None, now_micros() - 10 ** 9, now_micros() + 10 ** 9, 0])),
        nonce=draw(st.sampled_from([None, None, b"", b"n" * 15, b"n" * 17])),
    )


# ---------------------------------------------------------------- the property


def call(node, service, method, raw: bytes, metadata):
    """(code, details) of one call sent as raw bytes; Signals is opened, read once, cancelled."""
    COUNTS[service] = COUNTS.get(service, 0) + 1
    fn = node.raw(service, method)
    try:
        if SERVICES[service].methods_by_name[method].server_streaming:
            stream = fn(raw, metadata=metadata, timeout=RPC_TIMEOUT)
            try:
                next(stream)
            finally:
                stream.cancel()
        else:
            fn(raw, metadata=metadata, timeout=RPC_TIMEOUT)
    except grpc.RpcError as exc:
        return exc.code(), exc.details()
    return grpc.StatusCode.OK, ""


class Tracker:
    """Checks each answer, and that the stored state after each call that may not change it
    (every call of a read-only RPC, a refused call of any other) is what it was before it;
    a successful call of a state-changing RPC may change it.

    Op counts also grow by background work of the network's own (an outbox delivery, a
    peer's catch-up retiring links, the agent infos every lobby publishes again a few
    seconds after it starts): growth of op counts alone is blamed on a call only if sending
    the same request again, from a settled state, changes the state again."""

    def __init__(self, node, service, method):
        self.node, self.service, self.method = node, service, method
        self.parts = ALL_RPCS[service][method]
        self.watch = ("conductor", "lobby", "group_dht")
        self.before = node.snapshot(self.watch)
        self.successes = 0
        self.last = None

    def send(self, raw: bytes, metadata):
        note(f"{self.method} request bytes ({len(raw)}): {raw[:300]!r}{'...' if len(raw) > 300 else ''}")
        note(f"metadata: {metadata!r}")
        code, details = call(self.node, self.service, self.method, raw, metadata)
        note(f"answer: {code.name}: {details!r}")
        self.last = (raw, metadata)
        assert code not in BAD_CODES, (
            f"{self.service}.{self.method} answered {code.name}: {details!r}\n"
            f"--- alice-{self.service}.log (tail) ---\n{self.node.log_tail(self.service)}")
        if code != grpc.StatusCode.OK:
            assert details and details.strip(), f"{self.method} answered {code.name} without details"
        if code == grpc.StatusCode.OK:
            self.successes += 1
        if not self.parts:
            self.check_unchanged(raw, metadata, f"the read-only {self.method} ({code.name}: {details})")
        elif code == grpc.StatusCode.OK:
            self.before = self.settled()
        else:
            self.check_unchanged(raw, metadata, f"a refused {self.method} ({code.name}: {details})")

    def check_unchanged(self, raw: bytes, metadata, what: str):
        """The stored state is still `self.before`, but for op counts that grew in the
        background (see the class)."""
        after = self.node.snapshot(self.watch)
        if after != self.before and only_op_counts_grew(self.before, after):
            self.before = self.settled()
            again_code, _ = call(self.node, self.service, self.method, raw, metadata)
            after = self.node.snapshot(self.watch)
            if again_code == grpc.StatusCode.OK and self.parts:
                self.before = after  # it succeeded this time, and so may change the state
                return
        assert_same(self.before, after, what)

    def settled(self, quiet=0.15, limit=3.0):
        """The state once what a successful call set going (deliveries, DHT joins) is done:
        the same in snapshots `quiet` seconds apart."""
        deadline = time.monotonic() + limit
        state = self.node.snapshot(self.watch)
        while time.monotonic() < deadline:
            time.sleep(quiet)
            again = self.node.snapshot(self.watch)
            if again == state:
                return state
            state = again
        return state

    def finish(self):
        if self.parts and self.successes:
            self.before = self.settled()
        for service in ("conductor", "lobby", "group_dht"):
            assert self.node.healthy(service), (
                f"alice's {service} is not SERVING after fuzzing {self.method}\n{self.node.log_tail(service)}")
        if not self.parts and self.last is not None:
            # Nothing a call set going in the background (after its own check) changed the state either.
            self.check_unchanged(*self.last, f"the read-only {self.method}")


def only_op_counts_grew(before, after) -> bool:
    if any(before[k] != after.get(k) for k in before if k != "spaces"):
        return False
    old = {s[:3]: s[3] for s in before["spaces"]}
    new = {s[:3]: s[3] for s in after["spaces"]}
    return old.keys() == new.keys() and all(new[k] >= old[k] for k in old)


def _short(value):
    return value.hex()[:16] if isinstance(value, bytes) else (
        tuple(_short(v) for v in value) if isinstance(value, (tuple, list)) else value)


def assert_same(before, after, what):
    changed = sorted(k for k in before if before[k] != after.get(k))
    lines = []
    for key in changed:
        old, new = before[key], after.get(key)
        if isinstance(old, list) and isinstance(new, list):
            lines.append(f"  {key}: gone {[_short(v) for v in old if v not in new]}, "
                         f"new {[_short(v) for v in new if v not in old]}")
        else:
            lines.append(f"  {key}: {_short(old)!r} -> {_short(new)!r}")
    assert not changed, f"{what} changed the stored state:\n" + "\n".join(lines)[:3000]


FUZZ_SETTINGS = dict(
    deadline=None, derandomize=True, database=None, print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large, HealthCheck.filter_too_much, HealthCheck.large_base_example],
)

# Each RPC's three properties run together, RPC by RPC in the order of ALL_RPCS.
KINDS = ("random", "mutated", "wire")
CASES = [(service, method, kind) for service, rpcs in ALL_RPCS.items() for method in rpcs for kind in KINDS]
IDS = [f"{s}.{m}-{k}" for s, m, k in CASES]


@pytest.mark.parametrize(("service", "method", "kind"), CASES, ids=IDS)
def test_rpc_fuzz(node, service, method, kind):
    {"random": random_requests, "mutated": mutated_valid_requests, "wire": malformed_wire_bytes}[kind](
        node, service, method)


def random_requests(node, service, method):
    """Random requests built from the request descriptor (and, for the call_remote targets
    and Publish, random content correctly signed), with valid, missing and garbage credentials."""
    descriptor = SERVICES[service].methods_by_name[method].input_type
    pools = node.pools()
    requests = message_strategy(descriptor, pools)
    if method in REMOTE_REQUESTS or method == "Publish":
        requests = st.one_of(requests, signed_random(node, method, pools), signed_random(node, method, pools))
    tracker = Tracker(node, service, method)

    @settings(max_examples=RANDOM_EXAMPLES, **FUZZ_SETTINGS)
    @given(request=requests, metadata=metadata_strategy(node, service))
    def prop(request, metadata):
        tracker.send(request.SerializeToString(), metadata)

    prop()
    tracker.finish()


def mutated_valid_requests(node, service, method):
    """Valid requests with fields swapped, replaced from the pool, cleared or merged with
    random ones; every one still parses, so each reaches the servicer."""
    descriptor = SERVICES[service].methods_by_name[method].input_type
    pools = node.pools()
    bases = node.valid_requests(method)
    tracker = Tracker(node, service, method)

    @settings(max_examples=MUTATED_EXAMPLES, **FUZZ_SETTINGS)
    @given(raw=st.one_of(st.sampled_from([b.SerializeToString() for b in bases]),
                         parseable_mutation(bases, pools, descriptor)),
           metadata=metadata_strategy(node, service))
    def prop(raw, metadata):
        tracker.send(raw, metadata)

    prop()
    tracker.finish()


def malformed_wire_bytes(node, service, method):
    """Valid requests with their bytes damaged (need not parse): a request that is no
    request of its type is INVALID_ARGUMENT (or refused for its credentials), never
    INTERNAL or UNKNOWN."""
    bases = node.valid_requests(method)
    request_class = message_class(SERVICES[service].methods_by_name[method].input_type)
    tracker = Tracker(node, service, method)

    @settings(max_examples=WIRE_EXAMPLES, **FUZZ_SETTINGS)
    @given(raw=wire_mutation(bases), metadata=metadata_strategy(node, service))
    def prop(raw, metadata):
        try:
            request_class.FromString(raw)
            note("these bytes parse as the request")
        except DecodeError:
            note("these bytes do not parse as the request")
        tracker.send(raw, metadata)

    prop()
    tracker.finish()


def test_every_rpc_has_its_own_entry():
    """Each RPC of the three services has its place, what it may change and valid requests
    in this file (an RPC added later is still fuzzed, with defaults, until it has)."""
    missing = [f"{s}.{m}" for s, service in SERVICES.items() for m in service.methods_by_name if m not in TABLES[s]]
    assert not missing, f"RPCs fuzzed only with defaults (add them to the tables and valid_requests): {missing}"
