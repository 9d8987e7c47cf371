"""An agent's inboxes in the DHT: an item for an unreachable receiver stored in its space
and linked from the receiver's anchor there (sealed to the receiver, except a message,
whose text is Megolm ciphertext already and whose one copy serves every receiver); read
back, opened in the conductor and put in order; and its link retired once the item was
applied."""

import asyncio
import logging

from kizuna.v1 import common_pb2, group_dht_pb2, lobby_pb2
from kizuna_node.common import anchors
from kizuna_node.common.errors import InvalidArgument, KizunaError, PermissionDenied, parse
from kizuna_node.common.hashing import now_micros
from kizuna_node.common.sealing import seal, sealed_aad
from kizuna_node.common.background import Background
from kizuna_node.lobby.directory import Directory, op_of

log = logging.getLogger("kizuna.lobby")

# Kinds stored as they are, not sealed: a message's entry is encrypted for its group, and
# is the same for every receiver (one DHT entry, a link per receiver).
UNSEALED = {"message"}
FETCH_CONCURRENCY = 32
DECRYPT_BATCH = 100  # sealed items per conductor call (each at most a payload's size)
# How items fetched from an inbox are put in order before they are applied.
SORT_KEYS = {
    "message": lambda body: parse(common_pb2.MessageEntry, body, "message").time_sent,
    "group_update": lambda body: parse(common_pb2.GroupUpdate, body, "group update").seq,
}


def inbox_anchor(kind: str, agent: bytes) -> bytes:
    return anchors.invites_anchor(agent) if kind == "invite" else anchors.inbox_anchor(agent)


async def apply_from_inbox(kind: str, applying) -> bool | None:
    """Awaits `applying`, a workflow taking an item from the inbox. True: new; False: a
    duplicate or refused for good (its link is to be retired); None: not applicable now,
    so the link stays for the next catch-up."""
    try:
        return await applying
    except (PermissionDenied, InvalidArgument) as exc:
        log.warning("dropping a %s from the inbox: %s %s", kind, exc.code, exc.message)
        return False
    except KizunaError as exc:
        log.info("a %s in the inbox cannot be applied yet: %s %s", kind, exc.code, exc.message)
        return None


class Inbox:
    def __init__(self, directory: Directory, dht, conductor, background: Background):
        self._directory = directory
        self._dht = dht
        self._conductor = conductor
        self._background = background
        self._retire_gate = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def store_in_inbox(self, item: lobby_pb2.OutboxItem) -> bytes:
        """Commits the item (sealed to its receiver, but for a message) to its space (the
        group's for a message, the Lobby's for an invite) and links it from the receiver's
        inbox anchor there."""
        if item.kind in UNSEALED:
            address = await self._directory.publish_entry(item.author, item.space, item.kind,
                                                          item.signed.SerializeToString())
        else:
            info = await self._directory.agent_info(item.receiver)
            sealed = seal(item.receiver, info.encryption_key, item.signed.SerializeToString(),
                          sealed_aad(item.kind, item.space, item.receiver))
            address = await self._directory.publish_entry(item.author, item.space, f"sealed_{item.kind}",
                                                          sealed.SerializeToString())
        await self._directory.publish_link(item.author, item.space, inbox_anchor(item.kind, item.receiver), address,
                                           item.kind.encode())
        return address

    async def fetch_inbox(self, agent: bytes, kind: str, space: bytes, holders_only: bool = False) -> list:
        """(Signed, retire) for each item linked from the agent's inbox of this kind in the
        space, in order: entries fetched with the links (the rest concurrently), opened in
        batches by the conductor. `retire()` is a coroutine that retires the item's link.
        An item that cannot be read is dropped, and its link retired."""
        base = inbox_anchor(kind, agent)
        links, targets = await self._dht.get_links_with_targets(space, base, kind.encode(), holders_only)
        gate = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def stored_entry(link):
            target = op_of(link.create).target
            if target in targets:
                return targets[target]
            async with gate:
                return await self._dht.get(space, target)

        stored = await asyncio.gather(*(stored_entry(link) for link in links))
        sealed_items = []  # (link, stored op, sealed box)
        plain_items = []  # (link, stored op, its entry's bytes)
        for link, entry in zip(links, stored):
            if entry is None:
                continue  # not reachable now; the next catch-up tries again
            if kind in UNSEALED:
                plain_items.append((link, entry, op_of(entry).entry))
                continue
            try:
                sealed_items.append((link, entry, parse(common_pb2.SealedBox, op_of(entry).entry, "sealed box")))
            except KizunaError as exc:
                log.warning("dropping an unreadable %s from the inbox: %s", kind, exc.message)
                self._background.spawn(self._retirer(agent, space, base, link.address)())
        aad = sealed_aad(kind, space, agent)
        opened_items = [(link, entry, item, "") for link, entry, item in plain_items]
        for start in range(0, len(sealed_items), DECRYPT_BATCH):
            chunk = sealed_items[start:start + DECRYPT_BATCH]
            opened = await self._conductor.decrypt_batch(agent, [(sealed, aad) for _, _, sealed in chunk])
            opened_items += [(link, entry, plaintext, error)
                             for (link, entry, _), (plaintext, error) in zip(chunk, opened)]
        fetched = []
        for link, entry, plaintext, error in opened_items:
            retire = self._retirer(agent, space, base, link.address)
            try:
                if error:
                    raise PermissionDenied(error)
                signed = parse(common_pb2.Signed, plaintext, "inbox item")
                if signed.author != entry.author:
                    raise PermissionDenied("the item was stored by someone other than its author")
                order = SORT_KEYS[kind](signed.body) if kind in SORT_KEYS else 0
            except KizunaError as exc:
                log.warning("dropping an unreadable %s from the inbox: %s", kind, exc.message)
                self._background.spawn(retire())
                continue
            fetched.append((order, signed, retire))
        return [(signed, retire) for _, signed, retire in sorted(fetched, key=lambda item: item[0])]

    def _retirer(self, agent: bytes, space: bytes, base: bytes, link_address: bytes):
        """A coroutine function that deletes the inbox link, once its item was applied."""

        async def retire():
            async with self._retire_gate:
                try:
                    await self._directory.publish_op(agent, group_dht_pb2.Op(
                        space=space, kind=group_dht_pb2.DELETE_LINK, author=agent, timestamp=now_micros(),
                        base=base, link_address=link_address))
                except KizunaError as exc:
                    log.info("could not retire an inbox link yet: %s %s", exc.code, exc.message)

        return retire
