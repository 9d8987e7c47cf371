"""The conductor's domain: the keystore (the only holder of private keys), agents' cells,
app tokens, and cloning the `group` template into a DNA of its own for each group."""

import hashlib
import logging
import secrets

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from kizuna.v1 import common_pb2, conductor_pb2
from kizuna_node.common import ids, dna, group_state, space_claims
from kizuna_node.common.errors import FailedPrecondition, InvalidArgument, KizunaError, NotFound, Unauthenticated
from kizuna_node.common.hashing import blake2b_256, now_micros
from kizuna_node.common.keys import MAX_BATCH, MAX_SIGN_BYTES, check_agent_key
from kizuna_node.common.sealing import open_sealed
from kizuna_node.conductor.e2e import GroupCrypto
from kizuna_node.conductor.store import ConductorStore

log = logging.getLogger("kizuna.conductor")

MAX_NAME_LEN = 64


def _raw(key) -> bytes:
    if hasattr(key, "private_bytes"):
        return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def token_id(app_token: str) -> str:
    """How a token is named when it is listed or revoked: a short hash, never the token."""
    return blake2b_256(app_token.encode())[:8].hex()


class Conductor:
    """`join_space(space, agent, template, properties, updates, claim)` and `leave_space(space,
    agent)` are the node's DHT joining and leaving a space; they raise KizunaError when the
    DHT refuses or cannot be reached. `dht_node_id()` is the id of the node's DHT, which a
    group join's claim names (without it, joins carry no claim)."""

    def __init__(self, store: ConductorStore, join_space, leave_space=None, dht_node_id=None, **rotation):
        self._store = store
        self._join_space = join_space
        self._leave_space = leave_space
        self._dht_node_id = dht_node_id
        self._key_cache: dict[bytes, tuple] = {}
        self._pickle_keys: dict[bytes, bytes] = {}
        self.crypto = GroupCrypto(store, self._pickle_key, lambda agent, data: self._keys(agent)[0].sign(data),
                                  **rotation)

    def _pickle_key(self, agent: bytes) -> bytes:
        """What the agent's vodozemac pickles are encrypted with: derived from its secret."""
        key = self._pickle_keys.get(agent)
        if key is None:
            key = self._pickle_keys[agent] = hashlib.blake2b(self._store.get_secret(agent), digest_size=32,
                                                             person=b"kizuna pickles").digest()
        return key

    def _with_olm_keys(self, agent: conductor_pb2.Agent) -> conductor_pb2.Agent:
        """The agent with its Olm identity and fallback keys (its account made on first use)."""
        agent.olm_identity_key, agent.olm_fallback_key = self.crypto.olm_keys(agent.agent)
        return agent

    def create_agent(self, name: str) -> tuple[conductor_pb2.Agent, str, conductor_pb2.Cell]:
        if len(name) > MAX_NAME_LEN:
            raise InvalidArgument(f"name is longer than {MAX_NAME_LEN} characters")
        signing = Ed25519PrivateKey.generate()
        encryption = X25519PrivateKey.generate()
        agent = conductor_pb2.Agent(
            agent=_raw(signing.public_key()),
            encryption_key=_raw(encryption.public_key()),
            name=name,
            created=now_micros(),
        )
        app_token, token = self._new_token(agent.agent)
        lobby_cell = conductor_pb2.Cell(
            agent=agent.agent, dna_hash=dna.LOBBY_DNA_HASH, template=dna.LOBBY_TEMPLATE, created=agent.created
        )
        self._store.put_agent(agent, _raw(signing) + _raw(encryption), app_token, token, lobby_cell)
        log.info("created agent %s", ids.agent(agent.agent))
        return self._with_olm_keys(agent), app_token, lobby_cell

    def list_agents(self) -> list[conductor_pb2.Agent]:
        return [self._with_olm_keys(agent) for agent in self._store.list_agents()]

    def _keys(self, agent: bytes) -> tuple[Ed25519PrivateKey, X25519PrivateKey]:
        """The agent's key objects, loaded from the store once."""
        keys = self._key_cache.get(agent)
        if keys is None:
            secret = self._store.get_secret(agent)
            keys = (Ed25519PrivateKey.from_private_bytes(secret[:32]), X25519PrivateKey.from_private_bytes(secret[32:]))
            self._key_cache[agent] = keys
        return keys

    def _require_agent(self, agent: bytes) -> conductor_pb2.Agent:
        check_agent_key(agent)
        found = self._store.get_agent(agent)
        if found is None:
            raise NotFound("no such agent on this node")
        return found

    async def clone_dna(self, agent: bytes, template: str, properties: common_pb2.GroupProperties,
                        updates=()) -> conductor_pb2.Cell:
        """Registers the agent's clone cell once the node's DHT has joined the clone's space;
        when the DHT refuses, nothing is registered and the error says why."""
        self._require_agent(agent)
        if template != dna.GROUP_TEMPLATE:
            raise InvalidArgument(f"only the '{dna.GROUP_TEMPLATE}' template can be cloned, not '{template}'")
        dna.check_group_properties(properties)
        if not group_state.apply_chain(properties, updates).is_member(agent):
            raise FailedPrecondition("the agent is not a member of the group")
        dna_hash = dna.group_dna_hash(properties)
        existing = self._store.get_cell(agent, dna_hash)
        try:
            await self._join_space(dna_hash, agent, template, properties, list(updates),
                                   await self._space_claim(agent, dna_hash))
        except KizunaError as exc:
            log.warning("clone of %s refused: DHT did not join the space: %s", dna_hash.hex()[:16], exc.message)
            raise FailedPrecondition(f"clone failed: the node's DHT did not join the group's space: {exc.message}") from exc
        if existing is not None:
            return existing
        cell = conductor_pb2.Cell(
            agent=agent, dna_hash=dna_hash, template=template, properties=properties, created=now_micros()
        )
        self._store.put_cell(cell)
        log.info("cloned group DNA %s for agent %s", dna_hash.hex()[:16], ids.agent(agent))
        return cell

    async def _space_claim(self, agent: bytes, space: bytes):
        """The agent's claim that the node's DHT holds the space for it."""
        if self._dht_node_id is None:
            return None
        return space_claims.make_claim(self._keys(agent)[0].sign, agent, await self._dht_node_id(), space)

    async def delete_clone_cell(self, agent: bytes, dna_hash: bytes) -> None:
        """The node's DHT leaves the clone's space for the agent (the node stays in it while
        another agent it hosts is a member), then the cell is deleted."""
        self._require_agent(agent)
        if len(dna_hash) != 32:
            raise InvalidArgument("dna_hash must be 32 bytes")
        cell = self._store.get_cell(agent, dna_hash)
        if cell is None or cell.template != dna.GROUP_TEMPLATE:
            raise NotFound("the agent has no clone cell of that DNA")
        if self._leave_space is not None:
            await self._leave_space(dna_hash, agent)
        self._store.delete_cell(agent, dna_hash)
        log.info("deleted clone cell %s of agent %s", dna_hash.hex()[:16], ids.agent(agent))

    def list_cells(self, agent: bytes) -> list[conductor_pb2.Cell]:
        self._require_agent(agent)
        return self._store.list_cells(agent)

    def sign(self, agent: bytes, data: bytes, app_token: str = "") -> bytes:
        """`app_token`, when given, must name `agent` (see `_check_token`)."""
        self._require_agent(agent)
        if len(data) > MAX_SIGN_BYTES:
            raise InvalidArgument(f"data to sign is larger than {MAX_SIGN_BYTES} bytes")
        self._check_token(agent, app_token)
        return self._keys(agent)[0].sign(data)

    def _check_token(self, agent: bytes, app_token: str) -> None:
        """A lobby signing for an app passes the app's token: nothing is signed unless it is
        live and names the agent."""
        if app_token and self.resolve_token(app_token).agent != agent:
            raise Unauthenticated("the app token names another agent")

    def sign_batch(self, agent: bytes, items: list[bytes], app_token: str = "") -> list[bytes]:
        self._require_agent(agent)
        self._check_token(agent, app_token)
        if len(items) > MAX_BATCH:
            raise InvalidArgument(f"at most {MAX_BATCH} items are signed at once")
        if sum(len(i) for i in items) > MAX_SIGN_BYTES:
            raise InvalidArgument(f"the items to sign are larger than {MAX_SIGN_BYTES} bytes together")
        key = self._keys(agent)[0]
        return [key.sign(item) for item in items]

    def decrypt(self, agent: bytes, sealed: common_pb2.SealedBox, aad: bytes) -> bytes:
        """Opens a box sealed to the agent's X25519 key."""
        self._require_agent(agent)
        if sealed.receiver != agent:
            raise InvalidArgument("the sealed box is addressed to another agent")
        if len(sealed.ciphertext) > MAX_SIGN_BYTES:
            raise InvalidArgument(f"a sealed box is at most {MAX_SIGN_BYTES} bytes")
        return open_sealed(self._keys(agent)[1], sealed, aad)

    @staticmethod
    def _new_token(agent: bytes) -> tuple[str, conductor_pb2.AppToken]:
        app_token = secrets.token_urlsafe(32)
        return app_token, conductor_pb2.AppToken(token_id=token_id(app_token), agent=agent, created=now_micros())

    def issue_app_token(self, agent: bytes) -> tuple[str, conductor_pb2.AppToken]:
        self._require_agent(agent)
        app_token, token = self._new_token(agent)
        self._store.put_token(app_token, token)
        return app_token, token

    def list_app_tokens(self, agent: bytes = b"") -> list[conductor_pb2.AppToken]:
        if agent:
            check_agent_key(agent)
        return [t for t in self._store.list_tokens() if not agent or t.agent == agent]

    def revoke_app_token(self, token_id_: str) -> conductor_pb2.AppToken:
        """A revoked token authenticates nothing from then on."""
        if not token_id_:
            raise InvalidArgument("token_id is required")
        token = self._store.revoke_token(token_id_)
        if token is None:
            raise NotFound(f"no app token {token_id_}")
        log.info("revoked app token %s of agent %s", token_id_, ids.agent(token.agent))
        return token

    def decrypt_batch(self, agent: bytes, items) -> list[tuple[bytes, str]]:
        """(plaintext, "") for each item that opens, (b"", why) for each that does not."""
        self._require_agent(agent)
        if len(items) > MAX_BATCH:
            raise InvalidArgument(f"at most {MAX_BATCH} items are opened at once")
        results = []
        for item in items:
            try:
                results.append((self.decrypt(agent, item.sealed, item.aad), ""))
            except KizunaError as exc:
                results.append((b"", exc.message))
        return results

    def encrypt_group_message(self, agent: bytes, group_uuid: str, plaintext: bytes, receivers,
                              app_token: str = ""):
        """(EncryptedPayload, key shares, rotated): see GroupCrypto.encrypt."""
        self._require_agent(agent)
        self._check_token(agent, app_token)
        return self.crypto.encrypt(agent, group_uuid, plaintext, receivers)

    def decrypt_group_messages(self, items) -> list[tuple[bytes, str, bool]]:
        for agent in {item.agent for item in items}:
            self._require_agent(agent)
        return self.crypto.decrypt(items)

    def import_group_keys(self, agent: bytes, shares) -> list[conductor_pb2.ImportedKey]:
        self._require_agent(agent)
        return self.crypto.import_keys(agent, shares)

    def share_group_key(self, agent: bytes, group_uuid: str, session_id: str,
                        receiver: conductor_pb2.KeyHolder) -> common_pb2.Signed:
        self._require_agent(agent)
        return self.crypto.share(agent, group_uuid, session_id, receiver)

    def list_group_sessions(self, agent: bytes) -> list[conductor_pb2.GroupSessionInfo]:
        self._require_agent(agent)
        return self.crypto.list_sessions(agent)

    def resolve_token(self, app_token: str) -> conductor_pb2.Agent:
        if not app_token:
            raise Unauthenticated("missing app token")
        token = self._store.get_token(app_token)
        if token is None:
            raise Unauthenticated("unknown app token")
        if token.revoked:
            raise Unauthenticated("the app token was revoked")
        return self._with_olm_keys(self._store.get_agent(token.agent))
