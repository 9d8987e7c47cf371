"""Checking ed25519 signatures and agent keys, and the one wire form of a signed value;
signing itself happens only in the conductor's keystore."""

import functools

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kizuna.v1 import common_pb2
from kizuna_node.common.errors import InvalidArgument, PermissionDenied

KEY_LEN = 32
SIGNATURE_LEN = 64
# What the conductor signs (or opens) in one call: at most this many bytes, and this many
# items in a batch.
MAX_SIGN_BYTES = 1024 * 1024
MAX_BATCH = 1000


def check_agent_key(agent: bytes, what: str = "agent") -> bytes:
    """An agent key is 32 raw bytes of an ed25519 public key."""
    if len(agent) != KEY_LEN:
        raise InvalidArgument(f"{what} must be a 32-byte ed25519 public key, got {len(agent)} bytes")
    return bytes(agent)


@functools.lru_cache(maxsize=4096)
def _public_key(author: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(author)


def is_valid_signature(author: bytes, body: bytes, signature: bytes) -> bool:
    if len(author) != KEY_LEN or len(signature) != SIGNATURE_LEN:
        return False
    try:
        _public_key(bytes(author)).verify(signature, body)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_signed(signed, what: str = "signed data") -> bytes:
    """Returns the body of a Signed whose signature checks against its author, else refuses it."""
    check_agent_key(signed.author, f"{what} author")
    if not is_valid_signature(signed.author, signed.body, signed.signature):
        raise PermissionDenied(f"{what}: signature does not verify against its author")
    return signed.body


async def sign_into(sign, author: bytes, body: bytes) -> common_pb2.Signed:
    """`body` as a Signed by `author`, signed by `sign(author, body)` (the keystore's)."""
    return signed_as(author, body, await sign(author, body))


def signed_as(author: bytes, body: bytes, signature: bytes) -> common_pb2.Signed:
    """The wire form of a signed value: the exact bytes, the signature over them, the signer."""
    return common_pb2.Signed(body=body, signature=signature, author=author)
