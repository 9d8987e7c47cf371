"""Catch-up: what waits in an agent's inboxes (invites, then group updates, group keys,
receipts and messages in order) fetched and applied by the same workflows as a call_remote; each link
retired once its item was applied, so each item reaches the UI once."""

import asyncio
import logging

from kizuna_node.common.errors import KizunaError
from kizuna_node.common.background import Background
from kizuna_node.lobby.group_changes import GroupChanges
from kizuna_node.lobby.group_keys import GroupKeys
from kizuna_node.lobby.hosting import Hosting
from kizuna_node.lobby.inbox import SORT_KEYS, Inbox, apply_from_inbox
from kizuna_node.lobby.invites import Invites
from kizuna_node.lobby.messaging import Messaging
from kizuna_node.lobby.receipts import Receipts
from kizuna_node.lobby.store import LobbyStore
from kizuna_node.lobby.naming import short

log = logging.getLogger("kizuna.lobby")


class CatchUp:
    def __init__(self, store: LobbyStore, hosting: Hosting, inbox: Inbox, invites: Invites,
                 group_changes: GroupChanges, receipts: Receipts, messaging: Messaging, background: Background,
                 group_keys: GroupKeys):
        self._store = store
        self._hosting = hosting
        self._inbox = inbox
        self._invites = invites
        self._group_changes = group_changes
        self._receipts = receipts
        self._messaging = messaging
        self._background = background
        self._group_keys = group_keys
        self._locks: dict[bytes, asyncio.Lock] = {}
        self._cursor = 0  # where the next partial round of sync_all starts

    async def sync_inbox(self, agent: bytes, polling: bool = False) -> tuple[int, int]:
        """Fetches what waits in the agent's inboxes (invites first, then each group's
        updates, receipts, and messages in time_sent order), applies the receive rules, and
        retires the links. Returns how many invites and messages were new. A periodic poll
        (`polling`) reads the inboxes' holders only (see GetLinksRequest.holders_only)."""
        async with self._locks.setdefault(agent, asyncio.Lock()):
            invites = await self._invites.take_invites(agent, polling)
            spaces = [g.dna_hash for g in self._store.list_group_info(agent) if not g.departed]
            updates = []
            for space in spaces:
                updates += await self._inbox.fetch_inbox(agent, "group_update", space, polling)
            updates.sort(key=lambda pair: SORT_KEYS["group_update"](pair[0].body))
            retired = []  # links go once every signal is out
            for signed, retire in updates:
                applying = self._group_changes.receive_group_update(agent, signed)
                if await apply_from_inbox("group update", applying) is not None:
                    retired.append(retire)
            for space in spaces:  # keys before the messages they open
                for signed, retire in await self._inbox.fetch_inbox(agent, "group_key", space, polling):
                    if await apply_from_inbox("group key", self._group_keys.import_keys(agent, [signed])) is not None:
                        retired.append(retire)
            fetched, receipts = [], []
            for space in spaces:
                fetched += await self._inbox.fetch_inbox(agent, "message", space, polling)
                receipts += await self._inbox.fetch_inbox(agent, "receipt", space, polling)
            fetched.sort(key=lambda pair: SORT_KEYS["message"](pair[0].body))
            for signed, retire in receipts:
                if await apply_from_inbox("receipt", self._receipts.receive_receipts(agent, signed)) is not None:
                    retired.append(retire)
            messages = 0
            for signed, retire in fetched:
                applied = await apply_from_inbox("message", self._messaging.receive_group_message(agent, signed))
                if applied is None:
                    continue  # may apply later (e.g. its invite is still on its way): keep the link
                messages += applied
                retired.append(retire)
            for retire in retired:
                self._background.spawn(retire())
            if invites or messages:
                log.info("caught up agent %s: %d invites, %d messages", short(agent), invites, messages)
            return invites, messages

    async def sync_all(self, at_most: int | None = None) -> None:
        """`sync_inbox` for every hosted agent, or (`at_most`) for that many of them, the
        next ones in turn after the last call's: a node hosting many agents spreads their
        catch-ups over several rounds, so a round's cost does not grow with them; those
        rounds are polls (see sync_inbox). One agent's failure does not stop the rest."""
        agents = self._hosting.agents()
        if at_most is not None and len(agents) > at_most:
            start = self._cursor % len(agents)
            agents = (agents[start:] + agents[:start])[:at_most]
            self._cursor = start + at_most
        for agent in agents:
            try:
                await self.sync_inbox(agent, polling=at_most is not None)
            except KizunaError as exc:
                log.info("catch-up for %s failed: %s %s", short(agent), exc.code, exc.message)
