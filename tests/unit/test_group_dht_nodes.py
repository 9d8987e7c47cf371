"""Several GroupDhtNodes on temporary LevelDBs, wired by an in-memory transport: placement,
quorum writes, reads from non-holders, link merging, peers, restart."""

import asyncio
import inspect

import pytest

from kizuna.v1 import common_pb2, group_dht_pb2
from kizuna_node.common import anchors, dna
from kizuna_node.common.errors import FailedPrecondition, ResourceExhausted, Unavailable
from kizuna_node.common.hashing import blake2b_256, now_micros
from kizuna_node.group_dht.dht import GroupDhtNode
from kizuna_node.group_dht.ports import Endpoint, GrpcTransport, Transport
from kizuna_node.group_dht.store import DhtStore
from tests.helpers import Agent, async_test, eventually


def copy(message):
    """What crossing the wire does to a message."""
    return type(message).FromString(message.SerializeToString())


class InMemoryNetwork(Transport):
    """The transport: calls go straight to the node registered at the address, unless it is
    down. Calls to a stalled address hang until `release` is set (timeouts are ignored), so
    a test can tell whether a caller waited on it; `calls` records (method, address)."""

    def __init__(self):
        self.nodes: dict[str, GroupDhtNode] = {}
        self.down: set[str] = set()
        self.stalled: set[str] = set()
        self.release = asyncio.Event()
        self.calls: list[tuple[str, str]] = []

    async def certificate_at(self, address: str) -> bytes:
        return b""  # an in-memory node presents no certificate; the real transport pins one

    async def _node(self, method, peer: Endpoint):
        address = peer.address
        self.calls.append((method, address))
        if address in self.stalled:
            await self.release.wait()
        if address in self.down or address not in self.nodes:
            raise Unavailable(f"{address} is down")
        return self.nodes[address]

    async def publish(self, peer: Endpoint, signed: common_pb2.Signed, timeout: float) -> group_dht_pb2.PublishResponse:
        return copy(await (await self._node("publish", peer)).publish(copy(signed), local_only=True))

    async def get(self, peer: Endpoint, space: bytes, entry_address: bytes, timeout: float) -> group_dht_pb2.GetResponse:
        return copy(await (await self._node("get", peer)).get(space, entry_address, local_only=True))

    async def get_links(
        self, peer: Endpoint, space: bytes, base: bytes, tag_prefix: bytes, timeout: float, with_targets: bool = False
    ) -> group_dht_pb2.GetLinksResponse:
        node = await self._node("get_links", peer)
        return copy(await node.get_links(space, base, tag_prefix, local_only=True, with_targets=with_targets))

    async def exchange_peers(
        self, peer: Endpoint, node: group_dht_pb2.NodeInfo, known: list[group_dht_pb2.NodeInfo], timeout: float
    ) -> group_dht_pb2.ExchangePeersResponse:
        return copy(await (await self._node("exchange_peers", peer)).exchange_peers(copy(node), [copy(k) for k in known]))

    async def sync_summary(self, peer: Endpoint, request: group_dht_pb2.SyncSummaryRequest,
                           timeout: float) -> group_dht_pb2.SyncSummaryResponse:
        return copy((await self._node("sync_summary", peer)).sync_summary(copy(request)))

    async def fetch_ops(self, peer: Endpoint, space: bytes, op_hashes: list[bytes],
                        timeout: float) -> group_dht_pb2.FetchOpsResponse:
        request = group_dht_pb2.FetchOpsRequest(space=space, op_hashes=op_hashes)
        return copy((await self._node("fetch_ops", peer)).fetch_ops(request))


TRANSPORT_CALLS = [name for name, value in vars(Transport).items() if inspect.iscoroutinefunction(value)]


