"""History: a group's messages paged from a cursor in either direction, the conversations
list, and the agent's source chain; page tokens are a small codec of their own."""

import base64
import binascii
import dataclasses

from kizuna.v1 import lobby_pb2
from kizuna_node.common.errors import InvalidArgument, NotFound
from kizuna_node.common.keys import KEY_LEN, check_agent_key
from kizuna_node.common.store import from_u64, u64
from kizuna_node.lobby.groups import Groups
from kizuna_node.lobby.limits import Limits
from kizuna_node.lobby.store import LAST_HASH, LobbyStore

DEFAULT_PAGE = 50
DEFAULT_CHAIN_PAGE, MAX_CHAIN_PAGE = 100, 1000


@dataclasses.dataclass(frozen=True)
class PageToken:
    """Where the next page starts (exclusive), which way it goes, and whose messages only.
    On the wire: b"n" (newer) or b"o" (older), the u64 time_sent and 32-byte hash of the
    last message given, the author (empty or 32 bytes); URL-safe base64."""

    newer: bool
    position: tuple[int, bytes]
    author: bytes = b""

    def encode(self) -> str:
        time_sent, message_hash = self.position
        raw = (b"n" if self.newer else b"o") + u64(time_sent) + message_hash + self.author
        return base64.urlsafe_b64encode(raw).decode()

    @classmethod
    def decode(cls, token: str) -> "PageToken":
        try:
            raw = base64.urlsafe_b64decode(token.encode())
        except (binascii.Error, ValueError):
            raise InvalidArgument("page_token is not one this lobby gave out") from None
        if len(raw) not in (41, 41 + KEY_LEN) or raw[:1] not in (b"n", b"o"):
            raise InvalidArgument("page_token is not one this lobby gave out")
        return cls(newer=raw[:1] == b"n", position=(from_u64(raw[1:9]), raw[9:41]), author=raw[41:])


class History:
    def __init__(self, store: LobbyStore, groups: Groups, limits: Limits):
        self._store = store
        self._groups = groups
        self._limits = limits

    def get_messages(self, agent: bytes, group_uuid: str, page_size: int, page_token: str,
                     cursor_message: bytes = b"", cursor_time: int = 0, newer: bool = False, author: bytes = b""):
        """A page of the group's history from a cursor (a page token, a message or a time),
        towards older messages (newest first) or newer ones (oldest first), optionally one
        author's; and the token of the next page in the same direction ("" at the end)."""
        self._groups.require_group(agent, group_uuid)
        if page_size < 0 or page_size > self._limits.max_page_size:
            raise InvalidArgument(f"page_size is 0 (default {DEFAULT_PAGE}) to {self._limits.max_page_size}")
        if author:
            check_agent_key(author, "author")
        cursor = None
        if page_token:
            token = PageToken.decode(page_token)
            newer, cursor, author = token.newer, token.position, token.author
        elif cursor_message:
            cursor = self._store.message_position(agent, group_uuid, cursor_message)
            if cursor is None:
                raise NotFound("cursor_message names no message in this group")
        elif cursor_time:
            if cursor_time < 0:
                raise InvalidArgument("cursor_time is microseconds since the Unix epoch")
            cursor = (cursor_time, LAST_HASH if newer else b"")
        limit = page_size or DEFAULT_PAGE
        records, last = self._store.messages_range(agent, group_uuid, cursor, newer, limit, author)
        next_token = ""
        if last is not None and len(records) == limit:
            more, _ = self._store.messages_range(agent, group_uuid, last, newer, 1, author)
            if more:
                next_token = PageToken(newer, last, author).encode()
        return records, next_token

    def get_conversations(self, agent: bytes) -> list[lobby_pb2.Conversation]:
        """Every group the agent is in with its latest message, the most recent first."""
        conversations = []
        for info in self._groups.get_groups(agent)[1]:
            latest, _ = self._store.messages_range(agent, info.group_uuid, None, False, 1)
            conversations.append(lobby_pb2.Conversation(group=info, latest=latest[0] if latest else None))
        return sorted(conversations, reverse=True,
                      key=lambda c: c.latest.entry.time_sent if c.HasField("latest") else c.group.timestamp)

    def get_source_chain(self, agent: bytes, from_seq: int, limit: int):
        if limit < 0 or limit > MAX_CHAIN_PAGE:
            raise InvalidArgument(f"limit is 0 (default {DEFAULT_CHAIN_PAGE}) to {MAX_CHAIN_PAGE}")
        return self._store.actions(agent, from_seq, limit or DEFAULT_CHAIN_PAGE)
