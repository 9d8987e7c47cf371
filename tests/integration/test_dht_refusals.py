"""Invalid ops published to the DHT of three real nodes, in the space of a real group.

alice creates a group with bobby and charlie through the lobbies, so all three nodes' DHTs
are in its space. The attacker builds ops by hand: with keys of its own (outsiders) or with
real member signatures from the members' conductors (Sign with their node secrets, as a
compromised node could). Every invalid op is refused with PERMISSION_DENIED, on the node it
is published to and on each node asked to store it locally, and is never served: neither
Get nor GetLinks on any node shows it, with or without local_only.
"""

import uuid

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kizuna import net
from kizuna.v1 import common_pb2, conductor_pb2, conductor_pb2_grpc, group_dht_pb2, group_dht_pb2_grpc
from kizuna_node.common import anchors
from kizuna_node.common.hashing import blake2b_256, now_micros
from tests.integration.network import create_group, make_clients, make_network, run
from tests.helpers import eventually

pytestmark = pytest.mark.integration

NAMES = ("alice", "bobby", "charlie")
RPC_TIMEOUT = 10.0
CONVERGE_TIMEOUT = 20.0


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    with make_network(tmp_path_factory.mktemp("dht-refusals-net")) as network:
        yield network


class Space:
    """The group's space as the attacker sees it, with a stub per node's DHT and conductor."""

    def __init__(self, network, dna_hash: bytes, properties: common_pb2.GroupProperties):
        self.network = network
        self.dna_hash = dna_hash
        self.properties = properties
        self._channels = {}
        self.dhts = {name: group_dht_pb2_grpc.GroupDhtStub(self._channel(network.dht_address(name), name))
                     for name in NAMES}

    def _channel(self, address, node=None):
        """A channel to a node's own service; for `node`'s DHT, its calls carry the node's secret."""
        if address not in self._channels:
            self._channels[address] = grpc.insecure_channel(address) if node is None else net.node_local_channel(
                address, net.secret_path(self.network.node(node)))
        return self._channels[address]

    def close(self):
        for channel in self._channels.values():
            channel.close()

    def conductor(self, name):
        return conductor_pb2_grpc.ConductorStub(self._channel(self.network.conductor_address(name)))

    # signing

    def op(self, signer, **fields) -> group_dht_pb2.Op:
        fields.setdefault("author", self.key(signer))
        fields.setdefault("timestamp", now_micros())
        return group_dht_pb2.Op(space=self.dna_hash, **fields)

    def key(self, signer) -> bytes:
        return signer.public if isinstance(signer, Outsider) else self.network.agent_key(signer)

    def sign(self, signer, body: bytes) -> bytes:
        if isinstance(signer, Outsider):
            return signer.sign(body)
        answer = self.conductor(signer).Sign(
            conductor_pb2.SignRequest(agent=self.network.agent_key(signer), data=body),
            metadata=self.network.conductor_metadata(signer), timeout=RPC_TIMEOUT,
        )
        return answer.signature

    def signed(self, signer, op: group_dht_pb2.Op) -> common_pb2.Signed:
        body = op.SerializeToString()
        return common_pb2.Signed(body=body, signature=self.sign(signer, body), author=self.key(signer))

    # DHT calls

    def publish(self, node: str, signed: common_pb2.Signed, local_only: bool = False):
        return self.dhts[node].Publish(group_dht_pb2.PublishRequest(op=signed, local_only=local_only), timeout=RPC_TIMEOUT)

    def refused_everywhere(self, signed: common_pb2.Signed, *words: str) -> str:
        """Publishing `signed` to bobby's node, and storing it locally on each node, is
        PERMISSION_DENIED with `words` in the message; returns bobby's message."""
        with pytest.raises(grpc.RpcError) as caught:
            self.publish("bobby", signed)
        assert_denied(caught.value, *words)
        for node in NAMES:
            with pytest.raises(grpc.RpcError) as caught_locally:
                self.publish(node, signed, local_only=True)
            assert_denied(caught_locally.value, *words)
        return caught.value.details()

    def get_everywhere(self, address: bytes) -> dict:
        """{(node, local_only): found} of Get on every node."""
        return {
            (node, local): stub.Get(group_dht_pb2.GetRequest(space=self.dna_hash, address=address, local_only=local),
                                    timeout=RPC_TIMEOUT).found
            for node, stub in self.dhts.items() for local in (True, False)
        }

    def links_everywhere(self, base: bytes, tag_prefix: bytes = b"") -> dict:
        """{(node, local_only): GetLinksResponse} of GetLinks on every node."""
        return {
            (node, local): stub.GetLinks(group_dht_pb2.GetLinksRequest(
                space=self.dna_hash, base=base, tag_prefix=tag_prefix, local_only=local), timeout=RPC_TIMEOUT)
            for node, stub in self.dhts.items() for local in (True, False)
        }

    def assert_never_served(self, *signed_ops: common_pb2.Signed):
        """No node serves any of these ops: not by Get (entries) nor by GetLinks (links)."""
        for signed in signed_ops:
            op = group_dht_pb2.Op.FromString(signed.body)
            if op.kind == group_dht_pb2.STORE_ENTRY:
                found = self.get_everywhere(blake2b_256(op.entry))
                assert not any(found.values()), found
            else:
                for where, answer in self.links_everywhere(op.base).items():
                    served = {link.address for link in answer.links}
                    assert blake2b_256(signed.body) not in served, where
                    assert not any(link.create.body == signed.body for link in answer.links), where
                    if op.kind == group_dht_pb2.DELETE_LINK:
                        assert op.link_address not in set(answer.deleted), where


