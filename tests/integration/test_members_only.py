"""A group's space is its members' nodes' alone, on real processes: a node without a
member's claim is never one of its holders, and reads of it (Get, GetLinks, FetchOps,
ListSpaces) are answered to members' nodes only, not to an outsider with a valid TLS
certificate and node info, nor to the node of a member since removed. Each test here
failed on the code before the claims and the caller proofs."""

import base64

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kizuna import net
from kizuna.v1 import group_dht_pb2, group_dht_pb2_grpc
from kizuna_node.common import anchors, dna, space_claims, tls
from kizuna_node.common.hashing import blake2b_256, now_micros
from kizuna_node.group_dht import callers, peers
from tests.helpers import Agent, eventually, run
from tests.integration.network import (create_group, make_clients, make_network, outcomes_by_name, peer_channel,
                                       status_name, stop_node)

pytestmark = pytest.mark.integration

NAMES = ("alice", "bobby", "charlie")


class FakeNode(group_dht_pb2_grpc.GroupDhtServicer):
    """A node as anyone can run one: a key and a TLS certificate of its own, a server that
    answers peer exchanges (so other nodes reach it) and takes every write it is sent
    (counted), and a node info claiming the Lobby space and a group space, the group claim
    signed by an agent that is no member."""

    def __init__(self, tls_dir, space: bytes = b""):
        self.key = Ed25519PrivateKey.generate()
        self.public = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.node_id = blake2b_256(self.public)
        self.tls = tls.load_or_create(tls_dir)
        self.space = space
        self.published: list[bytes] = []  # the spaces of the ops it was sent
        self.server = None
        self.address = ""

    def sign_bytes(self, data: bytes) -> bytes:
        return self.key.sign(data)

    def info(self) -> group_dht_pb2.NodeInfo:
        spaces = [dna.LOBBY_DNA_HASH] + ([self.space] if self.space else [])
        claims = [space_claims.make_claim(Agent().key.sign, Agent().public, self.node_id, self.space)] if self.space else []
        info = group_dht_pb2.NodeInfo(node_id=self.node_id, address=self.address, spaces=spaces, timestamp=now_micros(),
                                      public_key=self.public, tls_certificate=self.tls.certificate_der, claims=claims)
        info.signature = self.key.sign(peers.signing_bytes(info))
        return info

    async def ExchangePeers(self, request, context):
        return group_dht_pb2.ExchangePeersResponse(node=self.info())

    async def Publish(self, request, context):
        self.published.append(group_dht_pb2.Op.FromString(request.op.body).space)
        return group_dht_pb2.PublishResponse(stored=1, holders=1)

    async def start(self) -> None:
        self.server = grpc.aio.server()
        group_dht_pb2_grpc.add_GroupDhtServicer_to_server(self, self.server)
        self.address = f"127.0.0.1:{self.server.add_secure_port('127.0.0.1:0', self.tls.server_credentials())}"
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop(None)

    async def introduce_to(self, dht) -> None:
        """Tells a node's DHT (a stub on its peer port) about itself, as any node may."""
        request = group_dht_pb2.ExchangePeersRequest()
        getattr(request, "from").CopyFrom(self.info())
        await dht.ExchangePeers(request, timeout=10)


def _spaces(network, name) -> dict[bytes, group_dht_pb2.Space]:
    """The spaces of a node's DHT as its operator sees them (node-local, with the node secret)."""
    with net.node_local_channel(network.node(name)["group_dht"], net.secret_path(network.node(name))) as channel:
        listed = group_dht_pb2_grpc.GroupDhtStub(channel).ListSpaces(group_dht_pb2.ListSpacesRequest(), timeout=10)
    return {s.space: s for s in listed.spaces}


def test_fake_nodes_that_are_reachable_but_hold_no_members_claim_never_hold_the_group_space(tmp_path):
    with make_network(tmp_path) as network:
        async def scenario():
            async with make_clients(network, NAMES) as clients:
                created = await create_group(clients, "Claimed", ["bobby", "charlie"])
                group, space = created.group.group_uuid, created.group.dna_hash
                fakes = [FakeNode(tmp_path / f"fake-tls-{i}", space) for i in range(6)]
                for fake in fakes:
                    await fake.start()
                try:
                    async with peer_channel(network.node("alice"), "dht") as channel:
                        for fake in fakes:
                            await fake.introduce_to(group_dht_pb2_grpc.GroupDhtStub(channel))
                    fake_ids = {f.node_id for f in fakes}
                    # alice's DHT reaches them (they count for the Lobby space)...
                    await eventually(lambda: fake_ids <= set(_spaces(network, "alice")[dna.LOBBY_DNA_HASH].nodes),
                                     "alice's DHT reaches every fake node", 30, interval=0.2)
                    # ...but not one of them for the group's space: their claims are by no member
                    group_nodes = set(_spaces(network, "alice")[space].nodes)
                    await stop_node(tmp_path, "charlie", kill=True)
                    answer = await clients["alice"].send(group, "for charlie, through the DHT")
                finally:
                    for fake in fakes:
                        await fake.stop()
                return answer, group_nodes, fake_ids, [s for f in fakes for s in f.published], space
        answer, group_nodes, fake_ids, published, space = run(scenario())
        assert not group_nodes & fake_ids
        assert len(group_nodes) == 3  # alice's, bobby's and charlie's nodes
        outcomes = outcomes_by_name(network, answer.outcomes)
        assert status_name(outcomes["bobby"].status) == "DELIVERED"
        assert status_name(outcomes["charlie"].status) == "STORED_IN_DHT"  # on the real holders
        assert space not in published  # no fake was given anything of the group's space
        log = (tmp_path / "logs" / "alice-group_dht.log").read_text()
        assert "without a member's claim: not counted there" in log


