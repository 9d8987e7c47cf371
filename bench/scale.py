"""The scale section of `make bench` (section 8), also runnable alone:

    .venv/bin/python -m bench.scale [--quick] [--nodes 20] [--agents-per-node 50] [--sizes 10,100,1000] ...

8a groups of 10, 100 and 1,000 members over a network of `--nodes` nodes with
`--agents-per-node` agents each (`kizuna net up --nodes N --agents-per-node M`): the time
to create each group, the time from a send until its first and its last member's signal,
and the lobby calls per message beside the members and nodes it reached (per-node
delivery: calls grow with nodes, not members). 8b catch-up: one node (and so every member
it hosts) away while messages are sent to the largest group, then back: the time until
the last of its members has every one on its signal stream. 8c bytes of the anti-entropy
summary rounds in which nothing differed, from the DHTs' own counters. 8d on `--dht-nodes`
kizuna-group-dht processes of their own: a node away while ops are written, then back:
the time until it holds every op it should; two of the three holders of a set of addresses
killed for good: the time until every address is on three live holders again, and how
many ops were lost (the target is 0).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bench.run import RESULTS_DIR, WAIT, Agent, Tap, payload, progress, stats_ms
from kizuna import net
from kizuna.client import Client
from kizuna.v1 import common_pb2, group_dht_pb2, group_dht_pb2_grpc, lobby_pb2
from kizuna_node.common import dna, space_claims
from kizuna_node.common.hashing import blake2b_256, now_micros
from kizuna_node.group_dht import placement

REPO_ROOT = Path(__file__).resolve().parent.parent
TAP_START_PARALLEL = 64  # signal streams opened at once
REPLICATION = 3


def spread(network: net.Network, nodes: list[str], per_node: int) -> list[str]:
    """Every agent of the network, one per node in turn (n01, n02, ..., n01-2, n02-2, ...), so
    the first k members of a group are spread over min(k, nodes) nodes."""
    return [net.agent_names(node, per_node)[j] for j in range(per_node) for node in nodes]


class Streams:
    """Signal streams of many agents, one channel per lobby."""

    def __init__(self, network: net.Network):
        self.network = network
        self.channels: dict[str, grpc.aio.Channel] = {}
        self.taps: dict[str, Tap] = {}

    def channel(self, address: str) -> grpc.aio.Channel:
        if address not in self.channels:
            self.channels[address] = grpc.aio.insecure_channel(address)
        return self.channels[address]

    async def open(self, names: list[str], since: dict[str, int] | None = None) -> list[Tap]:
        """Streams of these agents; those in `since` resume after the seq given there, as a
        UI that was away does (what was kept meanwhile is replayed and counts)."""
        sem = asyncio.Semaphore(TAP_START_PARALLEL)

        async def one(name):
            async with sem:
                address = self.network.lobby_address(name)
                tap = Tap(name, address, self.network.token(name), channel=self.channel(address))
                await tap.start(timeout=60, since=(since or {}).get(name))
                self.taps[name] = tap
                return tap

        await asyncio.gather(*(one(n) for n in names if n not in self.taps))
        return [self.taps[n] for n in names]

    async def close(self, names=None) -> None:
        for name in list(names if names is not None else self.taps):
            tap = self.taps.pop(name, None)
            if tap is not None:
                await tap.close()

    async def close_channels(self, address: str | None = None) -> None:
        for key in [address] if address else list(self.channels):
            channel = self.channels.pop(key, None)
            if channel is not None:
                await channel.close()


CREATE_TIMEOUT = 600.0  # creating a large group waits for every invite's outcome


def agent_of(network: net.Network, name: str) -> Agent:
    agent = Agent(name, network.agent(name)["node"], network.agent_key(name), network.token(name),
                  network.lobby_address(name))
    agent.client = Client(agent.lobby, agent.token, timeout=CREATE_TIMEOUT)
    return agent


async def every_agent_served(network: net.Network, timeout: float = 300.0) -> None:
    """Waits until every agent's lobby answers a UI call for it (a lobby hosts its agents
    one by one after it starts serving)."""
    sem = asyncio.Semaphore(TAP_START_PARALLEL)
    deadline = time.monotonic() + timeout

    async def one(name):
        async with sem:
            client = Client(network.lobby_address(name), network.token(name), timeout=10)
            try:
                while True:
                    try:
                        await client.groups()
                        return
                    except Exception:  # noqa: BLE001 - not hosted yet
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"{name}'s lobby does not serve it after {timeout:.0f} s") from None
                        await asyncio.sleep(0.2)
            finally:
                await client.close()

    await asyncio.gather(*(one(n) for n in network.agents))


async def group_cost(creator: Agent, receivers: list[str], network: net.Network, streams: Streams,
                     messages: int) -> tuple[dict, str]:
    """Creates a group of the creator and `receivers`, opens their streams, and times
    `messages` sequential sends until the first and the last receiver's signal."""
    refs = [base64.b64encode(network.agent_key(n)).decode() for n in receivers]
    t0 = time.perf_counter()
    created = await creator.client.create_group(f"scale {len(receivers) + 1}", refs)
    create_seconds = time.perf_counter() - t0
    invites = {}
    for o in created.invites:
        key = lobby_pb2.DeliveryStatus.Name(o.status)
        invites[key] = invites.get(key, 0) + 1
    group = created.group.group_uuid
    taps = await streams.open(receivers)
    size = len(receivers) + 1
    nodes = len({network.agent(n)["node"] for n in receivers} | {creator.node})
    for i in range(2):  # warm-up: channels, directory caches
        text = payload("swarm", size, i)
        await creator.send(group, text)
        await asyncio.gather(*(t.arrival(text) for t in taps))
    last, first, calls, call_times, lost, not_delivered = [], [], [], [], 0, 0
    for i in range(messages):
        text = payload("scale", size, i)
        t0 = time.perf_counter()
        answer = await creator.send(group, text)
        call_times.append(time.perf_counter() - t0)
        calls.append(answer.lobby_calls)
        not_delivered += sum(1 for o in answer.outcomes if o.status != lobby_pb2.DELIVERED)
        arrivals = await asyncio.gather(*(t.arrival(text) for t in taps))
        got = [a for a in arrivals if a is not None]
        lost += len(arrivals) - len(got)
        if got:
            last.append(max(got) - t0)
            first.append(min(got) - t0)
    result = {
        "members": size,
        "nodes": nodes,
        "create_seconds": create_seconds,
        "invites": invites,
        "messages": messages,
        "lost": lost,
        "outcomes_not_delivered": not_delivered,
        "until_last_member_signal": stats_ms(last),
        "until_first_member_signal": stats_ms(first),
        "send_call": stats_ms(call_times),
        "lobby_calls_per_message": {"min": min(calls, default=0), "max": max(calls, default=0),
                                    "mean": sum(calls) / len(calls) if calls else 0},
        "receivers_per_message": size - 1,
    }
    return result, group


