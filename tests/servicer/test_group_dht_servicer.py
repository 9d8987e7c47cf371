"""The GroupDht RPC layer on a real grpc.aio server on port 0: statuses for bad input,
the max-spaces refusal, a publish/read round trip, and reads between nodes over TLS (a
caller proves its node; a group space is read by its members' nodes only)."""

import asyncio

import grpc
import pytest

from kizuna.v1 import common_pb2, group_dht_pb2, group_dht_pb2_grpc
from kizuna_node.common import dna, group_state, tls
from kizuna_node.common.channels import ChannelPool
from kizuna_node.common.errors import PermissionDenied
from kizuna_node.common.hashing import blake2b_256
from kizuna_node.group_dht import callers
from kizuna_node.group_dht.dht import GroupDhtNode
from kizuna_node.group_dht.identity import NodeIdentity
from kizuna_node.group_dht.ports import Endpoint, GrpcTransport
from kizuna_node.group_dht.server import bootstrap_addresses
from kizuna_node.group_dht.servicer import GroupDhtServicer
from kizuna_node.group_dht.store import DhtStore
from tests.helpers import Agent, async_test

SECRET = "test-node-secret"


class _WithSecret(grpc.aio.UnaryUnaryClientInterceptor):
    """Adds the node's secret to every call, as the node's own conductor and lobby do."""

    async def intercept_unary_unary(self, continuation, details, request):
        metadata = grpc.aio.Metadata(*(details.metadata or ()), ("x-kizuna-node-secret", SECRET))
        return await continuation(details._replace(metadata=metadata), request)


class Served:
    """One node behind a real server on a free port, and a stub to it."""

    def __init__(self, data_dir, **options):
        self.store = DhtStore(data_dir)
        self.pool = ChannelPool()
        node_tls = tls.load_or_create(f"{data_dir}-tls")
        self.certificate = node_tls.certificate_der
        self.node = GroupDhtNode(self.store, GrpcTransport(self.pool, NodeIdentity(self.store)),
                                 tls_certificate=node_tls.certificate_der, **options)
        self.server = grpc.aio.server()
        group_dht_pb2_grpc.add_GroupDhtServicer_to_server(GroupDhtServicer(self.node, SECRET), self.server)
        # other nodes call this one over TLS; the test's own stub over a plaintext port, as a lobby does
        self.node.address = f"127.0.0.1:{self.server.add_secure_port('127.0.0.1:0', node_tls.server_credentials())}"
        self.local_address = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"

    async def __aenter__(self):
        await self.server.start()
        self.channel = grpc.aio.insecure_channel(self.local_address, interceptors=[_WithSecret()])
        self.stub = group_dht_pb2_grpc.GroupDhtStub(self.channel)
        return self

    async def __aexit__(self, *exc):
        await self.channel.close()
        await self.node.stop()
        await self.server.stop(None)
        await self.pool.close()
        self.store.close()


@pytest.fixture
def make_served(tmp_path):
    count = iter(range(100))
    return lambda **options: Served(str(tmp_path / f"n{next(count)}"), **options)


@pytest.fixture
def agent():
    return Agent()


def group_of(agent):
    props = common_pb2.GroupProperties(group_uuid="g", name="g", creator=agent.public, initial_members=[agent.public])
    return dna.group_dna_hash(props), props


async def status_of(call):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code(), info.value.details()


@async_test
async def test_publish_without_a_signed_op_is_invalid_argument(make_served):
    async with make_served() as s:
        code, details = await status_of(s.stub.Publish(group_dht_pb2.PublishRequest()))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "32-byte" in details


@async_test
async def test_forged_op_is_permission_denied(make_served, agent):
    signed = agent.sign(space=b"s" * 32, kind=group_dht_pb2.STORE_ENTRY, entry_type="m", entry=b"e")
    signed.signature = Agent().key.sign(signed.body)
    async with make_served() as s:
        code, details = await status_of(s.stub.Publish(group_dht_pb2.PublishRequest(op=signed)))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "signature" in details


