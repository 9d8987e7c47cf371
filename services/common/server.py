"""Server start-up shared by the three services: grpc.aio, health, reflection, SIGTERM.

`base_parser` has the common flags (`--listen`, `--data-dir`, `--log-level`) and
`add_peer_arguments` those of a peer-facing TLS listener. `serve` runs one gRPC server per
`Listener` (a node-local plaintext one, a peer-facing TLS one), each with the standard
health service and server reflection, and stops them gracefully on SIGTERM or SIGINT.
With KIZUNA_EXIT_WITH_PID set, it also stops when that process is gone, so servers a test
started never outlive it.
"""

import argparse
import asyncio
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kizuna_node.common.tls import NodeTls

log = logging.getLogger("kizuna.server")

GRACE_SECONDS = 3.0
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
MAX_UNIX_PATH = 107  # sun_path holds 108 bytes with its NUL


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Every optional flag's help ends with its default (unless it is required, has none,
    or its help already says it)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.required or action.default in (None, "", argparse.SUPPRESS) or "default" in text \
                or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--listen", default="127.0.0.1:0",
                        help="node-local address to serve on: unix:PATH, or loopback host:port (port 0 picks a free one)")
    parser.add_argument("--data-dir", required=True, help="directory of this service's LevelDB store")
    parser.add_argument("--log-level", default=os.environ.get("KIZUNA_LOG_LEVEL", "INFO"),
                        help="DEBUG, INFO, WARNING or ERROR (default: %(default)s, or KIZUNA_LOG_LEVEL)")
    parser.add_argument("--log-format", choices=("auto", "json", "text"),
                        default=os.environ.get("KIZUNA_LOG_FORMAT", "auto"),
                        help="json: one object a line; text: for a terminal; auto: text on a terminal, else json "
                             "(default: %(default)s, or KIZUNA_LOG_FORMAT)")
    parser.add_argument("--metrics-listen", default="127.0.0.1:0",
                        help="loopback host:port of the Prometheus /metrics endpoint (port 0 picks a free one and "
                             "logs it; empty: no metrics) (default: %(default)s)")
    return parser


def add_peer_arguments(parser: argparse.ArgumentParser) -> None:
    """The peer-facing listener: TLS with the node's certificate, on any address."""
    parser.add_argument("--peer-listen", default="127.0.0.1:0",
                        help="host:port other nodes reach this service at, over TLS (port 0 picks a free one)")
    parser.add_argument("--advertise", default="", help="address other nodes dial (default: the bound peer address)")
    parser.add_argument("--tls-dir", required=True,
                        help="directory of the node's TLS key and certificate (node.key, node.crt; made when missing)")


def setup_logging(level: str, name: str, log_format: str = "auto") -> None:
    """The service's logs on stderr: one JSON object a line (`json`; the default when stderr
    is no terminal, as under `kizuna net`), or text lines (`text`; the default on a
    terminal). A JSON line has `ts`, `level`, `service`, `logger` and `event`, and, when
    logged while an RPC is handled, its `method` (see kizuna_node.common.logs)."""
    from kizuna_node.common import logs  # structlog is needed only here
    if log_format == "auto":
        log_format = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logs.formatter(name, log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))


def server_options() -> list:
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 0),
    ]


