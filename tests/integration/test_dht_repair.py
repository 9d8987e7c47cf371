"""Anti-entropy across real kizuna-group-dht processes: a node that was away while ops were
written is repaired by itself after it returns (no read asks for them), and when two of
three holders are killed for good, every op is back on three live holders and readable
from every surviving node."""

import time

import pytest

from kizuna import net
from kizuna.v1 import common_pb2, group_dht_pb2, group_dht_pb2_grpc
from kizuna_node.common import dna
from kizuna_node.common.hashing import blake2b_256
from kizuna_node.group_dht import placement
from tests.helpers import Agent, eventually

pytestmark = pytest.mark.integration

TIMEOUT = 60.0  # a busy machine is slow; `make bench` holds the speed targets


class Cluster:
    """DHT processes bootstrapping to each other's TLS peer ports, with a shared secret."""

    def __init__(self, start_process, free_port, tmp_path, count, extra=()):
        self._start_process, self._tmp = start_process, tmp_path
        self.addresses = [f"127.0.0.1:{free_port()}" for _ in range(count)]
        self.peer_addresses = [f"127.0.0.1:{free_port()}" for _ in range(count)]
        self.extra = list(extra)
        self.processes = [None] * count
        self.channels = [net.node_local_channel(a, tmp_path / "node.secret") for a in self.addresses]
        self.stubs = [group_dht_pb2_grpc.GroupDhtStub(c) for c in self.channels]
        for i in range(count):
            self.start(i)
        self.node_ids = [s.ListSpaces(group_dht_pb2.ListSpacesRequest(), timeout=5).node_id for s in self.stubs]

    def start(self, i: int) -> None:
        others = ",".join(a for j, a in enumerate(self.peer_addresses) if j != i)
        self.processes[i] = self._start_process(
            "kizuna_node.group_dht.server", "--listen", self.addresses[i], "--data-dir", str(self._tmp / f"dht{i}"),
            "--peer-listen", self.peer_addresses[i], "--tls-dir", str(self._tmp / f"tls{i}"),
            "--bootstrap", others, "--node-secret-file", str(self._tmp / "node.secret"), *self.extra,
            address=self.addresses[i], name=f"dht{i}",
        )

    def kill(self, i: int) -> None:
        self.processes[i].process.kill()
        self.processes[i].process.wait(10)

    def join(self, space, props, agents) -> None:
        for stub, agent in zip(self.stubs, agents):
            node_id = stub.ListSpaces(group_dht_pb2.ListSpacesRequest(), timeout=5).node_id
            stub.JoinSpace(group_dht_pb2.JoinSpaceRequest(space=space, agent=agent.public, template="group",
                                                          properties=props, claim=agent.claim(node_id, space)), timeout=5)

    def close(self) -> None:
        for channel in self.channels:
            channel.close()


def peers_in_space(stub, space) -> int:
    listed = stub.ListSpaces(group_dht_pb2.ListSpacesRequest(), timeout=5)
    return sum(1 for p in listed.peers if space in p.spaces)


def holds(stub, space, address) -> bool:
    """Whether the node itself holds the entry: a read that asks no other node."""
    return stub.Get(group_dht_pb2.GetRequest(space=space, address=address, local_only=True), timeout=5).found


def sync_stats(stub, space) -> group_dht_pb2.SyncStats:
    listed = stub.ListSpaces(group_dht_pb2.ListSpacesRequest(), timeout=5)
    return next(s.sync for s in listed.spaces if s.space == space)


def group_of(agents, uuid):
    props = common_pb2.GroupProperties(group_uuid=uuid, name="g", creator=agents[0].public,
                                       initial_members=[a.public for a in agents])
    return dna.group_dna_hash(props), props


def publish_entries(stub, agent, space, count, tag):
    addresses = []
    for i in range(count):
        text = f"{tag} {i}".encode()
        signed = agent.sign(space=space, kind=group_dht_pb2.STORE_ENTRY, entry_type="message", entry=text)
        stub.Publish(group_dht_pb2.PublishRequest(op=signed), timeout=10)
        addresses.append(blake2b_256(text))
    return addresses


@pytest.fixture
def cluster(start_process, free_port, tmp_path):
    made = []

    def make(count, extra=()):
        made.append(Cluster(start_process, free_port, tmp_path, count, extra))
        return made[-1]

    yield make
    for c in made:
        c.close()


def test_a_node_away_while_100_ops_are_written_is_repaired_after_its_return_without_a_read(cluster):
    nodes = cluster(4)
    agents = [Agent() for _ in range(4)]
    space, props = group_of(agents, "g-repair")
    nodes.join(space, props, agents)
    eventually(lambda: all(peers_in_space(s, space) == 3 for s in nodes.stubs), "every node knows the others",
               timeout=TIMEOUT)

    nodes.processes[3].stop()
    addresses = publish_entries(nodes.stubs[0], agents[0], space, 100, "while away")
    should_hold = [a for a in addresses if nodes.node_ids[3] in placement.holders(a, nodes.node_ids, 3)]
    assert len(should_hold) > 50  # three of four nodes hold each address

    nodes.start(3)
    returned = time.monotonic()
    eventually(lambda: all(holds(nodes.stubs[3], space, a) for a in should_hold),
               "the returned node holds every op it should", timeout=TIMEOUT)
    took = time.monotonic() - returned
    stats = sync_stats(nodes.stubs[3], space)
    assert stats.ops_repaired >= len(should_hold)  # fetched by anti-entropy: nothing here read them
    print(f"repaired {len(should_hold)} ops {took:.2f} s after the node served again")


def test_two_of_three_holders_killed_for_good_every_op_back_on_three_live_holders_none_lost(cluster):
    nodes = cluster(5, extra=["--gone-after", "3"])
    agents = [Agent() for _ in range(5)]
    space, props = group_of(agents, "g-loss")
    nodes.join(space, props, agents)
    eventually(lambda: all(peers_in_space(s, space) == 4 for s in nodes.stubs), "every node knows the others",
               timeout=TIMEOUT)
    addresses = publish_entries(nodes.stubs[0], agents[0], space, 60, "kept")
    killed = (3, 4)
    both = [a for a in addresses if set(placement.holders(a, nodes.node_ids, 3)) >= {nodes.node_ids[k] for k in killed}]
    assert both, "some addresses had both killed nodes among their holders"

    for k in killed:
        nodes.kill(k)
    survivors = [0, 1, 2]
    live_ids = [nodes.node_ids[i] for i in survivors]

    def on_three_live_holders():
        return all(all(holds(nodes.stubs[i], space, a) for i in survivors) for a in addresses)

    eventually(on_three_live_holders, "every op is held by the three surviving nodes", timeout=TIMEOUT)
    assert all(len(placement.holders(a, live_ids, 3)) == 3 for a in addresses)
    for i in survivors:
        for a in addresses:
            got = nodes.stubs[i].Get(group_dht_pb2.GetRequest(space=space, address=a), timeout=5)
            assert got.found, f"node {i} cannot read an op: lost"
