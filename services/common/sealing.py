"""Sealed boxes: a payload only its receiver can open.

Sealing needs only the receiver's published X25519 key: a one-time X25519 key pair,
their agreement, HKDF-SHA256 and ChaCha20-Poly1305. Opening needs the receiver's X25519
private key, so it happens in the conductor's keystore.
"""

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kizuna.v1 import common_pb2
from kizuna_node.common.errors import InvalidArgument, PermissionDenied

INFO = b"kizuna sealed box v1"
NONCE_LEN = 12
KEY_LEN = 32


def _key(shared: bytes, ephemeral_public: bytes, receiver_public: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_LEN, salt=ephemeral_public + receiver_public, info=INFO).derive(shared)


def seal(receiver: bytes, receiver_encryption_key: bytes, plaintext: bytes, aad: bytes) -> common_pb2.SealedBox:
    """Seals `plaintext` to the receiver's X25519 key; `aad` is bound to it unencrypted."""
    if len(receiver_encryption_key) != KEY_LEN:
        raise InvalidArgument("the receiver's encryption key must be 32 bytes")
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(receiver_encryption_key))
    nonce = os.urandom(NONCE_LEN)
    key = _key(shared, ephemeral_public, receiver_encryption_key)
    return common_pb2.SealedBox(
        receiver=receiver,
        ephemeral_key=ephemeral_public,
        nonce=nonce,
        ciphertext=ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad),
    )


def open_sealed(private_key: X25519PrivateKey, sealed: common_pb2.SealedBox, aad: bytes) -> bytes:
    """The plaintext of a box sealed to `private_key`; PermissionDenied when it was not,
    or when the box or its aad was changed."""
    if len(sealed.ephemeral_key) != KEY_LEN or len(sealed.nonce) != NONCE_LEN:
        raise InvalidArgument("a sealed box has a 32-byte ephemeral key and a 12-byte nonce")
    receiver_public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shared = private_key.exchange(X25519PublicKey.from_public_bytes(sealed.ephemeral_key))
    key = _key(shared, sealed.ephemeral_key, receiver_public)
    try:
        return ChaCha20Poly1305(key).decrypt(sealed.nonce, sealed.ciphertext, aad)
    except InvalidTag:
        raise PermissionDenied("the sealed box does not open with this agent's key") from None


def sealed_aad(kind: str, space: bytes, receiver: bytes) -> bytes:
    """What a box is bound to: its kind, the space it is stored in, and its receiver."""
    return b"kizuna:" + kind.encode() + b":" + space + receiver