async def _watch_parent(pid: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log.info("process %d is gone; stopping", pid)
            stop.set()
            return
        except PermissionError:
            pass
        await asyncio.sleep(1.0)


def _parsing(handler, method: str):
    """`handler` taking raw bytes and parsing them itself (each request of a client stream as
    it comes), so bytes that are no request of the method's type get INVALID_ARGUMENT rather than gRPC's UNKNOWN with the parser's text."""
    if handler is None or handler.request_deserializer is None:
        return handler
    parse = handler.request_deserializer

    async def parsed(raw, context):
        try:
            return parse(raw)
        except Exception:  # noqa: BLE001 - DecodeError, or bad UTF-8 in a string field
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the request to {method} does not parse")

    if handler.unary_unary is not None:
        inner = handler.unary_unary

        async def unary(raw, context):
            return await inner(await parsed(raw, context), context)

        return grpc.unary_unary_rpc_method_handler(unary, response_serializer=handler.response_serializer)
    if handler.unary_stream is not None:
        inner_stream = handler.unary_stream

        async def stream(raw, context):
            request = await parsed(raw, context)
            async for item in inner_stream(request, context):
                yield item

        return grpc.unary_stream_rpc_method_handler(stream, response_serializer=handler.response_serializer)
    if handler.stream_unary is not None:
        inner_requests = handler.stream_unary

        async def requests(raw_requests, context):
            async def each():
                async for raw in raw_requests:
                    yield await parsed(raw, context)
            return await inner_requests(each(), context)

        return grpc.stream_unary_rpc_method_handler(requests, response_serializer=handler.response_serializer)
    return handler


class _ParsingGenericHandler(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler):
        self._inner = inner
        self._wrapped: dict[str, object] = {}

    def service(self, handler_call_details):
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            wrapped = _parsing(self._inner.service(handler_call_details), method)
            if wrapped is not None:  # only the inner handler's own methods: a bounded set
                self._wrapped[method] = wrapped
        return wrapped


class ParsingServer:
    """A grpc.aio server whose handlers, as they are added, parse their own requests (see
    `_parsing`): wrapped once at registration, not on every call as an interceptor would."""

    def __init__(self, server: grpc.aio.Server):
        self._server = server

    def add_generic_rpc_handlers(self, handlers) -> None:
        self._server.add_generic_rpc_handlers(tuple(_ParsingGenericHandler(h) for h in handlers))

    def add_registered_method_handlers(self, service_name: str, method_handlers: dict) -> None:
        self._server.add_registered_method_handlers(service_name, {
            name: _parsing(handler, f"/{service_name}/{name}") for name, handler in method_handlers.items()})

    def __getattr__(self, name):
        return getattr(self._server, name)


@dataclass
class Listener:
    """One server of a process: its address, the services it serves (by full name), how
    they are added (`register(server)`), and its TLS identity (None: plaintext, which only
    a node-local address may be)."""

    address: str
    services: list[str]
    register: Callable
    tls: NodeTls | None = None


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


def is_node_local(address: str) -> bool:
    """Whether `address` is a Unix socket or a loopback one: reachable from this machine only."""
    if address.startswith("unix:"):
        return True
    return address.rsplit(":", 1)[0] in LOOPBACK_HOSTS


def prepare_unix_socket(address: str) -> None:
    """Makes the socket's directory readable by this user only, and removes a stale socket
    file a killed process left, so the bind succeeds."""
    path = Path(address.removeprefix("unix:"))
    if len(str(path)) > MAX_UNIX_PATH:
        raise SystemExit(f"the Unix socket path {path} is longer than {MAX_UNIX_PATH} bytes; choose a shorter directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _bind(server, listener: Listener) -> str:
    """Binds the listener's port and answers the address as bound (port 0 made real)."""
    if listener.tls is None and not is_node_local(listener.address):
        raise SystemExit(f"{listener.address} is not loopback or a Unix socket: plaintext listens on this machine only")
    if listener.address.startswith("unix:"):
        prepare_unix_socket(listener.address)
    if listener.tls is None:
        port = server.add_insecure_port(listener.address)
    else:
        port = server.add_secure_port(listener.address, listener.tls.server_credentials())
    if port == 0:
        raise SystemExit(f"cannot listen on {listener.address}")
    if listener.address.startswith("unix:"):
        return listener.address
    return f"{listener.address.rsplit(':', 1)[0]}:{port}"


async def serve(listeners: list[Listener], on_start=None, on_stop=None) -> None:
    """Serves every listener, each a grpc.aio server of its own with health and reflection,
    until SIGTERM/SIGINT. `on_start(addresses)` runs once every port is bound (the addresses
    as bound, in the listeners' order) and before health says SERVING; `on_stop()` after
    the servers stopped."""
    servers, healths, addresses = [], [], []
    for listener in listeners:
        server = ParsingServer(grpc.aio.server(options=server_options()))
        listener.register(server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            [*listener.services, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
        addresses.append(_bind(server, listener))
        servers.append(server)
        healths.append(health_servicer)
    for server in servers:
        await server.start()
    for listener, address in zip(listeners, addresses):
        if address.startswith("unix:"):
            os.chmod(address.removeprefix("unix:"), 0o600)
        log.info("listening on %s (%s)", address, "TLS" if listener.tls else "plaintext, this machine only")
    if on_start is not None:
        await on_start(addresses)
    for listener, health_servicer in zip(listeners, healths):
        for name in [*listener.services, ""]:
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def not_serving():
        for listener, health_servicer in zip(listeners, healths):
            for name in [*listener.services, ""]:
                await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    from kizuna_node.common import rpc  # the RPC layer tells of a damaged store
    rpc.store_damaged["callback"] = not_serving

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = None
    parent = os.environ.get("KIZUNA_EXIT_WITH_PID")
    if parent:
        watcher = asyncio.create_task(_watch_parent(int(parent), stop))
    await stop.wait()
    log.info("stopping (grace %.1fs)", GRACE_SECONDS)
    for health_servicer in healths:
        await health_servicer.enter_graceful_shutdown()
    await asyncio.gather(*(server.stop(GRACE_SECONDS) for server in servers))
    if watcher is not None:
        watcher.cancel()
    if on_stop is not None:
        await on_stop()
    log.info("stopped")
