"""Small helpers the test suites share: an agent that signs DHT ops with a key of its own,
running a coroutine (`run`, `async_test`), and polling a condition with a deadline
(`eventually`, never a fixed sleep)."""

import asyncio
import functools
import inspect
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kizuna.v1 import common_pb2, group_dht_pb2
from kizuna_node.common import group_state, space_claims
from kizuna_node.common.hashing import now_micros


class Agent:
    """An ed25519 key of the test's own, signing DHT ops (author and timestamp default to
    this agent and now, and may be set to something else to build a bad op)."""

    def __init__(self):
        self.key = Ed25519PrivateKey.generate()
        self.public = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(self, **fields) -> common_pb2.Signed:
        fields.setdefault("author", self.public)
        fields.setdefault("timestamp", now_micros())
        body = group_dht_pb2.Op(**fields).SerializeToString()
        return common_pb2.Signed(body=body, signature=self.key.sign(body), author=self.public)

    def group_update(self, state, change: str, subjects: list[bytes], space: bytes) -> common_pb2.Signed:
        """The op of a group update this agent (an admin) signs after `state`, as its lobby publishes it."""
        update = group_state.next_update(state, change, subjects, self.public, now_micros())
        entry = common_pb2.Signed(body=update.SerializeToString(), author=self.public)
        entry.signature = self.key.sign(entry.body)
        return self.sign(space=space, kind=group_dht_pb2.STORE_ENTRY, entry_type=group_state.ENTRY_TYPE,
                         entry=entry.SerializeToString())

    def claim(self, node_id: bytes, space: bytes) -> group_dht_pb2.SpaceClaim:
        """This agent's claim that the node holds the group space for it (what its conductor signs)."""
        return space_claims.make_claim(self.key.sign, self.public, node_id, space)


RUN_TIMEOUT = 120.0


def run(coro, timeout: float = RUN_TIMEOUT):
    """The one way a test runs a coroutine: on a fresh event loop, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def async_test(fn):
    """Runs a coroutine test function with `run`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return run(fn(*args, **kwargs))

    return wrapper


def eventually(condition, what: str, timeout: float = 15.0, interval: float = 0.05):
    """Polls `condition()` until it is truthy and returns its value; fails naming `what` at
    the deadline. The one polling helper: called in a coroutine it returns an awaitable
    (`await eventually(...)`) that lets the event loop run between checks, and there
    `condition` may itself be a coroutine function."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        deadline = time.monotonic() + timeout
        while True:
            result = condition()
            if result:
                return result
            if time.monotonic() >= deadline:
                pytest.fail(f"not within {timeout:.0f}s: {what}")
            time.sleep(interval)
    return _eventually_async(condition, what, timeout, interval)


async def _eventually_async(condition, what: str, timeout: float, interval: float):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"not within {timeout:.0f}s: {what}")
        await asyncio.sleep(interval)

