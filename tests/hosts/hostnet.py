"""Test hosts: network namespaces joined by a bridge, one address each, as separate machines
on one LAN. Partitions cut a host off (its link to the bridge goes down, so its packets are
dropped, not refused); `shape` adds latency and loss with tc netem where the kernel has it;
`capture` records every frame that crosses the bridge's ports.

Names carry the creating process's id (`kz<pid>...`): two suites at once never share a
namespace, and `HostNet.up` first removes what a killed run left behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import socket
import subprocess
import threading
import time

from kizuna.net import is_alive

SUBNET = "10.231.0"
ETH_P_ALL = 0x0003
STALE = re.compile(r"^kz(\d+)[a-z]")


class HostsUnavailable(Exception):
    """This machine cannot make network namespaces (not root, or no `ip`)."""


class NetemUnavailable(Exception):
    """This kernel has no sch_netem: latency and loss cannot be added."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def remove_stale() -> None:
    """Deletes namespaces and bridges of runs whose process is gone."""
    listed = _ip("netns", "list", check=False).stdout.split("\n")
    for line in listed:
        name = line.split(" ")[0]
        match = STALE.match(name)
        if match and not is_alive(int(match.group(1))):
            _ip("netns", "delete", name, check=False)
    links = _ip("-o", "link", "show", check=False).stdout.split("\n")
    for line in links:
        parts = line.split(": ")
        if len(parts) > 1:
            name = parts[1].split("@")[0]
            match = STALE.match(name)
            if match and not is_alive(int(match.group(1))):
                _ip("link", "delete", name, check=False)


def check_available() -> None:
    if os.geteuid() != 0:
        raise HostsUnavailable("test hosts need root to create network namespaces")
    if shutil.which("ip") is None:
        raise HostsUnavailable("test hosts need `ip` (iproute2)")


class HostNet:
    """`names` become hosts kz<pid>h<i> at SUBNET.<i+1>, each with loopback up and one veth
    on the bridge kz<pid>br."""

    def __init__(self, names):
        self.names = list(names)
        tag = f"kz{os.getpid()}"
        self.bridge = f"{tag}br"
        self.namespace = {n: f"{tag}h{i}" for i, n in enumerate(self.names)}
        self.address = {n: f"{SUBNET}.{i + 1}" for i, n in enumerate(self.names)}
        self._veth = {n: f"{tag}v{i}" for i, n in enumerate(self.names)}  # the bridge's side

    def up(self) -> "HostNet":
        check_available()
        remove_stale()
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("link", "set", self.bridge, "up")
            for name in self.names:
                ns, veth = self.namespace[name], self._veth[name]
                _ip("netns", "add", ns)
                _ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}p")
                _ip("link", "set", f"{veth}p", "netns", ns)
                _ip("-n", ns, "link", "set", f"{veth}p", "name", "eth0")
                _ip("-n", ns, "addr", "add", f"{self.address[name]}/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("link", "set", veth, "master", self.bridge, "up")
        except (subprocess.CalledProcessError, OSError) as exc:
            self.down()
            detail = getattr(exc, "stderr", "") or str(exc)
            raise HostsUnavailable(f"cannot create test hosts: {detail.strip()}") from None
        return self

    def down(self) -> None:
        for name in self.names:
            _ip("netns", "delete", self.namespace[name], check=False)
            _ip("link", "delete", self._veth[name], check=False)
        _ip("link", "delete", self.bridge, check=False)

    def wrap(self, name: str) -> list[str]:
        """The command prefix that runs a program on host `name`."""
        return ["ip", "netns", "exec", self.namespace[name]]

    def run_on(self, name: str, *command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run([*self.wrap(name), *command], capture_output=True, text=True, timeout=timeout)

    # faults

    def partition(self, name: str) -> None:
        """Cuts host `name` off from every other: its frames no longer reach the bridge."""
        _ip("link", "set", self._veth[name], "down")

    def heal(self, name: str) -> None:
        _ip("link", "set", self._veth[name], "up")

    def shape(self, name: str, delay_ms: int = 0, loss_percent: float = 0.0) -> None:
        """Latency and loss on everything host `name` sends (tc netem)."""
        try:
            self._tc(name, "qdisc", "replace", "dev", "eth0", "root", "netem", "delay", f"{delay_ms}ms",
                     "loss", f"{loss_percent}%")
        except RuntimeError as exc:
            if "unknown" in str(exc).lower():
                raise NetemUnavailable(f"tc netem is not available on this kernel: {exc}") from None
            raise

    def congest(self, name: str, rate_kbit: int, queue_ms: int) -> None:
        """A slow link out of host `name` (tc tbf, in every kernel that has tc): what it sends
        waits in a queue, and what would wait longer than `queue_ms` is dropped; queueing
        latency and tail-drop loss where netem's random ones are not available."""
        self._tc(name, "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", f"{rate_kbit}kbit",
                 "burst", "1600", "latency", f"{queue_ms}ms")

    def unshape(self, name: str) -> None:
        """Host `name`'s link as it was: no qdisc of ours."""
        subprocess.run([*self.wrap(name), "tc", "qdisc", "del", "dev", "eth0", "root"],
                       capture_output=True, text=True, timeout=30)

    def link_counters(self, name: str) -> dict:
        """What host `name`'s root qdisc has sent and dropped so far (tc -s)."""
        shown = self._tc(name, "-s", "qdisc", "show", "dev", "eth0").stdout
        sent = re.search(r"Sent (\d+) bytes (\d+) pkt \(dropped (\d+)", shown)
        return {"bytes": int(sent.group(1)), "packets": int(sent.group(2)), "dropped": int(sent.group(3))} if sent else {}

    def _tc(self, name: str, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([*self.wrap(name), "tc", *args], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"tc {' '.join(args)} on {name}: {result.stderr.strip()}")
        return result

    @contextlib.contextmanager
    def capture(self, limit_bytes: int = 64 * 1024 * 1024, limit_seconds: float = 120.0):
        """Every frame seen on this namespace's interfaces (the bridge and its ports) while
        the block runs, as one `Capture`; bounded in bytes and time."""
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        captured = Capture()
        stop = threading.Event()
        ours = set(self._veth.values())

        def read():
            deadline = time.monotonic() + limit_seconds
            while not stop.is_set() and time.monotonic() < deadline and captured.size < limit_bytes:
                ready, _, _ = select.select([sock], [], [], 0.05)
                if ready:
                    frame, where = sock.recvfrom(65535)
                    if where[0] in ours:
                        captured.add(frame)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            yield captured
        finally:
            time.sleep(0.2)  # the frames of the last write are on the wire by now
            stop.set()
            reader.join(5)
            sock.close()


class Capture:
    def __init__(self):
        self.frames: list[bytes] = []
        self.size = 0

    def add(self, frame: bytes) -> None:
        self.frames.append(frame)
        self.size += len(frame)

    def contains(self, needle: bytes) -> bool:
        return any(needle in frame for frame in self.frames)

    def tcp_payload_bytes(self, port: int) -> int:
        """Bytes of TCP payload to or from `port` on IPv4 (what the capture saw of that service)."""
        total = 0
        for frame in self.frames:
            if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
                continue
            ihl = (frame[14] & 0x0F) * 4
            tcp = 14 + ihl
            if len(frame) < tcp + 20:
                continue
            source, dest = int.from_bytes(frame[tcp:tcp + 2], "big"), int.from_bytes(frame[tcp + 2:tcp + 4], "big")
            offset = (frame[tcp + 12] >> 4) * 4
            if port in (source, dest):
                total += max(0, int.from_bytes(frame[16:18], "big") - ihl - offset)
        return total
