"""`make demo`: the seed's scenario on a local network of three nodes, as each UI saw it.

alice creates a group with bobby and charlie, by username; each of them sees the invite
and the group's first message with the accept / delete / block banner; they accept and
talk. Then charlie's node goes offline while alice writes: his messages wait, sealed to
him, in the group's DHT, and reach him when he is back. Then the group changes: alice adds
dana (a fourth node, running from the start but in no group yet), who gets the invite and
the next message but not the earlier ones; she removes bobby, who stops receiving and whose
UI no longer lists the group; she renames it; and her UI shows dana's delivered and read
receipts. Every process the demo starts is stopped at the end.
"""

import argparse
import asyncio
import base64
import os
import sys
import tempfile
import time

from kizuna import net
from kizuna.client import Client
from kizuna.v1 import lobby_pb2

TIMEOUT = 15.0
NODES = ("alice", "bobby", "charlie", "dana")


class Transcript:
    def __init__(self, names: dict[bytes, str]):
        self.names = names
        self.started = time.monotonic()

    def who(self, agent: bytes) -> str:
        return self.names.get(agent, base64.b64encode(agent).decode()[:8])

    def say(self, ui: str, text: str) -> None:
        label = f"{ui}'s UI"
        print(f"  {time.monotonic() - self.started:6.2f}s  [{label:>13}]  {text}", flush=True)

    def step(self, text: str) -> None:
        print(f"\n== {text}", flush=True)


def status_name(status: int) -> str:
    return lobby_pb2.DeliveryStatus.Name(status)


async def expect_message(client: Client, group_uuid: str, payload: str, ui: str, t: Transcript):
    event = await client.wait_for(
        lambda e: e.kind == "message" and e.record.entry.group_uuid == group_uuid and e.record.entry.payload == payload,
        TIMEOUT,
    )
    entry = event.record.entry
    line = f"message from {t.who(entry.author)}: {entry.payload!r}"
    if event.warning:
        line += f"  (warning: {event.warning})"
    t.say(ui, line)
    if event.first_message:
        t.say(ui, "  first message of this group: [accept / delete / block]")
    return event


def change_line(t: Transcript, signal) -> str:
    update, who = signal.update, t.who(signal.author)
    if update.change == "add":
        what = f"{who} added {', '.join(t.who(s) for s in update.subjects)}"
    elif update.change == "remove":
        what = f"{who} removed {', '.join(t.who(s) for s in update.subjects)}"
    elif update.change == "rename":
        what = f"{who} renamed the group to {update.name!r}"
    else:
        what = f"{who} left"
    return f"group change: {what}; members: {', '.join(t.who(m) for m in signal.group.members)}"


async def expect_change(client: Client, group_uuid: str, change: str, ui: str, t: Transcript):
    event = await client.wait_for(
        lambda e: e.kind == "group_update" and e.group_uuid == group_uuid and e.update.update.change == change, TIMEOUT)
    t.say(ui, change_line(t, event.update))
    return event


