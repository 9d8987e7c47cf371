"""validate_op: what a holder refuses before it stores an op, and with which status."""

import pytest

from kizuna.v1 import common_pb2, group_dht_pb2
from kizuna_node.common import anchors, dna
from kizuna_node.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, PermissionDenied
from kizuna_node.common.hashing import now_micros
from kizuna_node.group_dht.store import DhtStore
from kizuna_node.group_dht.validation import MAX_OP_BYTES, op_hash, validate_op
from tests.helpers import Agent




@pytest.fixture
def agents():
    return [Agent() for _ in range(3)]


@pytest.fixture
def group(agents):
    members = [agents[0].public, agents[1].public]
    props = common_pb2.GroupProperties(group_uuid="g-1", name="g", creator=members[0], initial_members=members)
    return group_dht_pb2.Space(space=dna.group_dna_hash(props), template="group", properties=props, agents=[members[0]])


@pytest.fixture
def lobby():
    return group_dht_pb2.Space(space=dna.LOBBY_DNA_HASH, template="lobby")


@pytest.fixture
def store(tmp_path):
    s = DhtStore(str(tmp_path / "db"))
    yield s
    s.close()


def entry(agent, space, text=b"hello", **extra):
    return agent.sign(space=space, kind=group_dht_pb2.STORE_ENTRY, entry_type="message", entry=text, **extra)


def link(agent, space, base, target=b"t" * 32, tag=b"", **extra):
    return agent.sign(space=space, kind=group_dht_pb2.CREATE_LINK, base=base, target=target, tag=tag, **extra)


def keep(store, signed):
    op = group_dht_pb2.Op.FromString(signed.body)
    store.put_op(op_hash(signed), signed, op)
    return op_hash(signed)


def test_valid_member_entry_is_accepted_and_parsed(agents, group, store):
    op = validate_op(entry(agents[0], group.space), group, store)
    assert op.entry == b"hello" and op.author == agents[0].public


def test_forged_signature_is_permission_denied(agents, group, store):
    signed = entry(agents[0], group.space)
    signed.signature = agents[1].key.sign(signed.body)
    with pytest.raises(PermissionDenied, match="signature"):
        validate_op(signed, group, store)


def test_tampered_body_is_permission_denied(agents, group, store):
    signed = entry(agents[0], group.space)
    signed.body = signed.body.replace(b"hello", b"HELLO")
    with pytest.raises(PermissionDenied, match="signature"):
        validate_op(signed, group, store)


def test_signer_other_than_op_author_is_permission_denied(agents, group, store):
    signed = entry(agents[1], group.space, author=agents[0].public)
    with pytest.raises(PermissionDenied, match="author"):
        validate_op(signed, group, store)


def test_op_for_another_space_is_invalid_argument(agents, group, store):
    with pytest.raises(InvalidArgument, match="another space"):
        validate_op(entry(agents[0], dna.LOBBY_DNA_HASH), group, store)


def test_non_member_author_in_group_space_is_permission_denied(agents, group, store):
    with pytest.raises(PermissionDenied, match="not a member"):
        validate_op(entry(agents[2], group.space), group, store)


def test_oversize_op_is_invalid_argument(agents, group, store):
    with pytest.raises(InvalidArgument, match="limit"):
        validate_op(entry(agents[0], group.space, text=b"x" * MAX_OP_BYTES), group, store)


def test_op_for_space_this_node_is_not_in_is_failed_precondition(agents, group, store):
    with pytest.raises(FailedPrecondition):
        validate_op(entry(agents[0], group.space), None, store)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"kind": group_dht_pb2.OP_KIND_UNSPECIFIED}, "kind"),
        ({"entry": b""}, "non-empty entry"),
        ({"entry_type": ""}, "entry_type"),
        ({"entry_type": "x" * 65}, "entry_type"),
        ({"timestamp": 0}, "positive"),
        ({"timestamp": "six minutes from now"}, "future"),
        ({"kind": group_dht_pb2.CREATE_LINK, "base": b"short", "target": b"t" * 32}, "base"),
        ({"kind": group_dht_pb2.CREATE_LINK, "base": b"b" * 32, "target": b"t" * 32, "tag": b"x" * 1025}, "tag"),
        ({"kind": group_dht_pb2.DELETE_LINK, "base": b"b" * 32, "link_address": b""}, "link address"),
    ],
)
def test_malformed_op_is_invalid_argument(agents, group, store, fields, message):
    if fields.get("timestamp") == "six minutes from now":  # computed when the test runs, not when collected
        fields = {"timestamp": now_micros() + 6 * 60 * 1_000_000}
    base = {"space": group.space, "kind": group_dht_pb2.STORE_ENTRY, "entry_type": "message", "entry": b"e"}
    if fields.get("kind") in (group_dht_pb2.CREATE_LINK, group_dht_pb2.DELETE_LINK):
        base = {"space": group.space}
    with pytest.raises(InvalidArgument, match=message):
        validate_op(agents[0].sign(**{**base, **fields}), group, store)


