"""The RPC layer's error mapping: a domain error becomes its status, anything else INTERNAL.

Every servicer method is wrapped with `rpc_method`, so no traceback ever reaches a client;
unexpected errors are logged here with their traceback, without request bodies.
"""

import asyncio
import functools
import inspect
import logging
import time

import grpc

from kizuna_node.common import logs, metrics
from kizuna_node.common.errors import KizunaError, error_for
from kizuna_node.common.store import is_damage

log = logging.getLogger("kizuna.rpc")


def status_code(name: str) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, name, grpc.StatusCode.UNKNOWN)


def _describe_unexpected(method_name: str, exc: BaseException) -> None:
    log.error("%s failed unexpectedly: %s", method_name, type(exc).__name__, exc_info=exc)


# Told once when a call finds the service's store damaged: `serve` sets every health
# status NOT_SERVING, so a supervisor or load balancer stops sending work here.
store_damaged = {"callback": None, "seen": False}
DAMAGE_MESSAGE = "this node's store is damaged; its operator must restore it (see the service's log)"


async def store_damage_found(what: str, exc: BaseException) -> None:
    """Logs damage to the store (no traceback: it is no bug) and, the first time, turns health NOT_SERVING."""
    log.critical("%s: the store is damaged (%s): serving NOT_SERVING from now on", what, exc)
    if not store_damaged["seen"]:
        store_damaged["seen"] = True
        if store_damaged["callback"] is not None:
            await store_damaged["callback"]()


async def _abort_unexpected(method_name: str, exc: BaseException, context) -> None:
    """Ends a call that failed with no domain error: DATA_LOSS when the store is damaged
    (and, the first time, health turns NOT_SERVING), else INTERNAL, logged with its traceback."""
    if is_damage(exc):
        await store_damage_found(method_name, exc)
        await context.abort(grpc.StatusCode.DATA_LOSS, DAMAGE_MESSAGE)
    _describe_unexpected(method_name, exc)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")


def _observe(method: str, code: str, started: float) -> None:
    """Counts the RPC, and logs it: one line a request, with its method and status (at
    DEBUG when it succeeded, so a busy node's INFO log stays readable)."""
    service = metrics.SERVICE["name"]
    seconds = time.perf_counter() - started
    metrics.RPCS.labels(service, method, code).inc()
    metrics.RPC_SECONDS.labels(service, method).observe(seconds)
    level = logging.DEBUG if code in ("OK", "CANCELLED") else logging.INFO
    if log.isEnabledFor(level):
        log.log(level, "%s %s in %.1f ms", method, code, seconds * 1000,
                extra={"method": method, "code": code, "ms": round(seconds * 1000, 2)})


def rpc_method(fn):
    """Wraps a unary or server-streaming grpc.aio servicer method with the error mapping,
    and counts it (method and status, latency) in the service's metrics."""
    name = fn.__qualname__
    method = name.rsplit(".", 1)[-1]

    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def stream(self, request, context):
            started, code = time.perf_counter(), "OK"
            logs.current_method.set(method)
            try:
                async for item in fn(self, request, context):
                    yield item
            except KizunaError as exc:
                code = exc.code
                await context.abort(status_code(exc.code), exc.message)
            except (grpc.aio.AbortError, GeneratorExit):
                raise
            except asyncio.CancelledError:
                code = "CANCELLED"
                raise
            except Exception as exc:  # noqa: BLE001 - the last line of defence
                code = "DATA_LOSS" if is_damage(exc) else "INTERNAL"
                await _abort_unexpected(name, exc, context)
            finally:
                _observe(method, code, started)

        return stream

    @functools.wraps(fn)
    async def unary(self, request, context):
        started, code = time.perf_counter(), "OK"
        logs.current_method.set(method)
        try:
            return await fn(self, request, context)
        except KizunaError as exc:
            code = exc.code
            await context.abort(status_code(exc.code), exc.message)
        except grpc.aio.AbortError:
            code = "ABORTED_BY_HANDLER"
            raise
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            code = "DATA_LOSS" if is_damage(exc) else "INTERNAL"
            await _abort_unexpected(name, exc, context)
        finally:
            _observe(method, code, started)

    return unary


def remote_error(exc: grpc.aio.AioRpcError) -> KizunaError:
    """Turns a failed outgoing call into the domain error of the same status."""
    return error_for(exc.code().name, exc.details() or exc.code().name)
