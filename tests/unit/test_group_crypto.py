"""The keystore's end-to-end encryption (kizuna_node.conductor.e2e) on temporary LevelDBs:
two nodes' conductors, each with its own store, exchanging what their lobbies would carry."""

import pytest

from kizuna.v1 import common_pb2, conductor_pb2
from kizuna_node.common.errors import InvalidArgument, NotFound, PermissionDenied
from kizuna_node.conductor.conductor import Conductor
from kizuna_node.conductor.store import ConductorStore


async def _no_join(*_):
    return None


@pytest.fixture
def nodes(tmp_path):
    """{name: (Conductor, its agent)}: each on its own store; reopen(name) opens it again."""
    made, stores = {}, []

    def open_node(name, **rotation):
        store = ConductorStore(str(tmp_path / name))
        stores.append(store)
        return Conductor(store, _no_join, **rotation)

    def make(*names, **rotation):
        for name in names:
            conductor = open_node(name, **rotation)
            agent, _, _ = conductor.create_agent(name)
            made[name] = (conductor, agent)
        return made

    def reopen(name, **rotation):
        conductor, agent = made[name]
        conductor._store.close()
        made[name] = (open_node(name, **rotation), agent)
        return made[name]

    make.reopen = reopen
    yield make
    for store in stores:
        store.close()


def holder(agent) -> conductor_pb2.KeyHolder:
    return conductor_pb2.KeyHolder(agent=agent.agent, olm_identity_key=agent.olm_identity_key,
                                   olm_fallback_key=agent.olm_fallback_key)


def decrypt(conductor, agent, sender, group, encrypted):
    [result] = conductor.decrypt_group_messages([conductor_pb2.GroupCiphertext(
        agent=agent.agent, group_uuid=group, sender=sender.agent, encrypted=encrypted)])
    return result


def deliver(made, shares):
    """Each key share to its receiver's conductor, as ReceiveGroupKeys would."""
    by_key = {agent.agent: (conductor, agent) for conductor, agent in made.values()}
    for share in shares:
        conductor, agent = by_key[common_pb2.KeyShare.FromString(share.body).receiver]
        assert [r.error for r in conductor.import_group_keys(agent.agent, [share])] == [""]


def test_a_message_is_encrypted_once_and_each_receiver_decrypts_it_with_its_shared_key(nodes):
    made = nodes("alice", "bobby", "charlie")
    (alice_c, alice), (bobby_c, bobby), (charlie_c, charlie) = made.values()
    encrypted, shares, rotated = alice_c.encrypt_group_message(alice.agent, "g", b"hello", [holder(bobby), holder(charlie)])
    assert rotated and len(shares) == 2 and b"hello" not in encrypted.ciphertext
    assert all(b"hello" not in share.body for share in shares)
    deliver(made, shares)
    assert decrypt(bobby_c, bobby, alice, "g", encrypted)[:2] == (b"hello", "")
    assert decrypt(charlie_c, charlie, alice, "g", encrypted)[:2] == (b"hello", "")
    # the next message: the same session, no share made again
    again, shares, rotated = alice_c.encrypt_group_message(alice.agent, "g", b"again", [holder(bobby), holder(charlie)])
    assert not rotated and shares == [] and again.session_id == encrypted.session_id
    assert decrypt(charlie_c, charlie, alice, "g", again)[0] == b"again"


def test_removing_a_member_rotates_and_the_removed_member_cannot_read_on(nodes):
    made = nodes("alice", "bobby", "charlie")
    (alice_c, alice), (bobby_c, bobby), (charlie_c, charlie) = made.values()
    first, shares, _ = alice_c.encrypt_group_message(alice.agent, "g", b"all of us", [holder(bobby), holder(charlie)])
    deliver(made, shares)
    later, shares, rotated = alice_c.encrypt_group_message(alice.agent, "g", b"without bobby", [holder(charlie)])
    assert rotated and later.session_id != first.session_id
    deliver(made, shares)
    assert decrypt(charlie_c, charlie, alice, "g", later)[0] == b"without bobby"
    plaintext, error, missing = decrypt(bobby_c, bobby, alice, "g", later)
    assert (plaintext, missing) == (b"", True) and error
    with pytest.raises(PermissionDenied):
        alice_c.share_group_key(alice.agent, "g", later.session_id, holder(bobby))
    # what bobby was meant for stays his to ask for
    alice_c.share_group_key(alice.agent, "g", first.session_id, holder(bobby))