async def group_changes(network, clients: dict, group: str, t: Transcript) -> None:
    """The group changes: dana added, bobby removed, a new name, and receipts."""
    dana = clients["dana"]
    t.step("alice adds dana to the group (admins only); history is not shared with her")
    added = await clients["alice"].add_members(group, [base64.b64encode(network.agent_key("dana")).decode()])
    for outcome in added.outcomes:
        what = "invite to" if outcome.receiver == network.agent_key("dana") else "told"
        t.say("alice", f"  {what} {t.who(outcome.receiver)}: {status_name(outcome.status)}")
    event = await dana.wait_for(lambda e: e.kind == "invite" and e.group_uuid == group, TIMEOUT)
    t.say("dana", f"invite from {t.who(event.signal.invite.inviter)} to {event.group.name!r}")
    for name in ("bobby", "charlie"):
        await expect_change(clients[name], group, "add", name, t)
    await dana.accept(group)
    t.say("dana", "accepted the group")
    sent = await clients["alice"].send(group, "Welcome dana!")
    for outcome in sent.outcomes:
        t.say("alice", f"  to {t.who(outcome.receiver)}: {status_name(outcome.status)}")
    for name in ("bobby", "charlie", "dana"):
        await expect_message(clients[name], group, "Welcome dana!", name, t)
    history = await dana.all_history(group)
    t.say("dana", f"{len(history)} message in her history: " + " | ".join(r.entry.payload for r in history))

    t.step("dana reads it: alice's UI hears her delivered and read receipts, unasked")
    welcome = sent.message.message_hash
    dana_key = network.agent_key("dana")

    def dana_receipt(read: bool):
        return lambda e: (e.kind == "receipt" and e.receipt.message_hash == welcome and e.receipt.receiver == dana_key
                          and bool(e.receipt.read_at) == read)

    delivered = await clients["alice"].wait_for(dana_receipt(False), TIMEOUT)
    t.say("alice", "receipt: 'Welcome dana!' delivered to dana")
    await dana.mark_read(group, [welcome])
    t.say("dana", "marked 'Welcome dana!' read")
    read = await clients["alice"].wait_for(dana_receipt(True), TIMEOUT)
    t.say("alice", f"receipt: 'Welcome dana!' read by dana "
                   f"({(read.receipt.read_at - delivered.receipt.delivered_at) / 1000:.0f} ms after delivery)")

    t.step("alice removes bobby: he stops receiving and his UI no longer lists the group")
    removed = await clients["alice"].remove_members(group, [base64.b64encode(network.agent_key("bobby")).decode()])
    for outcome in removed.outcomes:
        t.say("alice", f"  told {t.who(outcome.receiver)}: {status_name(outcome.status)}")
    event = await expect_change(clients["bobby"], group, "remove", "bobby", t)
    listed = {g.group_uuid for g in (await clients["bobby"].groups()).details}
    if not event.update.group.departed or group in listed:
        raise RuntimeError("bobby's UI still lists the group after his removal")
    t.say("bobby", "the group is gone from his group list")
    for name in ("charlie", "dana"):
        await expect_change(clients[name], group, "remove", name, t)
    sent = await clients["alice"].send(group, "Just the three of us now")
    receivers = ", ".join(t.who(r) for r in sent.message.entry.receiver)
    t.say("alice", f"sent 'Just the three of us now' to {receivers}")
    for name in ("charlie", "dana"):
        await expect_message(clients[name], group, "Just the three of us now", name, t)
    got = [e for e in clients["bobby"].events_so_far()
           if e.kind == "message" and e.record.entry.payload == "Just the three of us now"]
    t.say("bobby", "received nothing" if not got else "received it (unexpected)")

    t.step("alice renames the group")
    await clients["alice"].rename(group, "Saturday hike")
    for name in ("charlie", "dana"):
        await expect_change(clients[name], group, "rename", name, t)

    t.step("Conversations, as alice's UI lists them")
    for c in await clients["alice"].conversations():
        latest = f"{t.who(c.latest.entry.author)}: {c.latest.entry.payload}" if c.HasField("latest") else "no messages"
        members = ", ".join(t.who(m) for m in c.group.members)
        t.say("alice", f"{c.group.name!r} ({members}) - latest: {latest}")


