"""End-to-end encryption on real processes: a message's text is Megolm ciphertext wherever
it travels or is stored outside its agents' histories; a removed member cannot read what
is sent after; a member away when a session's key was sent reads every message once back;
the sessions survive a restart of the conductor."""

import os
import signal
import uuid
from pathlib import Path

import grpc
import plyvel
import pytest

from kizuna import net
from kizuna.v1 import common_pb2, conductor_pb2, conductor_pb2_grpc, group_dht_pb2, group_dht_pb2_grpc
from kizuna_node.common import anchors
from kizuna.client import ClientError
from tests.helpers import eventually, run
from tests.integration.network import (
    create_group,
    make_clients,
    make_network,
    messages,
    outcomes_by_name,
    status_name,
    wait_dead,
    wait_until,
)

pytestmark = pytest.mark.integration

NAMES = ("alice", "bobby", "charlie")
CATCH_UP = 30.0
RPC_TIMEOUT = 10.0


def _conductor(network, name):
    channel = grpc.insecure_channel(network.node(name)["conductor"])
    return channel, conductor_pb2_grpc.ConductorStub(channel)


def _call_conductor(network, name, method, request):
    channel, stub = _conductor(network, name)
    with channel:
        return getattr(stub, method)(request, metadata=network.conductor_metadata(name), timeout=RPC_TIMEOUT)


def _holder(network, name) -> conductor_pb2.KeyHolder:
    agents = _call_conductor(network, name, "ListAgents", conductor_pb2.ListAgentsRequest()).agents
    agent = next(a for a in agents if a.agent == network.agent_key(name))
    return conductor_pb2.KeyHolder(agent=agent.agent, olm_identity_key=agent.olm_identity_key,
                                   olm_fallback_key=agent.olm_fallback_key)


def _sessions(network, name, group_uuid):
    listed = _call_conductor(network, name, "ListGroupSessions",
                             conductor_pb2.ListGroupSessionsRequest(agent=network.agent_key(name)))
    return [s for s in listed.sessions if s.group_uuid == group_uuid]


def _stored_message_for(network, reader: str, space: bytes, receiver: str) -> common_pb2.Signed:
    """The copy of a message the group's DHT keeps for an offline receiver, read through
    the node `reader`'s DHT: the link from the receiver's inbox, and its target entry."""
    with net.node_local_channel(network.node(reader)["group_dht"], net.secret_path(network.node(reader))) as channel:
        dht = group_dht_pb2_grpc.GroupDhtStub(channel)
        links = dht.GetLinks(group_dht_pb2.GetLinksRequest(
            space=space, base=anchors.inbox_anchor(network.agent_key(receiver)), tag_prefix=b"message"),
            timeout=RPC_TIMEOUT).links
        assert links, f"no message linked from {receiver}'s inbox"
        target = group_dht_pb2.Op.FromString(links[-1].create.body).target
        found = dht.Get(group_dht_pb2.GetRequest(space=space, address=target), timeout=RPC_TIMEOUT)
        assert found.found
        return common_pb2.Signed.FromString(group_dht_pb2.Op.FromString(found.op.body).entry)


async def _everyone_in(network, name, names=NAMES):
    async with make_clients(network, names) as clients:
        created = await create_group(clients, name, list(names[1:]))
        return created.group.group_uuid, created.group.dna_hash


def _back_and_reads(tmp_path, network, name, group, text):
    """Starts the node of `name` again; its UI shows `text` after catch-up, decrypted."""
    net.start_node(tmp_path, name)

    async def reads():
        async with make_clients(network, (name,)) as clients:
            await clients[name].sync_inbox()
            await wait_until(clients[name], lambda: messages(clients[name], group, text),
                             f"{name} decrypts {text!r} once back", CATCH_UP)
    run(reads())


def test_a_removed_member_cannot_decrypt_a_message_sent_after_its_removal(tmp_path):
    # dave keeps the group's space on two live nodes once bobby's has left it and charlie's is down
    names = (*NAMES, "dave")
    with make_network(tmp_path, nodes=names) as network:
        group, space = run(_everyone_in(network, "Removal", names))
        secret = f"after the removal {uuid.uuid4()}"

        async def remove_then_send():
            async with make_clients(network, NAMES) as clients:
                await clients["alice"].send(group, "before the removal")
                await wait_until(clients["bobby"], lambda: messages(clients["bobby"], group, "before the removal"),
                                 "bobby reads what came before his removal")
                await clients["alice"].remove_members(group, ["bobby"])
            net.stop_node(tmp_path, "charlie", kill=True)  # so the message waits in the group's DHT
            async with make_clients(network, ("alice",), signals=False) as clients:
                return await clients["alice"].send(group, secret)
        answer = run(remove_then_send())
        outcomes = outcomes_by_name(network, answer.outcomes)
        assert sorted(outcomes) == ["charlie", "dave"]
        assert status_name(outcomes["charlie"].status) == "STORED_IN_DHT"

        # What bobby's node can read of the group's DHT: the entry, signed by alice, its text encrypted.
        stored = _stored_message_for(network, "alice", space, "charlie")
        assert secret.encode() not in stored.body
        entry = common_pb2.MessageEntry.FromString(stored.body)
        assert entry.payload == "" and entry.encrypted.ciphertext
        decrypted = _call_conductor(network, "bobby", "DecryptGroupMessages", conductor_pb2.DecryptGroupMessagesRequest(
            items=[conductor_pb2.GroupCiphertext(agent=network.agent_key("bobby"), group_uuid=group,
                                                 sender=network.agent_key("alice"), encrypted=entry.encrypted)]))
        assert decrypted.results[0].missing_key and decrypted.results[0].plaintext == b""
        # Asking alice's keystore for that session's key, as bobby would: refused.
        with pytest.raises(grpc.RpcError) as refused:
            _call_conductor(network, "alice", "ShareGroupKey", conductor_pb2.ShareGroupKeyRequest(
                agent=network.agent_key("alice"), group_uuid=group, session_id=entry.encrypted.session_id,
                receiver=_holder(network, "bobby")))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        outbound = [s for s in _sessions(network, "alice", group) if s.outbound]
        assert len(outbound) == 2 and entry.encrypted.session_id in {s.session_id for s in outbound}

        # charlie, still a member, reads it once he is back.
        _back_and_reads(tmp_path, network, "charlie", group, secret)


