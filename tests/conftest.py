"""Shared fixtures: free loopback ports and real service processes that die with the tests."""

import dataclasses
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.helpers import eventually

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0


@pytest.fixture
def free_port():
    """A factory of loopback ports that were free a moment ago; each call gives a new one."""
    given: set[int] = set()

    def make() -> int:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in given:
                given.add(port)
                return port

    return make


@dataclasses.dataclass
class ServiceProcess:
    name: str
    address: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, then SIGKILL when it has not exited within `timeout`."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)


def wait_serving(address: str, process: subprocess.Popen, timeout: float, service: str = "") -> None:
    """Returns once the standard health service says SERVING; RuntimeError when the process
    exits first, TimeoutError (naming the last answer) at the deadline."""
    last = "no answer yet"

    def serving() -> bool:
        nonlocal last
        if process.poll() is not None:
            raise RuntimeError(f"exited with status {process.returncode} before serving")
        try:
            status = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0).status
        except grpc.RpcError as exc:
            last = exc.code().name
            return False
        last = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
        return status == health_pb2.HealthCheckResponse.SERVING

    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            eventually(serving, f"{address} says SERVING", timeout, interval=0.1)
        except pytest.fail.Exception:
            raise TimeoutError(f"not SERVING after {timeout:.0f}s (last: {last})") from None


def _short_name(module: str) -> str:
    """kizuna_node.group_dht.server -> group_dht"""
    parts = module.split(".")
    return parts[-2] if parts[-1] == "server" and len(parts) > 1 else parts[-1]


@pytest.fixture
def start_process(tmp_path):
    """A factory that starts `python -m MODULE ARGS...` as a real process and returns a
    ServiceProcess once `address` answers health SERVING.

    The process gets KIZUNA_EXIT_WITH_PID (it stops by itself if the test run dies), logs
    to tmp_path/NAME.log, and is stopped at teardown (SIGTERM, then SIGKILL)."""
    started: list[ServiceProcess] = []

    def start(module: str, *args: str, address: str, name: str | None = None,
              env: dict | None = None, ready_timeout: float = READY_TIMEOUT) -> ServiceProcess:
        name = name or f"{_short_name(module)}-{len(started)}"
        log_path = tmp_path / f"{name}.log"
        full_env = {**os.environ, "KIZUNA_EXIT_WITH_PID": str(os.getpid()), "PYTHONUNBUFFERED": "1", **(env or {})}
        with open(log_path, "ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=REPO_ROOT,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        service = ServiceProcess(name, address, process, log_path)
        started.append(service)
        try:
            wait_serving(address, process, ready_timeout)
        except (RuntimeError, TimeoutError) as exc:
            service.stop()
            pytest.fail(f"{name} ({module} on {address}) {exc}\n--- {log_path} ---\n{service.log()[-4000:]}")
        return service

    yield start

    for service in reversed(started):
        service.stop()
