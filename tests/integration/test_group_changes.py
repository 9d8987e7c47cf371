"""Groups that change (issue 6) on real processes: members added and removed by an admin,
a rename, an agent's own leave; and every DHT holder refusing what the membership does
not allow, not just the lobby.

History is not shared with an added member: it gets the invite, then the messages sent
after it was added, never the earlier ones.
"""

import base64

import grpc
import pytest

from kizuna import net
from kizuna.client import ClientError
from kizuna.v1 import common_pb2, conductor_pb2, conductor_pb2_grpc, group_dht_pb2, group_dht_pb2_grpc
from kizuna_node.common import anchors, group_state
from kizuna_node.common.hashing import blake2b_256, now_micros
from tests.helpers import eventually, run
from tests.integration.network import (
    TIMEOUT,
    create_group,
    make_clients,
    make_network,
    messages,
    outcomes_by_name,
    settle,
    status_name,
    wait_until,
)

pytestmark = pytest.mark.integration

THREE = ("alice", "bobby", "charlie")
FOUR = ("alice", "bobby", "charlie", "dana")
RPC_TIMEOUT = 10.0
CATCH_UP = 30.0


def b64(network, name) -> str:
    return base64.b64encode(network.agent_key(name)).decode()


def updates(client, group, change=None):
    """The group_update events the client's UI has seen for a group (of a change, if given)."""
    return [e.update for e in client.events_so_far()
            if e.kind == "group_update" and e.group_uuid == group and (change is None or e.update.update.change == change)]


async def details(client, group):
    """The group's GroupInfo in the agent's GetGroups, or None when its UI no longer lists it."""
    answer = await client.groups()
    return next((g for g in answer.details if g.group_uuid == group), None)




class Dhts:
    """Each node's GroupDht and each agent's conductor, as an attacker holding a member's
    node secret (a compromised node) would call them."""

    def __init__(self, network, names):
        self.network = network
        self.names = names
        self._channels = {}

    def _channel(self, address, node=None):
        """A channel to a node's own service; for `node`'s DHT, its calls carry the node's secret."""
        if address not in self._channels:
            self._channels[address] = grpc.insecure_channel(address) if node is None else net.node_local_channel(
                address, net.secret_path(self.network.node(node)))
        return self._channels[address]

    def close(self):
        """Closes the channels; later calls open new ones (after a node's restart, say)."""
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            channel.close()

    def dht(self, name):
        return group_dht_pb2_grpc.GroupDhtStub(self._channel(self.network.dht_address(name), name))

    def conductor(self, name):
        return conductor_pb2_grpc.ConductorStub(self._channel(self.network.conductor_address(name)))

    def cells(self, name):
        return self.conductor(name).ListCells(
            conductor_pb2.ListCellsRequest(agent=self.network.agent_key(name)),
            metadata=self.network.conductor_metadata(name), timeout=RPC_TIMEOUT).cells

    def signed(self, name, body: bytes) -> common_pb2.Signed:
        """`body` signed by agent `name`'s key, through its conductor with the node secret."""
        signature = self.conductor(name).Sign(
            conductor_pb2.SignRequest(agent=self.network.agent_key(name), data=body),
            metadata=self.network.conductor_metadata(name), timeout=RPC_TIMEOUT).signature
        return common_pb2.Signed(body=body, signature=signature, author=self.network.agent_key(name))

    def op(self, name, space, **fields) -> common_pb2.Signed:
        op = group_dht_pb2.Op(space=space, author=self.network.agent_key(name), timestamp=now_micros(), **fields)
        return self.signed(name, op.SerializeToString())

    def space_record(self, node, space):
        listed = self.dht(node).ListSpaces(group_dht_pb2.ListSpacesRequest(), timeout=RPC_TIMEOUT)
        return next((s for s in listed.spaces if s.space == space), None)

    def publish(self, node, signed, local_only=False):
        return self.dht(node).Publish(group_dht_pb2.PublishRequest(op=signed, local_only=local_only),
                                      timeout=RPC_TIMEOUT)

    def refusals(self, signed, nodes, local_only=False) -> dict:
        """{node: status code name} of publishing `signed` to each node ("OK" if stored)."""
        codes = {}
        for node in nodes:
            try:
                self.publish(node, signed, local_only=local_only)
                codes[node] = "OK"
            except grpc.RpcError as exc:
                codes[node] = exc.code().name
        return codes

    def served(self, space, address, nodes) -> dict:
        """{(node, local_only): found} of Get on each node (an error counts as not served)."""
        found = {}
        for node in nodes:
            for local in (True, False):
                try:
                    found[(node, local)] = self.dht(node).Get(
                        group_dht_pb2.GetRequest(space=space, address=address, local_only=local),
                        timeout=RPC_TIMEOUT).found
                except grpc.RpcError:
                    found[(node, local)] = False
        return found