@async_test
async def test_reads_with_malformed_addresses_are_invalid_argument(make_served):
    async with make_served() as s:
        get = await status_of(s.stub.Get(group_dht_pb2.GetRequest(space=b"s" * 32, address=b"short")))
        links = await status_of(s.stub.GetLinks(group_dht_pb2.GetLinksRequest(space=b"", base=b"b" * 32)))
    assert get == (grpc.StatusCode.INVALID_ARGUMENT, "address must be 32 bytes, got 5")
    assert links == (grpc.StatusCode.INVALID_ARGUMENT, "space must be 32 bytes, got 0")


@async_test
async def test_join_with_bad_template_agent_or_properties_is_invalid_argument(make_served, agent):
    space, props = group_of(agent)
    async with make_served() as s:
        template = await status_of(s.stub.JoinSpace(group_dht_pb2.JoinSpaceRequest(space=space, agent=agent.public, template="chat")))
        short_agent = await status_of(s.stub.JoinSpace(group_dht_pb2.JoinSpaceRequest(space=space, agent=b"a", template="group", properties=props)))
        wrong_hash = await status_of(s.stub.JoinSpace(group_dht_pb2.JoinSpaceRequest(space=b"x" * 32, agent=agent.public, template="group", properties=props)))
        listed = await s.stub.ListSpaces(group_dht_pb2.ListSpacesRequest())
    assert template[0] == short_agent[0] == wrong_hash[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert "template" in template[1] and "agent" in short_agent[1] and "DNA hash" in wrong_hash[1]
    assert list(listed.spaces) == []


@async_test
async def test_exchange_peers_without_a_node_id_is_invalid_argument(make_served):
    async with make_served() as s:
        code, details = await status_of(s.stub.ExchangePeers(group_dht_pb2.ExchangePeersRequest()))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "node_id" in details


@async_test
async def test_join_beyond_max_spaces_is_resource_exhausted(make_served, agent):
    space, props = group_of(agent)
    async with make_served(max_spaces=1) as s:
        await s.stub.JoinSpace(group_dht_pb2.JoinSpaceRequest(space=dna.LOBBY_DNA_HASH, agent=agent.public, template="lobby"))
        code, details = await status_of(s.stub.JoinSpace(group_dht_pb2.JoinSpaceRequest(
            space=space, agent=agent.public, template="group", properties=props, claim=agent.claim(s.node.node_id, space))))
        listed = await s.stub.ListSpaces(group_dht_pb2.ListSpacesRequest())
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details == "this node's DHT holds its maximum of 1 spaces"
    assert [sp.space for sp in listed.spaces] == [dna.LOBBY_DNA_HASH]


@async_test
async def test_two_served_nodes_exchange_peers_and_replicate_a_publish(make_served, agent):
    space, props = group_of(agent)
    async with make_served() as a, make_served() as b:
        assert a.node.learn_address(b.node.address)
        for s in (a, b):
            await s.stub.JoinSpace(group_dht_pb2.JoinSpaceRequest(space=space, agent=agent.public, template="group",
                                                                  properties=props, claim=agent.claim(s.node.node_id, space)))
        await a.node.settle()
        await a.node.exchange_with_peers()
        signed = agent.sign(space=space, kind=group_dht_pb2.STORE_ENTRY, entry_type="message", entry=b"hi")
        published = await a.stub.Publish(group_dht_pb2.PublishRequest(op=signed))
        got = await b.stub.Get(group_dht_pb2.GetRequest(space=space, address=blake2b_256(b"hi"), local_only=True))
    assert (published.stored, published.holders) == (2, 2)
    assert got.found and got.op == signed


def test_bootstrap_flags_may_repeat_and_hold_comma_separated_lists():
    assert bootstrap_addresses(["a:1,b:2", "c:3", " a:1 ,"]) == ["a:1", "b:2", "c:3"]


def test_join_and_leave_space_without_the_node_secret_are_permission_denied(tmp_path):
    async def scenario():
        async with Served(str(tmp_path / "n")) as s:
            async with grpc.aio.insecure_channel(s.local_address) as bare:
                stub = group_dht_pb2_grpc.GroupDhtStub(bare)
                agent = Agent()
                for call in (
                    stub.JoinSpace(group_dht_pb2.JoinSpaceRequest(space=dna.LOBBY_DNA_HASH, agent=agent.public, template="lobby")),
                    stub.LeaveSpace(group_dht_pb2.LeaveSpaceRequest(space=dna.LOBBY_DNA_HASH, agent=agent.public)),
                ):
                    assert (await status_of(call))[0] == grpc.StatusCode.PERMISSION_DENIED
            assert (await s.stub.ListSpaces(group_dht_pb2.ListSpacesRequest())).spaces == []

    asyncio.run(scenario())


@async_test
async def test_a_group_space_is_read_by_its_members_nodes_only_and_no_longer_once_removed(make_served):
    admin, member = Agent(), Agent()
    props = common_pb2.GroupProperties(group_uuid="g", name="g", creator=admin.public,
                                       initial_members=[admin.public, member.public])
    space = dna.group_dna_hash(props)
    async with make_served() as a, make_served() as b, make_served() as outsider:
        for s, agent in ((a, admin), (b, member)):
            await s.stub.JoinSpace(group_dht_pb2.JoinSpaceRequest(space=space, agent=agent.public, template="group",
                                                                  properties=props, claim=agent.claim(s.node.node_id, space)))
        for s in (a, outsider):
            await s.stub.JoinSpace(group_dht_pb2.JoinSpaceRequest(space=dna.LOBBY_DNA_HASH, agent=Agent().public,
                                                                  template="lobby"))
        for s in (b, outsider):
            s.node.learn_address(a.node.address)
            await s.node.exchange_with_peers()
        signed = admin.sign(space=space, kind=group_dht_pb2.STORE_ENTRY, entry_type="message", entry=b"hi")
        await a.stub.Publish(group_dht_pb2.PublishRequest(op=signed, local_only=True))
        at_a = Endpoint(a.node.address, a.certificate)

        def reader(s):
            return GrpcTransport(s.pool, NodeIdentity(s.store))

        got = await reader(b).get(at_a, space, blake2b_256(b"hi"), 5)
        links = await reader(b).get_links(at_a, space, b"b" * 32, b"", 5)
        with pytest.raises(PermissionDenied, match="read by its members' nodes only"):
            await reader(outsider).get(at_a, space, blake2b_256(b"hi"), 5)
        with pytest.raises(PermissionDenied):
            await reader(outsider).get_links(at_a, space, b"b" * 32, b"", 5)
        with pytest.raises(PermissionDenied):
            await reader(outsider).fetch_ops(at_a, space, [blake2b_256(signed.body)], 5)
        lobby = await reader(outsider).get(at_a, dna.LOBBY_DNA_HASH, b"l" * 32, 5)
        async with grpc.aio.secure_channel(a.node.address, tls.pinned_credentials(a.certificate),
                                           options=tls.PINNED_CHANNEL_OPTIONS) as channel:
            peer_stub = group_dht_pb2_grpc.GroupDhtStub(channel)
            proof = callers.caller_metadata(NodeIdentity(outsider.store), a.certificate, "ListSpaces")
            listed = await peer_stub.ListSpaces(group_dht_pb2.ListSpacesRequest(), metadata=proof)
            replayed = await status_of(peer_stub.ListSpaces(group_dht_pb2.ListSpacesRequest(), metadata=proof))
            anonymous = await status_of(peer_stub.Get(group_dht_pb2.GetRequest(space=space, address=b"a" * 32)))

        await a.stub.Publish(group_dht_pb2.PublishRequest(
            op=admin.group_update(group_state.GroupState.initial(props), "remove", [member.public], space), local_only=True))
        with pytest.raises(PermissionDenied):
            await reader(b).get(at_a, space, blake2b_256(b"hi"), 5)
    assert got.found and got.op == signed and list(links.links) == []
    assert not lobby.found
    assert [sp.space for sp in listed.spaces] == [dna.LOBBY_DNA_HASH]
    assert replayed == (grpc.StatusCode.UNAUTHENTICATED, "the caller proof was taken before: each call carries a new one")
    assert anonymous[0] == grpc.StatusCode.UNAUTHENTICATED and callers.METADATA_KEY in anonymous[1]
