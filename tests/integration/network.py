"""Factories for integration tests: a local network of real node processes in a temporary
directory, and each agent's UI client on it."""

import asyncio
import contextlib
import os

from kizuna import net
from kizuna.client import Client

TIMEOUT = 20.0


@contextlib.contextmanager
def make_network(directory, nodes=("alice", "bobby", "charlie"), extra_args=None):
    """Starts the nodes (three processes each) and stops every one of them afterwards."""
    try:
        yield net.up(directory, nodes=nodes, exit_with_pid=os.getpid(), extra_args=extra_args)
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


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


def messages(client, group_uuid, payload=None):
    """The message events the client's UI has seen for a group (with a payload, if given)."""
    return [
        e for e in client.events_so_far()
        if e.kind == "message" and e.group_uuid == group_uuid and (payload is None or e.record.entry.payload == payload)
    ]
