"""An agent's UI as a Python object: the seed's UI calls on its lobby, and its signals as UI events.

`Client` talks to one lobby with one app token. `start_signals` (or `events()`) opens the
signal stream; each signal becomes a `UiEvent`, and the first message of a group that is
not among the accepted `group_uuids` of the agent's Groups entry carries the banner
(`first_message`, with the actions accept, delete and block). When the stream breaks (the
lobby restarts, say), the client opens it again with backoff from the last seq it saw, so
the UI sees every signal once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import logging
import mimetypes
import os
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Callable

import grpc

from kizuna.v1 import common_pb2, lobby_pb2, lobby_pb2_grpc

log = logging.getLogger("kizuna.client")

RPC_TIMEOUT = 30.0
SOURCE_CHAIN_PAGE = 1000
BANNER_ACTIONS = ("accept", "delete", "block")
KINDS = ("message", "invite", "delivery", "group_update", "receipt", "typing")
EVENT_BUFFER = 10_000  # events waiting for the consumer; when full, the stream is read no further until it takes some
EVENT_HISTORY = 10_000  # events_so_far() keeps the newest this many
ACK_INTERVAL = 1.0  # seconds between acks of the events the consumer took
RECONNECT_INITIAL, RECONNECT_MAX = 0.1, 5.0  # the wait before opening a broken stream again, doubling
SEND_ATTEMPTS = 3  # tries of one send (same transaction id) when the lobby is unreachable or slow
RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
RESUMED = (*RETRIED, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)
FILE_PIECE = 256 * 1024  # bytes per SendFile request
FILE_SECONDS_PER_MIB = 1.0  # added to a file call's deadline for each MiB it carries


class ClientError(Exception):
    """A lobby call failed; `code` is the gRPC status code, `details` the server's words."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(code, details)
        self.code = code
        self.details = details or ""

    def __str__(self) -> str:
        name = self.code.name if isinstance(self.code, grpc.StatusCode) else str(self.code)
        return f"{name}: {self.details}" if self.details else name


def is_first_message(group_uuid: str, groups: common_pb2.Groups | None, first_in_history: bool = True) -> bool:
    """The banner rule: a message shows the banner when it is the first of its group in the
    agent's history (the lobby flags it) and the group is not among the accepted
    `group_uuids` of the agent's Groups entry."""
    return first_in_history and (groups is None or group_uuid not in groups.group_uuids)


@dataclass
class UiEvent:
    """What the UI shows for one signal."""

    kind: str  # "message" | "invite" | "delivery" | "group_update" | "receipt" | "typing"
    group_uuid: str
    signal: lobby_pb2.Signal
    record: lobby_pb2.MessageRecord | None = None
    warning: str = ""
    first_message: bool = False
    actions: tuple[str, ...] = field(default=())
    seq: int = 0  # the signal's seq (0: a typing signal, never kept)

    @property
    def group(self) -> lobby_pb2.GroupInfo | None:
        """The group of an invite signal."""
        return self.signal.invite.group if self.kind == "invite" else None

    @property
    def delivery(self) -> lobby_pb2.DeliverySignal | None:
        """A sent message's changed outcome for one receiver, of a delivery signal."""
        return self.signal.delivery if self.kind == "delivery" else None

    @property
    def update(self) -> lobby_pb2.GroupUpdateSignal | None:
        """A group change (add, remove, rename, leave), of a group_update signal."""
        return self.signal.group_update if self.kind == "group_update" else None

    @property
    def receipt(self) -> common_pb2.Receipt | None:
        """A receiver's delivered or read receipt for one of this agent's messages (an event
        from `to_events` carries one; a receipt signal of several makes one event each)."""
        return self.signal.receipt.receipts[0] if self.kind == "receipt" and self.signal.receipt.receipts else None

    @property
    def typing(self) -> common_pb2.Typing | None:
        """Someone in a group started or stopped typing."""
        return self.signal.typing.typing if self.kind == "typing" else None


_STREAM_END = object()


