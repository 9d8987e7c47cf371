"""Factories for integration tests: a local network of real node processes in a temporary
directory, and each agent's UI client on it."""

import asyncio
import contextlib
import os
import uuid

import grpc

from kizuna import net
from kizuna.client import Client
from kizuna_node.common import tls
from tests.helpers import eventually, run

# `run` (from tests.helpers) is re-exported for the tests that import it from here.
__all__ = [
    "TIMEOUT", "make_network", "make_clients", "run", "messages", "status_name", "outcomes_by_name", "deliveries",
    "wait_until", "create_group", "settle", "stop_node", "start_node", "wait_dead", "peer_channel",
]

TIMEOUT = 20.0


def peer_channel(node: dict, service: str = "lobby", aio: bool = True):
    """A TLS channel to a node's peer-facing `service` ("lobby" or "dht"), pinned to the
    node's certificate, as another node dials it."""
    credentials = tls.pinned_credentials(tls.load(node["tls_dir"]).certificate_der)
    make = grpc.aio.secure_channel if aio else grpc.secure_channel
    return make(node[f"{service}_advertise"], credentials, options=tls.PINNED_CHANNEL_OPTIONS)


@contextlib.contextmanager
def make_network(directory, nodes=("alice", "bobby", "charlie"), extra_args=None, placement=None,
                 agents_per_node=None):
    """Starts the nodes (three processes each) and stops every one of them afterwards;
    `placement` puts nodes on test hosts (see net.add_nodes)."""
    try:
        yield net.up(directory, nodes=nodes, exit_with_pid=os.getpid(), extra_args=extra_args, placement=placement,
                     agents_per_node=agents_per_node)
    finally:
        if (directory / "network.json").exists():
            net.down(directory)


@contextlib.asynccontextmanager
async def make_clients(network, names, signals=True):
    """One UI client per agent name, each with its Groups entry fetched and signals open."""
    clients = {name: Client(network.lobby_address(name), network.token(name)) for name in names}
    try:
        for client in clients.values():
            await client.groups()
            if signals:
                await client.start_signals()
        yield clients
    finally:
        for client in clients.values():
            await client.close()


def messages(client, group_uuid, payload=None):
    """The message events the client's UI has seen for a group (with a payload, if given)."""
    return [
        e for e in client.events_so_far()
        if e.kind == "message" and e.group_uuid == group_uuid and (payload is None or e.record.entry.payload == payload)
    ]


# ---------------------------------------------------------------- offline members


def status_name(status) -> str:
    from kizuna.v1 import lobby_pb2

    return lobby_pb2.DeliveryStatus.Name(status)


def outcomes_by_name(network, outcomes) -> dict:
    """{agent name: DeliveryOutcome} of a SendGroupMessage or CreateGroup answer."""
    names = network.usernames_by_key()
    return {names.get(o.receiver, o.receiver.hex()[:8]): o for o in outcomes}


def deliveries(client, group_uuid=None):
    """The DeliverySignals the client's UI has seen (for a group, if given), oldest first."""
    return [
        e.delivery for e in client.events_so_far()
        if e.kind == "delivery" and (group_uuid is None or e.group_uuid == group_uuid)
    ]


async def wait_until(client, condition, what, timeout=TIMEOUT):
    """Waits for UI events on `client` until `condition()` holds (checked now and after
    each event); AssertionError naming `what` when it doesn't within `timeout`."""
    if condition():
        return
    try:
        await client.wait_for(lambda _: condition(), timeout)
    except TimeoutError:
        raise AssertionError(f"not within {timeout:.0f}s: {what}") from None


async def create_group(clients, name, invitees, creator="alice", accept=True):
    """`creator` makes a group with `invitees`; those with an open client wait for the
    invite and (with `accept`) accept it. Returns the CreateGroup answer."""
    created = await clients[creator].create_group(name, list(invitees))
    group = created.group.group_uuid
    for invitee in invitees:
        if invitee in clients:
            await clients[invitee].wait_for(lambda e: e.kind == "invite" and e.group_uuid == group, TIMEOUT)
            if accept:
                await clients[invitee].accept(group)
    return created


async def settle(sender, receivers, group, timeout=TIMEOUT):
    """Sends one more message and makes each receiver catch up (SyncInbox) until its UI
    shows it: anything emitted before it has then reached the UIs. Returns the answer."""
    payload = f"sentinel {uuid.uuid4()}"
    answer = await sender.send(group, payload)
    for client in receivers:
        await client.sync_inbox()
        await wait_until(client, lambda c=client: messages(c, group, payload), f"the sentinel reaches {client.lobby_address}", timeout)
    return answer


async def stop_node(directory, node, kill=True):
    """net.stop_node off the event loop, so open signal streams keep being read."""
    return await asyncio.to_thread(net.stop_node, directory, node, kill=kill)


async def start_node(directory, node):
    return await asyncio.to_thread(net.start_node, directory, node)


def wait_dead(pid, timeout=10.0):
    """Returns once process `pid` is gone (or a zombie); fails the test after `timeout`."""
    eventually(lambda: not net.is_alive(pid), f"process {pid} exits", timeout)