async def away_node_catch_up(directory: str, network: net.Network, creator: Agent, group: str,
                             receivers: list[str], streams: Streams, node: str, messages: int) -> dict:
    """Node `node` is killed; the creator sends `messages` to `group`; the node starts
    again; the clock runs until every member it hosts has every one of them."""
    away = [n for n in receivers if network.agent(n)["node"] == node]
    online = [n for n in receivers if n not in away]
    seen = {n: streams.taps[n].last_seq for n in away if n in streams.taps}  # where their UIs resume
    await streams.close(away)
    await streams.close_channels(network.nodes[node]["lobby"])
    await asyncio.to_thread(net.stop_node, directory, node, kill=True)
    statuses: dict[str, int] = {}
    away_keys = {network.agent_key(n) for n in away}
    t0 = time.perf_counter()
    texts = []
    for i in range(messages):
        text = payload("away", i)
        texts.append(text)
        answer = await creator.send(group, text)
        for o in answer.outcomes:
            if o.receiver in away_keys:
                key = lobby_pb2.DeliveryStatus.Name(o.status)
                statuses[key] = statuses.get(key, 0) + 1
    send_seconds = time.perf_counter() - t0
    online_taps = [streams.taps[n] for n in online if n in streams.taps]
    online_complete = all(await asyncio.gather(*(t.wait_count("away", messages) for t in online_taps)))
    progress(f"   {len(away)} members of {node} missed {messages} messages (outcomes: {statuses}); starting {node}")

    t_start = time.perf_counter()
    await asyncio.to_thread(net.start_node, directory, node)
    t_healthy = time.perf_counter()
    taps = await streams.open(away, since=seen)
    complete = all(await asyncio.gather(*(t.wait_count("away", messages, timeout=max(WAIT, 180.0)) for t in taps)))
    t_done = time.perf_counter()
    arrivals = [t.arrivals[x] for t in taps for x in texts if x in t.arrivals]
    last = max(arrivals) if arrivals else t_done
    return {
        "node": node,
        "members_away": len(away),
        "messages_missed": messages,
        "deliveries_expected": messages * len(away),
        "deliveries_received": len(arrivals),
        "complete": complete,
        "online_members_complete": online_complete,
        "duplicates": sum(t.duplicates for t in taps),
        "sender_outcomes_for_away_members": statuses,
        "send_seconds": send_seconds,
        "seconds_start_to_healthy": t_healthy - t_start,
        "seconds_until_last_member_has_all": (last - t_start) if complete else None,
    }