def test_a_member_added_later_reads_from_its_first_message_on_not_before(nodes):
    made = nodes("alice", "bobby", "dave")
    (alice_c, alice), (bobby_c, bobby), (dave_c, dave) = made.values()
    before, shares, _ = alice_c.encrypt_group_message(alice.agent, "g", b"before dave", [holder(bobby)])
    deliver(made, shares)
    after, shares, rotated = alice_c.encrypt_group_message(alice.agent, "g", b"with dave", [holder(bobby), holder(dave)])
    assert not rotated and len(shares) == 1  # only dave needs the key, from this message on
    deliver(made, shares)
    assert decrypt(dave_c, dave, alice, "g", after)[0] == b"with dave"
    assert decrypt(dave_c, dave, alice, "g", before)[2] is True  # the earlier index: not his


def test_a_session_rotates_after_its_message_limit_and_its_age(nodes):
    made = nodes("alice", "bobby", rotation_messages=3, rotation_seconds=3600)
    (alice_c, alice), (_, bobby) = made.values()
    ids = [alice_c.encrypt_group_message(alice.agent, "g", b"m", [holder(bobby)])[0].session_id for _ in range(4)]
    assert len(set(ids[:3])) == 1 and ids[3] != ids[0]
    alice_c.crypto.rotation_seconds = 0.0
    assert alice_c.encrypt_group_message(alice.agent, "g", b"m", [holder(bobby)])[2]  # too old: rotated


def test_sessions_survive_reopening_the_store(nodes):
    made = nodes("alice", "bobby")
    (alice_c, alice), (bobby_c, bobby) = made.values()
    first, shares, _ = alice_c.encrypt_group_message(alice.agent, "g", b"one", [holder(bobby)])
    deliver(made, shares)
    alice_c, _ = nodes.reopen("alice")
    bobby_c, _ = nodes.reopen("bobby")
    second, shares, rotated = alice_c.encrypt_group_message(alice.agent, "g", b"two", [holder(bobby)])
    assert (second.session_id, shares, rotated) == (first.session_id, [], False)
    assert decrypt(bobby_c, bobby, alice, "g", second)[0] == b"two"
    assert [s.message_index for s in alice_c.list_group_sessions(alice.agent) if s.outbound] == [2]
    assert alice_c.list_agents()[0].olm_identity_key == alice.olm_identity_key  # the same Olm account


def test_a_share_is_refused_when_forged_tampered_or_for_someone_else_and_taken_once(nodes):
    made = nodes("alice", "bobby", "mallory")
    (alice_c, alice), (bobby_c, bobby), (mallory_c, mallory) = made.values()
    _, [share], _ = alice_c.encrypt_group_message(alice.agent, "g", b"x", [holder(bobby)])
    forged = common_pb2.Signed(body=share.body, signature=mallory_c.sign(mallory.agent, share.body), author=alice.agent)
    tampered = common_pb2.KeyShare.FromString(share.body)
    tampered.olm_ciphertext = tampered.olm_ciphertext[:-1] + bytes([tampered.olm_ciphertext[-1] ^ 1])
    body = tampered.SerializeToString()
    resigned = common_pb2.Signed(body=body, signature=alice_c.sign(alice.agent, body), author=alice.agent)
    errors = [r.error for r in bobby_c.import_group_keys(bobby.agent, [forged, resigned])]
    assert all(errors), errors
    assert mallory_c.import_group_keys(mallory.agent, [share])[0].error == "the key share is for another agent"
    assert [r.error for r in bobby_c.import_group_keys(bobby.agent, [share, share])] == ["", ""]  # a second copy: held


def test_bad_requests_are_refused_with_a_reason(nodes):
    made = nodes("alice")
    (alice_c, alice), = made.values()
    with pytest.raises(InvalidArgument):
        alice_c.encrypt_group_message(alice.agent, "", b"x", [])
    with pytest.raises(InvalidArgument):
        alice_c.encrypt_group_message(alice.agent, "g", b"x", [conductor_pb2.KeyHolder(agent=b"short")])
    with pytest.raises(NotFound):
        alice_c.share_group_key(alice.agent, "g", "no such session", conductor_pb2.KeyHolder(agent=alice.agent))
    garbage = common_pb2.EncryptedPayload(session_id="none", ciphertext=b"garbage")
    assert decrypt(alice_c, alice, alice, "g", garbage)[2] is True  # no such session: missing, not an error
