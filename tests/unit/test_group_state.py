"""The group update rule (services/common/group_state.py): who may change a group, and how
an update must name the state it follows and the state it makes."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kizuna.v1 import common_pb2
from kizuna_node.common import group_state
from kizuna_node.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from kizuna_node.common.group_state import GroupState, apply_chain, apply_update, next_update
from kizuna_node.common.hashing import blake2b_256

T = 1_700_000_000_000_000


class Agent:
    def __init__(self):
        self._key = Ed25519PrivateKey.generate()
        self.key = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(self, update: common_pb2.GroupUpdate) -> common_pb2.Signed:
        body = update.SerializeToString()
        return common_pb2.Signed(body=body, signature=self._key.sign(body), author=self.key)


@pytest.fixture
def agents():
    return {name: Agent() for name in ("alice", "bobby", "charlie", "dana", "erin")}


@pytest.fixture
def props(agents):
    members = [agents[n].key for n in ("alice", "bobby", "charlie")]
    return common_pb2.GroupProperties(group_uuid="g-1", name="Trip", creator=agents["alice"].key,
                                      initial_members=members, network_seed="seed")


@pytest.fixture
def state(props):
    return GroupState.initial(props)


def keys(agents, *names):
    return [agents[n].key for n in names]


def change(state, agents, author, kind, subjects=(), name=None):
    update = next_update(state, kind, keys(agents, *subjects), agents[author].key, T, name)
    return agents[author].sign(update)


# ---------------------------------------------------------------- state 0


def test_state_zero_is_the_initial_members_with_the_creator_as_only_admin(state, agents, props):
    assert state.seq == 0 and state.head == b""
    assert state.members == tuple(keys(agents, "alice", "bobby", "charlie"))
    assert state.admins == (agents["alice"].key,)
    assert state.name == "Trip" and state.group_uuid == "g-1"
    assert state.is_member(agents["bobby"].key) and not state.is_member(agents["dana"].key)


# ---------------------------------------------------------------- admins' changes


def test_admin_adds_a_member(state, agents):
    signed = change(state, agents, "alice", "add", ["dana"])
    new, update = apply_update(state, signed)
    assert new.members == tuple(keys(agents, "alice", "bobby", "charlie", "dana"))
    assert new.admins == (agents["alice"].key,)
    assert new.seq == 1 and new.head == blake2b_256(signed.body)
    assert update.change == "add" and list(update.subjects) == [agents["dana"].key]


def test_admin_removes_a_member_who_loses_admin_too(state, agents):
    new, _ = apply_update(state, change(state, agents, "alice", "remove", ["bobby"]))
    assert new.members == tuple(keys(agents, "alice", "charlie"))
    assert not new.is_member(agents["bobby"].key)


def test_admin_renames(state, agents):
    new, _ = apply_update(state, change(state, agents, "alice", "rename", name="Hike"))
    assert new.name == "Hike"
    assert new.members == state.members


def test_a_padded_name_must_be_stored_stripped(state, agents):
    update = next_update(state, "rename", [], agents["alice"].key, T, "  Hike  ")
    with pytest.raises(InvalidArgument):
        apply_update(state, agents["alice"].sign(update))  # the update must carry the name as it stands
    update.name = "Hike"
    new, _ = apply_update(state, agents["alice"].sign(update))
    assert new.name == "Hike"


@pytest.mark.parametrize("name", ["", "   ", "x" * 51])
def test_rename_to_a_name_outside_1_to_50_characters_is_invalid(state, agents, name):
    with pytest.raises(InvalidArgument):
        apply_update(state, change(state, agents, "alice", "rename", name=name))


def test_a_name_of_exactly_50_characters_stands(state, agents):
    new, _ = apply_update(state, change(state, agents, "alice", "rename", name="x" * 50))
    assert new.name == "x" * 50


# ---------------------------------------------------------------- non-admins


@pytest.mark.parametrize("kind, subjects, name", [
    ("add", ["dana"], None),
    ("remove", ["charlie"], None),
    ("rename", [], "Bobby's group"),
])
def test_a_non_admin_members_add_remove_or_rename_is_permission_denied(state, agents, kind, subjects, name):
    with pytest.raises(PermissionDenied, match="admin"):
        apply_update(state, change(state, agents, "bobby", kind, subjects, name))


def test_an_outsiders_update_is_permission_denied(state, agents):
    with pytest.raises(PermissionDenied, match="not a member"):
        apply_update(state, change(state, agents, "dana", "add", ["erin"]))


def test_a_removed_admin_can_no_longer_change_the_group(state, agents):
    s1, _ = apply_update(state, change(state, agents, "alice", "add", ["dana"]))
    s2, _ = apply_update(s1, change(s1, agents, "alice", "remove", ["bobby"]))
    with pytest.raises(PermissionDenied):
        apply_update(s2, change(s2, agents, "bobby", "add", ["erin"]))


# ---------------------------------------------------------------- leave


def test_a_member_leaves(state, agents):
    new, update = apply_update(state, change(state, agents, "bobby", "leave", ["bobby"]))
    assert new.members == tuple(keys(agents, "alice", "charlie"))
    assert new.admins == (agents["alice"].key,)
    assert list(update.subjects) == [agents["bobby"].key]


def test_the_last_admin_leaving_hands_admin_to_the_first_remaining_member(state, agents):
    new, _ = apply_update(state, change(state, agents, "alice", "leave", ["alice"]))
    assert new.members == tuple(keys(agents, "bobby", "charlie"))
    assert new.admins == (agents["bobby"].key,)


def test_a_leave_naming_someone_else_is_invalid(state, agents):
    update = next_update(state, "leave", keys(agents, "bobby"), agents["bobby"].key, T)
    update.subjects[:] = keys(agents, "charlie")
    with pytest.raises(InvalidArgument, match="leave"):
        apply_update(state, agents["bobby"].sign(update))


def test_a_non_member_cannot_leave(state, agents):
    with pytest.raises(PermissionDenied):
        apply_update(state, change(state, agents, "dana", "leave", ["dana"]))


# ---------------------------------------------------------------- the state it follows


def test_an_update_with_the_wrong_seq_is_failed_precondition(state, agents):
    update = next_update(state, "add", keys(agents, "dana"), agents["alice"].key, T)
    update.seq = 2
    with pytest.raises(FailedPrecondition):
        apply_update(state, agents["alice"].sign(update))


def test_an_update_with_the_wrong_prev_is_failed_precondition(state, agents):
    s1, _ = apply_update(state, change(state, agents, "alice", "add", ["dana"]))
    update = next_update(s1, "remove", keys(agents, "bobby"), agents["alice"].key, T)
    update.prev = blake2b_256(b"another history")
    with pytest.raises(FailedPrecondition):
        apply_update(s1, agents["alice"].sign(update))


def test_replaying_an_applied_update_is_failed_precondition(state, agents):
    signed = change(state, agents, "alice", "add", ["dana"])
    s1, _ = apply_update(state, signed)
    with pytest.raises(FailedPrecondition):
        apply_update(s1, signed)


def test_an_update_for_another_group_is_invalid(state, agents):
    update = next_update(state, "add", keys(agents, "dana"), agents["alice"].key, T)
    update.group_uuid = "g-2"
    with pytest.raises(InvalidArgument, match="another group"):
        apply_update(state, agents["alice"].sign(update))


# ---------------------------------------------------------------- what the update claims


@pytest.mark.parametrize("tamper", [
    "members_extra", "members_missing", "members_order", "admins_extra", "admins_missing", "name_changed",
])
def test_members_admins_or_name_inconsistent_with_an_add_are_invalid(state, agents, tamper):
    update = next_update(state, "add", keys(agents, "dana"), agents["alice"].key, T)
    if tamper == "members_extra":
        update.members.append(agents["erin"].key)
    elif tamper == "members_missing":
        del update.members[-1]
    elif tamper == "members_order":
        update.members[:] = list(reversed(update.members))
    elif tamper == "admins_extra":
        update.admins.append(agents["bobby"].key)
    elif tamper == "admins_missing":
        del update.admins[:]
    else:
        update.name = "Sneaky"
    with pytest.raises(InvalidArgument, match="do not follow"):
        apply_update(state, agents["alice"].sign(update))


def test_a_remove_that_keeps_the_removed_member_is_invalid(state, agents):
    update = next_update(state, "remove", keys(agents, "bobby"), agents["alice"].key, T)
    update.members.append(agents["bobby"].key)
    with pytest.raises(InvalidArgument):
        apply_update(state, agents["alice"].sign(update))


def test_a_leave_that_keeps_its_author_an_admin_is_invalid(state, agents):
    update = next_update(state, "leave", keys(agents, "alice"), agents["alice"].key, T)
    update.admins[:] = keys(agents, "alice")
    with pytest.raises(InvalidArgument):
        apply_update(state, agents["alice"].sign(update))


@pytest.mark.parametrize("kind, subjects", [
    ("add", []),                 # nobody
    ("add", ["bobby"]),          # already a member
    ("add", ["dana", "dana"]),   # twice
    ("remove", []),              # nobody
    ("remove", ["dana"]),        # not a member
    ("remove", ["alice"]),       # the author itself
    ("rename", ["bobby"]),       # a rename names no agents
])
def test_subjects_that_do_not_fit_the_change_are_invalid(state, agents, kind, subjects):
    update = next_update(state, kind, keys(agents, *subjects), agents["alice"].key, T, "Trip")
    with pytest.raises(InvalidArgument):
        apply_update(state, agents["alice"].sign(update))


def test_an_add_of_a_key_that_is_not_32_bytes_is_invalid(state, agents):
    update = next_update(state, "add", [b"short"], agents["alice"].key, T)
    with pytest.raises(InvalidArgument):
        apply_update(state, agents["alice"].sign(update))


def test_an_unknown_change_is_invalid(state, agents):
    update = next_update(state, "promote", keys(agents, "bobby"), agents["alice"].key, T)
    with pytest.raises(InvalidArgument, match="change"):
        apply_update(state, agents["alice"].sign(update))


def test_more_than_the_maximum_members_is_invalid(state, agents):
    extra = [Agent().key for _ in range(group_state.MAX_MEMBERS - len(state.members) + 1)]
    update = next_update(state, "add", extra, agents["alice"].key, T)
    with pytest.raises(InvalidArgument, match="at most"):
        apply_update(state, agents["alice"].sign(update))


def test_exactly_the_maximum_members_stands(state, agents):
    extra = [Agent().key for _ in range(group_state.MAX_MEMBERS - len(state.members))]
    new, _ = apply_update(state, agents["alice"].sign(next_update(state, "add", extra, agents["alice"].key, T)))
    assert len(new.members) == group_state.MAX_MEMBERS


# ---------------------------------------------------------------- signatures


def test_a_forged_signature_is_permission_denied(state, agents):
    update = next_update(state, "add", keys(agents, "dana"), agents["alice"].key, T)
    forged = agents["bobby"].sign(update)
    forged.author = agents["alice"].key  # claims alice, signed by bobby
    with pytest.raises(PermissionDenied, match="signature"):
        apply_update(state, forged)


def test_a_body_changed_after_signing_is_permission_denied(state, agents):
    signed = change(state, agents, "alice", "add", ["dana"])
    update = common_pb2.GroupUpdate.FromString(signed.body)
    update.subjects[:] = keys(agents, "erin")
    update.members[-1] = agents["erin"].key
    signed.body = update.SerializeToString()
    with pytest.raises(PermissionDenied):
        apply_update(state, signed)


def test_a_body_that_does_not_parse_is_invalid(state, agents):
    body = b"\xff\xff not a group update"
    signed = common_pb2.Signed(body=body, signature=agents["alice"]._key.sign(body), author=agents["alice"].key)
    with pytest.raises(InvalidArgument, match="parse"):
        apply_update(state, signed)


# ---------------------------------------------------------------- chains


def test_apply_chain_reaches_the_state_of_its_updates_in_order(props, agents):
    s0 = GroupState.initial(props)
    u1 = change(s0, agents, "alice", "add", ["dana"])
    s1, _ = apply_update(s0, u1)
    u2 = change(s1, agents, "alice", "rename", name="Hike")
    s2, _ = apply_update(s1, u2)
    u3 = change(s2, agents, "alice", "remove", ["bobby"])
    s3, _ = apply_update(s2, u3)
    u4 = change(s3, agents, "charlie", "leave", ["charlie"])
    s4, _ = apply_update(s3, u4)
    assert apply_chain(props, []) == s0
    assert apply_chain(props, [u1, u2, u3, u4]) == s4
    assert s4.members == tuple(keys(agents, "alice", "dana"))
    assert s4.name == "Hike" and s4.seq == 4 and s4.head == blake2b_256(u4.body)


def test_apply_chain_refuses_a_chain_out_of_order_or_with_a_gap(props, agents):
    s0 = GroupState.initial(props)
    u1 = change(s0, agents, "alice", "add", ["dana"])
    s1, _ = apply_update(s0, u1)
    u2 = change(s1, agents, "alice", "remove", ["bobby"])
    with pytest.raises(FailedPrecondition):
        apply_chain(props, [u2, u1])
    with pytest.raises(FailedPrecondition):
        apply_chain(props, [u2])


def test_apply_chain_refuses_a_non_admins_update_anywhere_in_it(props, agents):
    s0 = GroupState.initial(props)
    u1 = change(s0, agents, "alice", "add", ["dana"])
    s1, _ = apply_update(s0, u1)
    bad = change(s1, agents, "dana", "remove", ["bobby"])
    with pytest.raises(PermissionDenied):
        apply_chain(props, [u1, bad])


def test_two_forks_from_the_same_state_cannot_both_stand(state, agents):
    a = change(state, agents, "alice", "add", ["dana"])
    b = change(state, agents, "alice", "add", ["erin"])
    s1, _ = apply_update(state, a)
    with pytest.raises(FailedPrecondition):
        apply_update(s1, b)
