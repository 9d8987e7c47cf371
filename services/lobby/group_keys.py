"""Group session keys between lobbies: the key shares a send makes travel to their
receivers before the message (call_remote, else the group's DHT, else the outbox, as any
item); shares received are opened by the conductor; a message that arrives before its
key is held, encrypted, until the key comes, and its author is asked for the key when it
does not come by itself."""

import asyncio
import logging

from kizuna.v1 import common_pb2, conductor_pb2, lobby_pb2
from kizuna_node.common.background import Background
from kizuna_node.common.errors import InvalidArgument, KizunaError, NotFound, PermissionDenied, parse
from kizuna_node.common.hashing import blake2b_256
from kizuna_node.common.retry import RetryPolicy, is_transient, keep_trying
from kizuna_node.lobby.directory import Directory
from kizuna_node.lobby.hosting import Hosting
from kizuna_node.lobby.naming import short
from kizuna_node.lobby.store import LobbyStore

log = logging.getLogger("kizuna.lobby")

HOLD_SECONDS = 2.0  # how long a held message waits for its key to come by itself before asking
# Asking an author who cannot be reached: again, backing off to once a minute, for a day.
REQUEST_RETRY = RetryPolicy(attempts=10_000, backoff_initial=2.0, backoff_max=60.0, budget=24 * 3600.0)


