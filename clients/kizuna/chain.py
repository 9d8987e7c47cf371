"""Checks an agent's source chain as a reader outside the node sees it: signed, linked, gapless."""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.message import DecodeError

from kizuna.v1 import common_pb2


class ChainError(Exception):
    """A source chain fails a check; the message says which action and why."""


def blake2b_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def _short(key: bytes) -> str:
    return base64.b64encode(key).decode()[:12] + "…"


def verify_source_chain(actions: list[common_pb2.Signed]) -> None:
    """Returns when `actions` (oldest first) form one agent's valid source chain: every
    signature verifies against its author, seq runs 0, 1, 2, ..., each `prev_action` is the
    hash of the previous action's body (empty for the first), every `entry_hash` is the
    hash of its entry, and one author wrote them all. Raises ChainError otherwise."""
    author: bytes | None = None
    prev_body: bytes | None = None
    for index, signed in enumerate(actions):
        if author is None:
            author = signed.author
        elif signed.author != author:
            raise ChainError(f"action {index}: author {_short(signed.author)} differs from {_short(author)}")
        try:
            Ed25519PublicKey.from_public_bytes(signed.author).verify(signed.signature, signed.body)
        except ValueError:
            raise ChainError(f"action {index}: author is not an ed25519 public key") from None
        except InvalidSignature:
            raise ChainError(f"action {index}: bad signature") from None
        action = common_pb2.Action()
        try:
            action.ParseFromString(signed.body)
        except DecodeError:
            raise ChainError(f"action {index}: body is not an Action") from None
        if action.author != signed.author:
            raise ChainError(f"action {index}: signed by {_short(signed.author)} but names {_short(action.author)}")
        if action.seq != index:
            raise ChainError(f"action {index}: seq is {action.seq}, expected {index}")
        expected_prev = b"" if prev_body is None else blake2b_256(prev_body)
        if action.prev_action != expected_prev:
            raise ChainError(f"action {index}: prev_action does not match the previous action's hash")
        if action.entry_hash != blake2b_256(action.entry):
            raise ChainError(f"action {index}: entry_hash does not match its entry ({action.entry_type})")
        prev_body = signed.body