def summary_bytes(network: net.Network) -> dict:
    """Summary rounds in which nothing differed, and their bytes, over every node and space."""
    rounds = clean = clean_bytes = repaired = 0
    spaces = set()
    for name, node in network.nodes.items():
        with grpc.insecure_channel(node["group_dht"]) as channel:
            listed = group_dht_pb2_grpc.GroupDhtStub(channel).ListSpaces(
                group_dht_pb2.ListSpacesRequest(), metadata=net.conductor_metadata(node), timeout=10)
        for s in listed.spaces:
            spaces.add(s.space)
            rounds += s.sync.rounds
            clean += s.sync.clean_rounds
            clean_bytes += s.sync.clean_round_bytes
            repaired += s.sync.ops_repaired
    return {"spaces": len(spaces), "rounds": rounds, "clean_rounds": clean, "clean_round_bytes": clean_bytes,
            "bytes_per_clean_round": clean_bytes / clean if clean else None, "ops_repaired": repaired}


# ---------------------------------------------------------------- 8d. the DHT on its own


class DhtCluster:
    """kizuna-group-dht processes of the bench's own, bootstrapped to each other over TLS."""

    def __init__(self, directory: Path, count: int, extra=()):
        self.directory = directory
        ports = net.pick_free_ports(count * 2)
        self.addresses = [f"127.0.0.1:{p}" for p in ports[:count]]
        self.peer_addresses = [f"127.0.0.1:{p}" for p in ports[count:]]
        self.extra = list(extra)
        self.processes: list[subprocess.Popen | None] = [None] * count
        self.channels = [net.node_local_channel(a, directory / "node.secret") for a in self.addresses]
        self.stubs = [group_dht_pb2_grpc.GroupDhtStub(c) for c in self.channels]
        self.node_ids: list[bytes] = []

    def start(self, i: int) -> None:
        others = ",".join(a for j, a in enumerate(self.peer_addresses) if j != i)
        env = {**os.environ, "KIZUNA_EXIT_WITH_PID": str(os.getpid()), "PYTHONUNBUFFERED": "1"}
        with open(self.directory / f"dht{i}.log", "ab") as log:
            self.processes[i] = subprocess.Popen(
                [sys.executable, "-m", "kizuna_node.group_dht.server", "--listen", self.addresses[i],
                 "--data-dir", str(self.directory / f"dht{i}"), "--peer-listen", self.peer_addresses[i],
                 "--tls-dir", str(self.directory / f"tls{i}"), "--bootstrap", others,
                 "--node-secret-file", str(self.directory / "node.secret"), *self.extra],
                cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def wait_healthy(self, indexes, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for i in indexes:
            while not net.check_health(self.addresses[i]):
                if self.processes[i].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"dht{i} did not become healthy (see {self.directory / f'dht{i}.log'})")
                time.sleep(0.05)

    def start_all(self) -> None:
        self.start(0)  # the first makes the shared node secret
        self.wait_healthy([0])
        for i in range(1, len(self.addresses)):
            self.start(i)
        self.wait_healthy(range(len(self.addresses)))
        self.node_ids = [s.ListSpaces(group_dht_pb2.ListSpacesRequest(), timeout=10).node_id for s in self.stubs]

    def stop(self, i: int, kill: bool = False) -> None:
        process = self.processes[i]
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def close(self) -> None:
        for i in range(len(self.processes)):
            self.stop(i)
        for c in self.channels:
            c.close()


class DhtAgent:
    def __init__(self):
        self.key = Ed25519PrivateKey.generate()
        self.public = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(self, **fields) -> common_pb2.Signed:
        body = group_dht_pb2.Op(author=self.public, timestamp=now_micros(), **fields).SerializeToString()
        return common_pb2.Signed(body=body, signature=self.key.sign(body), author=self.public)


def wait_for(condition, what: str, timeout: float, interval: float = 0.05) -> float:
    """Polls until `condition()`; the seconds it took. Raises at the deadline."""
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - t0


def dht_repair(directory: Path, count: int, ops: int, gone_after: float, timeout: float) -> dict:
    cluster = DhtCluster(directory, count, extra=["--gone-after", str(gone_after)])
    try:
        t0 = time.perf_counter()
        cluster.start_all()
        up_seconds = time.perf_counter() - t0
        agents = [DhtAgent() for _ in range(count)]
        props = common_pb2.GroupProperties(group_uuid="bench-scale-dht", name="g", creator=agents[0].public,
                                           initial_members=[a.public for a in agents])
        space = dna.group_dna_hash(props)
        for stub, agent, node_id in zip(cluster.stubs, agents, cluster.node_ids):
            claim = space_claims.make_claim(agent.key.sign, agent.public, node_id, space)
            stub.JoinSpace(group_dht_pb2.JoinSpaceRequest(space=space, agent=agent.public, template="group",
                                                          properties=props, claim=claim), timeout=10)

        def peers_in_space(i):
            listed = cluster.stubs[i].ListSpaces(group_dht_pb2.ListSpacesRequest(), timeout=10)
            return sum(1 for p in listed.peers if space in p.spaces)

        def holds(i, address):
            got = cluster.stubs[i].Get(group_dht_pb2.GetRequest(space=space, address=address, local_only=True),
                                       timeout=10)
            return got.found

        def stats():
            out = []
            for stub in cluster.stubs:
                with contextlib.suppress(grpc.RpcError):
                    listed = stub.ListSpaces(group_dht_pb2.ListSpacesRequest(), timeout=5)
                    out += [s.sync for s in listed.spaces if s.space == space]
            return out

        wait_for(lambda: all(peers_in_space(i) == count - 1 for i in range(count)), "every node to know the others",
                 timeout)
        serial = iter(range(10**9))

        def publish(n, tag):
            addresses = []
            for _ in range(n):
                text = f"{tag} {next(serial)}".encode()
                op = agents[0].sign(space=space, kind=group_dht_pb2.STORE_ENTRY, entry_type="message", entry=text)
                cluster.stubs[0].Publish(group_dht_pb2.PublishRequest(op=op), timeout=30)
                addresses.append(blake2b_256(text))
            return addresses

        written = publish(ops, "before")

        # clean rounds: nothing differs; the counters' growth over the next rounds
        before = stats()
        wait_for(lambda: sum(s.clean_rounds for s in stats()) >= sum(s.clean_rounds for s in before) + 2 * count,
                 "clean summary rounds", timeout)
        after = stats()
        clean_rounds = sum(s.clean_rounds for s in after) - sum(s.clean_rounds for s in before)
        clean_bytes = sum(s.clean_round_bytes for s in after) - sum(s.clean_round_bytes for s in before)

        # a node away while ops are written, then back
        away = count - 1
        cluster.stop(away)
        while_away = publish(ops, "away")
        written += while_away
        should = [a for a in while_away if cluster.node_ids[away] in placement.holders(a, cluster.node_ids, REPLICATION)]
        t_start = time.perf_counter()
        cluster.start(away)
        cluster.wait_healthy([away])
        t_healthy = time.perf_counter()
        wait_for(lambda: all(holds(away, a) for a in should), "the returned node to hold every op it should", timeout)
        t_repaired = time.perf_counter()

        # two of three holders killed for good
        killed = (1, 2)
        killed_ids = {cluster.node_ids[k] for k in killed}
        hit = [a for a in written if set(placement.holders(a, cluster.node_ids, REPLICATION)) >= killed_ids]
        survivors = [i for i in range(count) if i not in killed]
        live_ids = [cluster.node_ids[i] for i in survivors]
        new_holders = {a: [cluster.node_ids.index(h) for h in placement.holders(a, live_ids, REPLICATION)] for a in hit}
        t_kill = time.perf_counter()
        for k in killed:
            cluster.stop(k, kill=True)
        wait_for(lambda: all(all(holds(i, a) for i in holders) for a, holders in new_holders.items()),
                 "every hit address on three live holders", timeout + gone_after)
        t_back = time.perf_counter()
        lost = 0
        for a in written:
            for i in survivors:
                got = cluster.stubs[i].Get(group_dht_pb2.GetRequest(space=space, address=a), timeout=10)
                if not got.found:
                    lost += 1
                    break
        return {
            "dht_nodes": count,
            "replication": REPLICATION,
            "up_seconds": up_seconds,
            "clean_summary": {"rounds": clean_rounds, "bytes": clean_bytes,
                              "bytes_per_round": clean_bytes / clean_rounds if clean_rounds else None,
                              "ops_held_network_wide": len(written) * REPLICATION},
            "rejoin": {"ops_written_while_away": len(while_away), "ops_it_should_hold": len(should),
                       "seconds_start_to_healthy": t_healthy - t_start,
                       "seconds_healthy_to_repaired": t_repaired - t_healthy,
                       "seconds_start_to_repaired": t_repaired - t_start},
            "holder_loss": {"gone_after_seconds": gone_after, "addresses_on_both_killed": len(hit),
                            "ops_written": len(written),
                            "seconds_until_all_on_r_live_holders": t_back - t_kill,
                            "seconds_after_gone_threshold": t_back - t_kill - gone_after,
                            "ops_lost": lost},
            "ops_repaired_total": sum(s.ops_repaired for s in stats()),
        }
    finally:
        cluster.close()


# ---------------------------------------------------------------- the section


async def chat_scale(args, directory: str) -> dict:
    nodes = list(net.numbered_nodes(args.nodes))
    progress(f"8. scale: {args.nodes} nodes x {args.agents_per_node} agents in {directory}")
    t0 = time.perf_counter()
    lobby_args = ["--max-members", str(max(args.sizes))]
    network = await asyncio.to_thread(
        net.up, directory, nodes=nodes, exit_with_pid=os.getpid(), agents_per_node=args.agents_per_node,
        timeout=max(120, args.nodes * args.agents_per_node * 0.5),
        extra_args={n: {"lobby": lobby_args} for n in nodes})
    await every_agent_served(network)
    up_seconds = time.perf_counter() - t0
    everyone = spread(network, nodes, args.agents_per_node)
    creator = agent_of(network, everyone[0])
    streams = Streams(network)
    result: dict = {"nodes": args.nodes, "agents_per_node": args.agents_per_node, "agents": len(network.agents),
                    "up_seconds": up_seconds, "groups": []}
    try:
        group = None
        for size in args.sizes:
            receivers = everyone[1:size]
            progress(f"8a. a group of {size} over {min(size, args.nodes)} nodes: create, {args.messages} sends")
            await streams.close([n for n in streams.taps if n not in receivers])
            try:
                cost, group = await group_cost(creator, receivers, network, streams, args.messages)
            except (grpc.aio.AioRpcError, asyncio.TimeoutError) as exc:
                # kept in the results, with what the smaller groups measured: the larger ones
                # and the catch-up are not tried on a network this far behind
                error = f"{exc.code().name}: {exc.details()}" if isinstance(exc, grpc.aio.AioRpcError) else "timed out"
                progress(f"    the group of {size} failed: {error}")
                result["groups"].append({"members": size, "error": error})
                group = None
                break
            result["groups"].append(cost)
            progress(f"    create {cost['create_seconds']:.2f} s; until last member p50 "
                     f"{cost['until_last_member_signal']['p50_ms']:.0f} ms; lobby calls/message "
                     f"{cost['lobby_calls_per_message']['mean']:.1f} for {size - 1} receivers on {cost['nodes']} nodes")
        if args.away_messages and group is not None:
            away_node = nodes[-1]
            progress(f"8b. catch-up: {away_node} away for {args.away_messages} messages to the group of {args.sizes[-1]}")
            result["catch_up"] = await away_node_catch_up(directory, network, creator, group,
                                                          everyone[1:args.sizes[-1]], streams, away_node,
                                                          args.away_messages)
        result["summary_rounds"] = await asyncio.to_thread(summary_bytes, net.load(directory))
    finally:
        await streams.close()
        await streams.close_channels()
        with contextlib.suppress(Exception):
            await creator.close()
    return result


def table(scale: dict) -> str:
    rows = []
    for g in scale.get("chat", {}).get("groups", []):
        if "error" in g:
            rows.append(f"  {g['members']:>5} members: failed: {g['error']}")
            continue
        u = g["until_last_member_signal"]
        rows.append(f"  {g['members']:>5} members / {g['nodes']:>2} nodes: create {g['create_seconds']:.2f} s;"
                    f" send -> last member p50 {u['p50_ms']:.0f} ms p99 {u['p99_ms']:.0f} ms;"
                    f" first p50 {g['until_first_member_signal']['p50_ms']:.0f} ms;"
                    f" {g['lobby_calls_per_message']['mean']:.1f} lobby calls for {g['receivers_per_message']} receivers;"
                    f" lost {g['lost']}")
    c = scale.get("chat", {}).get("catch_up")
    if c:
        secs = c["seconds_until_last_member_has_all"]
        rows.append(f"  catch-up: {c['members_away']} members of {c['node']} away for {c['messages_missed']} messages:"
                    f" start -> last has all {'n/a' if secs is None else f'{secs:.2f} s'}"
                    f" ({c['deliveries_received']}/{c['deliveries_expected']})")
    s = scale.get("chat", {}).get("summary_rounds")
    if s and s["bytes_per_clean_round"] is not None:
        rows.append(f"  chat network: {s['clean_rounds']} clean summary rounds over {s['spaces']} spaces,"
                    f" {s['bytes_per_clean_round']:.0f} bytes each")
    d = scale.get("dht")
    if d:
        cs, rj, hl = d["clean_summary"], d["rejoin"], d["holder_loss"]
        rows.append(f"  DHT x{d['dht_nodes']}: clean summary round {cs['bytes_per_round']:.0f} bytes ({cs['rounds']} rounds,"
                    f" {cs['ops_held_network_wide']} ops held)")
        rows.append(f"  DHT rejoin: {rj['ops_it_should_hold']} ops it should hold, repaired"
                    f" {rj['seconds_healthy_to_repaired']:.2f} s after it served ({rj['seconds_start_to_repaired']:.2f} s after start)")
        rows.append(f"  DHT holder loss: {hl['addresses_on_both_killed']} addresses lost 2 of 3 holders: back on 3 live holders"
                    f" in {hl['seconds_until_all_on_r_live_holders']:.2f} s ({hl['seconds_after_gone_threshold']:.2f} s after"
                    f" the {hl['gone_after_seconds']:g} s gone threshold); ops lost {hl['ops_lost']}")
    return "8 scale\n" + "\n".join(rows)


def targets(scale: dict) -> list[dict]:
    out = []
    failed = [g for g in scale.get("chat", {}).get("groups", []) if "error" in g]
    groups = [g for g in scale.get("chat", {}).get("groups", []) if "error" not in g]
    for g in failed:
        out.append({"target": f"{g['members']:,} members: send -> last member p50 <= 2 s", "value": g["error"],
                    "ok": False})
    big = next((g for g in groups if g["members"] >= 1000), None)
    if big:
        p50 = big["until_last_member_signal"]["p50_ms"]
        out.append({"target": "1,000 members: send -> last member p50 <= 2 s", "value": f"{p50:.0f} ms, lost {big['lost']}",
                    "ok": p50 is not None and p50 <= 2000 and big["lost"] == 0})
    if len(groups) >= 2:
        small, large = groups[0], groups[-1]
        calls_ok = large["lobby_calls_per_message"]["max"] <= large["nodes"]
        out.append({"target": "lobby calls per message grow with nodes, not members",
                    "value": f"{small['lobby_calls_per_message']['mean']:.0f} for {small['members']} members/{small['nodes']} nodes,"
                             f" {large['lobby_calls_per_message']['mean']:.0f} for {large['members']}/{large['nodes']}",
                    "ok": calls_ok})
    d = scale.get("dht")
    if d:
        out.append({"target": "holder loss: ops lost 0", "value": str(d["holder_loss"]["ops_lost"]),
                    "ok": d["holder_loss"]["ops_lost"] == 0})
        rj = d["rejoin"]["seconds_healthy_to_repaired"]
        out.append({"target": "rejoining node repaired within 5 s of serving", "value": f"{rj:.2f} s", "ok": rj <= 5})
        b = d["clean_summary"]["bytes_per_round"]
        out.append({"target": "a clean summary round costs a few hundred bytes", "value": f"{b:.0f} bytes",
                    "ok": b is not None and b <= 1000})
    return out


async def _run_chat(args, directory: str) -> dict:
    try:
        return await chat_scale(args, directory)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(net.down, directory)


def run_section(args, directory: str) -> dict:
    """Section 8: the chat network's part, taken down afterwards, then the DHT's own."""
    scale: dict = {"settings": {k: getattr(args, k) for k in ("nodes", "agents_per_node", "sizes", "messages",
                                                           "away_messages", "dht_nodes", "dht_ops", "gone_after")}}
    chat_dir = Path(directory) / "chat"
    scale["chat"] = asyncio.run(_run_chat(args, str(chat_dir)))
    if args.dht_nodes:
        progress(f"8d. DHT on its own: {args.dht_nodes} nodes, {args.dht_ops} ops; a node away and back;"
                 f" two of three holders killed (gone after {args.gone_after:g} s)")
        dht_dir = Path(directory) / "dht"
        dht_dir.mkdir(parents=True, exist_ok=True)
        scale["dht"] = dht_repair(dht_dir, args.dht_nodes, args.dht_ops, args.gone_after, timeout=120.0)
    scale["targets"] = targets(scale)
    return scale


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The section's flags; `settings(args, quick)` reads them (dest scale_<name>)."""
    group = parser.add_argument_group("section 8, scale")
    group.add_argument("--scale-nodes", dest="scale_nodes", type=int, help="nodes of the scale network (default 20)")
    group.add_argument("--agents-per-node", dest="scale_agents_per_node", type=int,
                       help="agents on each node (default 50)")
    group.add_argument("--sizes", dest="scale_sizes", help="group sizes, comma-separated (default 10,100,1000)")
    group.add_argument("--scale-messages", dest="scale_messages", type=int,
                       help="sequential sends per group (default 10)")
    group.add_argument("--away-messages", dest="scale_away_messages", type=int,
                       help="messages the away node misses (default 20)")
    group.add_argument("--dht-nodes", dest="scale_dht_nodes", type=int,
                       help="kizuna-group-dht processes of 8d (default 20; 0 skips)")
    group.add_argument("--dht-ops", dest="scale_dht_ops", type=int,
                       help="ops written before and while a node is away (default 300)")
    group.add_argument("--gone-after", dest="scale_gone_after", type=float, help="8d's --gone-after (default 5)")


SCALE_DEFAULTS = dict(nodes=20, agents_per_node=50, sizes="10,100,1000", messages=10, away_messages=20, dht_nodes=20,
                      dht_ops=300, gone_after=5.0)
SCALE_QUICK = dict(nodes=4, agents_per_node=3, sizes="4,12", messages=3, away_messages=3, dht_nodes=5, dht_ops=30,
                   gone_after=3.0)


def settings(args, quick: bool) -> argparse.Namespace:
    """The section's settings from its flags, the defaults (or the quick ones) filling in."""
    chosen = {key: getattr(args, f"scale_{key}", None) for key in SCALE_DEFAULTS}
    for key, value in (SCALE_QUICK if quick else SCALE_DEFAULTS).items():
        if chosen[key] is None:
            chosen[key] = value
    out = argparse.Namespace(**chosen)
    if isinstance(out.sizes, str):
        out.sizes = sorted(int(s) for s in out.sizes.split(",") if s.strip())
    if out.nodes < 2 or out.agents_per_node < 1 or not out.sizes:
        raise SystemExit("the scale network needs at least 2 nodes, 1 agent per node and a group size")
    if max(out.sizes) > out.nodes * out.agents_per_node:
        raise SystemExit(f"a group of {max(out.sizes)} needs more than {out.nodes} x {out.agents_per_node} agents")
    if out.dht_nodes and out.dht_nodes < 4:
        raise SystemExit("8d needs at least 4 DHT nodes (two killed, R=3 left)")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Kizuna benchmark, section 8: scale")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--out", help="JSON output path (default bench/results/scale-<timestamp>.json)")
    parser.add_argument("--dir", help="where the networks live, kept afterwards (default: a temporary directory);"
                                      " a second run on the same one reuses the agents DIR/chat already has")
    add_arguments(parser)
    args = parser.parse_args(argv)
    chosen = settings(args, args.quick)
    directory = args.dir or tempfile.mkdtemp(prefix="kizuna-scale-")
    started = time.time()
    results = {"started": dt.datetime.now().isoformat(timespec="seconds"), "machine": {"cpus": os.cpu_count()}}
    error = None
    try:
        results["scale"] = run_section(chosen, directory)
    except BaseException as exc:  # noqa: BLE001 - still write what we have
        error = exc
        results["error"] = f"{type(exc).__name__}: {exc}"
    results["seconds"] = time.time() - started
    out = Path(args.out) if args.out else RESULTS_DIR / f"scale-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    if "scale" in results:
        print()
        print(table(results["scale"]))
        print("\ntargets:")
        for t in results["scale"]["targets"]:
            print(f"  {'PASS' if t['ok'] else 'MISS':<4}  {t['target']:<52} {t['value']}")
    if error is not None:
        print(f"\nthe scale section stopped early: {results['error']}; its data and logs stay in {directory}",
              file=sys.stderr)
    elif not args.dir:
        shutil.rmtree(directory, ignore_errors=True)
    print(f"\nscale run took {results['seconds']:.0f} s; results in {out}")
    return 0 if error is None else 1


if __name__ == "__main__":
    sys.exit(main())
