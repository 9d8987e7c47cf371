"""Faults a crash or a hostile peer would find, on real processes: each test here failed on
the code before its fix."""

import asyncio
import os
import signal

import pytest

from kizuna import net
from kizuna.client import ClientError
from tests.helpers import eventually, run
from tests.integration.network import (create_group, make_clients, make_network, messages, status_name, wait_dead,
                                       wait_until)

pytestmark = pytest.mark.integration

NAMES = ("alice", "bobby", "charlie")


def test_a_lobby_restarted_while_every_peer_is_down_serves_its_ui(tmp_path):
    # Its agent's info can't reach a quorum of holders (2 of 3 nodes are down), which
    # used to lock the UI out of every call until the peers came back.
    with make_network(tmp_path) as network:
        async def before():
            async with make_clients(network, NAMES) as clients:
                created = await create_group(clients, "Alone", ["bobby", "charlie"])
                await clients["alice"].send(created.group.group_uuid, "before the crash")
                return created.group.group_uuid
        group = run(before())
        for name in ("bobby", "charlie"):
            net.stop_node(tmp_path, name, kill=True)
        lobby_pid = net.load(tmp_path).node("alice")["pids"]["lobby"]
        os.kill(lobby_pid, signal.SIGKILL)
        wait_dead(lobby_pid)
        net.start_node(tmp_path, "alice")

        async def after():
            async with make_clients(network, ("alice",)) as clients:
                alice = clients["alice"]
                groups = await alice.groups()
                history = await alice.all_history(group)
                answer = await alice.send(group, "while everyone is away")
                return groups, history, answer
        groups, history, answer = run(after())
        assert list(groups.groups.group_uuids) == [group]
        assert [r.entry.payload for r in history] == ["before the crash"]
        assert {status_name(o.status) for o in answer.outcomes} <= {"QUEUED", "STORED_IN_DHT"}
        assert len(answer.outcomes) == 2

        for name in ("bobby", "charlie"):
            net.start_node(tmp_path, name)

        async def back():
            async with make_clients(network, ("bobby",)) as clients:
                bobby = clients["bobby"]
                await bobby.sync_inbox()
                await wait_until(bobby, lambda: messages(bobby, group, "while everyone is away"),
                                 "bobby gets what alice sent while he was away", 60)
        run(back())


def test_a_send_cut_short_by_a_lobby_crash_reaches_every_receiver_after_restart(tmp_path):
    # bobby's lobby is frozen, so alice's lobby is still trying him (long tries, by its
    # flags) when it is SIGKILLed: the message is in her history already. It used to be
    # shown as sent and never reach him: nothing of it was in her outbox.
    slow = {"lobby": ["--retry-attempt-timeout", "20", "--retry-budget", "30"]}
    with make_network(tmp_path, extra_args={"alice": slow}) as network:
        async def before():
            async with make_clients(network, NAMES) as clients:
                created = await create_group(clients, "Crash", ["bobby", "charlie"])
                return created.group.group_uuid
        group = run(before())
        bobby_lobby = net.load(tmp_path).node("bobby")["pids"]["lobby"]
        alice_lobby = net.load(tmp_path).node("alice")["pids"]["lobby"]
        os.kill(bobby_lobby, signal.SIGSTOP)
        try:
            async def crash_while_sending():
                async with make_clients(network, ("alice",), signals=False) as clients:
                    alice = clients["alice"]
                    sending = asyncio.ensure_future(alice.send(group, "cut short"))

                    async def in_history():
                        return [r for r in await alice.all_history(group) if r.entry.payload == "cut short"]
                    await eventually(in_history, "the message in alice's history while it is being sent", 20)
                    assert not sending.done()
                    os.kill(alice_lobby, signal.SIGKILL)
                    with pytest.raises(ClientError):
                        await sending
            run(crash_while_sending())
            wait_dead(alice_lobby)
        finally:
            # bobby's lobby goes too, with the request still unread in its socket: only
            # alice's lobby, once it is back, can still bring him the message.
            os.kill(bobby_lobby, signal.SIGKILL)
            os.kill(bobby_lobby, signal.SIGCONT)
        wait_dead(bobby_lobby)
        net.start_node(tmp_path, "bobby")
        net.start_node(tmp_path, "alice")

        async def after():
            async with make_clients(network, ("bobby", "charlie")) as clients:
                for name, client in clients.items():
                    await wait_until(client, lambda c=client: messages(c, group, "cut short"),
                                     f"{name} gets the message the crash cut short", 60)
                return {name: len(messages(client, group, "cut short")) for name, client in clients.items()}
        assert run(after()) == {"bobby": 1, "charlie": 1}