class Outsider:
    """An ed25519 key of the attacker's own: not a member of the group."""

    def __init__(self):
        self._key = Ed25519PrivateKey.generate()
        self.public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)


def assert_denied(error: grpc.RpcError, *words: str):
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED, f"{error.code().name}: {error.details()}"
    for word in words:
        assert word in error.details(), error.details()




@pytest.fixture(scope="module")
def space(network):
    """The real space of a group alice made with bobby and charlie through the lobbies;
    every node's DHT is in it and knows the other two are."""

    async def make():
        async with make_clients(network, NAMES) as clients:
            created = await create_group(clients, "DHT refusals", ["bobby", "charlie"])
            group = created.group.group_uuid
            details = {g.group_uuid: g for g in (await clients["alice"].groups()).details}
            return group, details[group].dna_hash

    group, dna_hash = run(make())
    with grpc.insecure_channel(network.conductor_address("alice")) as channel:
        cells = conductor_pb2_grpc.ConductorStub(channel).ListCells(
            conductor_pb2.ListCellsRequest(agent=network.agent_key("alice")),
            metadata=network.conductor_metadata("alice"), timeout=RPC_TIMEOUT,
        ).cells
    properties = next(c.properties for c in cells if c.dna_hash == dna_hash)
    assert properties.group_uuid == group
    assert set(properties.initial_members) == {network.agent_key(n) for n in NAMES}
    result = Space(network, dna_hash, properties)

    def everyone_knows_everyone():
        for stub in result.dhts.values():
            listed = stub.ListSpaces(group_dht_pb2.ListSpacesRequest(), timeout=RPC_TIMEOUT)
            if dna_hash not in {s.space for s in listed.spaces}:
                return False
            if sum(1 for p in listed.peers if dna_hash in p.spaces) < 2:
                return False
        return True

    eventually(everyone_knows_everyone, "every node's DHT is in the group's space and knows the other two are")
    yield result
    result.close()


def unique(what: str) -> bytes:
    return f"{what} {uuid.uuid4()}".encode()


def test_control_a_members_valid_op_is_stored_by_all_three_and_served_everywhere(space):
    """The same path the refusals take, with a valid op: so a refusal below is the
    validation's doing, not a broken path."""
    entry = unique("valid")
    published = space.publish("bobby", space.signed("alice", space.op("alice", kind=group_dht_pb2.STORE_ENTRY,
                                                                      entry_type="message", entry=entry)))
    assert (published.stored, published.holders) == (3, 3)
    assert all(space.get_everywhere(blake2b_256(entry)).values())


# ---------------------------------------------------------------- a non-member's ops


