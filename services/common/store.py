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


def _reason(exc: BaseException) -> str:
    reason = exc.args[0] if exc.args else exc
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)


class Table:
    """The records of one kind: keys under one prefix. Every read verifies the checksums of
    the blocks it reads, so damage that appears while the service runs is found (as
    plyvel.CorruptionError, see `is_damage`), never served as records."""

    def __init__(self, db: "plyvel.DB", prefix: bytes):
        self.prefix = prefix
        self._db = db
        self._view = db.prefixed_db(prefix)

    def get(self, key: bytes):
        return self._view.get(key, verify_checksums=True)

    def put(self, key: bytes, value: bytes, sync: bool = True) -> None:
        self._view.put(key, value, sync=sync)

    def delete(self, key: bytes, sync: bool = True) -> None:
        self._view.delete(key, sync=sync)

    def items(self, prefix: bytes = b"", reverse: bool = False, start: bytes | None = None, stop: bytes | None = None):
        """(key, value) pairs, keys without the table's prefix, in key order."""
        if start is not None or stop is not None:
            return self._view.iterator(start=start, stop=stop, reverse=reverse, verify_checksums=True)
        return self._view.iterator(prefix=prefix, reverse=reverse, verify_checksums=True)

    def keys(self, prefix: bytes = b""):
        return self._view.iterator(prefix=prefix, include_value=False, verify_checksums=True)

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


def is_damage(exc: BaseException) -> bool:
    """Whether `exc` is LevelDB finding its files damaged (a checksum or a block that does
    not read) while the service runs."""
    return isinstance(exc, plyvel.CorruptionError)


class StoreUnusable(SystemExit):
    """The service's LevelDB cannot be used: damaged, held by another process, or not
    writable. Raised at start, so the service refuses to serve (and exits with this
    message, no traceback) instead of serving errors on every read."""


class Store:
    """One service's LevelDB directory, checked when it is opened: with LevelDB's paranoid
    checks, and every block read once with its checksum verified."""

    def __init__(self, path: str):
        try:
            os.makedirs(path, exist_ok=True)
            self._db = plyvel.DB(path, create_if_missing=True, paranoid_checks=True)
        except (plyvel.Error, OSError) as exc:
            raise StoreUnusable(f"the store at {path} cannot be opened: {_reason(exc)}") from None
        self._check(path)

    def _check(self, path: str) -> None:
        """Reads every record once with checksums verified, so damage is found now."""
        try:
            for _ in self._db.iterator(verify_checksums=True, fill_cache=False, include_value=False):
                pass
            self._db.put(b"\xffcheck", b"", sync=True)  # writable, too
            self._db.delete(b"\xffcheck", sync=True)
        except (plyvel.Error, OSError) as exc:
            self._db.close()
            raise StoreUnusable(f"the store at {path} is damaged or not writable: {_reason(exc)}; restore it from a "
                                f"backup, or move it aside to start this service empty") from None

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
