"""Each hosted agent's source chain: append only, every action hash-linked to the one
before it and signed by the agent through the conductor's keystore."""

import asyncio
import collections

from kizuna.v1 import common_pb2
from kizuna_node.common.hashing import blake2b_256, now_micros
from kizuna_node.common.keys import sign_into
from kizuna_node.lobby.store import LobbyStore


class SourceChain:
    """`sign(agent, data) -> signature` is the conductor's keystore."""

    def __init__(self, store: LobbyStore, sign):
        self._store = store
        self._sign = sign
        self._locks: dict[bytes, asyncio.Lock] = collections.defaultdict(asyncio.Lock)

    def lock(self, agent: bytes) -> asyncio.Lock:
        """Held around read-decide-commit, so two calls for one agent never fork its chain."""
        return self._locks[agent]

    async def commit(self, agent: bytes, entries: list[tuple[str, bytes]], apply=None) -> list[common_pb2.Signed]:
        """Appends one action per (entry_type, entry), signed, and writes them together with
        `apply(batch)` (the derived state they change) in one synced batch. The caller holds
        `lock(agent)`."""
        return (await self.commit_each([(agent, entries, apply)]))[0]

    async def commit_each(self, commits: list[tuple[bytes, list[tuple[str, bytes]], object]]) -> list[list]:
        """`commit` for several agents at once, (agent, entries, apply) each: every action
        signed (all at once), then all of them and every `apply` written in one synced batch,
        so many chains grow for the cost of one write. The caller holds each agent's lock."""
        unsigned = []
        for agent, entries, _ in commits:
            head = self._store.head(agent)
            seq, prev = (head[0] + 1, head[1]) if head is not None else (0, b"")
            for entry_type, entry in entries:
                body = common_pb2.Action(seq=seq, prev_action=prev, timestamp=now_micros(), author=agent,
                                         entry_type=entry_type, entry=entry,
                                         entry_hash=blake2b_256(entry)).SerializeToString()
                unsigned.append((agent, seq, body))
                seq, prev = seq + 1, blake2b_256(body)
        signed = await asyncio.gather(*(sign_into(self._sign, agent, body) for agent, _, body in unsigned))
        by_agent: dict[bytes, list] = {agent: [] for agent, _, _ in commits}
        with self._store.batch() as batch:
            for (agent, seq, _), one in zip(unsigned, signed):
                self._store.put_action(batch, agent, seq, one)
                by_agent[agent].append(one)
            for _, _, apply in commits:
                if apply is not None:
                    apply(batch)
        return [by_agent[agent] for agent, _, _ in commits]