class Client:
    """One agent's UI on its lobby. Use as `async with Client(address, token) as c:`.

    `stub` is a Lobby stub to call instead of opening a channel to `lobby_address` (one on a
    channel of the UI's own, or a stand-in for the lobby); the client never closes it.
    `since`: the last seq the UI saw before (0: none), where the signal stream starts;
    `last_seq` follows what arrives. With `auto_ack`, the events the consumer took are acked
    every ACK_INTERVAL, so the lobby drops them. At most `buffer` events wait for the
    consumer: a slower one makes the client stop reading the stream, the lobby keeps the
    rest (and should the stream fall 10,000 behind, closes it, and the client resumes from
    `last_seq`), so nothing is lost."""

    def __init__(self, lobby_address: str, app_token: str, timeout: float = RPC_TIMEOUT,
                 stub: lobby_pb2_grpc.LobbyStub | None = None, since: int = 0, auto_ack: bool = True,
                 buffer: int = EVENT_BUFFER):
        self.lobby_address = lobby_address
        self._metadata = (("authorization", f"Bearer {app_token}"),)
        self._timeout = timeout
        self._channel: grpc.aio.Channel | None = None
        self._given_stub = stub
        self._stub: lobby_pb2_grpc.LobbyStub | None = stub
        self._groups: common_pb2.Groups | None = None
        self._details: dict[str, lobby_pb2.GroupInfo] = {}
        self._stream: grpc.aio.UnaryStreamCall | None = None
        self._stream_task: asyncio.Task | None = None
        self._stream_error: ClientError | None = None
        self._queue: asyncio.Queue = asyncio.Queue()
        self._buffer = buffer
        self._taken = asyncio.Event()
        self._live = asyncio.Event()
        self._ack_task: asyncio.Task | None = None
        self._auto_ack = auto_ack
        self._events: collections.deque[UiEvent] = collections.deque(maxlen=EVENT_HISTORY)
        self._callbacks: dict[str, list[Callable]] = collections.defaultdict(list)
        self.last_seq = since
        self._taken_seq = self._acked_seq = since
        self.reconnects = 0
        self.agent: bytes | None = None

    @classmethod
    def from_network(cls, directory, agent: str, **options) -> "Client":
        """A client for `agent` (its name or username) of the `kizuna net` network in
        `directory`, with its lobby address and app token from network.json."""
        from kizuna import net

        network = net.load(directory)
        return cls(network.lobby_address(agent), network.token(agent), **options)

    # -------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> "Client":
        self._ensure_channel()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def _ensure_channel(self) -> lobby_pb2_grpc.LobbyStub:
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(self.lobby_address)
            self._stub = lobby_pb2_grpc.LobbyStub(self._channel)
        return self._stub

    async def close(self) -> None:
        """Stops the signal stream (acking what the consumer took) and closes the channel."""
        if self._stream is not None:
            self._stream.cancel()
        for task in (self._stream_task, self._ack_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._stream_task is not None:
            self._queue.put_nowait(_STREAM_END)
            if self._auto_ack and self._taken_seq > self._acked_seq:
                with contextlib.suppress(ClientError, asyncio.TimeoutError):
                    await asyncio.wait_for(self.ack(), 2.0)
        self._stream = None
        self._stream_task = self._ack_task = None
        if self._channel is not None:
            await self._channel.close()
        self._channel = None
        self._stub = self._given_stub

    async def _call(self, method: str, request):
        stub = self._ensure_channel()
        try:
            return await getattr(stub, method)(request, metadata=self._metadata, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise ClientError(exc.code(), exc.details()) from None

    # -------------------------------------------------------------- groups

    async def groups(self) -> lobby_pb2.GetGroupsResponse:
        """The Groups entry and the details of every known group; caches both."""
        answer = await self._call("GetGroups", lobby_pb2.GetGroupsRequest())
        self._groups = common_pb2.Groups()
        self._groups.CopyFrom(answer.groups)
        self._details = {g.group_uuid: g for g in answer.details}
        return answer

    @property
    def cached_groups(self) -> common_pb2.Groups | None:
        return self._groups

    def group_info(self, group_uuid: str) -> lobby_pb2.GroupInfo | None:
        """The cached details of a group, if known."""
        return self._details.get(group_uuid)

    async def create_group(self, name: str, participants: list[str]) -> lobby_pb2.CreateGroupResponse:
        answer = await self._call(
            "CreateGroup", lobby_pb2.CreateGroupRequest(name=name, participants=list(participants))
        )
        self._details[answer.group.group_uuid] = answer.group
        await self.groups()
        return answer

    async def _group_call(self, method: str, group_uuid: str) -> common_pb2.Groups:
        answer = await self._call(method, lobby_pb2.GroupRequest(group_uuid=group_uuid))
        self._groups = common_pb2.Groups()
        self._groups.CopyFrom(answer.groups)
        with contextlib.suppress(ClientError):
            await self.groups()  # the groups' states changed too; the entry above already holds
        return answer.groups

    async def accept(self, group_uuid: str) -> common_pb2.Groups:
        return await self._group_call("AcceptGroup", group_uuid)

    async def delete(self, group_uuid: str) -> common_pb2.Groups:
        return await self._group_call("DeleteGroup", group_uuid)

    async def block(self, group_uuid: str) -> common_pb2.Groups:
        return await self._group_call("BlockGroup", group_uuid)

    async def unblock(self, group_uuid: str) -> common_pb2.Groups:
        return await self._group_call("UnblockGroup", group_uuid)

    # -------------------------------------------------------------- group changes

    async def _update_call(self, method: str, request) -> lobby_pb2.GroupUpdateResponse:
        answer = await self._call(method, request)
        if answer.group.group_uuid:
            self._details[answer.group.group_uuid] = answer.group
        with contextlib.suppress(ClientError):
            await self.groups()
        return answer

    async def add_members(self, group_uuid: str, participants: list[str]) -> lobby_pb2.GroupUpdateResponse:
        """Admins: adds members (usernames or base64 keys); each gets an invite."""
        return await self._update_call(
            "AddMembers", lobby_pb2.MembersRequest(group_uuid=group_uuid, participants=list(participants)))

    async def remove_members(self, group_uuid: str, participants: list[str]) -> lobby_pb2.GroupUpdateResponse:
        """Admins: removes members; they stop receiving the group's messages."""
        return await self._update_call(
            "RemoveMembers", lobby_pb2.MembersRequest(group_uuid=group_uuid, participants=list(participants)))

    async def rename(self, group_uuid: str, name: str) -> lobby_pb2.GroupUpdateResponse:
        """Admins: a new name (1 to 50 characters) every member sees."""
        return await self._update_call("RenameGroup", lobby_pb2.RenameGroupRequest(group_uuid=group_uuid, name=name))

    async def leave(self, group_uuid: str) -> lobby_pb2.GroupUpdateResponse:
        """This agent leaves the group; the others see it leave."""
        return await self._update_call("LeaveGroup", lobby_pb2.GroupRequest(group_uuid=group_uuid))

    async def mark_read(self, group_uuid: str, message_hashes: list[bytes]) -> int:
        """Read receipts for messages the UI showed; how many were newly marked."""
        answer = await self._call(
            "MarkRead", lobby_pb2.MarkReadRequest(group_uuid=group_uuid, message_hashes=list(message_hashes)))
        return answer.marked

    async def set_typing(self, group_uuid: str, typing: bool = True) -> int:
        """Tells the group's online members; how many were told."""
        answer = await self._call("SetTyping", lobby_pb2.SetTypingRequest(group_uuid=group_uuid, typing=typing))
        return answer.told

    async def conversations(self) -> list[lobby_pb2.Conversation]:
        """Every group with its latest message, the most recent first."""
        return list((await self._call("GetConversations", lobby_pb2.GetConversationsRequest())).conversations)

    # -------------------------------------------------------------- agents

    async def set_username(self, username: str):
        return (await self._call("SetUsername", lobby_pb2.SetUsernameRequest(username=username))).agent_info

    async def agent_by_username(self, username: str):
        return (
            await self._call("GetAgentByUsername", lobby_pb2.GetAgentByUsernameRequest(username=username))
        ).agent_info

    async def block_agent(self, agent: bytes) -> common_pb2.BlockedAgents:
        return (await self._call("BlockAgent", lobby_pb2.AgentRequest(agent=agent))).blocked_agents

    async def unblock_agent(self, agent: bytes) -> common_pb2.BlockedAgents:
        return (await self._call("UnblockAgent", lobby_pb2.AgentRequest(agent=agent))).blocked_agents

    async def blocked_agents(self) -> common_pb2.BlockedAgents:
        """The agents this agent blocked."""
        return (await self._call("GetBlockedAgents", lobby_pb2.GetBlockedAgentsRequest())).blocked_agents

    # -------------------------------------------------------------- messages

    async def send(self, group_uuid: str, payload: str, reply_to: bytes = b"",
                   transaction_id: str | None = None) -> lobby_pb2.SendGroupMessageResponse:
        """`reply_to`: the message_hash of the message (in the same group) this one answers.
        The lobby answers a send repeated with the same `transaction_id` (1 to 64 printable
        ASCII characters) as it did the first, sending nothing again; without one the client
        makes one, so that its own tries (up to SEND_ATTEMPTS, when the lobby is unreachable
        or too slow) send the message once."""
        request = lobby_pb2.SendGroupMessageRequest(group_uuid=group_uuid, payload=payload, reply_to=reply_to,
                                                    transaction_id=transaction_id or uuid.uuid4().hex)
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await self._call("SendGroupMessage", request)
            except ClientError as exc:
                if exc.code not in RETRIED or attempt == SEND_ATTEMPTS:
                    raise
                await asyncio.sleep(RECONNECT_INITIAL * 2 ** attempt)

    async def history(self, group_uuid: str, page_size: int = 50, page_token: str = "", cursor_message: bytes = b"",
                      cursor_time: int = 0, newer: bool = False, author: bytes = b"") -> lobby_pb2.GetMessagesResponse:
        """One page of a group's history: newest first towards older messages, or with
        `newer` oldest first towards newer ones; from a page token, a message or a time
        (exclusive); only `author`'s messages when given."""
        return await self._call(
            "GetMessages",
            lobby_pb2.GetMessagesRequest(group_uuid=group_uuid, page_size=page_size, page_token=page_token,
                                         cursor_message=cursor_message, cursor_time=cursor_time, newer=newer,
                                         author=author),
        )

    async def all_history(self, group_uuid: str, page_size: int = 500) -> list[lobby_pb2.MessageRecord]:
        """A group's whole history, newest first, following the pages."""
        records: list[lobby_pb2.MessageRecord] = []
        token = ""
        while True:
            page = await self.history(group_uuid, page_size=page_size, page_token=token)
            records.extend(page.messages)
            if not page.next_page_token or not page.messages:
                return records
            token = page.next_page_token

    async def sync_inbox(self) -> lobby_pb2.SyncInboxResponse:
        """Asks the lobby to catch up now on what waits in the agent's inboxes."""
        return await self._call("SyncInbox", lobby_pb2.SyncInboxRequest())

    async def source_chain(self) -> list[common_pb2.Signed]:
        """Every action of the agent's source chain, oldest first."""
        actions: list[common_pb2.Signed] = []
        from_seq = 0
        while True:
            page = await self._call(
                "GetSourceChain", lobby_pb2.GetSourceChainRequest(from_seq=from_seq, limit=SOURCE_CHAIN_PAGE)
            )
            if not page.actions:
                return actions
            actions.extend(page.actions)
            last = common_pb2.Action()
            last.ParseFromString(page.actions[-1].body)
            if last.seq + 1 <= from_seq:  # a server that ignores from_seq must not loop us
                return actions
            from_seq = last.seq + 1

    # -------------------------------------------------------------- signals

    async def start_signals(self, timeout: float = 10.0) -> None:
        """Fetches the Groups entry, opens the signal stream and returns once it is live (the
        kept signals after `last_seq` were replayed and `ready` arrived); from then on it
        resumes by itself when it breaks, until `close`. Signals become UiEvents."""
        if self._stream_task is not None:
            return
        self._ensure_channel()
        await self.groups()
        self._stream_task = asyncio.create_task(self._follow_signals())
        live = asyncio.create_task(self._live.wait())
        await asyncio.wait({live, self._stream_task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not live.done():
            live.cancel()
            task, self._stream_task = self._stream_task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if self._stream_error is not None:
                raise self._stream_error
            raise TimeoutError(f"no ready signal from {self.lobby_address} within {timeout}s")
        if self._auto_ack:
            self._ack_task = asyncio.create_task(self._ack_taken())

    async def _follow_signals(self) -> None:
        """Reads the signal stream and opens it again after a break (backoff with jitter),
        from `last_seq`, until the lobby refuses it for good (`_stream_error`)."""
        wait = RECONNECT_INITIAL
        while True:
            try:
                await self._read_stream()
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RESUMED:
                    self._stream_error = ClientError(exc.code(), exc.details())
                    self._queue.put_nowait(_STREAM_END)
                    return
                log.info("signal stream broke (%s); resuming from seq %d", exc.code().name, self.last_seq)
            except Exception as exc:  # noqa: BLE001 - a consumer waiting must hear that the stream ended
                log.exception("reading the signal stream failed")
                self._stream_error = ClientError(grpc.StatusCode.INTERNAL, f"reading the signal stream failed: {exc}")
                self._queue.put_nowait(_STREAM_END)
                return
            if self._live.is_set():
                wait = RECONNECT_INITIAL
            self._live.clear()
            self.reconnects += 1
            await asyncio.sleep(wait * random.uniform(0.5, 1.0))
            wait = min(wait * 2, RECONNECT_MAX)

    async def _read_stream(self) -> None:
        """One signal stream from `last_seq`: the replay, `ready`, then live signals; a
        signal seen already (seq not past `last_seq`) is skipped."""
        stream = self._stream = self._stub.Signals(lobby_pb2.SignalsRequest(since=self.last_seq),
                                                    metadata=self._metadata)
        try:
            while (signal := await stream.read()) is not grpc.aio.EOF:
                if signal.WhichOneof("signal") == "ready":
                    self.agent = signal.ready.agent
                    if self.reconnects:
                        await self._refresh_groups_quietly()
                    self._live.set()
                elif not signal.seq or signal.seq > self.last_seq:
                    self.last_seq = max(self.last_seq, signal.seq)
                    await self.feed_signal(signal)
        finally:
            stream.cancel()

    async def _ack_taken(self) -> None:
        while True:
            await asyncio.sleep(ACK_INTERVAL)
            if self._taken_seq > self._acked_seq:
                with contextlib.suppress(ClientError):
                    await self.ack()

    async def ack(self, seq: int | None = None) -> int:
        """Tells the lobby the UI saw the signals up to `seq` (by default, those of the events
        taken so far): it keeps them no longer. How many it still keeps."""
        seq = self._taken_seq if seq is None else seq
        kept = (await self._call("AckSignals", lobby_pb2.AckSignalsRequest(seq=seq))).kept
        self._acked_seq = max(self._acked_seq, seq)
        return kept

    def on(self, kind: str, callback: Callable[[UiEvent], object]) -> Callable:
        """Calls `callback(event)` (a function or a coroutine function) for every event of
        `kind` (one of KINDS) as it arrives, before it waits for `next_event`; returns it."""
        if kind not in KINDS:
            raise ValueError(f"kind is one of {', '.join(KINDS)}")
        self._callbacks[kind].append(callback)
        return callback

    async def _run_callbacks(self, event: UiEvent) -> None:
        for callback in self._callbacks.get(event.kind, ()):
            try:
                result = callback(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001 - a UI's callback must not end the stream
                log.exception("a %s callback failed", event.kind)

    async def feed_signal(self, signal: lobby_pb2.Signal) -> list[UiEvent]:
        """Takes `signal` as if it had arrived on the signal stream: its UI events (see
        `to_events`) join `events_so_far()` and wait for `next_event` / `wait_for`.
        Returns them. The stream feeds every signal after `ready` through here; a UI that
        gets signals another way may feed them too."""
        events = await self.to_events(signal)
        for event in events:
            event.seq = signal.seq
            self._events.append(event)
            await self._run_callbacks(event)
            while self._queue.qsize() >= self._buffer:
                self._taken.clear()
                await self._taken.wait()
            self._queue.put_nowait(event)
        return events

    async def to_events(self, signal: lobby_pb2.Signal) -> list[UiEvent]:
        """The UI events for one signal: one per receipt of a receipt signal (each event's
        signal carries just its receipt), else at most one (see `to_event`)."""
        if signal.WhichOneof("signal") == "receipt":
            return [UiEvent(kind="receipt", group_uuid=receipt.group_uuid,
                            signal=lobby_pb2.Signal(receipt=lobby_pb2.ReceiptSignal(receipts=[receipt])))
                    for receipt in signal.receipt.receipts]
        event = await self.to_event(signal)
        return [event] if event is not None else []

    async def to_event(self, signal: lobby_pb2.Signal) -> UiEvent | None:
        """The UI event for a signal of one event; a message gets the banner when its group
        isn't accepted. A receipt signal may carry several receipts: this gives only the
        first's event, so a UI reading signals itself should call `to_events`."""
        kind = signal.WhichOneof("signal")
        if kind == "message":
            record = signal.message.message
            group_uuid = record.entry.group_uuid
            first = signal.message.first_message and await self.is_first_message(group_uuid)
            return UiEvent(
                kind="message",
                group_uuid=group_uuid,
                signal=signal,
                record=record,
                warning=record.warning,
                first_message=first,
                actions=BANNER_ACTIONS if first else (),
            )
        if kind == "invite":
            group = signal.invite.group
            self._details[group.group_uuid] = group
            return UiEvent(kind="invite", group_uuid=group.group_uuid, signal=signal)
        if kind == "delivery":
            return UiEvent(kind="delivery", group_uuid=signal.delivery.group_uuid, signal=signal)
        if kind == "group_update":
            group = signal.group_update.group
            group_uuid = group.group_uuid or signal.group_update.update.group_uuid
            if group.group_uuid:
                self._details[group.group_uuid] = group
            if group.departed:
                await self._refresh_groups_quietly()
            return UiEvent(kind="group_update", group_uuid=group_uuid, signal=signal)
        if kind == "receipt":
            events = await self.to_events(signal)
            return events[0] if events else None
        if kind == "typing":
            return UiEvent(kind="typing", group_uuid=signal.typing.typing.group_uuid, signal=signal)
        return None  # `ready` again, an empty signal, or a kind this client doesn't know

    async def _refresh_groups_quietly(self) -> None:
        with contextlib.suppress(ClientError, grpc.aio.AioRpcError):
            await self.groups()

    async def is_first_message(self, group_uuid: str) -> bool:
        """The banner rule against a Groups entry that is never stale: when the group isn't in
        the cached accepted set, the entry is fetched again before deciding."""
        if not is_first_message(group_uuid, self._groups):
            return False
        try:
            await self.groups()
        except ClientError:
            pass  # decide on the cached entry; one failed refresh must not end the stream
        return is_first_message(group_uuid, self._groups)

    async def next_event(self, timeout: float | None = 10.0) -> UiEvent:
        """The next UI event not yet taken; TimeoutError when none comes within `timeout`."""
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no UI event within {timeout}s") from None
        if item is _STREAM_END:
            self._queue.put_nowait(_STREAM_END)
            raise self._stream_error or ClientError(grpc.StatusCode.CANCELLED, "signal stream ended")
        self._taken.set()
        self._taken_seq = max(self._taken_seq, item.seq)
        return item

    async def events(self) -> AsyncIterator[UiEvent]:
        """`async for event in client.events()`: every UI event as it comes, the stream
        opened first when it is not open (`start_signals`). Ends when the client closes;
        raises ClientError when the lobby refuses the stream for good."""
        await self.start_signals()
        while True:
            try:
                yield await self.next_event(timeout=None)
            except ClientError:
                if self._stream_error is not None:
                    raise
                return

    async def wait_for(self, predicate: Callable[[UiEvent], bool], timeout: float = 10.0) -> UiEvent:
        """Takes events until one satisfies `predicate` and returns it; the others stay in
        `events_so_far()`. TimeoutError when none does within `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no matching UI event within {timeout}s")
            try:
                event = await self.next_event(remaining)
            except TimeoutError:
                raise TimeoutError(f"no matching UI event within {timeout}s") from None
            if predicate(event):
                return event

    def events_so_far(self) -> list[UiEvent]:
        """Every UI event received so far, oldest first."""
        return list(self._events)

    # -------------------------------------------------------------- files and pins

    def _file_timeout(self, size: int) -> float:
        return self._timeout + FILE_SECONDS_PER_MIB * size / (1024 * 1024)

    async def send_file(self, group_uuid: str, path, text: str = "", progress: Callable[[int, int], None] | None = None,
                        media_type: str = "", reply_to: bytes = b"") -> lobby_pb2.SendGroupMessageResponse:
        """Sends a message with the file at `path` (and `text`); `progress(sent, size)` after
        each piece of it that went. The lobby encrypts and stores the file in the group's
        space, then sends the message: the answer is SendGroupMessage's."""
        path = Path(path)
        size = path.stat().st_size
        header = lobby_pb2.FileHeader(
            group_uuid=group_uuid, payload=text, reply_to=reply_to, name=path.name, size=size,
            media_type=media_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream")

        async def requests():
            yield lobby_pb2.SendFileRequest(header=header)
            sent = 0
            with path.open("rb") as f:
                while piece := f.read(FILE_PIECE):
                    yield lobby_pb2.SendFileRequest(data=piece)
                    sent += len(piece)
                    if progress is not None:
                        progress(sent, size)
        stub = self._ensure_channel()
        try:
            return await stub.SendFile(requests(), metadata=self._metadata, timeout=self._file_timeout(size))
        except grpc.aio.AioRpcError as exc:
            raise ClientError(exc.code(), exc.details()) from None

    async def fetch_file(self, message: lobby_pb2.MessageRecord, dest, progress: Callable[[int, int], None] | None = None,
                         attachment: int = 0) -> Path:
        """Fetches a message's file into `dest` (a directory: the file's own name in it) and
        returns its path; `progress(received, size)` after each chunk. The file appears only
        once the lobby checked all of it; on any error nothing is left at `dest`."""
        ref = message.entry.attachments[attachment]
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / Path(ref.name).name
        partial = dest.with_name(dest.name + ".part")
        request = lobby_pb2.FetchFileRequest(group_uuid=message.entry.group_uuid, message_hash=message.message_hash,
                                             attachment=attachment)
        stub = self._ensure_channel()
        try:
            with partial.open("wb") as f:
                async for chunk in stub.FetchFile(request, metadata=self._metadata, timeout=self._file_timeout(ref.size)):
                    f.write(chunk.data)
                    if progress is not None:
                        progress(chunk.offset + len(chunk.data), chunk.size)
            os.replace(partial, dest)
        except grpc.aio.AioRpcError as exc:
            raise ClientError(exc.code(), exc.details()) from None
        finally:
            partial.unlink(missing_ok=True)
        return dest

    async def pin(self, group_uuid: str, message_hash: bytes) -> lobby_pb2.GroupUpdateResponse:
        """Pins a message of the group for every member."""
        return await self._call("PinMessage", lobby_pb2.PinRequest(group_uuid=group_uuid, message_hash=message_hash))

    async def unpin(self, group_uuid: str, message_hash: bytes) -> lobby_pb2.GroupUpdateResponse:
        return await self._call("UnpinMessage", lobby_pb2.PinRequest(group_uuid=group_uuid, message_hash=message_hash))

    async def pins(self, group_uuid: str) -> list[lobby_pb2.MessageRecord]:
        """The group's pinned messages, oldest pin first (those this agent's history holds)."""
        info = next((g for g in (await self.groups()).details if g.group_uuid == group_uuid), None)
        if info is None:
            raise ClientError(grpc.StatusCode.NOT_FOUND, "no such group")
        by_hash = {r.message_hash: r for r in await self.all_history(group_uuid)}
        return [by_hash[h] for h in info.pinned if h in by_hash]
