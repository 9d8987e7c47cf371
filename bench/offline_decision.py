"""How long SendGroupMessage takes to decide about an unreachable receiver.

Starts a 3-node network (alice, bobby, charlie) in a temporary directory, creates a group
(everyone accepts), kills charlie's node (SIGKILL), then times alice's SendGroupMessage
calls. The first miss pays the retry policy (attempts, backoff, per-attempt deadline);
later misses within the liveness window go straight to the DHT. Each sample is classed
by the attempts its outcome for charlie reports (> 0: call_remote was tried; 0: skipped).

    .venv/bin/python -m bench.offline_decision [--sends 30] [--first-samples 5]

Stops every process it started at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path
from unittest import mock

from kizuna import net
from kizuna.client import Client
from kizuna.v1 import lobby_pb2
from kizuna_node.common.retry import RetryPolicy

NAMES = ("alice", "bobby", "charlie")


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def summary(label: str, millis: list[float]) -> str:
    if not millis:
        return f"{label:<34} n=0"
    return (f"{label:<34} n={len(millis):<3} p50={percentile(millis, 50):8.1f} ms  "
            f"p99={percentile(millis, 99):8.1f} ms  max={max(millis):8.1f} ms")


def lobby_settings(pid: int):
    """The settings alice's lobby runs with: its command line parsed by the lobby's own
    argument parser (kizuna_node.lobby.server.main, with its run and logging stubbed)."""
    from kizuna_node.lobby import server as lobby_server

    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    argv = [a.decode() for a in argv if a]
    argv = argv[argv.index("kizuna_node.lobby.server") + 1:]
    captured = {}

    def capture(args):
        captured["args"] = args
        return asyncio.sleep(0)

    with mock.patch.object(lobby_server, "run", capture), mock.patch.object(lobby_server, "setup_logging", lambda *a: None):
        lobby_server.main(argv)
    return captured["args"]


async def create_group(network) -> str:
    clients = {n: Client(network.lobby_address(n), network.token(n)) for n in NAMES}
    try:
        for client in clients.values():
            await client.start_signals()
        created = await clients["alice"].create_group("Bench", ["bobby", "charlie"])
        group = created.group.group_uuid
        for name in ("bobby", "charlie"):
            await clients[name].wait_for(lambda e: e.kind == "invite" and e.group_uuid == group, 20)
            await clients[name].accept(group)
        return group
    finally:
        for client in clients.values():
            await client.close()


async def timed_send(alice: Client, group: str, charlie: bytes, payload: str):
    start = time.perf_counter()
    answer = await alice.send(group, payload)
    elapsed = (time.perf_counter() - start) * 1000
    outcome = next(o for o in answer.outcomes if o.receiver == charlie)
    return elapsed, outcome


async def measure(network, group: str, sends: int, first_samples: int, window: float):
    charlie = network.agent_key("charlie")
    samples = []  # (millis, outcome)
    async with Client(network.lobby_address("alice"), network.token("alice")) as alice:
        for i in range(sends):
            samples.append(await timed_send(alice, group, charlie, f"bench {i}"))
        # More first misses: wait out the liveness window, so the next miss is a first again.
        for i in range(first_samples - 1):
            await asyncio.sleep(window + 0.25)
            samples.append(await timed_send(alice, group, charlie, f"bench first {i}"))
    return samples


async def online_baseline(network, group: str, count: int) -> list[float]:
    charlie = network.agent_key("charlie")
    async with Client(network.lobby_address("alice"), network.token("alice")) as alice:
        return [(await timed_send(alice, group, charlie, f"online {i}"))[0] for i in range(count)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=30, help="SendGroupMessage calls timed in a row")
    parser.add_argument("--first-samples", type=int, default=5,
                        help="first misses to time in all (each after the liveness window passed)")
    parser.add_argument("--keep", action="store_true", help="keep the network directory (logs)")
    args = parser.parse_args(argv)

    directory = Path(tempfile.mkdtemp(prefix="kizuna-bench-"))
    try:
        print(f"network in {directory}")
        network = net.up(directory, nodes=NAMES, exit_with_pid=os.getpid())
        settings = lobby_settings(network.node("alice")["pids"]["lobby"])
        policy = RetryPolicy.from_args(settings)
        window = settings.liveness_window
        print("retry policy in force (alice's lobby):",
              ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(policy).items()))
        print(f"liveness window: {window} s; outbox backoff max: {settings.outbox_backoff_max} s;"
              f" catch-up interval: {settings.sync_interval} s")

        group = asyncio.run(create_group(network))
        baseline = asyncio.run(online_baseline(network, group, 10))
        net.stop_node(directory, "charlie", kill=True)
        print("charlie's node killed (SIGKILL)")
        samples = asyncio.run(measure(network, group, args.sends, args.first_samples, window))

        statuses = sorted({lobby_pb2.DeliveryStatus.Name(o.status) for _, o in samples})
        first = [ms for ms, o in samples if o.attempts > 0]
        later = [ms for ms, o in samples if o.attempts == 0]
        in_a_row = [ms for ms, _ in samples[: args.sends]]
        print(f"charlie's outcomes: {statuses}; attempts on first misses:"
              f" {sorted({o.attempts for _, o in samples if o.attempts > 0})}")
        print(summary("online (all up), SendGroupMessage", baseline))
        print(summary(f"{args.sends} sends in a row, charlie down", in_a_row))
        print(summary("first miss (retry policy ran)", first))
        print(summary("later misses (liveness memory)", later))
    finally:
        with contextlib.suppress(net.NetError):
            net.down(directory)
        if args.keep:
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