def test_a_member_away_when_the_keys_were_sent_decrypts_every_message_once_back(tmp_path):
    with make_network(tmp_path) as network:
        group, _ = run(_everyone_in(network, "Away"))
        net.stop_node(tmp_path, "charlie", kill=True)
        sent = [("alice", f"from alice {i}") for i in range(5)] + [("bobby", f"from bobby {i}") for i in range(3)]

        async def while_away():
            async with make_clients(network, ("alice", "bobby"), signals=False) as clients:
                for name, text in sent:  # each author's first message starts its session: its key goes to the DHT
                    answer = await clients[name].send(group, text)
                    assert status_name(outcomes_by_name(network, answer.outcomes)["charlie"].status) == "STORED_IN_DHT"
        run(while_away())
        net.start_node(tmp_path, "charlie")

        async def back():
            async with make_clients(network, ("charlie",)) as clients:
                charlie = clients["charlie"]
                await charlie.sync_inbox()
                await wait_until(charlie, lambda: len(messages(charlie, group)) >= len(sent),
                                 "charlie's UI shows all eight", CATCH_UP)
                shown = sorted(e.record.entry.payload for e in messages(charlie, group))
                history = sorted(r.entry.payload for r in await charlie.all_history(group))
                return shown, history
        shown, history = run(back())
        assert shown == history == sorted(text for _, text in sent)  # every one decrypted, each once
        inbound = _sessions(network, "charlie", group)
        assert {s.sender for s in inbound} == {network.agent_key("alice"), network.agent_key("bobby")}


def test_a_conductor_restart_keeps_every_session(tmp_path):
    with make_network(tmp_path) as network:
        group, _ = run(_everyone_in(network, "Restart"))

        async def send(text):
            async with make_clients(network, NAMES) as clients:
                await clients["alice"].send(group, text)
                for name in ("bobby", "charlie"):
                    await wait_until(clients[name], lambda n=name: messages(clients[n], group, text),
                                     f"{name} decrypts {text!r}")
        run(send("before the restart"))
        before = {name: sorted((s.session_id, s.outbound) for s in _sessions(network, name, group)) for name in NAMES}
        assert len(before["alice"]) == 1 and len(before["bobby"]) == 1

        for name in ("alice", "bobby"):
            pid = network.node(name)["pids"]["conductor"]
            os.kill(pid, signal.SIGKILL)
            wait_dead(pid)
        for name in ("alice", "bobby"):
            net.start_node(tmp_path, name)

        async def lobbies_reach_their_conductors():  # each lobby's channel reconnects within a second
            async def answers():
                try:
                    async with make_clients(network, ("alice", "bobby"), signals=False):
                        return True
                except ClientError:
                    return False
            await eventually(answers, "alice's and bobby's lobbies answer their UIs again", 20.0, interval=0.2)
        run(lobbies_reach_their_conductors())
        run(send("after the restart"))
        after = {name: _sessions(network, name, group) for name in NAMES}
        # the same sessions: alice's ratcheted on, no new one, no new key sent
        assert {name: sorted((s.session_id, s.outbound) for s in after[name]) for name in NAMES} == before
        assert after["alice"][0].message_index == 2


def _records(path: Path):
    db = plyvel.DB(str(path), create_if_missing=False)
    try:
        return list(db.iterator())
    finally:
        db.close()


def test_no_byte_of_a_text_is_stored_anywhere_but_in_its_agents_own_histories(tmp_path):
    nodes = ("alice", "bobby", "charlie", "dave")  # dave's node holds the DHT too, but no member
    with make_network(tmp_path, nodes=nodes) as network:
        group, _ = run(_everyone_in(network, "Canary"))
        net.stop_node(tmp_path, "charlie", kill=True)
        canary = f"canary-{uuid.uuid4().hex}"

        async def send():
            async with make_clients(network, ("alice", "bobby")) as clients:
                await clients["alice"].send(group, canary)
                await wait_until(clients["bobby"], lambda: messages(clients["bobby"], group, canary), "bobby reads it")
        run(send())
        _back_and_reads(tmp_path, network, "charlie", group, canary)
        net.down(tmp_path)

        needle = canary.encode()
        histories = set()
        for name in nodes:
            data_dir = Path(network.node(name)["data_dir"])
            for store in ("conductor", "dht", "lobby"):
                for key, value in _records(data_dir / store):
                    if needle in key or needle in value:
                        assert store == "lobby" and key.startswith(b"msg:"), f"the text in {name}'s {store} under {key[:12]!r}"
                        histories.add((name, key[4:36]))
                if store != "lobby":  # nor in any file: logs, tables, what compaction left
                    for path in (data_dir / store).iterdir():
                        assert not (path.is_file() and needle in path.read_bytes()), f"the text in {path}"
        assert histories == {(name, network.agent_key(name)) for name in NAMES}