def test_entry_by_a_non_member_is_refused_by_every_node_and_never_served(space):
    outsider = Outsider()
    signed = space.signed(outsider, space.op(outsider, kind=group_dht_pb2.STORE_ENTRY,
                                             entry_type="message", entry=unique("outsider entry")))
    space.refused_everywhere(signed, "not a member of this group")
    space.assert_never_served(signed)


def test_link_by_a_non_member_into_bobbys_inbox_is_refused_by_every_node_and_never_listed(space, network):
    outsider = Outsider()
    signed = space.signed(outsider, space.op(
        outsider, kind=group_dht_pb2.CREATE_LINK, base=anchors.inbox_anchor(network.agent_key("bobby")),
        target=blake2b_256(unique("outsider target")), tag=b"refusal-test"))
    space.refused_everywhere(signed, "not a member of this group")
    space.assert_never_served(signed)


def test_link_delete_by_a_non_member_is_refused_and_the_link_stays(space):
    base = anchors.anchor("refusals", unique("base"))
    create = space.signed("alice", space.op("alice", kind=group_dht_pb2.CREATE_LINK, base=base,
                                            target=blake2b_256(b"t"), tag=b"refusal-test"))
    space.publish("alice", create)
    outsider = Outsider()
    delete = space.signed(outsider, space.op(outsider, kind=group_dht_pb2.DELETE_LINK, base=base,
                                             link_address=blake2b_256(create.body)))
    space.refused_everywhere(delete, "not a member of this group")
    space.assert_never_served(delete)
    assert_link_listed_everywhere(space, base, create)


# ---------------------------------------------------------------- tampered ops


def _tampered_entry(space):
    """alice signs one op; the attacker changes its entry afterwards."""
    signed = space.signed("alice", space.op("alice", kind=group_dht_pb2.STORE_ENTRY, entry_type="message",
                                            entry=unique("what alice signed")))
    op = group_dht_pb2.Op.FromString(signed.body)
    original = common_pb2.Signed(body=signed.body, signature=signed.signature, author=signed.author)
    op.entry = unique("what the attacker wants stored")
    signed.body = op.SerializeToString()
    return signed, original


def _signature_over_another_op(space):
    """alice's real signature over one op, attached to a different op of hers."""
    signed_a = space.signed("alice", space.op("alice", kind=group_dht_pb2.STORE_ENTRY, entry_type="message",
                                              entry=unique("op A")))
    body_b = space.op("alice", kind=group_dht_pb2.STORE_ENTRY, entry_type="message",
                      entry=unique("op B")).SerializeToString()
    return common_pb2.Signed(body=body_b, signature=signed_a.signature, author=signed_a.author), signed_a


def _tampered_link_target(space, network):
    """alice's real link into bobby's inbox; the attacker points it elsewhere afterwards."""
    signed = space.signed("alice", space.op(
        "alice", kind=group_dht_pb2.CREATE_LINK, base=anchors.inbox_anchor(network.agent_key("bobby")),
        target=blake2b_256(unique("alice's target")), tag=b"refusal-test"))
    original = common_pb2.Signed(body=signed.body, signature=signed.signature, author=signed.author)
    op = group_dht_pb2.Op.FromString(signed.body)
    op.target = blake2b_256(unique("the attacker's target"))
    signed.body = op.SerializeToString()
    return signed, original


def _signature_by_another_member(space):
    """bobby's real signature, presented as alice's (author swapped after signing)."""
    signed = space.signed("bobby", space.op("bobby", kind=group_dht_pb2.STORE_ENTRY, entry_type="message",
                                            entry=unique("bobby's op")))
    original = common_pb2.Signed(body=signed.body, signature=signed.signature, author=signed.author)
    signed.author = space.network.agent_key("alice")
    return signed, original


@pytest.mark.parametrize("tamper", ["entry_changed_after_signing", "signature_over_another_op",
                                    "link_target_changed_after_signing", "signer_swapped_after_signing"])
def test_tampered_op_is_refused_by_every_node_and_never_served(space, network, tamper):
    make = {
        "entry_changed_after_signing": lambda: _tampered_entry(space),
        "signature_over_another_op": lambda: _signature_over_another_op(space),
        "link_target_changed_after_signing": lambda: _tampered_link_target(space, network),
        "signer_swapped_after_signing": lambda: _signature_by_another_member(space),
    }[tamper]
    tampered, original = make()
    space.refused_everywhere(tampered, "signature does not verify")
    # Neither the tampered op nor the one that was really signed (never published) is served.
    space.assert_never_served(tampered, original)