async def _read_as(fake: FakeNode, node: dict, method: str, request):
    """`method` on a node's DHT peer port, called as the fake node with a fresh caller proof;
    the answer, or the refusal as (code name, details)."""
    async with peer_channel(node, "dht") as channel:
        metadata = callers.caller_metadata(fake, tls.load(node["tls_dir"]).certificate_der, method)
        try:
            return await getattr(group_dht_pb2_grpc.GroupDhtStub(channel), method)(request, metadata=metadata,
                                                                                    timeout=10)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name, exc.details()


def test_an_outsider_node_reads_the_lobby_space_but_no_group_space_and_a_removed_members_node_loses_it(tmp_path):
    with make_network(tmp_path) as network:
        alice_node = network.node("alice")

        async def scenario():
            async with make_clients(network, NAMES) as clients:
                created = await create_group(clients, "Private", ["bobby", "charlie"])
                group, space = created.group.group_uuid, created.group.dna_hash
                await clients["alice"].rename(group, "Private still")  # an update, linked from the group's anchor
                updates = anchors.group_updates_anchor(space)
                outsider = FakeNode(tmp_path / "outsider-tls")  # a node in the Lobby space only
                await outsider.start()
                try:
                    seen = await _outsiders_reads(outsider, alice_node, space, network.agent_key("bobby"))
                finally:
                    await outsider.stop()

                def charlies_links():
                    """The group's update links as charlie's node reads them (asking the holders it does not hold them)."""
                    node = network.node("charlie")
                    with net.node_local_channel(node["group_dht"], net.secret_path(node)) as channel:
                        try:
                            return list(group_dht_pb2_grpc.GroupDhtStub(channel).GetLinks(
                                group_dht_pb2.GetLinksRequest(space=space, base=updates), timeout=10).links)
                        except grpc.RpcError as exc:
                            return exc.code().name
                seen["charlie member"] = charlies_links()
                await clients["alice"].remove_members(group, [base64.b64encode(network.agent_key("charlie")).decode()])
                await eventually(lambda: space not in _spaces(network, "charlie"), "charlie's node leaves the space", 30,
                                 interval=0.2)
                seen["charlie removed"] = charlies_links()
                return seen, space
        seen, space = run(scenario())
        for what in ("links", "get", "fetch"):
            code, details = seen[what]
            assert code == "PERMISSION_DENIED", (what, seen[what])
            assert "is read by its members' nodes only" in details
        assert isinstance(seen["lobby"], group_dht_pb2.GetLinksResponse)  # the Lobby space stays readable
        assert [s.space for s in seen["listed"].spaces] == [dna.LOBBY_DNA_HASH]
        assert seen["anonymous"][0] == "UNAUTHENTICATED" and callers.METADATA_KEY in seen["anonymous"][1]
        assert isinstance(seen["charlie member"], list) and len(seen["charlie member"]) >= 1
        assert seen["charlie removed"] in ([], "FAILED_PRECONDITION"), seen["charlie removed"]


async def _anonymous_get(node: dict, space: bytes):
    """A Get on the node's DHT peer port with no caller proof: TLS alone says nothing of who calls."""
    async with peer_channel(node, "dht") as channel:
        try:
            return await group_dht_pb2_grpc.GroupDhtStub(channel).Get(
                group_dht_pb2.GetRequest(space=space, address=b"a" * 32, local_only=True), timeout=10)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name, exc.details()


async def _outsiders_reads(outsider: FakeNode, node: dict, space: bytes, someone: bytes) -> dict:
    """What a node's DHT answers the outsider, which told it who it is first, and a caller with no proof."""
    async with peer_channel(node, "dht") as channel:
        await outsider.introduce_to(group_dht_pb2_grpc.GroupDhtStub(channel))
    updates = anchors.group_updates_anchor(space)
    return {
        "links": await _read_as(outsider, node, "GetLinks",
                                group_dht_pb2.GetLinksRequest(space=space, base=updates, local_only=True)),
        "get": await _read_as(outsider, node, "Get", group_dht_pb2.GetRequest(space=space, address=b"a" * 32,
                                                                               local_only=True)),
        "fetch": await _read_as(outsider, node, "FetchOps", group_dht_pb2.FetchOpsRequest(space=space,
                                                                                           op_hashes=[b"h" * 32])),
        "lobby": await _read_as(outsider, node, "GetLinks", group_dht_pb2.GetLinksRequest(
            space=dna.LOBBY_DNA_HASH, base=anchors.invites_anchor(someone), local_only=True)),
        "listed": await _read_as(outsider, node, "ListSpaces", group_dht_pb2.ListSpacesRequest()),
        "anonymous": await _anonymous_get(node, space),
    }