class GroupKeys:
    """`apply_held(agent, signed)`: the receive workflow a held message goes through again
    once its key is there (set by the messaging workflow); False when the message still
    cannot be decrypted, and so stays held."""

    def __init__(self, store: LobbyStore, conductor, hosting: Hosting, directory: Directory, calls,
                 background: Background, retry_policy: RetryPolicy, hold_seconds: float = HOLD_SECONDS,
                 request_retry: RetryPolicy = REQUEST_RETRY):
        self._store = store
        self._conductor = conductor
        self._hosting = hosting
        self._directory = directory
        self._calls = calls
        self._background = background
        self._retry_policy = retry_policy
        self.hold_seconds = hold_seconds
        self.request_retry = request_retry
        self.apply_held = None
        self._asking: set[tuple[bytes, str]] = set()

    async def holders(self, receivers) -> list[conductor_pb2.KeyHolder]:
        """Each receiver with the Olm keys its agent info publishes (none when it has no
        agent info now: it asks for the key once it holds the message)."""
        async def holder(agent):
            try:
                info = await self._directory.agent_info(agent)
            except KizunaError:
                return conductor_pb2.KeyHolder(agent=agent)
            return conductor_pb2.KeyHolder(agent=agent, olm_identity_key=info.olm_identity_key,
                                           olm_fallback_key=info.olm_fallback_key)
        return list(await asyncio.gather(*(holder(agent) for agent in receivers)))

    @staticmethod
    def key_items(author: bytes, group_uuid: str, space: bytes, shares) -> list[lobby_pb2.OutboxItem]:
        """The outbox items that carry key shares to their receivers."""
        return [lobby_pb2.OutboxItem(author=author, receiver=parse(common_pb2.KeyShare, share.body, "key share").receiver,
                                     kind="group_key", signed=share, group_uuid=group_uuid, space=space)
                for share in shares]

    async def receive_group_keys(self, to_agents, shares, caller: bytes | None = None):
        """Key shares for agents this lobby hosts (`shares[i]` for `to_agents[i]`), each
        opened by the conductor; (taken, error or None) per agent, in order. Messages held
        for the sessions they bring are received then."""
        if len(shares) != len(to_agents):
            raise InvalidArgument("one key share per receiver")
        async def one(agent, share):
            try:
                await self._hosting.require_hosted(agent)
                if caller is not None and share.author != caller:
                    raise PermissionDenied("a key share comes from its sender")
                await self.import_keys(agent, [share])
                return True, None
            except KizunaError as exc:
                return False, exc

        # each agent's share on its own, all at once: fifty receivers at one lobby wait on
        # the conductor's work, not on fifty calls in turn
        return list(await asyncio.gather(*(one(agent, share) for agent, share in zip(to_agents, shares))))

    async def import_keys(self, agent: bytes, shares) -> bool:
        """Opens the shares (PermissionDenied naming why, when one does not open) and
        receives what the agent held for their sessions; True."""
        results = await self._conductor.import_group_keys(agent, list(shares))
        for result in results:
            if not result.error:
                await self._release(agent, result.session_id)
        refused = [r.error for r in results if r.error]
        if refused:
            raise PermissionDenied(f"a key share was refused: {refused[0]}")
        return True

    async def _release(self, agent: bytes, session_id: str) -> None:
        """Receives the messages held for the session; one still without its key stays held."""
        for message_hash, signed in self._store.held_messages(agent, session_id):
            try:
                if not await self.apply_held(agent, signed):
                    continue
            except KizunaError as exc:
                if is_transient(exc):
                    continue  # the conductor restarting, say: it stays held for the next try
                log.info("a held message for %s refused: %s %s", short(agent), exc.code, exc.message)
            self._store.release_held(agent, session_id, message_hash)

    def hold(self, agent: bytes, entry: common_pb2.MessageEntry, signed: common_pb2.Signed) -> None:
        """Keeps a message the agent cannot decrypt yet, and asks its author for the key
        if the key does not come within `hold_seconds`."""
        session_id = entry.encrypted.session_id
        self._store.hold_message(agent, session_id, blake2b_256(signed.body), signed)
        self.ask_later(agent, entry.author, entry.group_uuid, session_id)

    def ask_later(self, agent: bytes, author: bytes, group_uuid: str, session_id: str) -> None:
        if (agent, session_id) in self._asking:
            return
        self._asking.add((agent, session_id))
        self._background.spawn(self._ask(agent, author, group_uuid, session_id))

    def resume(self) -> int:
        """Asks again for the key of every session messages were held for before a restart;
        how many messages are held."""
        held = self._store.all_held()
        for agent, signed in held:
            entry = common_pb2.MessageEntry.FromString(signed.body)
            self.ask_later(agent, entry.author, entry.group_uuid, entry.encrypted.session_id)
        return len(held)

    async def _ask(self, agent: bytes, author: bytes, group_uuid: str, session_id: str) -> None:
        try:
            await asyncio.sleep(self.hold_seconds)

            async def ask():
                if not self._store.held_messages(agent, session_id):
                    return None  # the key came by itself
                request = lobby_pb2.RequestGroupKeyRequest(to_agent=author, group_uuid=group_uuid,
                                                           session_id=session_id)
                try:
                    response, _ = await self._calls.call_remote(agent, author, "RequestGroupKey", request,
                                                                self._retry_policy)
                    await self.import_keys(agent, [response.key_share])
                except KizunaError as exc:
                    if is_transient(exc):
                        raise  # the author is away: keep_trying asks again
                    return exc  # refused for good: asking again changes nothing
                return None
            refused = await keep_trying(self.request_retry, f"asking {short(author)} for a group key", ask)
            if refused is not None:
                log.warning("%s's key for a session of group %s refused to %s (its messages stay held): %s %s",
                            short(author), group_uuid, short(agent), refused.code, refused.message)
        except KizunaError as exc:
            log.warning("gave up asking %s for a group key: %s %s", short(author), exc.code, exc.message)
        finally:
            self._asking.discard((agent, session_id))

    async def share_on_request(self, author: bytes, caller: bytes, request: lobby_pb2.RequestGroupKeyRequest):
        """A key share of the author's session for the caller, who holds one of its
        messages: only for a receiver the session was meant for."""
        if self._store.get_group_info(author, request.group_uuid) is None:
            raise NotFound("the author knows no such group")
        if not request.session_id:
            raise InvalidArgument("session_id is required")
        info = await self._directory.agent_info(caller)
        holder = conductor_pb2.KeyHolder(agent=caller, olm_identity_key=info.olm_identity_key,
                                         olm_fallback_key=info.olm_fallback_key)
        return await self._conductor.share_group_key(author, request.group_uuid, request.session_id, holder)

