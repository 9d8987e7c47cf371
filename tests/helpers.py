"""Small helpers the test suites share: an agent that signs DHT ops with a key of its own,
running a coroutine test, and polling a condition with a deadline (never a fixed sleep)."""

import asyncio
import functools
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kizuna.v1 import common_pb2, group_dht_pb2
from services.common.hashing import now_micros


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


def async_test(fn):
    """Runs a coroutine test function on a fresh event loop."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


def wait_for(condition, what: str, timeout: float = 15.0):
    """Polls a synchronous `condition()` until it is truthy and returns it; fails naming
    `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.1)
