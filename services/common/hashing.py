"""BLAKE2b-256, the one hash of the project, and the time stamps that go with it."""

import hashlib
import time

HASH_LEN = 32


def blake2b_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=HASH_LEN).digest()


def now_micros() -> int:
    """Microseconds since the Unix epoch, the seed's Timestamp."""
    return time.time_ns() // 1000