def test_body_that_is_not_an_op_is_invalid_argument(agents, group, store):
    body = b"\xff\xff\xff"
    signed = common_pb2.Signed(body=body, signature=agents[0].key.sign(body), author=agents[0].public)
    with pytest.raises(InvalidArgument, match="not an Op"):
        validate_op(signed, group, store)


def test_username_link_first_come_wins(agents, lobby, store):
    base = anchors.username_anchor("alice")
    first = link(agents[0], lobby.space, base, tag=anchors.USERNAME_TAG + b"alice")
    validate_op(first, lobby, store)
    first_address = keep(store, first)
    with pytest.raises(AlreadyExists, match="already claimed"):
        validate_op(link(agents[1], lobby.space, base, tag=anchors.USERNAME_TAG + b"alice"), lobby, store)
    # the winner may link again, and once its claim is deleted the name is free
    validate_op(link(agents[0], lobby.space, base, target=b"u" * 32, tag=anchors.USERNAME_TAG + b"alice"), lobby, store)
    delete = agents[0].sign(space=lobby.space, kind=group_dht_pb2.DELETE_LINK, base=base, link_address=first_address)
    validate_op(delete, lobby, store)
    keep(store, delete)
    validate_op(link(agents[1], lobby.space, base, tag=anchors.USERNAME_TAG + b"alice"), lobby, store)


def test_link_delete_only_by_its_author_or_the_inbox_owner(agents, group, store):
    other_base = b"o" * 32
    address = keep(store, link(agents[0], group.space, other_base))
    delete = dict(space=group.space, kind=group_dht_pb2.DELETE_LINK, link_address=address)
    with pytest.raises(PermissionDenied, match="author"):
        validate_op(agents[1].sign(base=other_base, **delete), group, store)
    validate_op(agents[0].sign(base=other_base, **delete), group, store)

    inbox = anchors.inbox_anchor(agents[1].public)
    inbox_address = keep(store, link(agents[0], group.space, inbox))
    delete["link_address"] = inbox_address
    validate_op(agents[1].sign(base=inbox, **delete), group, store)


def test_lobby_agent_info_must_name_its_publisher(agents, lobby, store):
    info = group_dht_pb2.AgentInfo(agent=agents[1].public, dht_address="127.0.0.1:1").SerializeToString()
    fields = dict(space=lobby.space, kind=group_dht_pb2.STORE_ENTRY, entry_type="agent_info", entry=info)
    with pytest.raises(PermissionDenied, match="own agent"):
        validate_op(agents[0].sign(**fields), lobby, store)
    assert validate_op(agents[1].sign(**fields), lobby, store).entry == info


def test_a_link_op_carrying_an_entry_type_is_refused_so_it_cannot_pass_as_another_kind(agents, group, store):
    signed = agents[0].sign(space=group.space, kind=group_dht_pb2.DELETE_LINK, base=b"b" * 32,
                            link_address=b"l" * 32, entry_type="group_update")
    with pytest.raises(InvalidArgument, match="no entry"):
        validate_op(signed, group, store)


def test_a_username_claim_must_hang_from_its_names_anchor_and_be_fresh(agents, lobby, store):
    wrong_base = link(agents[0], lobby.space, anchors.username_anchor("mallory"), tag=anchors.USERNAME_TAG + b"bobby")
    with pytest.raises(PermissionDenied, match="anchor"):
        validate_op(wrong_base, lobby, store)
    backdated = agents[0].sign(space=lobby.space, kind=group_dht_pb2.CREATE_LINK, base=anchors.username_anchor("bobby"),
                               target=b"t" * 32, tag=anchors.USERNAME_TAG + b"bobby", timestamp=1)
    with pytest.raises(PermissionDenied, match="fresh"):
        validate_op(backdated, lobby, store)