@pytest.mark.parametrize("implementation", [InMemoryNetwork, GrpcTransport])
def test_the_fake_and_the_grpc_transport_implement_the_transport_protocol_as_declared(implementation):
    assert Transport in implementation.__mro__  # declared, not only shaped alike
    assert set(TRANSPORT_CALLS) == {"certificate_at", "publish", "get", "get_links", "exchange_peers",
                                    "sync_summary", "fetch_ops"}
    for name in TRANSPORT_CALLS:
        assert inspect.signature(getattr(implementation, name)) == inspect.signature(getattr(Transport, name)), name


class NodeFactory:
    """make_node(name, **options): a node on a temporary LevelDB of its own, registered on the
    network at mem://<name> and bootstrapping (unless told otherwise) to the nodes made before it."""

    def __init__(self, tmp_path, network: InMemoryNetwork):
        self._tmp_path = tmp_path
        self._network = network
        self._stores: dict[str, DhtStore] = {}

    def __call__(self, name: str, **options) -> GroupDhtNode:
        store = self._stores[name] = DhtStore(str(self._tmp_path / name))
        address = f"mem://{name}"
        options.setdefault("bootstrap", list(self._network.nodes))
        node = GroupDhtNode(store, self._network, advertise=address, **options)
        self._network.nodes[address] = node
        return node

    def restart(self, name: str) -> GroupDhtNode:
        """The node `name` again, on its closed and reopened LevelDB, told no bootstrap address
        and not registered on the network."""
        self._stores[name].close()
        store = self._stores[name] = DhtStore(str(self._tmp_path / name))
        return GroupDhtNode(store, self._network, advertise=f"mem://{name}")

    def close(self) -> None:
        for store in self._stores.values():
            store.close()


@pytest.fixture
def network():
    return InMemoryNetwork()


@pytest.fixture
def make_node(tmp_path, network):
    factory = NodeFactory(tmp_path, network)
    yield factory
    factory.close()


@pytest.fixture
def agents():
    return [Agent() for _ in range(4)]


@pytest.fixture
def group(agents):
    members = [a.public for a in agents]
    props = common_pb2.GroupProperties(group_uuid="g-1", name="g", creator=members[0], initial_members=members)
    return dna.group_dna_hash(props), props


async def connect(nodes):
    """Two rounds of peer exchange: everyone learns everyone and their spaces."""
    for _ in range(2):
        for node in nodes:
            await node.settle()
            await node.exchange_with_peers()


async def join_all(nodes, agents, group):
    space, props = group
    for node, agent in zip(nodes, agents):
        await node.join_space(space, agent.public, "group", props, claim=agent.claim(node.node_id, space))
    await connect(nodes)


def entry_op(agent, space, text=b"hello"):
    return agent.sign(space=space, kind=group_dht_pb2.STORE_ENTRY, entry_type="message", entry=text)


async def holds_entry(node, space, address) -> bool:
    """Whether the node itself holds the entry (a read that asks no other node)."""
    return (await node.get(space, address, local_only=True)).found


@async_test
async def test_publish_replicates_to_holders_and_a_non_holder_reads_it(make_node, agents, group):
    nodes = [make_node(f"n{i}") for i in range(4)]
    await join_all(nodes, agents, group)
    space = group[0]
    signed = entry_op(agents[0], space)
    address = blake2b_256(b"hello")

    answer = await nodes[0].publish(signed)

    assert (answer.stored, answer.holders) == (3, 3)
    assert answer.address == address and answer.op_hash == blake2b_256(signed.body)
    holders = set(nodes[0].holders(space, address))
    assert {n.node_id for n in nodes if await holds_entry(n, space, address)} == holders
    outsider = next(n for n in nodes if n.node_id not in holders)
    assert not (await outsider.get(space, address, local_only=True)).found
    got = await outsider.get(space, address)
    assert got.found and got.op == signed


