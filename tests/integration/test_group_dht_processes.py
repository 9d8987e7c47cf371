"""Three real kizuna-group-dht processes that bootstrap to each other: replication across
processes, reads on another node, and a quorum write after one node is SIGKILLed."""

import grpc
import pytest

from kizuna import net
from kizuna.v1 import common_pb2, group_dht_pb2, group_dht_pb2_grpc
from kizuna_node.common import anchors, dna
from kizuna_node.common.hashing import blake2b_256
from kizuna_node.group_dht.placement import quorum
from tests.helpers import Agent, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def three_nodes(start_process, free_port, tmp_path):
    """Three DHT processes, each bootstrapping to the other two's TLS peer ports (trusting
    the certificate each presents first); yields (process, stub) pairs, the stubs on the
    plaintext loopback port a node's own lobby would use."""
    addresses = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    peer_addresses = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    processes = []
    for i, address in enumerate(addresses):
        others = ",".join(a for a in peer_addresses if a != peer_addresses[i])
        processes.append(
            start_process(
                "kizuna_node.group_dht.server", "--listen", address, "--data-dir", str(tmp_path / f"dht{i}"),
                "--peer-listen", peer_addresses[i], "--tls-dir", str(tmp_path / f"tls{i}"),
                "--bootstrap", others, "--node-secret-file", str(tmp_path / "node.secret"),
                address=address, name=f"dht{i}",
            )
        )
    channels = [net.node_local_channel(a, tmp_path / "node.secret") for a in addresses]
    yield [(p, group_dht_pb2_grpc.GroupDhtStub(c)) for p, c in zip(processes, channels)]
    for channel in channels:
        channel.close()


def join_group(stub, space, agent, props) -> None:
    """The node joins the group space for the agent, with the agent's claim (as its conductor makes it)."""
    node_id = stub.ListSpaces(group_dht_pb2.ListSpacesRequest(), timeout=5).node_id
    stub.JoinSpace(group_dht_pb2.JoinSpaceRequest(space=space, agent=agent.public, template="group", properties=props,
                                                  claim=agent.claim(node_id, space)), timeout=5)


def peers_in_space(stub, space) -> int:
    listed = stub.ListSpaces(group_dht_pb2.ListSpacesRequest(), timeout=2)
    return sum(1 for p in listed.peers if space in p.spaces)


def holds(stub, space, address, signed) -> bool:
    """Whether the node itself holds the op (a read that asks no other node)."""
    held = stub.Get(group_dht_pb2.GetRequest(space=space, address=address, local_only=True), timeout=5)
    return held.found and held.op == signed


def writes_to_every_holder(stub, probe) -> bool:
    """Whether a write of `probe` through this node reached all three holders at once (none
    of its channels to the others still connecting after the start, none marked down)."""
    try:
        answer = stub.Publish(group_dht_pb2.PublishRequest(op=probe), timeout=5)
    except grpc.RpcError:
        return False
    return answer.stored == answer.holders == 3


def test_three_processes_replicate_read_across_nodes_and_keep_quorum_after_a_sigkill(three_nodes):
    agents = [Agent() for _ in range(3)]
    props = common_pb2.GroupProperties(
        group_uuid="g-proc", name="g", creator=agents[0].public, initial_members=[a.public for a in agents]
    )
    space = dna.group_dna_hash(props)
    stubs = [stub for _, stub in three_nodes]
    for stub, agent in zip(stubs, agents):
        join_group(stub, space, agent, props)
    eventually(lambda: all(peers_in_space(s, space) == 2 for s in stubs), "every node knows the other two are in the group")
    probe = agents[0].sign(space=space, kind=group_dht_pb2.STORE_ENTRY, entry_type="message", entry=b"probe")
    eventually(lambda: writes_to_every_holder(stubs[0], probe), "node 0 reaches every holder")

    signed = agents[0].sign(space=space, kind=group_dht_pb2.STORE_ENTRY, entry_type="message", entry=b"hello")
    published = stubs[0].Publish(group_dht_pb2.PublishRequest(op=signed), timeout=5)
    # The write returns once a quorum of the three holders stored it; a holder the writer
    # had marked down (a slow answer at start-up) is sent the op in the background.
    assert published.holders == 3 and published.stored >= quorum(3)
    for i, stub in enumerate(stubs):
        eventually(lambda stub=stub: holds(stub, space, blake2b_256(b"hello"), signed), f"node {i} holds the op")

    inbox = anchors.inbox_anchor(agents[1].public)
    link = agents[0].sign(space=space, kind=group_dht_pb2.CREATE_LINK, base=inbox, target=blake2b_256(b"hello"), tag=b"msg")
    link_address = stubs[0].Publish(group_dht_pb2.PublishRequest(op=link), timeout=5).op_hash
    links = stubs[1].GetLinks(group_dht_pb2.GetLinksRequest(space=space, base=inbox), timeout=5)
    assert [l.address for l in links.links] == [link_address]

    # the inbox owner deletes the link through one node; another node's merged read no longer shows it
    delete = agents[1].sign(space=space, kind=group_dht_pb2.DELETE_LINK, base=inbox, link_address=link_address)
    stubs[1].Publish(group_dht_pb2.PublishRequest(op=delete), timeout=5)
    after = stubs[2].GetLinks(group_dht_pb2.GetLinksRequest(space=space, base=inbox), timeout=5)
    assert list(after.links) == [] and list(after.deleted) == [link_address]

    killed, _ = three_nodes[2]
    killed.process.kill()
    killed.process.wait(5)

    later = agents[1].sign(space=space, kind=group_dht_pb2.STORE_ENTRY, entry_type="message", entry=b"still here")
    published = stubs[1].Publish(group_dht_pb2.PublishRequest(op=later), timeout=5)
    assert (published.stored, published.holders) == (2, 3)
    got = stubs[0].Get(group_dht_pb2.GetRequest(space=space, address=blake2b_256(b"still here")), timeout=5)
    assert got.found and got.op == later
    assert stubs[0].Get(group_dht_pb2.GetRequest(space=space, address=blake2b_256(b"hello")), timeout=5).op == signed


def test_process_refuses_an_op_from_a_non_member_with_permission_denied(three_nodes):
    member, outsider = Agent(), Agent()
    props = common_pb2.GroupProperties(group_uuid="g2", name="g", creator=member.public, initial_members=[member.public])
    space = dna.group_dna_hash(props)
    stub = three_nodes[0][1]
    join_group(stub, space, member, props)
    signed = outsider.sign(space=space, kind=group_dht_pb2.STORE_ENTRY, entry_type="message", entry=b"x")
    with pytest.raises(grpc.RpcError) as info:
        stub.Publish(group_dht_pb2.PublishRequest(op=signed), timeout=5)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
