"""A group's state (members, admins, name, pinned messages) and the rule for its updates, shared by every
DHT holder that validates them and every member's lobby that applies them.

State 0 comes from the clone's properties (whose hash is the DNA hash): the initial
members, the creator as the only admin. Each update is signed by its author and names
the state it follows (seq and prev), so every holder reaches the same state or refuses.
"""

import dataclasses
import functools

from kizuna.v1 import common_pb2
from kizuna_node.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied, parse
from kizuna_node.common.hashing import blake2b_256
from kizuna_node.common.keys import verify_signed

ENTRY_TYPE = "group_update"
MAX_MEMBERS = 100
MAX_NAME = 50
CHANGES = ("add", "remove", "rename", "leave", "pin", "unpin")
PIN_CHANGES = ("pin", "unpin")


@dataclasses.dataclass(frozen=True)
class GroupState:
    group_uuid: str
    seq: int
    head: bytes
    members: tuple[bytes, ...]
    admins: tuple[bytes, ...]
    name: str
    # The pinned messages' hashes, oldest pin first. A DHT holder does not follow them: a pin
    # or unpin stands on its author being a member, whatever is pinned.
    pinned: tuple[bytes, ...] = ()

    @classmethod
    def initial(cls, properties: common_pb2.GroupProperties) -> "GroupState":
        return cls(properties.group_uuid, 0, b"", tuple(properties.initial_members), (properties.creator,),
                   properties.name)

    @functools.cached_property
    def member_set(self) -> frozenset[bytes]:
        return frozenset(self.members)

    def is_member(self, agent: bytes) -> bool:
        return agent in self.member_set


def check_name(name: str) -> str:
    if not 1 <= len(name.strip()) <= MAX_NAME:
        raise InvalidArgument(f"a group name is 1 to {MAX_NAME} characters")
    return name.strip()


def apply_update(state: GroupState, signed: common_pb2.Signed) -> tuple[GroupState, common_pb2.GroupUpdate]:
    """The state after `signed` (a Signed GroupUpdate), or the reason it is refused."""
    body = verify_signed(signed, "group update")
    update = parse(common_pb2.GroupUpdate, body, "group update")
    author = signed.author
    if update.group_uuid != state.group_uuid:
        raise InvalidArgument("the group update is for another group")
    if update.seq != state.seq + 1 or update.prev != state.head:
        raise FailedPrecondition(
            f"the group update does not follow the known state (update {update.seq}, known {state.seq})")
    if author not in state.members:
        raise PermissionDenied("the group update's author is not a member")
    old, subjects = list(state.members), list(update.subjects)
    if update.message_hash and update.change not in PIN_CHANGES:
        raise InvalidArgument("only a pin or an unpin names a message")
    if update.change in PIN_CHANGES:
        if subjects or len(update.message_hash) != 32:
            raise InvalidArgument(f"a {update.change} names one message (its 32-byte hash) and no agents")
    elif update.change == "leave":
        if subjects != [author]:
            raise InvalidArgument("a leave names its author as its only subject")
    elif update.change in ("add", "remove", "rename"):
        if author not in state.admins:
            raise PermissionDenied(f"only an admin may {update.change} in this group")
        if update.change == "add":
            if not subjects or any(len(s) != 32 or s in old for s in subjects) or len(set(subjects)) != len(subjects):
                raise InvalidArgument("an add names new agents (32-byte keys, not yet members)")
        elif update.change == "remove":
            if not subjects or any(s not in old for s in subjects) or author in subjects:
                raise InvalidArgument("a remove names current members other than its author")
        elif subjects:
            raise InvalidArgument("a rename names no agents")
    else:
        raise InvalidArgument(f"a group update's change is one of {', '.join(CHANGES)}")
    members, admins, name = _after(state, update.change, subjects, author,
                                   check_name(update.name) if update.change == "rename" else None)
    if len(members) > MAX_MEMBERS:
        raise InvalidArgument(f"a group has at most {MAX_MEMBERS} members")
    if list(update.members) != members or list(update.admins) != admins or update.name != name:
        raise InvalidArgument("the group update's members, admins or name do not follow from its change")
    pinned = list(state.pinned)
    if update.change in PIN_CHANGES:
        pinned = [p for p in pinned if p != update.message_hash] + [update.message_hash] * (update.change == "pin")
    return GroupState(state.group_uuid, update.seq, blake2b_256(body), tuple(members), tuple(admins), name,
                      tuple(pinned)), update


def apply_chain(properties: common_pb2.GroupProperties, updates) -> GroupState:
    """The state after a chain of updates from the properties."""
    state = GroupState.initial(properties)
    for signed in updates:
        state, _ = apply_update(state, signed)
    return state


def _after(state: GroupState, change: str, subjects: list[bytes], author: bytes,
           name: str | None) -> tuple[list[bytes], list[bytes], str]:
    """Members, admins and name once a change is made (whether it may be made is
    `apply_update`'s to decide)."""
    members, admins = list(state.members), list(state.admins)
    if change == "add":
        members += [s for s in subjects if s not in members]
    elif change == "remove":
        members = [m for m in members if m not in subjects]
        admins = [a for a in admins if a not in subjects]
    elif change == "leave":
        members = [m for m in members if m != author]
        admins = [a for a in admins if a != author] or members[:1]
    return members, admins, name if change == "rename" and name is not None else state.name


def next_update(state: GroupState, change: str, subjects: list[bytes], author: bytes, timestamp: int,
                name: str | None = None, message_hash: bytes = b"") -> common_pb2.GroupUpdate:
    """The update an author would sign for a change; `apply_update` decides if it stands."""
    members, admins, new_name = _after(state, change, subjects, author, name)
    return common_pb2.GroupUpdate(
        group_uuid=state.group_uuid, seq=state.seq + 1, prev=state.head, change=change, subjects=subjects,
        members=members, admins=admins, name=new_name, timestamp=timestamp, message_hash=message_hash,
    )