async def _group_of_three(network, clients, name="Changing"):
    created = await create_group(clients, name, ["bobby", "charlie"])
    group = created.group.group_uuid
    return group, (await details(clients["alice"], group)).dna_hash


# ---------------------------------------------------------------- add


def test_added_member_gets_the_invite_then_the_next_message_but_not_the_earlier_ones(tmp_path):
    with make_network(tmp_path, nodes=FOUR) as network:
        dana_key = network.agent_key("dana")

        async def scenario():
            async with make_clients(network, FOUR) as clients:
                alice, dana = clients["alice"], clients["dana"]
                group, _ = await _group_of_three(network, clients)
                before = [await alice.send(group, f"before dana {i}") for i in range(2)]
                await settle(alice, [clients["bobby"], clients["charlie"]], group)
                added = await alice.add_members(group, [b64(network, "dana")])
                invite = await dana.wait_for(lambda e: e.kind == "invite" and e.group_uuid == group, TIMEOUT)
                for name in ("bobby", "charlie"):
                    await wait_until(clients[name], lambda c=clients[name]: updates(c, group, "add"),
                                     f"{name}'s UI hears dana was added")
                after = await alice.send(group, "welcome dana")
                await wait_until(dana, lambda: messages(dana, group, "welcome dana"), "dana's UI shows the next message")
                await dana.accept(group)
                await settle(alice, [dana], group)
                return (added, invite, before, after, dana.events_so_far(), await dana.all_history(group),
                        {n: await details(clients[n], group) for n in FOUR}, updates(clients["bobby"], group, "add"))

        added, invite, before, after, dana_events, dana_history, infos, bobby_updates = run(scenario())
        assert dana_key in added.group.members
        told = {n: status_name(o.status) for n, o in outcomes_by_name(network, added.outcomes).items()}
        assert told == {"bobby": "DELIVERED", "charlie": "DELIVERED", "dana": "DELIVERED"}, told
        assert invite.signal.invite.inviter == network.agent_key("alice")
        assert dana_key in invite.group.members
        # the next message is addressed to dana; the earlier ones never reach her
        assert dana_key in after.message.entry.receiver
        assert status_name(outcomes_by_name(network, after.outcomes)["dana"].status) == "DELIVERED"
        payloads = [e.record.entry.payload for e in dana_events if e.kind == "message"]
        assert payloads[0] == "welcome dana", payloads
        assert not any(p.startswith("before dana") for p in payloads), payloads
        assert {r.message_hash for r in dana_history}.isdisjoint({a.message.message_hash for a in before})
        assert after.message.message_hash in {r.message_hash for r in dana_history}
        kinds = [e.kind for e in dana_events if e.group_uuid == invite.group_uuid and e.kind in ("invite", "message")]
        assert kinds[0] == "invite", kinds
        for name in FOUR:
            assert set(infos[name].members) == {network.agent_key(n) for n in FOUR}, name
            assert list(infos[name].admins) == [network.agent_key("alice")], name
            assert infos[name].update_seq == 1, name
        assert bobby_updates[0].author == network.agent_key("alice")
        assert list(bobby_updates[0].update.subjects) == [dana_key]


# ---------------------------------------------------------------- remove


