"""Server start-up shared by the three services: grpc.aio, health, reflection, SIGTERM.

`run_service` parses the common flags (`--listen`, `--data-dir`, `--log-level`), builds the
service, serves it with the standard health service and server reflection, and stops
gracefully on SIGTERM or SIGINT. With KIZUNA_EXIT_WITH_PID set, it also stops when that
process is gone, so servers a test started never outlive it.
"""

import argparse
import asyncio
import logging
import os
import signal
import sys

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

log = logging.getLogger("kizuna.server")

GRACE_SECONDS = 3.0
MAX_MESSAGE_BYTES = 8 * 1024 * 1024


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port to serve on (port 0 picks a free one)")
    parser.add_argument("--data-dir", required=True, help="directory of this service's LevelDB store")
    parser.add_argument("--log-level", default=os.environ.get("KIZUNA_LOG_LEVEL", "INFO"))
    return parser


def setup_logging(level: str, name: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        stream=sys.stderr,
        format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s",
    )


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
    """`handler` taking raw bytes and parsing them itself, so bytes that are no request of
    the method's type get INVALID_ARGUMENT rather than gRPC's UNKNOWN with the parser's text."""
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


async def serve(listen: str, service_names: list[str], register, on_start=None, on_stop=None) -> None:
    """Serves until SIGTERM/SIGINT. `register(server)` adds the servicers; `on_start(port)`
    runs once the port is bound and before health says SERVING; `on_stop()` after the
    server stopped."""
    server = ParsingServer(grpc.aio.server(options=server_options()))
    register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(listen)
    if port == 0:
        raise SystemExit(f"cannot listen on {listen}")
    await server.start()
    host = listen.rsplit(":", 1)[0]
    log.info("listening on %s:%d", host, port)
    if on_start is not None:
        await on_start(f"{host}:{port}")
    for name in [*service_names, ""]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

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
    await health_servicer.enter_graceful_shutdown()
    await server.stop(GRACE_SECONDS)
    if watcher is not None:
        watcher.cancel()
    if on_stop is not None:
        await on_stop()
    log.info("stopped")