@async_test
async def test_get_links_from_a_non_holder_and_a_node_outside_the_space(make_node, agents, group):
    nodes = [make_node(f"n{i}") for i in range(4)]
    await join_all(nodes, agents, group)
    outside = make_node("outside")
    await connect([*nodes, outside])
    space, base = group[0], anchors.inbox_anchor(agents[1].public)
    created = await nodes[0].publish(agents[0].sign(space=space, kind=group_dht_pb2.CREATE_LINK, base=base, target=b"t" * 32, tag=b"msg"))
    await nodes[0].publish(agents[0].sign(space=space, kind=group_dht_pb2.CREATE_LINK, base=base, target=b"u" * 32, tag=b"other"))

    non_holder = next(n for n in nodes if n.node_id not in nodes[0].holders(space, base))
    links = await non_holder.get_links(space, base, b"msg")
    assert [link.address for link in links.links] == [created.op_hash]
    assert len((await outside.get_links(space, base)).links) == 2


@async_test
async def test_get_links_with_targets_brings_the_target_entries_along(make_node, agents, group):
    nodes = [make_node(f"n{i}") for i in range(4)]
    await join_all(nodes, agents, group)
    space, base = group[0], anchors.inbox_anchor(agents[1].public)
    entry = entry_op(agents[0], space, b"waiting for you")
    await nodes[0].publish(entry)
    await nodes[0].publish(agents[0].sign(space=space, kind=group_dht_pb2.CREATE_LINK, base=base,
                                          target=blake2b_256(b"waiting for you"), tag=b"msg"))
    for node in nodes:
        answer = await node.get_links(space, base, b"msg", with_targets=True)
        assert [t.body for t in answer.targets] == [entry.body]
        assert not (await node.get_links(space, base, b"msg")).targets


@async_test
async def test_link_delete_held_by_one_holder_hides_the_link_in_merged_reads(make_node, agents, group):
    nodes = [make_node(f"n{i}") for i in range(3)]
    await join_all(nodes, agents, group)
    space, base = group[0], b"b" * 32
    create = agents[0].sign(space=space, kind=group_dht_pb2.CREATE_LINK, base=base, target=b"t" * 32)
    link_address = (await nodes[0].publish(create)).op_hash
    delete = agents[0].sign(space=space, kind=group_dht_pb2.DELETE_LINK, base=base, link_address=link_address)
    await nodes[1].publish(delete, local_only=True)

    assert len((await nodes[2].get_links(space, base, local_only=True)).links) == 1
    merged = await nodes[2].get_links(space, base)
    assert list(merged.links) == [] and list(merged.deleted) == [link_address]


@async_test
async def test_links_are_ordered_by_timestamp_then_address(make_node, agents, group):
    nodes = [make_node(f"n{i}") for i in range(3)]
    await join_all(nodes, agents, group)
    space, base = group[0], b"b" * 32
    stamps = [now_micros() + d for d in (30, 10, 20)]
    for i, ts in enumerate(stamps):
        body = group_dht_pb2.Op(space=space, kind=group_dht_pb2.CREATE_LINK, author=agents[0].public, timestamp=ts, base=base, target=bytes([i]) * 32).SerializeToString()
        await nodes[i].publish(common_pb2.Signed(body=body, signature=agents[0].key.sign(body), author=agents[0].public), local_only=True)
    links = (await nodes[0].get_links(space, base)).links
    assert [group_dht_pb2.Op.FromString(link.create.body).timestamp for link in links] == sorted(stamps)


@async_test
async def test_publish_meets_quorum_with_one_of_three_holders_down(make_node, network, agents, group):
    nodes = [make_node(f"n{i}") for i in range(3)]
    await join_all(nodes, agents, group)
    network.down.add(nodes[2].address)

    answer = await nodes[0].publish(entry_op(agents[0], group[0]))

    assert (answer.stored, answer.holders) == (2, 3)
    assert nodes[0].peers.is_down(nodes[2].node_id)


