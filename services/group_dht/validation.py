"""Validating ops: what every node checks before it stores or believes a signed op."""

import collections

from google.protobuf.message import DecodeError

from kizuna.v1 import common_pb2, group_dht_pb2
from kizuna_node.common import anchors, dna, file_chunks, group_state
from kizuna_node.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, PermissionDenied
from kizuna_node.common.hashing import HASH_LEN, blake2b_256, now_micros
from kizuna_node.common.keys import verify_signed

MAX_OP_BYTES = 256 * 1024  # a 1,000-member group's invite, sealed, is about 70 KB
MAX_CHUNK_OP_BYTES = file_chunks.MAX_CHUNK_ENTRY_BYTES + 4096  # a file chunk, with the op around it
MAX_ENTRY_TYPE_LEN = 64
MAX_TAG_BYTES = 1024
MAX_FUTURE_MICROS = 5 * 60 * 1_000_000
AGENT_INFO = "agent_info"

KINDS = (group_dht_pb2.STORE_ENTRY, group_dht_pb2.CREATE_LINK, group_dht_pb2.DELETE_LINK)


def op_hash(signed: common_pb2.Signed) -> bytes:
    """An op's own hash; for a CREATE_LINK, the link's address."""
    return blake2b_256(signed.body)


def basis_address(op: group_dht_pb2.Op) -> bytes:
    """Where an op is placed: the entry address for STORE_ENTRY, the base for links."""
    if op.kind == group_dht_pb2.STORE_ENTRY:
        return blake2b_256(op.entry)
    return op.base


def check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_LEN:
        raise InvalidArgument(f"{what} must be {HASH_LEN} bytes, got {len(value)}")


def check_op(signed: common_pb2.Signed, space: bytes | None = None, now: int | None = None) -> group_dht_pb2.Op:
    """The checks that need nothing but the op: size, signature (before parsing), author,
    shape and time. Returns the parsed op or raises InvalidArgument / PermissionDenied."""
    if len(signed.body) > MAX_CHUNK_OP_BYTES:
        raise InvalidArgument(f"op is {len(signed.body)} bytes; the limit is {MAX_CHUNK_OP_BYTES}")
    verify_signed(signed, "op")
    try:
        op = group_dht_pb2.Op.FromString(signed.body)
    except DecodeError as exc:
        raise InvalidArgument("op body is not an Op") from exc
    if len(signed.body) > MAX_OP_BYTES and op.entry_type != file_chunks.ENTRY_TYPE:
        raise InvalidArgument(f"op is {len(signed.body)} bytes; the limit is {MAX_OP_BYTES}")
    if op.author != signed.author:
        raise PermissionDenied("op author is not the agent that signed it")
    if op.kind not in KINDS:
        raise InvalidArgument("op kind must be STORE_ENTRY, CREATE_LINK or DELETE_LINK")
    check_hash(op.space, "op space")
    if space is not None and op.space != space:
        raise InvalidArgument("op belongs to another space")
    now = now_micros() if now is None else now
    if op.timestamp <= 0:
        raise InvalidArgument("op timestamp must be positive")
    if op.timestamp > now + MAX_FUTURE_MICROS:
        raise InvalidArgument("op timestamp is more than 5 minutes in the future")
    if op.kind == group_dht_pb2.STORE_ENTRY:
        if not op.entry:
            raise InvalidArgument("STORE_ENTRY needs a non-empty entry")
        if not op.entry_type or len(op.entry_type) > MAX_ENTRY_TYPE_LEN:
            raise InvalidArgument(f"STORE_ENTRY needs an entry_type of 1 to {MAX_ENTRY_TYPE_LEN} characters")
    else:
        if op.entry or op.entry_type:
            raise InvalidArgument("a link op carries no entry or entry_type")
        check_hash(op.base, "link base")
        if op.kind == group_dht_pb2.CREATE_LINK:
            check_hash(op.target, "link target")
            if len(op.tag) > MAX_TAG_BYTES:
                raise InvalidArgument(f"link tag is longer than {MAX_TAG_BYTES} bytes")
        else:
            check_hash(op.link_address, "deleted link address")
    return op


def state_of(space_record: group_dht_pb2.Space) -> group_state.GroupState:
    """A group space's state as this node holds it: the properties' initial members, as
    changed by the updates it stored. Every read and write of the space asks for it, so
    it is kept per (space, update seq, update head): what a state follows from alone (the
    space is the hash of its properties, the head that of the last update)."""
    key = (space_record.space, space_record.update_seq, space_record.update_head)
    state = _STATES.get(key)
    if state is None:
        state = _state_of(space_record)
        if len(_STATES) >= MAX_KEPT_STATES:
            _STATES.popitem(last=False)
        _STATES[key] = state
    return state


MAX_KEPT_STATES = 1024
_STATES: "collections.OrderedDict[tuple, group_state.GroupState]" = collections.OrderedDict()


def _state_of(space_record: group_dht_pb2.Space) -> group_state.GroupState:
    initial = group_state.GroupState.initial(space_record.properties)
    if not space_record.update_seq:
        return initial
    return group_state.GroupState(initial.group_uuid, space_record.update_seq, space_record.update_head,
                                  tuple(space_record.members), tuple(space_record.admins), space_record.name)


def check_author_in_space(op: group_dht_pb2.Op, space_record: group_dht_pb2.Space) -> None:
    """The membrane: in a group space only its members (after the updates this node
    holds) may author ops."""
    if space_record.template == dna.GROUP_TEMPLATE and not state_of(space_record).is_member(op.author):
        raise PermissionDenied("op author is not a member of this group")