def test_removed_member_is_not_addressed_its_ops_are_refused_by_every_holder_and_its_ui_drops_the_group(tmp_path):
    with make_network(tmp_path) as network:
        bobby_key = network.agent_key("bobby")
        dhts = Dhts(network, THREE)

        async def scenario():
            async with make_clients(network, THREE) as clients:
                alice, bobby, charlie = clients["alice"], clients["bobby"], clients["charlie"]
                group, space = await _group_of_three(network, clients)
                await alice.send(group, "while bobby is in")
                await settle(alice, [bobby, charlie], group)
                removed = await alice.remove_members(group, [b64(network, "bobby")])
                await wait_until(bobby, lambda: updates(bobby, group, "remove"), "bobby's UI hears he was removed")
                await wait_until(charlie, lambda: updates(charlie, group, "remove"), "charlie's UI hears bobby was removed")
                after = await alice.send(group, "after bobby left")
                await settle(alice, [charlie], group)
                return (group, space, removed, after, updates(bobby, group, "remove")[0],
                        [e.record.entry.payload for e in messages(bobby, group)],
                        await details(bobby, group), await bobby.groups(), await details(charlie, group))

        group, space, removed, after, bobby_update, bobby_payloads, bobby_info, bobby_groups, charlie_info = run(scenario())
        try:
            assert bobby_key not in removed.group.members
            assert {n for n in outcomes_by_name(network, removed.outcomes)} == {"bobby", "charlie"}
            assert bobby_update.group.departed
            assert list(bobby_update.update.subjects) == [bobby_key]
            assert bobby_key not in charlie_info.members
            # the next message is neither addressed to bobby nor delivered or stored for him
            assert list(after.message.entry.receiver) == [network.agent_key("charlie")]
            assert set(outcomes_by_name(network, after.outcomes)) == {"charlie"}
            assert "after bobby left" not in bobby_payloads
            # his UI no longer lists the group
            assert bobby_info is None
            assert group not in bobby_groups.groups.group_uuids
            # his node left the space (no other agent it hosts is a member)
            eventually(lambda: dhts.space_record("bobby", space) is None, "bobby's node leaves the group's space")

            # an op he publishes to the group's space afterwards is refused by every holder
            forged = dhts.op("bobby", space, kind=group_dht_pb2.STORE_ENTRY, entry_type="note",
                             entry=f"bobby after removal {now_micros()}".encode())
            entry_address = blake2b_256(group_dht_pb2.Op.FromString(forged.body).entry)
            holders = ("alice", "charlie")
            assert dhts.refusals(forged, holders, local_only=True) == {n: "PERMISSION_DENIED" for n in holders}
            assert dhts.refusals(forged, THREE) == {n: "PERMISSION_DENIED" for n in THREE}
            assert not any(dhts.served(space, entry_address, THREE).values())
            # and so is a link into charlie's inbox
            link = dhts.op("bobby", space, kind=group_dht_pb2.CREATE_LINK,
                           base=anchors.inbox_anchor(network.agent_key("charlie")),
                           target=entry_address, tag=b"message")
            assert dhts.refusals(link, holders, local_only=True) == {n: "PERMISSION_DENIED" for n in holders}
        finally:
            dhts.close()