def test_op_whose_body_names_another_author_than_its_signer_is_refused_and_never_served(space):
    """alice signs (validly, as herself) an op whose body says bobby wrote it."""
    op = space.op("alice", kind=group_dht_pb2.STORE_ENTRY, entry_type="message", entry=unique("claims bobby"),
                  author=space.network.agent_key("bobby"))
    signed = space.signed("alice", op)
    space.refused_everywhere(signed, "op author is not the agent that signed it")
    space.assert_never_served(signed)


# ---------------------------------------------------------------- who may delete a link


def assert_link_listed_everywhere(space, base: bytes, create: common_pb2.Signed):
    address = blake2b_256(create.body)
    for where, answer in space.links_everywhere(base).items():
        assert address in {link.address for link in answer.links}, where
        assert address not in set(answer.deleted), where


def assert_link_gone_everywhere(space, base: bytes, create: common_pb2.Signed):
    address = blake2b_256(create.body)
    for where, answer in space.links_everywhere(base).items():
        assert address not in {link.address for link in answer.links}, where


def _link(space, author: str, base: bytes) -> common_pb2.Signed:
    create = space.signed(author, space.op(author, kind=group_dht_pb2.CREATE_LINK, base=base,
                                           target=blake2b_256(unique("target")), tag=b"refusal-test"))
    published = space.publish(author, create)
    assert (published.stored, published.holders) == (3, 3)
    return create


def _delete(space, deleter: str, base: bytes, create: common_pb2.Signed) -> common_pb2.Signed:
    return space.signed(deleter, space.op(deleter, kind=group_dht_pb2.DELETE_LINK, base=base,
                                          link_address=blake2b_256(create.body)))


def test_member_deleting_another_members_link_outside_their_inbox_is_refused_and_the_link_stays(space):
    base = anchors.anchor("refusals", unique("a plain base"))
    create = _link(space, "alice", base)
    delete = _delete(space, "charlie", base, create)
    space.refused_everywhere(delete, "only a link's author, or the agent whose inbox it is in, may delete it")
    space.assert_never_served(delete)
    assert_link_listed_everywhere(space, base, create)


def test_member_deleting_a_link_in_someone_elses_inbox_is_refused_and_the_link_stays(space, network):
    """charlie is neither the author (alice) nor the inbox's owner (bobby)."""
    base = anchors.inbox_anchor(network.agent_key("bobby"))
    create = _link(space, "alice", base)
    delete = _delete(space, "charlie", base, create)
    space.refused_everywhere(delete, "only a link's author, or the agent whose inbox it is in, may delete it")
    space.assert_never_served(delete)
    assert_link_listed_everywhere(space, base, create)


def test_control_the_links_author_and_the_inbox_owner_may_delete_it(space, network):
    base = anchors.anchor("refusals", unique("a plain base"))
    own = _link(space, "alice", base)
    space.publish("charlie", _delete(space, "alice", base, own))
    assert_link_gone_everywhere(space, base, own)

    inbox = anchors.inbox_anchor(network.agent_key("bobby"))
    in_bobbys_inbox = _link(space, "alice", inbox)
    space.publish("alice", _delete(space, "bobby", inbox, in_bobbys_inbox))
    assert_link_gone_everywhere(space, inbox, in_bobbys_inbox)


def test_third_party_delete_published_before_its_link_does_not_delete_the_link(space):
    base = anchors.anchor("refusals", unique("a plain base"))
    create = space.signed("alice", space.op("alice", kind=group_dht_pb2.CREATE_LINK, base=base,
                                            target=blake2b_256(unique("target")), tag=b"refusal-test"))
    delete = _delete(space, "charlie", base, create)
    try:
        space.publish("bobby", delete)
    except grpc.RpcError as exc:
        # refused: nobody holding the base can check who may delete a link it has not seen
        assert exc.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION), exc.details()
    space.publish("alice", create)
    assert_link_listed_everywhere(space, base, create)
