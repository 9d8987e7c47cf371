"""What a DHT node believes of other nodes: signed node infos, and only deletes it can check."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kizuna.v1 import common_pb2, group_dht_pb2
from kizuna_node.common import anchors
from kizuna_node.common.errors import PermissionDenied
from kizuna_node.common.hashing import blake2b_256, now_micros
from kizuna_node.group_dht.dht import GroupDhtNode
from kizuna_node.group_dht.peers import PeerTable, check_node_info, signing_bytes
from kizuna_node.group_dht.read import believed_deletes
from kizuna_node.group_dht.store import DhtStore


def _key():
    key = Ed25519PrivateKey.generate()
    return key, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _info(key, public, node_id=None, address="127.0.0.1:9"):
    info = group_dht_pb2.NodeInfo(node_id=node_id or blake2b_256(public), address=address, timestamp=now_micros(),
                                  public_key=public)
    info.signature = key.sign(signing_bytes(info))
    return info


@pytest.fixture
def table(tmp_path):
    store = DhtStore(str(tmp_path / "dht"))
    yield PeerTable(store, b"\x00" * 32)
    store.close()


def test_a_signed_node_info_is_taken(table):
    key, public = _key()
    assert table.merge(_info(key, public))
    assert [p.address for p in table.all()] == ["127.0.0.1:9"]


def test_a_node_info_claiming_another_nodes_id_is_refused(table):
    key, public = _key()
    _, victim = _key()
    forged = _info(key, public, node_id=blake2b_256(victim), address="127.0.0.66:1")
    with pytest.raises(PermissionDenied, match="hash of its public_key"):
        check_node_info(forged)
    assert not table.merge(forged) and table.all() == []


def test_a_node_info_changed_after_signing_is_refused(table):
    key, public = _key()
    info = _info(key, public)
    info.address = "127.0.0.1:6666"
    with pytest.raises(PermissionDenied, match="not signed"):
        check_node_info(info)
    assert not table.merge(info)


def test_a_node_signs_its_own_info(tmp_path):
    store = DhtStore(str(tmp_path / "dht"))
    node = GroupDhtNode(store, transport=None)
    node.address = "127.0.0.1:1"
    check_node_info(node.node_info())
    store.close()


def _signed_op(key, public, **fields):
    body = group_dht_pb2.Op(author=public, timestamp=now_micros(), **fields).SerializeToString()
    return common_pb2.Signed(body=body, signature=key.sign(body), author=public)


def test_only_deletes_by_the_links_author_or_the_inbox_owner_are_believed():
    space = b"s" * 32
    (author_key, author), (owner_key, owner), (other_key, other) = _key(), _key(), _key()
    base = anchors.inbox_anchor(owner)
    create = _signed_op(author_key, author, space=space, kind=group_dht_pb2.CREATE_LINK, base=base,
                        target=b"t" * 32, tag=b"message")
    address = blake2b_256(create.body)

    def delete_by(key, public):
        return _signed_op(key, public, space=space, kind=group_dht_pb2.DELETE_LINK, base=base, link_address=address)

    creates = {address: create}
    assert believed_deletes([delete_by(other_key, other)], space, base, creates) == set()
    assert believed_deletes([delete_by(author_key, author)], space, base, creates) == {address}
    assert believed_deletes([delete_by(owner_key, owner)], space, base, creates) == {address}
    forged = delete_by(other_key, other)
    forged.author = author  # claims the author's name without the author's signature
    assert believed_deletes([forged], space, base, creates) == set()
