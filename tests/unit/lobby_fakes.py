"""In-memory stand-ins for the lobby's ports (conductor, DHT, other lobbies), for unit
tests of the lobby's domain code only."""

import collections
import os
import tempfile

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kizuna.v1 import common_pb2, conductor_pb2, group_dht_pb2, lobby_pb2
from kizuna_node.common import dna
from kizuna_node.common.errors import FailedPrecondition, Unauthenticated, Unavailable, error_for
from kizuna_node.common.hashing import blake2b_256
from kizuna_node.common.retry import RetryPolicy
from kizuna_node.common.sealing import open_sealed
from kizuna_node.conductor.e2e import GroupCrypto
from kizuna_node.conductor.store import ConductorStore
from kizuna_node.lobby import ports
from kizuna_node.lobby.lobby import Lobby
from kizuna_node.lobby.store import LobbyStore


class FakeConductor(ports.Conductor):
    """Every node's keystore in one: agents, their keys and app tokens."""

    def __init__(self):
        self.keys = {}
        self.encryption_keys = {}
        self.tokens = {}
        self.agents = {}
        self.clones = []
        self.deleted = []
        self.refuse_clone = None
        self.nodes = {}
        self._crypto_dir = tempfile.TemporaryDirectory()
        self._pickle_keys = {}
        # the real keystore's group crypto, on a LevelDB of its own
        self.crypto = GroupCrypto(ConductorStore(self._crypto_dir.name), self._pickle_keys.__getitem__,
                                  lambda agent, data: self.keys[agent].sign(data))

    def make_agent(self, name):
        key = Ed25519PrivateKey.generate()
        pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.keys[pub] = key
        self.encryption_keys[pub] = X25519PrivateKey.generate()
        encryption_key = self.encryption_keys[pub].public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._pickle_keys[pub] = os.urandom(32)
        identity, fallback = self.crypto.olm_keys(pub)
        self.agents[pub] = conductor_pb2.Agent(agent=pub, encryption_key=encryption_key, name=name,
                                               olm_identity_key=identity, olm_fallback_key=fallback)
        self.tokens[f"token-{name}"] = pub
        return pub

    async def sign(self, agent, data):
        return self.keys[agent].sign(data)

    async def sign_batch(self, agent, items, app_token=""):
        if app_token and self.tokens.get(app_token) != agent:
            raise Unauthenticated("the app token names another agent")
        return [self.keys[agent].sign(item) for item in items]

    async def clone_dna(self, agent, properties, updates=()):
        if self.refuse_clone:
            raise FailedPrecondition(self.refuse_clone)
        self.clones.append((agent, properties.group_uuid))
        return conductor_pb2.Cell(agent=agent, dna_hash=dna.group_dna_hash(properties), template="group")

    async def list_agents(self):
        return list(self.agents.values())

    async def delete_clone_cell(self, agent, dna_hash):
        self.deleted.append((agent, dna_hash))

    async def decrypt_batch(self, agent, items):
        results = []
        for sealed, aad in items:
            try:
                results.append((open_sealed(self.encryption_keys[agent], sealed, aad), ""))
            except Exception as exc:  # noqa: BLE001 - mirrors the conductor's per-item error
                results.append((b"", str(exc)))
        return results

    async def resolve_token(self, app_token):
        token = app_token
        if token not in self.tokens:
            raise Unauthenticated("unknown app token")
        return self.agents[self.tokens[token]]

    async def encrypt_group_message(self, agent, group_uuid, plaintext, receivers, app_token=""):
        if app_token and self.tokens.get(app_token) != agent:
            raise Unauthenticated("the app token names another agent")
        encrypted, shares, _ = self.crypto.encrypt(agent, group_uuid, plaintext, receivers)
        return encrypted, shares

    async def decrypt_group_messages(self, items):
        return self.crypto.decrypt(items)

    async def import_group_keys(self, agent, shares):
        return self.crypto.import_keys(agent, shares)

    async def share_group_key(self, agent, group_uuid, session_id, receiver):
        return self.crypto.share(agent, group_uuid, session_id, receiver)


class FakeDht(ports.Dht):
    """Entries and links in memory; with `down` set, every publish fails as below quorum."""

    def __init__(self):
        self.entries = {}
        self.links = collections.defaultdict(list)
        self.published = []
        self.down = False

    async def publish(self, signed, local_only=False):
        if self.down and not local_only:
            raise Unavailable("stored on 1 of 3 holders; quorum is 2")
        op = group_dht_pb2.Op.FromString(signed.body)
        self.published.append(op)
        if op.kind == group_dht_pb2.STORE_ENTRY:
            self.entries[blake2b_256(op.entry)] = signed
        elif op.kind == group_dht_pb2.CREATE_LINK:
            self.links[op.base].append(group_dht_pb2.Link(address=blake2b_256(signed.body), create=signed))
        elif op.kind == group_dht_pb2.DELETE_LINK:
            self.links[op.base] = [l for l in self.links[op.base] if l.address != op.link_address]
        return group_dht_pb2.PublishResponse()

    async def get(self, space, address):
        return self.entries.get(address)

    async def get_links(self, space, base, tag_prefix=b""):
        return [l for l in self.links[base] if group_dht_pb2.Op.FromString(l.create.body).tag.startswith(tag_prefix)]

    async def get_links_with_targets(self, space, base, tag_prefix=b"", holders_only=False):
        links = await self.get_links(space, base, tag_prefix)
        targets = {}
        for link in links:
            target = group_dht_pb2.Op.FromString(link.create.body).target
            if target in self.entries:
                targets[target] = self.entries[target]
        return links, targets

    async def join_space(self, space, agent, template, properties=None):
        return None


