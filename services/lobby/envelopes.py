"""call_remote's signed envelopes: built for every outgoing attempt, and checked on every
incoming call before anything else (signature, method, freshness, replay, target)."""

import contextlib
import os

from kizuna.v1 import common_pb2, lobby_pb2
from kizuna_node.common.errors import InvalidArgument, PermissionDenied, parse
from kizuna_node.common.hashing import now_micros
from kizuna_node.common.keys import verify_signed

NONCE_LEN = 16


def seal_envelope(method: str, request, target: bytes) -> common_pb2.Envelope:
    """A fresh envelope for one attempt of a call; the caller signs its bytes."""
    return common_pb2.Envelope(
        method=method, body=request.SerializeToString(), timestamp=now_micros(), nonce=os.urandom(NONCE_LEN),
        target=target,
    )


class EnvelopeChecker:
    """`window_seconds`: how far an envelope's timestamp may be from this lobby's clock.
    Nonces are remembered (on disk) for that long, so a replay is refused even across a
    restart."""

    def __init__(self, store, window_seconds: float):
        self._store = store
        self.window_micros = int(window_seconds * 1_000_000)
        self._in_flight: set[bytes] = set()

    def open(self, remote_call: lobby_pb2.RemoteCall, method: str) -> tuple[bytes, common_pb2.Envelope]:
        """(caller, envelope) of a call whose envelope passes every check; PermissionDenied
        (or InvalidArgument for bytes that are no envelope) otherwise."""
        signed = remote_call.envelope
        if not signed.body:
            raise InvalidArgument("a remote call needs a signed envelope")
        body = verify_signed(signed, "envelope")
        envelope = parse(common_pb2.Envelope, body, "envelope")
        if envelope.method != method:
            raise PermissionDenied(f"the envelope was signed for {envelope.method or 'no method'}, not {method}")
        now = now_micros()
        if abs(now - envelope.timestamp) > self.window_micros:
            raise PermissionDenied("the envelope is stale: its timestamp is outside the accepted window")
        if len(envelope.nonce) != NONCE_LEN:
            raise PermissionDenied(f"the envelope's nonce must be {NONCE_LEN} bytes")
        if envelope.nonce in self._in_flight or self._store.has_nonce(envelope.nonce):
            raise PermissionDenied("the envelope was already used (replayed nonce)")
        return signed.author, envelope

    @contextlib.contextmanager
    def in_flight(self, envelope: common_pb2.Envelope):
        """While its call is handled, a second copy of the envelope is a replay."""
        if envelope.nonce in self._in_flight:
            raise PermissionDenied("the envelope was already used (replayed nonce)")
        self._in_flight.add(envelope.nonce)
        try:
            yield
        finally:
            self._in_flight.discard(envelope.nonce)

    def remember(self, envelope: common_pb2.Envelope) -> None:
        """Marks an envelope whose call was taken as used."""
        self._store.remember_nonce(envelope.nonce, envelope.timestamp)

    def forget_expired(self) -> int:
        """Drops nonces older than the window: their envelopes are refused as stale anyway."""
        return self._store.forget_nonces_before(now_micros() - 2 * self.window_micros)
