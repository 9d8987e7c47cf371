"""The agents this lobby hosts: joining the Lobby space for each, publishing its agent
info (addresses, encryption key, username), and finding other agents by key or username."""

import asyncio
import logging
import re

from kizuna.v1 import group_dht_pb2
from kizuna_node.common import dna
from kizuna_node.common.background import Background
from kizuna_node.common.retry import RetryPolicy, keep_trying
from kizuna_node.common.errors import AlreadyExists, InvalidArgument, KizunaError, NotFound
from kizuna_node.common.keys import check_agent_key
from kizuna_node.lobby.directory import Directory
from kizuna_node.lobby.store import LobbyStore
from kizuna_node.lobby.naming import parse_agent_ref, short

log = logging.getLogger("kizuna.lobby")

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
HOSTING_PARALLEL = 8  # agents joined and published at once when the lobby starts
# An agent info whose first publish failed (too few holders reachable) is published again
# in the background: backing off to a try every half minute, until it is stored.
PUBLISH_RETRY = RetryPolicy(attempts=1_000_000, backoff_initial=1.0, backoff_max=30.0, budget=float("inf"))


class Hosting:
    """`address` is where other lobbies reach this one (known once the server is bound);
    `dht_address` is what the agent infos advertise for this node's DHT; both present the
    node's TLS certificate, `tls_certificate` (DER), which the agent infos name too."""

    def __init__(self, store: LobbyStore, conductor, dht, directory: Directory, address: str, dht_address: str,
                 tls_certificate: bytes = b"", background: Background | None = None):
        self._store = store
        self._conductor = conductor
        self._dht = dht
        self._directory = directory
        self.address = address
        self.dht_address = dht_address
        self.tls_certificate = tls_certificate
        self._hosted: dict[bytes, object] = {}
        self._background = background or Background()
        self._unpublished: set[bytes] = set()  # hosted agents whose info is still being published

    def agents(self) -> list[bytes]:
        return list(self._hosted)

    def is_hosted(self, agent: bytes) -> bool:
        return agent in self._hosted

    async def host_agents(self) -> None:
        """Joins the Lobby space and publishes agent infos for every agent of the conductor,
        a few at a time."""
        limit = asyncio.Semaphore(HOSTING_PARALLEL)

        async def one(agent):
            async with limit:
                await self.host_agent(agent)
        await asyncio.gather(*(one(agent) for agent in await self._conductor.list_agents()))

    async def host_agent(self, agent) -> None:
        """Hosts the agent: it joins the Lobby space and its info is published. An agent whose
        info could not be stored (its holders are down) is hosted all the same, so its UI is
        served, and its info is published in the background until it is stored."""
        if agent.agent in self._hosted:
            return
        await self._dht.join_space(dna.LOBBY_DNA_HASH, agent.agent, dna.LOBBY_TEMPLATE)
        try:
            await self._publish(agent)
        except KizunaError as exc:
            log.warning("agent %s's info not stored yet (%s %s): publishing it in the background", short(agent.agent),
                        exc.code, exc.message)
            if agent.agent not in self._unpublished:
                self._unpublished.add(agent.agent)
                self._background.spawn(self._publish_until_stored(agent))
        self._hosted[agent.agent] = agent
        log.info("hosting agent %s", short(agent.agent))

    async def _publish_until_stored(self, agent) -> None:
        try:
            await keep_trying(PUBLISH_RETRY, f"publishing agent {short(agent.agent)}'s info", lambda: self._publish(agent))
            log.info("agent %s's info stored", short(agent.agent))
        finally:
            self._unpublished.discard(agent.agent)

    async def _publish(self, agent, username: str | None = None) -> group_dht_pb2.AgentInfo:
        if username is None:
            username = self._store.get_username(agent.agent)
        return await self._directory.publish_agent_info(agent, username, self.address, self.dht_address,
                                                        self.tls_certificate)

    async def republish_agent_infos(self) -> None:
        """Publishes every hosted agent's info again: well before the last one expires, and
        so that it sits on the holders the space's current nodes would ask."""
        for agent in list(self._hosted.values()):
            try:
                await self._publish(agent)
            except KizunaError as exc:
                log.info("could not republish agent %s's info: %s %s", short(agent.agent), exc.code, exc.message)

    async def require_hosted(self, agent: bytes) -> None:
        """NotFound unless the agent is one of this node's (hosted now if it is new)."""
        check_agent_key(agent, "to_agent")
        if agent not in self._hosted:
            for candidate in await self._conductor.list_agents():
                if candidate.agent == agent:
                    await self.host_agent(candidate)
                    return
            raise NotFound("that agent is not hosted by this lobby")

    async def display_name(self, agent: bytes) -> str:
        """The agent's username where it published one, else a short form of its key."""
        try:
            return (await self._directory.agent_info(agent)).username or short(agent)
        except KizunaError:
            return short(agent)

    async def set_username(self, agent: bytes, username: str) -> group_dht_pb2.AgentInfo:
        if not USERNAME_RE.match(username):
            raise InvalidArgument("a username is 1 to 32 characters: a-z, 0-9, and _ . - after the first")
        owner = await self._directory.username_owner(username)
        if owner is not None and owner != agent:
            raise AlreadyExists(f"the username '{username}' is taken")
        self._store.put_username(agent, username)
        return await self._publish(self._hosted[agent], username)

    async def get_agent_by_username(self, username: str) -> group_dht_pb2.AgentInfo:
        if not USERNAME_RE.match(username):
            raise InvalidArgument(f"'{username}' is not a valid username")
        owner = await self._directory.username_owner(username)
        if owner is None:
            raise NotFound(f"no agent has the username '{username}'")
        return await self._directory.agent_info(owner)

    async def resolve_participant(self, ref: str) -> bytes:
        """An agent named by its base64 key or by its username."""
        key = parse_agent_ref(ref)
        if key is not None:
            return key
        return (await self.get_agent_by_username(ref)).agent

    async def resolve_participants(self, refs) -> list[bytes]:
        """Each named agent once, in the order first named."""
        agents = []
        for ref in refs:
            key = await self.resolve_participant(ref)
            if key not in agents:
                agents.append(key)
        return agents