@async_test
async def test_publish_does_not_wait_on_a_holder_marked_down_but_sends_it_the_op_in_the_background(make_node, network, agents, group):
    nodes = [make_node(f"n{i}") for i in range(3)]
    await join_all(nodes, agents, group)
    space, address = group[0], blake2b_256(b"hello")
    down = nodes[2]
    nodes[0].peers.mark_down(down.node_id)
    network.stalled.add(down.address)  # a call to it never returns until released

    answer = await asyncio.wait_for(nodes[0].publish(entry_op(agents[0], space)), 5.0)

    assert (answer.stored, answer.holders) == (2, 3)
    assert await holds_entry(nodes[0], space, address) and await holds_entry(nodes[1], space, address)
    await eventually(lambda: ("publish", down.address) in network.calls, "the down holder is sent the op")
    assert not await holds_entry(down, space, address) and nodes[0].peers.is_down(down.node_id)

    network.release.set()  # it was back after all: the background write lands and un-marks it
    await asyncio.wait_for(nodes[0].settle(), 5.0)
    assert await holds_entry(down, space, address)
    assert not nodes[0].peers.is_down(down.node_id)


@async_test
async def test_a_background_write_to_a_holder_still_down_fails_quietly_and_keeps_it_down(make_node, network, agents, group):
    nodes = [make_node(f"n{i}") for i in range(3)]
    await join_all(nodes, agents, group)
    nodes[0].peers.mark_down(nodes[2].node_id)
    network.down.add(nodes[2].address)

    answer = await nodes[0].publish(entry_op(agents[0], group[0]))
    await nodes[0].settle()

    assert (answer.stored, answer.holders) == (2, 3)
    assert ("publish", nodes[2].address) in network.calls
    assert nodes[0].peers.is_down(nodes[2].node_id)


@async_test
async def test_publish_with_too_many_holders_marked_down_is_unavailable_at_once(make_node, network, agents, group):
    nodes = [make_node(f"n{i}") for i in range(3)]
    await join_all(nodes, agents, group)
    for node in nodes[1:]:
        nodes[0].peers.mark_down(node.node_id)
        network.stalled.add(node.address)

    with pytest.raises(Unavailable, match=r"stored on 1 of 3 holders; quorum is 2 \(2 marked down, not waited on\)"):
        await asyncio.wait_for(nodes[0].publish(entry_op(agents[0], group[0])), 5.0)
    network.release.set()
    await asyncio.wait_for(nodes[0].settle(), 5.0)
    assert all([await holds_entry(n, group[0], blake2b_256(b"hello")) for n in nodes])


@async_test
async def test_reads_ask_holders_marked_down_last(make_node, network, agents, group):
    nodes = [make_node(f"n{i}") for i in range(4)]
    await join_all(nodes, agents, group)
    space, address, base = group[0], blake2b_256(b"hello"), b"b" * 32
    signed = entry_op(agents[0], space)
    await nodes[0].publish(signed)
    link = await nodes[0].publish(agents[0].sign(space=space, kind=group_dht_pb2.CREATE_LINK, base=base, target=b"t" * 32))

    # a non-holder reads; the holder it would ask first is marked down and hangs
    reader = next(n for n in nodes if n.node_id not in nodes[0].holders(space, address))
    first = next(n for n in nodes if n.node_id == reader.holders(space, address)[0])
    reader.peers.mark_down(first.node_id)
    network.stalled.add(first.address)
    got = await asyncio.wait_for(reader.get(space, address), 5.0)
    assert got.found and got.op == signed
    assert ("get", first.address) not in network.calls

    link_reader = next(n for n in nodes if n.node_id not in nodes[0].holders(space, base))
    link_holders = [n for n in nodes if n.node_id in link_reader.holders(space, base)]
    link_reader.peers.mark_down(link_holders[0].node_id)
    network.stalled = {link_holders[0].address}
    links = await asyncio.wait_for(link_reader.get_links(space, base), 5.0)
    assert [l.address for l in links.links] == [link.op_hash]
    assert ("get_links", link_holders[0].address) not in network.calls

    # when no live node answers, the one marked down is still asked, and un-marked when it answers
    network.release.set()
    network.down.update(n.address for n in nodes if n is not first)
    got = await asyncio.wait_for(reader.get(space, address), 5.0)
    assert got.found and got.op == signed
    assert not reader.peers.is_down(first.node_id)


