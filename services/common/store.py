"""The LevelDB wrapper: the only module that imports plyvel.

Each record kind lives under its own key prefix (a `Table`); a logical change that
touches several keys goes through one synced write batch.
"""

import contextlib
import os
import struct

import plyvel


def u64(n: int) -> bytes:
    """A fixed-width big-endian number, so keys sort in numeric order."""
    return struct.pack(">Q", n)


def from_u64(b: bytes) -> int:
    return struct.unpack(">Q", b)[0]


class Table:
    """The records of one kind: keys under one prefix."""

    def __init__(self, db: "plyvel.DB", prefix: bytes):
        self.prefix = prefix
        self._db = db
        self._view = db.prefixed_db(prefix)

    def get(self, key: bytes):
        return self._view.get(key)

    def put(self, key: bytes, value: bytes, sync: bool = True) -> None:
        self._view.put(key, value, sync=sync)

    def delete(self, key: bytes, sync: bool = True) -> None:
        self._view.delete(key, sync=sync)

    def items(self, prefix: bytes = b"", reverse: bool = False, start: bytes | None = None, stop: bytes | None = None):
        """(key, value) pairs, keys without the table's prefix, in key order."""
        if start is not None or stop is not None:
            return self._view.iterator(start=start, stop=stop, reverse=reverse)
        return self._view.iterator(prefix=prefix, reverse=reverse)

    def keys(self, prefix: bytes = b""):
        return self._view.iterator(prefix=prefix, include_value=False)

    def count(self, prefix: bytes = b"") -> int:
        return sum(1 for _ in self.keys(prefix))


class Batch:
    """Puts and deletes across tables, written together."""

    def __init__(self, wb):
        self._wb = wb

    def put(self, table: Table, key: bytes, value: bytes) -> None:
        self._wb.put(table.prefix + key, value)

    def delete(self, table: Table, key: bytes) -> None:
        self._wb.delete(table.prefix + key)


class Store:
    """One service's LevelDB directory."""

    def __init__(self, path: str):
        os.makedirs(path, exist_ok=True)
        self._db = plyvel.DB(path, create_if_missing=True)

    def table(self, prefix: bytes) -> Table:
        return Table(self._db, prefix)

    @contextlib.contextmanager
    def batch(self, sync: bool = True):
        """A write batch: all of it is applied when the block ends, or none of it; and on
        disk by then, unless `sync` is False (for what may be lost in a crash)."""
        with self._db.write_batch(sync=sync, transaction=True) as wb:
            yield Batch(wb)

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()