def test_member_removed_while_offline_gets_no_outcome_and_nothing_in_the_dht_for_later_messages(tmp_path):
    with make_network(tmp_path) as network:
        charlie_key = network.agent_key("charlie")
        dhts = Dhts(network, THREE)

        async def setup():
            async with make_clients(network, THREE) as clients:
                return await _group_of_three(network, clients, "Charlie goes")

        group, space = run(setup())

        async def while_charlie_is_away():
            async with make_clients(network, ("alice", "bobby")) as clients:
                alice = clients["alice"]
                removed = await alice.remove_members(group, [b64(network, "charlie")])
                answers = [await alice.send(group, f"without charlie {i}") for i in range(3)]
                await settle(alice, [clients["bobby"]], group)
                return removed, answers

        try:
            net.stop_node(tmp_path, "charlie", kill=True)
            removed, answers = run(while_charlie_is_away())
            told = {n: status_name(o.status) for n, o in outcomes_by_name(network, removed.outcomes).items()}
            assert told["bobby"] == "DELIVERED"
            assert told["charlie"] in ("STORED_IN_DHT", "QUEUED"), told  # he is told he was removed
            for answer in answers:
                assert charlie_key not in answer.message.entry.receiver
                assert set(outcomes_by_name(network, answer.outcomes)) == {"bobby"}
            # nothing waits for him in the group's DHT but the update that removed him
            for node in ("alice", "bobby"):
                links = dhts.dht(node).GetLinks(group_dht_pb2.GetLinksRequest(
                    space=space, base=anchors.inbox_anchor(charlie_key), tag_prefix=b"message"), timeout=RPC_TIMEOUT)
                assert not links.links, node

            net.start_node(tmp_path, "charlie")

            async def after_charlie_is_back():
                async with make_clients(network, ("charlie",)) as clients:
                    charlie = clients["charlie"]

                    async def gone_after_catch_up():
                        if await details(charlie, group) is None:
                            return True
                        await charlie.sync_inbox()
                        return False

                    await eventually(gone_after_catch_up, "charlie's UI stops listing the group after his catch-up",
                                     CATCH_UP)
                    return messages(charlie, group), await charlie.groups()

            seen, groups = run(after_charlie_is_back())
            assert seen == []
            assert group not in groups.groups.group_uuids
        finally:
            dhts.close()


# ---------------------------------------------------------------- a non-admin


@pytest.mark.parametrize("change", ["add", "remove", "rename"])
def test_a_non_admins_change_is_refused_by_the_lobby_and_by_every_dht_holder(tmp_path, change):
    with make_network(tmp_path, nodes=FOUR) as network:
        dhts = Dhts(network, FOUR)
        members = [network.agent_key(n) for n in THREE]

        async def scenario():
            async with make_clients(network, THREE) as clients:
                group, space = await _group_of_three(network, clients, "Admins only")
                bobby = clients["bobby"]
                with pytest.raises(ClientError) as refused:
                    if change == "add":
                        await bobby.add_members(group, [b64(network, "dana")])
                    elif change == "remove":
                        await bobby.remove_members(group, [b64(network, "charlie")])
                    else:
                        await bobby.rename(group, "Bobby's now")
                return group, space, refused.value, await details(clients["alice"], group)

        try:
            group, space, refused, info = run(scenario())
            assert refused.code == grpc.StatusCode.PERMISSION_DENIED, refused
            assert info.update_seq == 0 and info.name == "Admins only"

            def in_space_everywhere():
                return all(dhts.space_record(n, space) is not None for n in THREE)

            eventually(in_space_everywhere, "each member's node is in the group's space")
            record = dhts.space_record("alice", space)
            assert record.update_seq == 0
            # before any update a space's state is its properties': the initial members, the creator as admin
            current_members = list(record.members) or list(record.properties.initial_members)
            current_admins = list(record.admins) or [record.properties.creator]
            assert current_admins == [network.agent_key("alice")]
            subjects, new_members, name = [], current_members, info.name
            if change == "add":
                subjects = [network.agent_key("dana")]
                new_members = new_members + subjects
            elif change == "remove":
                subjects = [network.agent_key("charlie")]
                new_members = [m for m in new_members if m not in subjects]
            else:
                name = "Bobby's now"
            update = common_pb2.GroupUpdate(
                group_uuid=group, seq=record.update_seq + 1, prev=record.update_head, change=change, subjects=subjects,
                members=new_members, admins=current_admins, name=name, timestamp=now_micros())
            signed_update = dhts.signed("bobby", update.SerializeToString())
            op = dhts.op("bobby", space, kind=group_dht_pb2.STORE_ENTRY, entry_type=group_state.ENTRY_TYPE,
                         entry=signed_update.SerializeToString())
            assert dhts.refusals(op, THREE, local_only=True) == {n: "PERMISSION_DENIED" for n in THREE}
            assert dhts.refusals(op, THREE) == {n: "PERMISSION_DENIED" for n in THREE}
            entry_address = blake2b_256(group_dht_pb2.Op.FromString(op.body).entry)
            assert not any(dhts.served(space, entry_address, THREE).values())
            for node in THREE:
                held = dhts.space_record(node, space)
                assert held.update_seq == 0 and held.update_head == b"", node
                assert list(held.members or held.properties.initial_members) == members, node
                assert list(held.admins or [held.properties.creator]) == [network.agent_key("alice")], node
        finally:
            dhts.close()