@async_test
async def test_a_peer_marked_down_is_unmarked_by_a_peer_exchange_either_way(make_node, agents, group):
    nodes = [make_node(f"n{i}") for i in range(3)]
    await join_all(nodes, agents, group)
    nodes[0].peers.mark_down(nodes[1].node_id)
    nodes[0].peers.mark_down(nodes[2].node_id)

    await nodes[1].exchange_with_peers()  # nodes[1] calls nodes[0]
    assert not nodes[0].peers.is_down(nodes[1].node_id)
    assert nodes[0].peers.is_down(nodes[2].node_id)

    await nodes[0].exchange_with_peers()  # nodes[2] answers nodes[0]
    assert not nodes[0].peers.is_down(nodes[2].node_id)


@async_test
async def test_publish_below_quorum_is_unavailable_and_keeps_what_was_stored(make_node, network, agents, group):
    nodes = [make_node(f"n{i}") for i in range(3)]
    await join_all(nodes, agents, group)
    network.down.update({nodes[1].address, nodes[2].address})
    signed = entry_op(agents[0], group[0])

    with pytest.raises(Unavailable, match="stored on 1 of 3 holders; quorum is 2"):
        await nodes[0].publish(signed)
    assert (await nodes[0].get(group[0], blake2b_256(b"hello"), local_only=True)).op == signed


@async_test
async def test_publishing_the_same_op_twice_changes_nothing(make_node, agents, group):
    nodes = [make_node(f"n{i}") for i in range(3)]
    await join_all(nodes, agents, group)
    signed = entry_op(agents[0], group[0])
    first = await nodes[0].publish(signed)
    second = await nodes[1].publish(signed)
    assert first == second
    assert [s.ops for s in (await nodes[2].list_spaces()).spaces] == [1]


@async_test
async def test_node_outside_the_space_routes_a_publish_only_when_it_knows_members(make_node, agents, group):
    lonely = make_node("lonely")
    with pytest.raises(FailedPrecondition, match="knows no node"):
        await lonely.publish(entry_op(agents[0], group[0]))
    nodes = [make_node(f"n{i}") for i in range(3)]
    await join_all(nodes, agents, group)
    router = make_node("router")
    await connect([*nodes, router])
    answer = await router.publish(entry_op(agents[0], group[0]))
    assert (answer.stored, answer.holders) == (3, 3)
    assert (await router.list_spaces()).spaces == []


@async_test
async def test_join_beyond_max_spaces_is_resource_exhausted_and_changes_nothing(make_node, agents, group):
    node = make_node("n0", max_spaces=1)
    await node.join_space(dna.LOBBY_DNA_HASH, agents[0].public, "lobby", common_pb2.GroupProperties())
    with pytest.raises(ResourceExhausted, match="maximum of 1 spaces"):
        await node.join_space(group[0], agents[0].public, "group", group[1], claim=agents[0].claim(node.node_id, group[0]))
    await node.join_space(dna.LOBBY_DNA_HASH, agents[1].public, "lobby", common_pb2.GroupProperties())
    spaces = (await node.list_spaces()).spaces
    assert [(s.space, list(s.agents)) for s in spaces] == [(dna.LOBBY_DNA_HASH, [agents[0].public, agents[1].public])]


@async_test
async def test_leaving_with_the_last_agent_leaves_the_space_and_tells_peers(make_node, agents, group):
    nodes = [make_node(f"n{i}") for i in range(2)]
    await join_all(nodes, agents, group)
    await nodes[0].publish(entry_op(agents[0], group[0]))
    await nodes[1].leave_space(group[0], agents[1].public)
    await nodes[1].settle()
    assert (await nodes[1].list_spaces()).spaces == []
    assert nodes[0].peers.in_space(group[0]) == []


