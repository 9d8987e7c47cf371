"""The RPC layer's error mapping: a domain error becomes its status, anything else INTERNAL.

Every servicer method is wrapped with `rpc_method`, so no traceback ever reaches a client;
unexpected errors are logged here with their traceback, without request bodies.
"""

import functools
import inspect
import logging

import grpc

from services.common.errors import KizunaError, error_for

log = logging.getLogger("kizuna.rpc")


def status_code(name: str) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, name, grpc.StatusCode.UNKNOWN)


def _describe_unexpected(method_name: str, exc: BaseException) -> None:
    log.error("%s failed unexpectedly: %s", method_name, type(exc).__name__, exc_info=exc)


def rpc_method(fn):
    """Wraps a unary or server-streaming grpc.aio servicer method with the error mapping."""
    name = fn.__qualname__

    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def stream(self, request, context):
            try:
                async for item in fn(self, request, context):
                    yield item
            except KizunaError as exc:
                await context.abort(status_code(exc.code), exc.message)
            except (grpc.aio.AbortError, GeneratorExit):
                raise
            except Exception as exc:  # noqa: BLE001 - the last line of defence
                _describe_unexpected(name, exc)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")

        return stream

    @functools.wraps(fn)
    async def unary(self, request, context):
        try:
            return await fn(self, request, context)
        except KizunaError as exc:
            await context.abort(status_code(exc.code), exc.message)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            _describe_unexpected(name, exc)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")

    return unary


def remote_error(exc: grpc.aio.AioRpcError) -> KizunaError:
    """Turns a failed outgoing call into the domain error of the same status."""
    return error_for(exc.code().name, exc.details() or exc.code().name)