# ---------------------------------------------------------------- rename, then more changes


def test_rename_reaches_every_member_and_names_are_1_to_50_characters(tmp_path):
    with make_network(tmp_path) as network:

        async def scenario():
            async with make_clients(network, THREE) as clients:
                alice = clients["alice"]
                group, _ = await _group_of_three(network, clients, "Old name")
                with pytest.raises(ClientError) as too_long:
                    await alice.rename(group, "x" * 51)
                renamed = await alice.rename(group, "New name")
                for name in ("bobby", "charlie"):
                    await wait_until(clients[name], lambda c=clients[name]: updates(c, group, "rename"),
                                     f"{name}'s UI hears the rename")
                seen = updates(clients["bobby"], group, "rename")[0]
                return too_long.value, renamed, seen, {n: (await details(clients[n], group)).name for n in THREE}

        too_long, renamed, seen, names = run(scenario())
        assert too_long.code == grpc.StatusCode.INVALID_ARGUMENT
        assert renamed.group.name == "New name" and renamed.group.update_seq == 1
        assert seen.update.name == "New name" and seen.author == network.agent_key("alice")
        assert names == {n: "New name" for n in THREE}




def test_an_add_after_a_rename_is_accepted_by_every_holder(tmp_path):
    with make_network(tmp_path, nodes=FOUR) as network:

        async def scenario():
            async with make_clients(network, FOUR) as clients:
                alice = clients["alice"]
                group, _ = await _group_of_three(network, clients, "Old name")
                await alice.rename(group, "New name")
                added = await alice.add_members(group, [b64(network, "dana")])
                await clients["dana"].wait_for(lambda e: e.kind == "invite" and e.group_uuid == group, TIMEOUT)
                return added

        added = run(scenario())
        assert added.group.name == "New name" and added.group.update_seq == 2
        assert network.agent_key("dana") in added.group.members


# ---------------------------------------------------------------- leave




def test_leave_others_see_it_and_the_leavers_clone_cell_is_gone_after_restart(tmp_path):
    with make_network(tmp_path) as network:
        charlie_key = network.agent_key("charlie")
        dhts = Dhts(network, THREE)

        async def scenario():
            async with make_clients(network, THREE) as clients:
                group, space = await _group_of_three(network, clients, "Leaving")
                left = await clients["charlie"].leave(group)
                for name in ("alice", "bobby"):
                    await wait_until(clients[name], lambda c=clients[name]: updates(c, group, "leave"),
                                     f"{name}'s UI sees charlie leave")
                after = await clients["alice"].send(group, "after charlie left")
                await settle(clients["alice"], [clients["bobby"]], group)
                return (group, space, left, {n: updates(clients[n], group, "leave")[0] for n in ("alice", "bobby")},
                        {n: await details(clients[n], group) for n in THREE}, after)

        try:
            group, space, left, seen, infos, after = run(scenario())
            assert charlie_key not in left.group.members and left.group.departed
            for name in ("alice", "bobby"):
                assert seen[name].author == charlie_key, name
                assert list(seen[name].update.subjects) == [charlie_key], name
                assert charlie_key not in infos[name].members, name
            assert infos["charlie"] is None
            assert charlie_key not in after.message.entry.receiver
            assert not any(c.dna_hash == space for c in dhts.cells("charlie"))

            net.stop_node(tmp_path, "charlie")
            net.start_node(tmp_path, "charlie")
            dhts.close()
            cells = dhts.cells("charlie")
            assert not any(c.dna_hash == space for c in cells), [c.dna_hash.hex()[:8] for c in cells]
            assert any(c.template == "lobby" for c in cells)
            assert dhts.space_record("charlie", space) is None

            async def charlie_after_restart():
                async with make_clients(network, ("charlie",), signals=False) as clients:
                    return await details(clients["charlie"], group), await clients["charlie"].groups()

            info, groups = run(charlie_after_restart())
            assert info is None and group not in groups.groups.group_uuids
        finally:
            dhts.close()
