"""verify_source_chain accepts a well-formed chain and names each kind of tampering."""

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kizuna.chain import ChainError, verify_source_chain
from kizuna.v1 import common_pb2


def h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def make_agent():
    key = Ed25519PrivateKey.generate()
    return key, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign_action(key, author, action) -> common_pb2.Signed:
    body = action.SerializeToString()
    return common_pb2.Signed(body=body, signature=key.sign(body), author=author)


def make_chain(length=4, agent=None):
    key, author = agent or make_agent()
    chain, prev = [], b""
    for seq in range(length):
        entry = f"entry {seq}".encode()
        action = common_pb2.Action(
            seq=seq, prev_action=prev, timestamp=1_700_000_000_000_000 + seq, author=author,
            entry_type="groups", entry=entry, entry_hash=h(entry),
        )
        signed = sign_action(key, author, action)
        chain.append(signed)
        prev = h(signed.body)
    return chain, key, author


def parse(signed):
    action = common_pb2.Action()
    action.ParseFromString(signed.body)
    return action


def test_valid_chain_passes():
    chain, _, _ = make_chain()
    verify_source_chain(chain)


def test_empty_chain_passes():
    verify_source_chain([])


def test_bad_signature_is_detected():
    chain, _, _ = make_chain()
    sig = bytearray(chain[2].signature)
    sig[0] ^= 1
    chain[2].signature = bytes(sig)
    with pytest.raises(ChainError, match="action 2: bad signature"):
        verify_source_chain(chain)


def test_body_changed_after_signing_is_detected():
    chain, _, _ = make_chain()
    action = parse(chain[1])
    action.timestamp += 1
    chain[1].body = action.SerializeToString()
    with pytest.raises(ChainError, match="action 1: bad signature"):
        verify_source_chain(chain)


def test_broken_prev_link_is_detected():
    chain, key, author = make_chain()
    action = parse(chain[2])
    action.prev_action = h(b"something else")
    chain[2] = sign_action(key, author, action)  # re-signed: only the link is wrong
    with pytest.raises(ChainError, match="action 2: prev_action"):
        verify_source_chain(chain)


def test_first_action_with_prev_link_is_detected():
    chain, key, author = make_chain(1)
    action = parse(chain[0])
    action.prev_action = h(b"x")
    chain[0] = sign_action(key, author, action)
    with pytest.raises(ChainError, match="action 0: prev_action"):
        verify_source_chain(chain)


def test_wrong_entry_hash_is_detected():
    chain, key, author = make_chain()
    action = parse(chain[3])
    action.entry = b"swapped entry"
    chain[3] = sign_action(key, author, action)
    with pytest.raises(ChainError, match="action 3: entry_hash"):
        verify_source_chain(chain)


def test_gap_in_seq_is_detected():
    chain, _, _ = make_chain(5)
    del chain[2]
    with pytest.raises(ChainError, match="action 2: seq is 3, expected 2"):
        verify_source_chain(chain)


def test_chain_not_starting_at_zero_is_detected():
    chain, _, _ = make_chain(3)
    with pytest.raises(ChainError, match="action 0: seq is 1"):
        verify_source_chain(chain[1:])


def test_second_author_is_detected():
    chain, _, _ = make_chain(2)
    other, _, _ = make_chain(3)
    with pytest.raises(ChainError, match="action 2: author"):
        verify_source_chain(chain + other[2:])


def test_action_naming_another_author_is_detected():
    chain, key, author = make_chain(2)
    _, stranger = make_agent()
    action = parse(chain[1])
    action.author = stranger
    chain[1] = sign_action(key, author, action)
    with pytest.raises(ChainError, match="action 1: signed by"):
        verify_source_chain(chain)
