"""The conductor's domain on a temporary LevelDB, with a fake DHT join."""

import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kizuna.v1 import common_pb2
from kizuna_node.common import dna
from kizuna_node.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from kizuna_node.conductor.conductor import Conductor
from kizuna_node.conductor.ports import Spaces
from kizuna_node.conductor.store import ConductorStore
from tests.helpers import run


class FakeDht(Spaces):
    """The node's DHT as `Spaces`: records the spaces it joined; refuses a join with
    `refuse` when set; takes every leave."""

    def __init__(self):
        self.joined: list[tuple[bytes, bytes, str]] = []
        self.refuse: Exception | None = None

    async def join_space(self, space, agent, template, properties, updates=(), claim=None):
        if self.refuse is not None:
            raise self.refuse
        self.joined.append((space, agent, template))

    async def leave_space(self, space, agent):
        pass


@pytest.fixture
def make_conductor(tmp_path):
    """A factory of Conductors on one LevelDB directory; calling it again after close()
    reopens the same data."""
    opened: list[ConductorStore] = []

    def make(dht: FakeDht | None = None) -> tuple[Conductor, ConductorStore, FakeDht]:
        dht = dht or FakeDht()
        store = ConductorStore(str(tmp_path / "conductor"))
        opened.append(store)
        return Conductor(store, dht.join_space), store, dht

    yield make
    for store in opened:
        store.close()


def group_properties(creator: bytes, *others: bytes, name: str = "friends", group_uuid: str | None = None):
    return common_pb2.GroupProperties(
        group_uuid=group_uuid or str(uuid.uuid4()),
        name=name,
        creator=creator,
        initial_members=[creator, *others],
        network_seed="test",
    )