def _links_its_own_update(op: group_dht_pb2.Op, lookup) -> bool:
    """A link from the group's updates anchor to an update held here, by that update's
    author: stands even when the update made its author leave the group."""
    if op.kind != group_dht_pb2.CREATE_LINK or op.base != anchors.group_updates_anchor(op.space):
        return False
    target = lookup.entry_op(op.space, op.target)
    return target is not None and target.author == op.author and \
        group_dht_pb2.Op.FromString(target.body).entry_type == group_state.ENTRY_TYPE


def group_update_of(op: group_dht_pb2.Op) -> common_pb2.Signed | None:
    """The signed GroupUpdate a group_update entry carries (None for other ops)."""
    if op.kind != group_dht_pb2.STORE_ENTRY or op.entry_type != group_state.ENTRY_TYPE:
        return None
    try:
        return common_pb2.Signed.FromString(op.entry)
    except DecodeError as exc:
        raise InvalidArgument("a group_update entry is a Signed GroupUpdate") from exc


def _check_group_update(op: group_dht_pb2.Op, space_record: group_dht_pb2.Space, lookup) -> None:
    """A group update stands only on the state before it: the next seq, signed by an admin
    (or by the member leaving)."""
    signed = group_update_of(op)
    if signed.author != op.author:
        raise PermissionDenied("a group update is published by its own author")
    if lookup.entry_op(op.space, blake2b_256(op.entry)) is not None:
        return  # held already
    group_state.apply_update(state_of(space_record), signed)


def validate_op(signed: common_pb2.Signed, space_record: group_dht_pb2.Space | None, lookup, now: int | None = None,
                holder: bool = True):
    """Everything a holder checks before storing an op, given its record of the op's space
    (None when this node is not in it) and `lookup`, the ops it holds (`find_op(space, op_hash)`
    and `link_creates(space, base)` / `deleted_links(space, base)`). `holder`: this node
    holds the op's basis (a holder decides a delete only on the link it holds). Returns
    the parsed Op."""
    op = check_op(signed, space_record.space if space_record is not None else None, now)
    if space_record is None:
        raise FailedPrecondition("this node is not in the op's space")
    if not _links_its_own_update(op, lookup):
        check_author_in_space(op, space_record)
    if op.kind == group_dht_pb2.STORE_ENTRY:
        if space_record.template == dna.LOBBY_TEMPLATE and op.entry_type == AGENT_INFO:
            try:
                info = group_dht_pb2.AgentInfo.FromString(op.entry)
            except DecodeError as exc:
                raise InvalidArgument("agent_info entry is not an AgentInfo") from exc
            if info.agent != op.author:
                raise PermissionDenied("an agent_info may only be published by its own agent")
        elif space_record.template == dna.GROUP_TEMPLATE and op.entry_type == group_state.ENTRY_TYPE:
            _check_group_update(op, space_record, lookup)
        elif op.entry_type == file_chunks.ENTRY_TYPE:
            _check_file_chunk(op, space_record)
    elif op.kind == group_dht_pb2.CREATE_LINK:
        if op.tag.startswith(anchors.USERNAME_TAG):
            _check_username_claim(op, op_hash(signed), lookup, now_micros() if now is None else now)
    else:
        _check_may_delete(op, lookup, holder)
    return op


def _check_file_chunk(op: group_dht_pb2.Op, space_record: group_dht_pb2.Space) -> None:
    """A chunk of an encrypted file: in a group's space only, at most one chunk's ciphertext;
    its address is the hash of its bytes, as for any entry."""
    if space_record.template != dna.GROUP_TEMPLATE:
        raise PermissionDenied("file chunks are stored in a group's space only")
    if len(op.entry) > file_chunks.MAX_CHUNK_ENTRY_BYTES:
        raise InvalidArgument(f"a file chunk is at most {file_chunks.MAX_CHUNK_ENTRY_BYTES} bytes")


def _check_username_claim(op: group_dht_pb2.Op, hash_: bytes, lookup, now: int) -> None:
    """A claim hangs from its name's anchor, is fresh when first stored (so nobody can
    date a claim before the real first one), and the name is not someone else's yet."""
    name = op.tag[len(anchors.USERNAME_TAG):]
    try:
        if op.base != anchors.username_anchor(name.decode()):
            raise PermissionDenied("a username claim hangs from that username's anchor")
    except UnicodeDecodeError:
        raise InvalidArgument("a username claim's tag holds a UTF-8 username") from None
    if lookup.find_op(op.space, hash_) is None and op.timestamp < now - MAX_FUTURE_MICROS:
        raise PermissionDenied("a username claim is stored fresh: its timestamp is more than 5 minutes old")
    _check_username_unclaimed(op, lookup)


def _check_username_unclaimed(op: group_dht_pb2.Op, lookup) -> None:
    deleted = lookup.deleted_links(op.space, op.base)
    for address, signed in lookup.link_creates(op.space, op.base):
        if address in deleted or signed.author == op.author:
            continue
        claim = group_dht_pb2.Op.FromString(signed.body)
        if claim.tag.startswith(anchors.USERNAME_TAG):
            raise AlreadyExists("this username is already claimed by another agent")


def _check_may_delete(op: group_dht_pb2.Op, lookup, holder: bool = True) -> None:
    create = lookup.find_op(op.space, op.link_address)
    if create is None:
        if holder:
            raise FailedPrecondition("the link to delete is not held here, so who may delete it cannot be checked")
        return
    if create.kind != group_dht_pb2.CREATE_LINK or create.base != op.base:
        raise InvalidArgument("link_address is not a link under this base")
    inboxes = (anchors.inbox_anchor(op.author), anchors.invites_anchor(op.author))
    if create.author != op.author and op.base not in inboxes:
        raise PermissionDenied("only a link's author, or the agent whose inbox it is in, may delete it")
