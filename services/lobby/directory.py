"""Agent infos in the Lobby space: publishing our agents' addresses and usernames, and
finding other agents' by key or by username (the first claim of a username wins)."""

import asyncio
import time

from kizuna.v1 import group_dht_pb2
from kizuna_node.common import anchors
from kizuna_node.common.dna import LOBBY_DNA_HASH
from kizuna_node.common.errors import NotFound
from kizuna_node.common.hashing import blake2b_256, now_micros
from kizuna_node.common.keys import is_valid_signature, sign_into

AGENT_INFO_TAG = b"agent_info"
AGENT_INFO_TTL_MICROS = 3600 * 1_000_000
# An agent info younger than this answers without a look-up; an older one still answers
# while it is looked up again in the background. A call that fails looks it up at once
# (see OutgoingCalls), so an agent whose node moved is found on the next try, not after this.
CACHE_SECONDS = 60.0


def op_of(signed) -> group_dht_pb2.Op:
    return group_dht_pb2.Op.FromString(signed.body)


class Directory:
    def __init__(self, dht, sign):
        self._dht = dht
        self._sign = sign
        self._cache: dict[bytes, tuple[float, group_dht_pb2.AgentInfo]] = {}
        self._refreshing: dict[bytes, asyncio.Task] = {}

    async def publish_op(self, agent: bytes, op: group_dht_pb2.Op) -> group_dht_pb2.PublishResponse:
        return await self._dht.publish(await sign_into(self._sign, agent, op.SerializeToString()))

    async def publish_entry(self, agent: bytes, space: bytes, entry_type: str, entry: bytes) -> bytes:
        """Stores an entry, signed by the agent, in a space; returns its address."""
        await self.publish_op(agent, group_dht_pb2.Op(
            space=space, kind=group_dht_pb2.STORE_ENTRY, author=agent, timestamp=now_micros(),
            entry_type=entry_type, entry=entry))
        return blake2b_256(entry)

    async def publish_link(self, agent: bytes, space: bytes, base: bytes, target: bytes, tag: bytes) -> None:
        """Links `target` from `base` in a space, signed by the agent."""
        await self.publish_op(agent, group_dht_pb2.Op(
            space=space, kind=group_dht_pb2.CREATE_LINK, author=agent, timestamp=now_micros(),
            base=base, target=target, tag=tag))

    async def publish_agent_info(self, agent, username: str, lobby_address: str, dht_address: str,
                                 tls_certificate: bytes = b"") -> group_dht_pb2.AgentInfo:
        """`agent`: the conductor's Agent, whose public keys the info names."""
        now = now_micros()
        info = group_dht_pb2.AgentInfo(
            agent=agent.agent,
            encryption_key=agent.encryption_key,
            olm_identity_key=agent.olm_identity_key,
            olm_fallback_key=agent.olm_fallback_key,
            username=username,
            lobby_address=lobby_address,
            dht_address=dht_address,
            tls_certificate=tls_certificate,
            timestamp=now,
            expires_at=now + AGENT_INFO_TTL_MICROS,
        )
        key = agent.agent
        address = await self.publish_entry(key, LOBBY_DNA_HASH, "agent_info", info.SerializeToString())
        await self.publish_link(key, LOBBY_DNA_HASH, anchors.agent_anchor(key), address, AGENT_INFO_TAG)
        if username:
            await self.publish_link(key, LOBBY_DNA_HASH, anchors.username_anchor(username), address,
                                    anchors.USERNAME_TAG + username.encode())
        self._cache[key] = (time.monotonic(), info)
        return info

    async def username_owner(self, username: str) -> bytes | None:
        """The agent whose claim on the username came first, if any."""
        links = await self._dht.get_links(
            LOBBY_DNA_HASH, anchors.username_anchor(username), anchors.USERNAME_TAG + username.encode()
        )
        tag = anchors.USERNAME_TAG + username.encode()
        claims = sorted((op_of(link.create).timestamp, link.address, link.create.author)
                        for link in links if op_of(link.create).tag == tag)
        return claims[0][2] if claims else None

    async def agent_info(self, agent: bytes, fresh: bool = False) -> group_dht_pb2.AgentInfo:
        """The agent's newest unexpired agent info; NotFound when it has none. One cached
        for more than CACHE_SECONDS still answers (a group of a thousand does not wait on
        a thousand look-ups) while it is looked up again in the background; when that
        look-up finds nothing, the last one found serves until it expires."""
        cached = self._cache.get(agent)
        if cached is not None and not fresh and cached[1].expires_at > now_micros():
            if time.monotonic() - cached[0] >= CACHE_SECONDS and agent not in self._refreshing:
                task = asyncio.create_task(self._refresh(agent))
                self._refreshing[agent] = task
                task.add_done_callback(lambda _: self._refreshing.pop(agent, None))
            return cached[1]
        try:
            return await self._look_up(agent)
        except NotFound:
            if cached is not None and cached[1].expires_at > now_micros():
                return cached[1]
            raise

    async def _refresh(self, agent: bytes) -> None:
        try:
            await self._look_up(agent)
        except Exception:  # noqa: BLE001 - the cached info serves until it expires
            pass

    async def _look_up(self, agent: bytes) -> group_dht_pb2.AgentInfo:
        links = await self._dht.get_links(LOBBY_DNA_HASH, anchors.agent_anchor(agent), AGENT_INFO_TAG)
        candidates = sorted(
            (link for link in links if link.create.author == agent),
            key=lambda link: op_of(link.create).timestamp,
            reverse=True,
        )
        now = now_micros()
        for link in candidates:
            signed = await self._dht.get(LOBBY_DNA_HASH, op_of(link.create).target)
            if signed is None or not is_valid_signature(signed.author, signed.body, signed.signature):
                continue
            info = group_dht_pb2.AgentInfo.FromString(op_of(signed).entry)
            if info.agent == agent and signed.author == agent and info.expires_at > now:
                self._cache[agent] = (time.monotonic(), info)
                return info
        raise NotFound("no agent info published for that agent")