def verifies(public_key: bytes, signature: bytes, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except Exception:
        return False
    return True


def test_create_agent_gives_32_byte_keys_a_token_and_a_lobby_cell(make_conductor):
    conductor, _, _ = make_conductor()
    agent, token, lobby_cell = conductor.create_agent("alice")
    assert len(agent.agent) == 32
    assert len(agent.encryption_key) == 32
    assert agent.name == "alice"
    assert token
    assert lobby_cell.dna_hash == dna.LOBBY_DNA_HASH
    assert lobby_cell.template == dna.LOBBY_TEMPLATE
    assert [a.agent for a in conductor.list_agents()] == [agent.agent]


def test_create_agent_refuses_an_overlong_name(make_conductor):
    conductor, _, _ = make_conductor()
    with pytest.raises(InvalidArgument):
        conductor.create_agent("x" * 1000)
    assert conductor.list_agents() == []


def test_resolve_token_names_the_agent_it_was_issued_for(make_conductor):
    conductor, _, _ = make_conductor()
    alice, alice_token, _ = conductor.create_agent("alice")
    bobby, bobby_token, _ = conductor.create_agent("bobby")
    assert conductor.resolve_token(alice_token).agent == alice.agent
    assert conductor.resolve_token(bobby_token).agent == bobby.agent


@pytest.mark.parametrize("token", ["", "not-a-token"])
def test_resolve_token_refuses_unknown_or_missing_token(make_conductor, token):
    conductor, _, _ = make_conductor()
    conductor.create_agent("alice")
    with pytest.raises(Unauthenticated):
        conductor.resolve_token(token)


def test_sign_gives_a_signature_that_verifies_with_the_agent_key(make_conductor):
    conductor, _, _ = make_conductor()
    agent, _, _ = conductor.create_agent("alice")
    signature = conductor.sign(agent.agent, b"hello")
    assert verifies(agent.agent, signature, b"hello")
    assert not verifies(agent.agent, signature, b"hellO")


def test_sign_refuses_unknown_and_malformed_agents(make_conductor):
    conductor, _, _ = make_conductor()
    with pytest.raises(NotFound):
        conductor.sign(b"\x01" * 32, b"data")
    with pytest.raises(InvalidArgument):
        conductor.sign(b"short", b"data")


def test_clone_dna_gives_the_group_dna_hash_and_registers_a_clone_cell(make_conductor):
    conductor, _, dht = make_conductor()
    alice, _, _ = conductor.create_agent("alice")
    bobby, _, _ = conductor.create_agent("bobby")
    properties = group_properties(alice.agent, bobby.agent)

    cell = run(conductor.clone_dna(alice.agent, dna.GROUP_TEMPLATE, properties))

    assert cell.dna_hash == dna.group_dna_hash(properties)
    assert cell.template == dna.GROUP_TEMPLATE
    assert cell.properties == properties
    assert dht.joined == [(cell.dna_hash, alice.agent, dna.GROUP_TEMPLATE)]
    cells = {c.dna_hash: c for c in conductor.list_cells(alice.agent)}
    assert set(cells) == {dna.LOBBY_DNA_HASH, cell.dna_hash}
    assert cells[cell.dna_hash].properties == properties


def test_clone_dna_twice_returns_the_same_cell(make_conductor):
    conductor, _, _ = make_conductor()
    alice, _, _ = conductor.create_agent("alice")
    properties = group_properties(alice.agent)
    first = run(conductor.clone_dna(alice.agent, dna.GROUP_TEMPLATE, properties))
    second = run(conductor.clone_dna(alice.agent, dna.GROUP_TEMPLATE, properties))
    assert first == second
    assert len(conductor.list_cells(alice.agent)) == 2


def test_two_groups_with_different_properties_get_different_dna_hashes(make_conductor):
    conductor, _, _ = make_conductor()
    alice, _, _ = conductor.create_agent("alice")
    bobby, _, _ = conductor.create_agent("bobby")
    one = run(conductor.clone_dna(alice.agent, "group", group_properties(alice.agent, bobby.agent)))
    two = run(conductor.clone_dna(alice.agent, "group", group_properties(alice.agent, bobby.agent)))
    assert one.dna_hash != two.dna_hash
    assert len(conductor.list_cells(alice.agent)) == 3


def test_clone_dna_when_the_dht_refuses_is_failed_precondition_and_registers_nothing(make_conductor):
    conductor, _, dht = make_conductor()
    alice, _, _ = conductor.create_agent("alice")
    dht.refuse = Unavailable("dht is down")
    with pytest.raises(FailedPrecondition, match="dht is down"):
        run(conductor.clone_dna(alice.agent, "group", group_properties(alice.agent)))
    assert [c.template for c in conductor.list_cells(alice.agent)] == [dna.LOBBY_TEMPLATE]


def test_clone_dna_refuses_an_agent_that_is_not_a_member(make_conductor):
    conductor, _, dht = make_conductor()
    alice, _, _ = conductor.create_agent("alice")
    bobby, _, _ = conductor.create_agent("bobby")
    with pytest.raises(FailedPrecondition, match="not a member"):
        run(conductor.clone_dna(bobby.agent, "group", group_properties(alice.agent)))
    assert dht.joined == []
    assert len(conductor.list_cells(bobby.agent)) == 1


@pytest.mark.parametrize("template", ["lobby", "", "Group"])
def test_clone_dna_refuses_any_template_but_group(make_conductor, template):
    conductor, _, dht = make_conductor()
    alice, _, _ = conductor.create_agent("alice")
    with pytest.raises(InvalidArgument, match="template"):
        run(conductor.clone_dna(alice.agent, template, group_properties(alice.agent)))
    assert dht.joined == []


def test_clone_dna_refuses_properties_without_the_creator_among_members(make_conductor):
    conductor, _, dht = make_conductor()
    alice, _, _ = conductor.create_agent("alice")
    bobby, _, _ = conductor.create_agent("bobby")
    properties = common_pb2.GroupProperties(
        group_uuid="g", name="n", creator=bobby.agent, initial_members=[alice.agent]
    )
    with pytest.raises(InvalidArgument):
        run(conductor.clone_dna(alice.agent, "group", properties))
    assert dht.joined == []


def test_clone_dna_refuses_an_unknown_agent(make_conductor):
    conductor, _, _ = make_conductor()
    stranger = b"\x07" * 32
    with pytest.raises(NotFound):
        run(conductor.clone_dna(stranger, "group", group_properties(stranger)))


def test_agents_cells_tokens_and_keys_survive_reopening_the_store(make_conductor):
    conductor, store, _ = make_conductor()
    alice, token, _ = conductor.create_agent("alice")
    properties = group_properties(alice.agent)
    cell = run(conductor.clone_dna(alice.agent, "group", properties))
    store.close()

    reopened, _, _ = make_conductor()
    assert [a.agent for a in reopened.list_agents()] == [alice.agent]
    assert reopened.resolve_token(token) == alice
    assert {c.dna_hash for c in reopened.list_cells(alice.agent)} == {dna.LOBBY_DNA_HASH, cell.dna_hash}
    signature = reopened.sign(alice.agent, b"after reopening")
    assert verifies(alice.agent, signature, b"after reopening")


def test_decrypt_opens_a_box_sealed_to_the_agent_and_refuses_a_tampered_one(make_conductor):
    from kizuna_node.common.errors import PermissionDenied as Denied
    from kizuna_node.common.sealing import seal, sealed_aad

    conductor, _, _ = make_conductor()
    agent, _, _ = conductor.create_agent("bobby")
    aad = sealed_aad("message", b"s" * 32, agent.agent)
    sealed = seal(agent.agent, agent.encryption_key, b"for bobby only", aad)
    assert b"for bobby only" not in sealed.SerializeToString()
    assert conductor.decrypt(agent.agent, sealed, aad) == b"for bobby only"
    with pytest.raises(Denied):
        conductor.decrypt(agent.agent, sealed, sealed_aad("invite", b"s" * 32, agent.agent))
    tampered = type(sealed).FromString(sealed.SerializeToString())
    tampered.ciphertext = bytes([tampered.ciphertext[0] ^ 1]) + tampered.ciphertext[1:]
    with pytest.raises(Denied):
        conductor.decrypt(agent.agent, tampered, aad)
    other, _, _ = conductor.create_agent("charlie")
    with pytest.raises(InvalidArgument):
        conductor.decrypt(other.agent, sealed, aad)


def test_sign_batch_signs_each_item_in_order_and_refuses_too_many(make_conductor):
    conductor, _, _ = make_conductor()
    alice, _, _ = conductor.create_agent("alice")
    items = [b"first", b"second", b"third"]
    signatures = conductor.sign_batch(alice.agent, items)
    public = Ed25519PublicKey.from_public_bytes(alice.agent)
    for item, signature in zip(items, signatures, strict=True):
        public.verify(signature, item)
    with pytest.raises(InvalidArgument, match="at most"):
        conductor.sign_batch(alice.agent, [b"x"] * 1001)


def test_decrypt_batch_opens_each_box_and_says_why_one_does_not(make_conductor):
    from kizuna.v1 import conductor_pb2
    from kizuna_node.common.sealing import seal, sealed_aad

    conductor, _, _ = make_conductor()
    bobby, _, _ = conductor.create_agent("bobby")
    aad = sealed_aad("message", b"s" * 32, bobby.agent)
    items = [conductor_pb2.DecryptItem(sealed=seal(bobby.agent, bobby.encryption_key, text, aad), aad=aad)
             for text in (b"one", b"two")]
    items.append(conductor_pb2.DecryptItem(sealed=items[0].sealed, aad=b"another box's aad"))
    results = conductor.decrypt_batch(bobby.agent, items)
    assert [p for p, _ in results[:2]] == [b"one", b"two"]
    assert results[2][0] == b"" and "does not open" in results[2][1]