class FakeRemote(ports.Remote):
    """Routes call_remote to lobbies by address; addresses in `down` are unreachable, those
    in `refusing` answer with the (code, message) given."""

    def __init__(self):
        self.lobbies = {}
        self.down = set()
        self.refusing = {}
        self.refusing_methods = {}  # method -> (code, message), for every lobby
        self.calls = collections.Counter()
        self.requests = []  # (method, request) of every call, as it would go on the wire

    async def call(self, address, certificate, method, request, timeout):
        self.calls[address] += 1
        self.requests.append((method, request))
        if address in self.down:
            raise Unavailable("connection refused")
        if address in self.refusing:
            raise error_for(*self.refusing[address])
        if method in self.refusing_methods:
            raise error_for(*self.refusing_methods[method])
        peer = self.lobbies[address].peer
        receive = {  # what the receiving lobby's servicer calls for each RPC
            "ReceiveInvite": peer.rpc_receive_invite,
            "ReceiveGroupMessage": peer.rpc_receive_group_message,
            "ReceiveGroupUpdate": peer.rpc_receive_group_update,
            "ReceiveReceipt": peer.rpc_receive_receipt,
            "ReceiveTyping": peer.rpc_receive_typing,
            "ReceiveGroupMessages": peer.rpc_receive_group_messages,
            "ReceiveReceipts": peer.rpc_receive_receipts,
            "ReceiveGroupKeys": peer.rpc_receive_group_keys,
            "RequestGroupKey": peer.rpc_request_group_key,
        }[method]
        return await receive(request)


async def encrypted_message(conductor, author: bytes, receivers, group_uuid: str, text: str, time_sent: int = 1,
                            sign_as: bytes | None = None):
    """A MessageEntry as a lobby sends one: the text encrypted under the author's group
    session (whose key each receiver is given here), signed by `sign_as` (the author)."""
    holders = [conductor_pb2.KeyHolder(agent=r, olm_identity_key=conductor.agents[r].olm_identity_key,
                                       olm_fallback_key=conductor.agents[r].olm_fallback_key) for r in receivers]
    encrypted, shares = await conductor.encrypt_group_message(author, group_uuid, text.encode(), holders)
    for share in shares:
        conductor.crypto.import_keys(common_pb2.KeyShare.FromString(share.body).receiver, [share])
    entry = common_pb2.MessageEntry(author=author, receiver=list(receivers), group_uuid=group_uuid,
                                    time_sent=time_sent, encrypted=encrypted)
    body = entry.SerializeToString()
    return common_pb2.Signed(body=body, signature=await conductor.sign(sign_as or author, body), author=author)


FAST_POLICY = RetryPolicy(attempts=2, backoff_initial=0.001, backoff_max=0.002, attempt_timeout=0.1, budget=0.5)


async def make_lobbies(tmp_path, names):
    """One lobby per name, each hosting one agent of that name, sharing a DHT. Each lobby's
    conductor is `conductor.nodes[name]`."""
    conductor, dht, remote = FakeConductor(), FakeDht(), FakeRemote()
    lobbies, agents = {}, {}
    for name in names:
        agent = conductor.make_agent(name)
        address = f"lobby-{name}"
        node = conductor.nodes[name] = NodeConductor(conductor, agent)
        lobby = Lobby(LobbyStore(str(tmp_path / name)), node, dht, remote, address, "dht", FAST_POLICY)
        remote.lobbies[address] = lobby
        await lobby.hosting.host_agents()
        await lobby.hosting.set_username(agent, name)
        lobbies[name], agents[name] = lobby, agent
    return lobbies, agents, conductor, remote, dht


class NodeConductor(ports.Conductor):
    """The shared fake conductor as one node's conductor: it lists only its own agent, and
    can be made to fail its next signings, as a conductor that is restarting does."""

    def __init__(self, conductor, agent):
        self._conductor, self._agent = conductor, agent
        self.failing_signs = 0

    def fail_next_signs(self, count: int) -> None:
        self.failing_signs = count

    async def sign(self, agent, data):
        if self.failing_signs:
            self.failing_signs -= 1
            raise Unavailable("the conductor is restarting")
        return await self._conductor.sign(agent, data)

    async def sign_batch(self, agent, items, app_token=""):
        return await self._conductor.sign_batch(agent, items, app_token)

    async def clone_dna(self, agent, properties, updates=()):
        return await self._conductor.clone_dna(agent, properties, updates)

    async def delete_clone_cell(self, agent, dna_hash):
        return await self._conductor.delete_clone_cell(agent, dna_hash)

    async def decrypt_batch(self, agent, items):
        return await self._conductor.decrypt_batch(agent, items)

    async def resolve_token(self, app_token):
        return await self._conductor.resolve_token(app_token)

    async def encrypt_group_message(self, agent, group_uuid, plaintext, receivers, app_token=""):
        return await self._conductor.encrypt_group_message(agent, group_uuid, plaintext, receivers, app_token)

    async def decrypt_group_messages(self, items):
        return await self._conductor.decrypt_group_messages(items)

    async def import_group_keys(self, agent, shares):
        return await self._conductor.import_group_keys(agent, shares)

    async def share_group_key(self, agent, group_uuid, session_id, receiver):
        return await self._conductor.share_group_key(agent, group_uuid, session_id, receiver)

    async def list_agents(self):
        return [self._conductor.agents[self._agent]]


def drain(subscription):
    """The signals a subscription holds now, taken without waiting."""
    return subscription.take_ready()


assert lobby_pb2.DELIVERED