@async_test
async def test_agent_info_in_the_lobby_adds_its_dht_address_to_bootstrap(make_node, agents):
    a = make_node("a", bootstrap=())  # a does not know b
    b = make_node("b")
    assert a.bootstrap == () and a.peers.all() == []
    await a.join_space(dna.LOBBY_DNA_HASH, agents[0].public, "lobby", common_pb2.GroupProperties())
    info = group_dht_pb2.AgentInfo(agent=agents[0].public, dht_address=b.address)
    await a.publish(agents[0].sign(space=dna.LOBBY_DNA_HASH, kind=group_dht_pb2.STORE_ENTRY, entry_type="agent_info", entry=info.SerializeToString()))
    assert a.bootstrap == (b.address,)
    await a.settle()
    await a.exchange_with_peers()
    assert [p.node_id for p in a.peers.all()] == [b.node_id]


@async_test
async def test_restart_keeps_ops_spaces_peers_and_node_id(make_node, agents, group):
    nodes = [make_node(f"n{i}") for i in range(3)]
    await join_all(nodes, agents, group)
    signed = entry_op(agents[0], group[0])
    await nodes[0].publish(signed)
    before = await nodes[0].list_spaces()

    reopened = make_node.restart("n0")
    after = await reopened.list_spaces()
    assert after.node_id == before.node_id
    assert after.spaces == before.spaces and after.spaces[0].ops == 1
    assert {p.node_id for p in after.peers} == {nodes[1].node_id, nodes[2].node_id}
    assert (await reopened.get(group[0], blake2b_256(b"hello"), local_only=True)).op == signed


@async_test
async def test_an_op_sent_to_a_node_that_is_not_its_holder_is_handed_on_to_the_holders(make_node, agents, group):
    # What a writer that knew fewer of the space's nodes does: it sends the op to a node
    # that, as the rest of the space knows it, holds nothing at that address.
    nodes = [make_node(f"n{i}") for i in range(4)]
    await join_all(nodes, agents, group)
    space = group[0]
    signed = entry_op(agents[0], space, b"placed by a partial view")
    address = blake2b_256(b"placed by a partial view")
    holders = set(nodes[0].holders(space, address))
    elsewhere = next(n for n in nodes if n.node_id not in holders)

    await elsewhere.publish(signed, local_only=True)

    async def on_every_holder():
        return {n.node_id for n in nodes if await holds_entry(n, space, address)} >= holders
    await eventually(on_every_holder, "the op on every holder", timeout=5)


@async_test
async def test_an_empty_inbox_read_asks_only_its_holders_once_the_space_has_settled(make_node, network, agents, group,
                                                                                   monkeypatch):
    from kizuna_node.group_dht import read
    nodes = [make_node(f"n{i}") for i in range(4)] + [make_node(f"x{i}") for i in range(4)]
    await join_all(nodes, agents * 2, group)
    space, base = group[0], anchors.inbox_anchor(agents[2].public)
    reader = next(n for n in nodes if n.node_id not in nodes[0].holders(space, base))

    network.calls.clear()
    assert not (await reader.get_links(space, base)).links
    unsettled = sum(1 for method, _ in network.calls if method == "get_links")

    monkeypatch.setattr(read, "SETTLE_SECONDS", 0.0)
    network.calls.clear()
    assert not (await reader.get_links(space, base)).links
    settled = sum(1 for method, _ in network.calls if method == "get_links")

    assert unsettled == len(nodes) - 1  # just after the join: every other node of the space
    assert settled == 3  # afterwards: the holders alone


@async_test
async def test_a_poll_asks_only_the_holders_even_while_the_space_is_settling(make_node, network, agents, group):
    nodes = [make_node(f"n{i}") for i in range(4)] + [make_node(f"x{i}") for i in range(4)]
    await join_all(nodes, agents * 2, group)
    space, base = group[0], anchors.inbox_anchor(agents[2].public)
    reader = next(n for n in nodes if n.node_id not in nodes[0].holders(space, base))

    network.calls.clear()
    assert not (await reader.get_links(space, base, holders_only=True)).links
    assert sum(1 for method, _ in network.calls if method == "get_links") == 3