async def play(directory: str) -> None:
    print("Starting four nodes on loopback (alice, bobby, charlie, dana), each a conductor, a lobby and a DHT node...",
          flush=True)
    network = net.up(directory, nodes=NODES, exit_with_pid=os.getpid())
    print("Peer traffic (lobby to lobby, DHT to DHT) is TLS, each channel pinned to the certificate the"
          " peer's signed info names:", flush=True)
    for name in NODES:
        node = network.node(name)
        print(f"  {name:>8}: lobby {node['lobby_advertise']}, DHT {node['dht_advertise']} (TLS,"
              f" certificate {node['fingerprint'][:16]}...); UI {node['lobby']} (this machine only)", flush=True)
    names = {network.agent_key(n): n for n in NODES}
    t = Transcript(names)
    clients = {n: Client(network.lobby_address(n), network.token(n)) for n in names.values()}
    try:
        t.step("Each UI starts: fetch the Groups entry, open the signal stream")
        for name, client in clients.items():
            groups = await client.groups()
            await client.start_signals()
            t.say(name, f"Groups entry: {len(groups.groups.group_uuids)} accepted, {len(groups.groups.blocked)} blocked; signals open")

        t.step("alice creates a group with bobby and charlie, by username")
        created = await clients["alice"].create_group("Weekend trip", ["bobby", "charlie"])
        group = created.group.group_uuid
        t.say("alice", f"created {created.group.name!r} ({group[:8]}); DNA cloned: {created.group.dna_hash.hex()[:16]}")
        for outcome in created.invites:
            t.say("alice", f"  invite to {t.who(outcome.receiver)}: {status_name(outcome.status)}")
        for name in ("bobby", "charlie"):
            event = await clients[name].wait_for(lambda e: e.kind == "invite" and e.group_uuid == group, TIMEOUT)
            t.say(name, f"invite from {t.who(event.signal.invite.inviter)} to {event.signal.invite.group.name!r}")

        t.step("alice sends the group's first message")
        sent = await clients["alice"].send(group, "Hi both! Hiking on Saturday?")
        for outcome in sent.outcomes:
            t.say("alice", f"  to {t.who(outcome.receiver)}: {status_name(outcome.status)}")
        for name in ("bobby", "charlie"):
            await expect_message(clients[name], group, "Hi both! Hiking on Saturday?", name, t)

        t.step("bobby and charlie accept; bobby answers")
        for name in ("bobby", "charlie"):
            await clients[name].accept(group)
            t.say(name, "accepted the group")
        sent = await clients["bobby"].send(group, "I'm in. 9am at the station?")
        for outcome in sent.outcomes:
            t.say("bobby", f"  to {t.who(outcome.receiver)}: {status_name(outcome.status)}")
        for name in ("alice", "charlie"):
            await expect_message(clients[name], group, "I'm in. 9am at the station?", name, t)

        t.step("charlie blocks bobby; alice writes again")
        await clients["charlie"].block_agent(network.agent_key("bobby"))
        t.say("charlie", "blocked bobby")
        await clients["alice"].send(group, "Great, see you both there")
        await expect_message(clients["charlie"], group, "Great, see you both there", "charlie", t)
        await expect_message(clients["bobby"], group, "Great, see you both there", "bobby", t)

        t.step("charlie's node goes offline (its three processes are killed); alice writes on")
        await clients["charlie"].close()
        net.stop_node(directory, "charlie", kill=True)
        t.say("charlie", "(offline)")
        offline_lines = ["Change of plan: 10am", "Bring water", "Weather looks fine"]
        for text in offline_lines:
            started = time.monotonic()
            sent = await clients["alice"].send(group, text)
            took = (time.monotonic() - started) * 1000
            outcomes = ", ".join(f"{t.who(o.receiver)}: {status_name(o.status)}" for o in sent.outcomes)
            t.say("alice", f"sent {text!r} in {took:.0f} ms -> {outcomes}")
            await expect_message(clients["bobby"], group, text, "bobby", t)

        t.step("charlie's node comes back; his lobby catches up from the group's DHT")
        net.start_node(directory, "charlie")
        clients["charlie"] = Client(network.lobby_address("charlie"), network.token("charlie"))
        await clients["charlie"].groups()
        await clients["charlie"].start_signals()
        t.say("charlie", "back online; signals open")
        for text in offline_lines:
            await expect_message(clients["charlie"], group, text, "charlie", t)

        t.step("History, as each UI shows it (newest first)")
        for name in ("alice", "bobby", "charlie"):
            history = await clients[name].all_history(group)
            t.say(name, f"{len(history)} messages: " + " | ".join(f"{t.who(r.entry.author)}: {r.entry.payload}" for r in history))

        await group_changes(network, clients, group, t)
    finally:
        for client in clients.values():
            await client.close()
        net.down(directory)
    print("\nAll processes stopped.")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Play the seed's group messaging scenario on a local network")
    parser.add_argument("--dir", help="network directory (default: a temporary one, removed afterwards)")
    args = parser.parse_args(argv)
    if args.dir:
        asyncio.run(play(args.dir))
        return 0
    with tempfile.TemporaryDirectory(prefix="kizuna-demo-") as directory:
        asyncio.run(play(directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
