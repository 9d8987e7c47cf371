"""In-memory stand-ins for the lobby's ports (conductor, DHT, other lobbies), for unit
tests of the lobby's domain code only."""

import collections

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kizuna.v1 import conductor_pb2, group_dht_pb2, lobby_pb2
from services.common import dna
from services.common.errors import FailedPrecondition, Unauthenticated, Unavailable, error_for
from services.common.hashing import blake2b_256
from services.common.retry import RetryPolicy
from services.common.sealing import open_sealed
from services.lobby.lobby import Lobby
from services.lobby.store import LobbyStore


class FakeConductor:
    def __init__(self):
        self.keys = {}
        self.encryption_keys = {}
        self.tokens = {}
        self.agents = {}
        self.clones = []
        self.deleted = []
        self.refuse_clone = None

    def make_agent(self, name):
        key = Ed25519PrivateKey.generate()
        pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.keys[pub] = key
        self.encryption_keys[pub] = X25519PrivateKey.generate()
        encryption_key = self.encryption_keys[pub].public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.agents[pub] = conductor_pb2.Agent(agent=pub, encryption_key=encryption_key, name=name)
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

    async def decrypt(self, agent, sealed, aad):
        return open_sealed(self.encryption_keys[agent], sealed, aad)

    async def decrypt_batch(self, agent, items):
        results = []
        for sealed, aad in items:
            try:
                results.append((open_sealed(self.encryption_keys[agent], sealed, aad), ""))
            except Exception as exc:  # noqa: BLE001 - mirrors the conductor's per-item error
                results.append((b"", str(exc)))
        return results

    async def resolve_token(self, token):
        if token not in self.tokens:
            raise Unauthenticated("unknown app token")
        return self.agents[self.tokens[token]]


class FakeDht:
    """Entries and links in memory; with `down` set, every publish fails as below quorum."""

    def __init__(self):
        self.entries = {}
        self.links = collections.defaultdict(list)
        self.published = []
        self.down = False

    async def publish(self, signed):
        if self.down:
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

    async def get_links_with_targets(self, space, base, tag_prefix=b""):
        links = await self.get_links(space, base, tag_prefix)
        targets = {}
        for link in links:
            target = group_dht_pb2.Op.FromString(link.create.body).target
            if target in self.entries:
                targets[target] = self.entries[target]
        return links, targets

    async def join_space(self, space, agent, template, properties=None):
        return None


class FakeRemote:
    """Routes call_remote to lobbies by address; addresses in `down` are unreachable."""

    def __init__(self):
        self.lobbies = {}
        self.down = set()
        self.refusing = {}
        self.calls = collections.Counter()

    async def call(self, address, method, request, timeout):
        self.calls[address] += 1
        if address in self.down:
            raise Unavailable("connection refused")
        if address in self.refusing:
            raise error_for(*self.refusing[address])
        await self.lobbies[address].receive_remote(method, request)
        return None


FAST_POLICY = RetryPolicy(attempts=2, backoff_initial=0.001, backoff_max=0.002, attempt_timeout=0.1, budget=0.5)


async def make_lobbies(tmp_path, names):
    """One lobby per name, each hosting one agent of that name, sharing a DHT."""
    conductor, dht, remote = FakeConductor(), FakeDht(), FakeRemote()
    lobbies, agents = {}, {}
    for name in names:
        agent = conductor.make_agent(name)
        address = f"lobby-{name}"
        lobby = Lobby(LobbyStore(str(tmp_path / name)), _OnlyAgent(conductor, agent), dht, remote, address,
                      "dht", FAST_POLICY)
        remote.lobbies[address] = lobby
        await lobby.host_agents()
        await lobby.set_username(agent, name)
        lobbies[name], agents[name] = lobby, agent
    return lobbies, agents, conductor, remote, dht


class _OnlyAgent:
    """The shared fake conductor as one node's conductor: it lists only its own agent."""

    def __init__(self, conductor, agent):
        self._conductor, self._agent = conductor, agent

    def __getattr__(self, name):
        return getattr(self._conductor, name)

    async def list_agents(self):
        return [self._conductor.agents[self._agent]]


def signals_of(lobby, agent):
    return lobby.signals.subscribe(agent)


def drain(subscription):
    out = []
    while not subscription._queue.empty():
        out.append(subscription._queue.get_nowait())
    return out


assert lobby_pb2.DELIVERED
