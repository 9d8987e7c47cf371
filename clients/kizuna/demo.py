"""`make demo`: the seed's scenario on a local network of three nodes, as each UI saw it.

alice creates a group with bobby and charlie, by username; each of them sees the invite
and the group's first message with the accept / delete / block banner; they accept and
talk. Then charlie's node goes offline while alice writes: his messages wait, sealed to
him, in the group's DHT, and reach him when he is back. Every process the demo starts is
stopped at the end.
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


async def play(directory: str) -> None:
    print("Starting three nodes on loopback (alice, bobby, charlie), each a conductor, a lobby and a DHT node...", flush=True)
    network = net.up(directory, exit_with_pid=os.getpid())
    names = {network.agent_key(n): n for n in ("alice", "bobby", "charlie")}
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
        for name, client in clients.items():
            history = await client.all_history(group)
            t.say(name, f"{len(history)} messages: " + " | ".join(f"{t.who(r.entry.author)}: {r.entry.payload}" for r in history))
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
