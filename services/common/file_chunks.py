"""Encrypted file chunks: a file cut into chunks, each sealed with the file's own AES-256-GCM
key and stored in a group's space under the hash of its ciphertext, and the checks a
chunk passes before its bytes count as the file's."""

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kizuna_node.common.errors import DataLoss
from kizuna_node.common.hashing import blake2b_256

ENTRY_TYPE = "file_chunk"
CHUNK_BYTES = 512 * 1024  # under gRPC's message limits with room for the op around it
TAG_BYTES = 16
MAX_CHUNK_ENTRY_BYTES = CHUNK_BYTES + TAG_BYTES
MAX_FILE_BYTES = 64 * 1024 * 1024
KEY_BYTES = 32


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def _nonce(index: int) -> bytes:
    """Chunk i's nonce: unique under a key that encrypts one file only."""
    return bytes(4) + index.to_bytes(8, "big")


def seal_chunk(key: bytes, index: int, plaintext: bytes) -> tuple[bytes, bytes]:
    """(address, ciphertext) of the file's chunk `index`."""
    ciphertext = AESGCM(key).encrypt(_nonce(index), plaintext, None)
    return blake2b_256(ciphertext), ciphertext


def open_chunk(key: bytes, index: int, address: bytes, ciphertext: bytes) -> bytes:
    """The plaintext of chunk `index`, once its ciphertext hashes to `address` and opens
    under the key at its place in the file; DataLoss otherwise."""
    if blake2b_256(ciphertext) != address:
        raise DataLoss(f"chunk {index} of the file does not match its address")
    try:
        return AESGCM(key).decrypt(_nonce(index), ciphertext, None)
    except InvalidTag:
        raise DataLoss(f"chunk {index} of the file does not decrypt under the file's key") from None
