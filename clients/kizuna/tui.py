"""`kizuna chat`: one agent's chat in the terminal, a Textual app on the agent's lobby.

The groups list (with what arrived unread), the open group's history (older pages load as
one scrolls up), the banner on a group's first message, composing, replies, delivery
marks, receipts and typing, and the group commands as slash commands. Signals come through
`event_source`, on the client's stream, which resumes by itself from the last signal seen.
"""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass, field
from pathlib import Path

from textual import events, on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Footer, Input, Label, ListItem, ListView

from kizuna import net
from kizuna.cli import CliError, Names, participant_refs, update_words
from kizuna.files_cli import attachment_words, progress_words
from kizuna.client import BANNER_ACTIONS, Client, ClientError, UiEvent, is_first_message
from kizuna.v1 import lobby_pb2

PAGE_SIZE = 50
TYPING_EVERY = 3.0  # seconds between "typing" calls while one keeps typing
TYPING_SHOWN = 8.0  # seconds a "typing" line stays without news
START_INITIAL, START_MAX = 0.2, 2.0  # the waits between tries to open the stream at start
STATE_POLL = 0.5  # how often the stream's state is looked at while no event comes

DELIVERY_MARKS = {
    lobby_pb2.DELIVERED: "delivered ✓",
    lobby_pb2.STORED_IN_DHT: "in DHT …",
    lobby_pb2.QUEUED: "queued …",
    lobby_pb2.FAILED: "failed ✗",
}
HELP = ("/create NAME a,b · /add a,b · /remove a,b · /rename NAME · /leave · /accept /delete /block /unblock"
        " · /file PATH · /fetch [DIR] · ctrl+o then ↑↓ and r: reply to a message · /help")


@dataclass
class StreamState:
    """The signal stream broke (`live` False, `detail` why) or is live again after a break."""

    live: bool
    detail: str = ""


async def event_source(client: Client, poll: float = STATE_POLL, initial: float = START_INITIAL,
                       longest: float = START_MAX):
    """Every UI event of the agent's signal stream, for as long as it is iterated, and a
    StreamState when the stream breaks and when it is live again. The client resumes a
    broken stream by itself from the last signal it saw, so nothing is missed; only its
    first opening is tried here again (with backoff) while the lobby cannot be reached."""
    delay, live = initial, True
    while True:
        try:
            await client.start_signals()
            break
        except (ClientError, TimeoutError) as exc:
            live = False
            yield StreamState(live=False, detail=str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, longest)
    if not live:
        live = True
        yield StreamState(live=True)
    while True:
        try:
            event = await client.next_event(poll)
        except TimeoutError:
            event = None
        if client.live != live:
            live = client.live
            yield StreamState(live=live, detail="" if live else "the lobby does not answer")
        if event is not None:
            yield event


def clock(micros: int) -> str:
    return datetime.datetime.fromtimestamp(micros / 1e6).strftime("%H:%M") if micros else "--:--"


class Line(Label):
    """A label whose plain text is kept in `text` (what tests and the reply line read)."""

    def __init__(self, text: str = "", **kwargs):
        super().__init__(text, markup=False, **kwargs)
        self.text = text

    def show(self, text: str) -> None:
        self.text = text
        self.update(text)


class MessageList(ListView):
    """The open group's messages, oldest at the top; says when one scrolls past the top."""

    BINDINGS = [Binding("r", "app.reply", "Reply")]

    class ReachedTop(Message):
        pass

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value <= 0 < old_value:
            self.post_message(self.ReachedTop())

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        if self.scroll_y <= 0:
            self.post_message(self.ReachedTop())

    def action_cursor_up(self) -> None:
        if self.index == 0 or not len(self):
            self.post_message(self.ReachedTop())
        super().action_cursor_up()


@dataclass
class OpenGroup:
    """What the view holds of the open group."""

    group_uuid: str
    records: dict[bytes, lobby_pb2.MessageRecord] = field(default_factory=dict)
    older_token: str = ""
    loading: bool = False


class ChatApp(App):
    """One agent's chat. `page_size`: messages per history page."""

    TITLE = "kizuna"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    Line { width: 100%; }
    #groups { width: 28; border-right: solid $primary; }
    #banner { height: auto; display: none; background: $warning 20%; padding: 0 1; }
    #banner.shown { display: block; }
    #banner Button { margin: 0 1; min-width: 10; }
    #banner-buttons { height: 3; }
    #messages { height: 1fr; }
    #title { height: 1; padding: 0 1; background: $boost; text-style: bold; }
    #typing, #replying, #status { height: 1; padding: 0 1; }
    #help { height: auto; padding: 0 1; }
    #status { background: $panel; }
    #help { color: $text-muted; }
    """
    BINDINGS = [
        Binding("ctrl+n", "next_group(1)", "Next group", priority=True),
        Binding("ctrl+p", "next_group(-1)", "Previous group", priority=True),
        Binding("ctrl+o", "focus_messages", "Messages", priority=True),
        Binding("escape", "cancel_reply", "Cancel reply"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, network: net.Network, agent_name: str, page_size: int = PAGE_SIZE):
        super().__init__()
        self.network = network
        self.agent_name = agent_name
        self.agent = network.agent_key(agent_name)
        self.page_size = page_size
        self.client = Client(network.lobby_address(agent_name), network.token(agent_name))
        self.names = Names(network, self.client)
        self.sub_title = agent_name
        self.conversations: list[lobby_pb2.Conversation] = []
        self.unread: dict[str, int] = {}
        self.open: OpenGroup | None = None
        self.outcomes: dict[bytes, dict[bytes, int]] = {}
        self.receipts: dict[bytes, dict[bytes, object]] = {}
        self.reply_to: bytes = b""
        self.typing_at = 0.0
        self.typers: dict[bytes, object] = {}
        self.view_lock = asyncio.Lock()  # one change of a list (groups, messages) at a time

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield ListView(id="groups")
            with Vertical():
                yield Line(id="title")
                with Vertical(id="banner"):
                    yield Line(id="banner-text")
                    with Horizontal(id="banner-buttons"):
                        for action in BANNER_ACTIONS:
                            yield Button(action.capitalize(), id=action)
                yield MessageList(id="messages")
                yield Line(id="typing")
                yield Line(id="replying")
                yield Input(placeholder="message, or /help", id="compose")
        yield Line(HELP, id="help")
        yield Line(f"connecting as {self.agent_name}…", id="status")
        yield Footer()

    # -------------------------------------------------------------- plumbing

    def status(self, text: str) -> None:
        self.line("status").show(text)

    def line(self, widget_id: str) -> Line:
        return self.query_one(f"#{widget_id}", Line)

    def act(self, work, what: str = "") -> None:
        """Runs `work` (a coroutine) in the background; a failure shows in the status line."""
        async def guarded():
            try:
                await work
            except (ClientError, CliError, net.NetError, TimeoutError) as exc:
                self.status(f"{what}: {exc}" if what else str(exc))
            except Exception as exc:  # noqa: BLE001 - the person sees one line, never a traceback
                self.status(f"{what or 'failed'}: {type(exc).__name__}: {exc}")
        self.run_worker(guarded(), group=what or "work")

    async def on_mount(self) -> None:
        self.query_one("#compose", Input).focus()
        self.query_one("#messages", MessageList).anchor()
        self.act(self.reload(), "loading groups")
        self.run_worker(self.follow_events(), group="signals")

    async def on_unmount(self) -> None:
        await self.client.close()

    async def follow_events(self) -> None:
        async for item in event_source(self.client):
            try:
                await self.take(item)
            except Exception as exc:  # noqa: BLE001 - one bad event must not end the stream
                self.status(f"{type(exc).__name__}: {exc}")

    # -------------------------------------------------------------- groups list

    async def reload(self, reopen: bool = False) -> None:
        """Fetches the groups (and with `reopen` the open group's newest page) again."""
        await self.client.groups()
        self.conversations = [c for c in await self.client.conversations() if not c.group.departed]
        await self.draw_groups()
        self.draw_title()
        if self.open and self.open.group_uuid not in self.group_uuids():
            await self.show_group(None)
        elif self.open and reopen:
            await self.show_group(self.open.group_uuid)
        elif not self.open and self.conversations:
            await self.show_group(self.conversations[0].group.group_uuid)
        if not reopen:
            self.status(f"{self.agent_name}: {len(self.conversations)} groups")

    def group_uuids(self) -> list[str]:
        return [c.group.group_uuid for c in self.conversations]

    def group_label(self, group: lobby_pb2.GroupInfo) -> str:
        mark = "▸ " if self.open and self.open.group_uuid == group.group_uuid else "  "
        unread = self.unread.get(group.group_uuid, 0)
        state = {lobby_pb2.INVITED: " [invited]", lobby_pb2.BLOCKED: " [blocked]"}.get(group.state, "")
        return f"{mark}{group.name or group.group_uuid[:8]}{f' ({unread})' if unread else ''}{state}"

    async def draw_groups(self) -> None:
        """The list again: its rows relabelled in place while the groups and their order hold."""
        groups = self.query_one("#groups", ListView)
        async with self.view_lock:
            if [item.id for item in groups.children] == [f"g-{uuid}" for uuid in self.group_uuids()]:
                for uuid in self.group_uuids():
                    self.redraw_group(uuid)
                return
            index = groups.index
            await groups.clear()
            await groups.extend(ListItem(Line(self.group_label(c.group)), id=f"g-{c.group.group_uuid}")
                                for c in self.conversations)
            groups.index = index

    def redraw_group(self, group_uuid: str) -> None:
        for c in self.conversations:
            if c.group.group_uuid == group_uuid:
                for line in self.query(f"#g-{group_uuid} Line"):
                    line.show(self.group_label(c.group))

    @on(ListView.Selected, "#groups")
    def group_chosen(self, event: ListView.Selected) -> None:
        self.act(self.show_group(event.item.id.removeprefix("g-")), "opening the group")

    def action_next_group(self, step: int) -> None:
        uuids = self.group_uuids()
        if uuids:
            at = uuids.index(self.open.group_uuid) if self.open and self.open.group_uuid in uuids else -step
            self.act(self.show_group(uuids[(at + step) % len(uuids)]), "opening the group")

    # -------------------------------------------------------------- the open group

    def group_info(self, group_uuid: str) -> lobby_pb2.GroupInfo | None:
        return next((c.group for c in self.conversations if c.group.group_uuid == group_uuid),
                    self.client.group_info(group_uuid))

    async def show_group(self, group_uuid: str | None) -> None:
        """Opens a group on its newest page of history (None: no group open)."""
        async with self.view_lock:
            previous = self.open.group_uuid if self.open else None
            self.open = OpenGroup(group_uuid) if group_uuid else None
            self.reply_to, self.typers = b"", {}
            self.line("replying").show("")
            self.line("typing").show("")
            await self.query_one("#messages", MessageList).clear()
            for uuid in {previous, group_uuid} - {None}:
                self.unread[uuid] = 0 if uuid == group_uuid else self.unread.get(uuid, 0)
                self.redraw_group(uuid)
            self.draw_title()
            if self.open:
                await self.load_page(self.open)
            self.draw_banner()

    def draw_title(self) -> None:
        group = self.group_info(self.open.group_uuid) if self.open else None
        self.line("title").show(f"{group.name}: {self.names.agents(group.members or group.initial_members)}"
                                if group else "no group open: /create NAME a,b")

    async def load_older(self) -> None:
        """The page before the oldest message shown, unless one is on its way already."""
        view = self.open
        if view is None or view.loading or not view.older_token:
            return
        view.loading = True
        try:
            async with self.view_lock:
                if view is self.open:
                    await self.load_page(view)
        finally:
            view.loading = False

    async def load_page(self, view: OpenGroup) -> None:
        """Puts the page before the oldest shown at the top (the newest page at first)."""
        first = not view.records
        page = await self.client.history(view.group_uuid, page_size=self.page_size, page_token=view.older_token)
        view.older_token = page.next_page_token
        records = [r for r in reversed(page.messages) if r.message_hash not in view.records]
        for record in records:
            view.records[record.message_hash] = record
            self.receipts.setdefault(record.message_hash, {}).update({r.receiver: r for r in record.receipts})
        messages = self.query_one("#messages", MessageList)
        await messages.insert(0, [self.message_item(r) for r in records])
        if records and not first:
            messages.index = len(records)
        shown = len(view.records)
        self.status(f"{shown} message{'' if shown == 1 else 's'} shown"
                    + (" (scroll up for older)" if view.older_token else ""))
        await self.mark_read(records)

    @on(MessageList.ReachedTop)
    def reached_top(self) -> None:
        self.act(self.load_older(), "loading older messages")

    def message_item(self, record: lobby_pb2.MessageRecord) -> ListItem:
        return ListItem(Line(self.message_text(record)), id=f"m-{record.message_hash.hex()}")

    def message_text(self, record: lobby_pb2.MessageRecord) -> str:
        entry = record.entry
        text = f"{clock(entry.time_sent)} {self.names.agent(entry.author)}: {entry.payload}"
        if entry.reply_to:
            text = f"{clock(entry.time_sent)} {self.names.agent(entry.author)} ↪ {self.quote(entry.reply_to)}: " \
                   f"{entry.payload}"
        text += attachment_words(entry)
        if record.warning:
            text += f"  (warning: {record.warning})"
        if entry.author == self.agent and entry.receiver:
            text += "  [" + ", ".join(f"{self.names.agent(r)}: {self.mark(record.message_hash, r)}"
                                      for r in entry.receiver) + "]"
        return text

    def quote(self, message_hash: bytes) -> str:
        record = self.open.records.get(message_hash) if self.open else None
        if record is None:
            return message_hash.hex()[:8]
        payload = record.entry.payload
        return f'{self.names.agent(record.entry.author)} "{payload[:24]}{"…" if len(payload) > 24 else ""}"'

    def mark(self, message_hash: bytes, receiver: bytes) -> str:
        receipt = self.receipts.get(message_hash, {}).get(receiver)
        if receipt is not None and receipt.read_at:
            return "read ✓✓"
        if receipt is not None and receipt.delivered_at:
            return "delivered ✓"
        return DELIVERY_MARKS.get(self.outcomes.get(message_hash, {}).get(receiver), "sent")

    def redraw_message(self, message_hash: bytes) -> None:
        record = self.open.records.get(message_hash) if self.open else None
        if record is not None:
            for line in self.query(f"#m-{message_hash.hex()} Line"):
                line.show(self.message_text(record))

    async def add_message(self, record: lobby_pb2.MessageRecord) -> None:
        """Shows a new message of the open group at the bottom (once, however often it comes)."""
        async with self.view_lock:
            view = self.open
            if view is None or view.group_uuid != record.entry.group_uuid:
                return
            if view.records.setdefault(record.message_hash, record) is not record:
                return self.redraw_message(record.message_hash)
            await self.query_one("#messages", MessageList).append(self.message_item(record))

    async def mark_read(self, records) -> None:
        group = self.group_info(self.open.group_uuid) if self.open else None
        theirs = [r.message_hash for r in records if r.entry.author != self.agent]
        if theirs and group is not None and group.state != lobby_pb2.BLOCKED:
            await self.client.mark_read(self.open.group_uuid, theirs)

    # -------------------------------------------------------------- the banner

    def draw_banner(self) -> None:
        """The first-message banner: the open group isn't accepted and has someone's message."""
        view = self.open
        group = self.group_info(view.group_uuid) if view else None
        shown = (view is not None and group is not None and group.state != lobby_pb2.BLOCKED
                 and is_first_message(view.group_uuid, self.client.cached_groups)
                 and any(r.entry.author != self.agent for r in view.records.values()))
        if shown:
            creator = self.names.agent(group.creator)
            self.line("banner-text").show(f'First message in "{group.name}" (created by {creator}):'
                                          " accept, delete or block the group?")
        self.query_one("#banner").set_class(shown, "shown")

    @on(Button.Pressed)
    def banner_pressed(self, event: Button.Pressed) -> None:
        self.act(self.group_action(event.button.id), event.button.id)

    async def group_action(self, action: str) -> None:
        """accept, delete, block or unblock the open group."""
        group_uuid = self.require_open()
        label = self.names.group(group_uuid)
        await getattr(self.client, action)(group_uuid)
        await self.reload()
        self.draw_banner()
        self.status(f"{action}{'d' if action.endswith('e') else 'ed'} {label}")

    # -------------------------------------------------------------- composing

    def require_open(self) -> str:
        if self.open is None:
            raise CliError("no group open (create one: /create NAME a,b)")
        return self.open.group_uuid

    @on(Input.Changed, "#compose")
    def typed(self, event: Input.Changed) -> None:
        now = asyncio.get_running_loop().time()
        if self.open and event.value and not event.value.startswith("/") and now - self.typing_at > TYPING_EVERY:
            self.typing_at = now
            self.act(self.client.set_typing(self.open.group_uuid, True), "typing")

    @on(Input.Submitted, "#compose")
    def submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        event.input.value = ""
        if text.startswith("/"):
            self.act(self.command(text), text.split()[0])
        elif text:
            self.act(self.send(text), "sending")

    async def send(self, text: str) -> None:
        group_uuid, reply_to = self.require_open(), self.reply_to
        self.action_cancel_reply()
        try:
            answer = await self.client.send(group_uuid, text, reply_to=reply_to)
        except Exception:
            compose = self.query_one("#compose", Input)
            compose.value = compose.value or text  # not sent: the words stay, to send again
            raise
        record = answer.message
        self.outcomes.setdefault(record.message_hash, {}).update({o.receiver: o.status for o in answer.outcomes})
        if self.typing_at:
            self.typing_at = 0.0
            self.act(self.client.set_typing(group_uuid, False), "typing")
        await self.add_message(record)
        self.status(f"sent to {self.names.group(group_uuid)}")

    def progress(self, label: str):
        """A progress callback (done, total) that shows a bar in the status line."""
        return lambda done, total: self.status(f"{label} {progress_words(done, total)}")

    def highlighted_record(self) -> lobby_pb2.MessageRecord | None:
        item = self.query_one("#messages", MessageList).highlighted_child
        if item is None or self.open is None:
            return None
        return self.open.records.get(bytes.fromhex(item.id.removeprefix("m-")))

    def action_reply(self) -> None:
        messages = self.query_one("#messages", MessageList)
        item = messages.highlighted_child
        if item is None or self.open is None:
            return self.status("highlight a message first (ctrl+o, then ↑ ↓)")
        self.reply_to = bytes.fromhex(item.id.removeprefix("m-"))
        self.line("replying").show(f"replying to {self.quote(self.reply_to)} (Esc cancels)")
        self.query_one("#compose", Input).focus()

    def action_focus_messages(self) -> None:
        self.query_one("#messages", MessageList).focus()

    def action_cancel_reply(self) -> None:
        self.reply_to = b""
        self.line("replying").show("")

    async def command(self, text: str) -> None:
        """A slash command; see HELP."""
        name, _, rest = text[1:].partition(" ")
        rest = rest.strip()
        people = participant_refs(self.network, [p for p in rest.replace(",", " ").split() if p])
        if name == "create":
            title, _, members = rest.partition(" ")
            if not title or not members.strip():
                raise CliError("usage: /create NAME a,b")
            members = participant_refs(self.network, members.replace(",", " ").split())
            created = await self.client.create_group(title, members)
            await self.reload()
            await self.show_group(created.group.group_uuid)
            self.status(f'created "{created.group.name}" with {self.names.agents(created.group.initial_members)}')
        elif name in ("add", "remove"):
            if not people:
                raise CliError(f"usage: /{name} a,b")
            answer = await getattr(self.client, f"{name}_members")(self.require_open(), people)
            await self.reload()
            self.status(f"{name}{'d' if name.endswith('e') else 'ed'} {rest}; members:"
                        f" {self.names.agents(answer.group.members)}")
        elif name == "rename":
            if not rest:
                raise CliError("usage: /rename NAME")
            await self.client.rename(self.require_open(), rest)
            await self.reload()
            self.status(f'renamed to "{rest}"')
        elif name == "leave":
            label = self.names.group(self.require_open())
            await self.client.leave(self.open.group_uuid)
            await self.reload()
            self.status(f"left {label}")
        elif name in (*BANNER_ACTIONS, "unblock"):
            await self.group_action(name)
        elif name == "file":
            path = Path(rest).expanduser()
            if not rest or not path.is_file():
                raise CliError("usage: /file PATH (a file of at most 64 MiB)")
            group_uuid, reply_to = self.require_open(), self.reply_to
            answer = await self.client.send_file(group_uuid, path, reply_to=reply_to,
                                                 progress=self.progress(f"sending {path.name}"))
            self.action_cancel_reply()
            await self.add_message(answer.message)
            self.status(f"sent {path.name}")
        elif name == "fetch":
            record = self.highlighted_record()
            if record is None or not record.entry.attachments:
                raise CliError("highlight a message with a file first (ctrl+o, then ↑ ↓), then /fetch [DIR]")
            name = record.entry.attachments[0].name
            saved = await self.client.fetch_file(record, Path(rest or ".").expanduser(),
                                                 progress=self.progress(f"fetching {name}"))
            self.status(f"saved {saved} (SHA-256 checked)")
        elif name == "reply":
            self.action_reply()
        elif name == "help":
            self.status(HELP)
        else:
            raise CliError(f"no command /{name} (see /help)")

    # -------------------------------------------------------------- signals

    async def take(self, item: UiEvent | StreamState) -> None:
        """Shows one UI event (or a change of the stream's state)."""
        if isinstance(item, StreamState):
            if not item.live:
                return self.status(f"reconnecting… ({item.detail})")
            await self.reload(reopen=True)
            return self.status("reconnected")
        view = self.open if self.open and self.open.group_uuid == item.group_uuid else None
        if item.kind == "message":
            record = item.record
            if view is not None:
                self.stop_typer(record.entry.author)
                await self.add_message(record)
                await self.mark_read([record])
            elif record.entry.author != self.agent:
                self.unread[item.group_uuid] = self.unread.get(item.group_uuid, 0) + 1
            if item.group_uuid not in self.group_uuids() or item.first_message:
                await self.reload()
            self.redraw_group(item.group_uuid)
            self.draw_banner()
        elif item.kind == "delivery":
            delivery = item.delivery
            self.outcomes.setdefault(delivery.message_hash, {})[delivery.outcome.receiver] = delivery.outcome.status
            self.redraw_message(delivery.message_hash)
        elif item.kind == "receipt":
            receipt = item.receipt
            known = self.receipts.setdefault(receipt.message_hash, {}).get(receipt.receiver)
            if known is None or receipt.read_at or not known.read_at:
                self.receipts[receipt.message_hash][receipt.receiver] = receipt
            self.redraw_message(receipt.message_hash)
        elif item.kind == "typing" and view is not None and item.typing.agent != self.agent:
            typing = item.typing
            self.stop_typer(typing.agent)
            if typing.typing:
                self.typers[typing.agent] = self.set_timer(TYPING_SHOWN, lambda a=typing.agent: self.stop_typer(a))
                self.draw_typing()
        elif item.kind in ("invite", "group_update"):
            await self.reload()
            if item.kind == "invite":
                invite = item.signal.invite
                self.status(f'{self.names.agent(invite.inviter or invite.group.creator)} invited you to'
                            f' "{invite.group.name}"')
            else:
                update = item.update
                self.status(f"{update_words(self.names, update.update, update.author)} in"
                            f" {update.group.name or item.group_uuid[:8]}")

    def stop_typer(self, agent: bytes) -> None:
        timer = self.typers.pop(agent, None)
        if timer is not None:
            timer.stop()
        self.draw_typing()

    def draw_typing(self) -> None:
        who = self.names.agents(self.typers)
        self.line("typing").show(f"{who} {'is' if len(self.typers) == 1 else 'are'} typing…" if who else "")


async def run_chat(network: net.Network, agent_name: str) -> int:
    """`kizuna chat`: runs the app in this terminal until the person quits."""
    await ChatApp(network, agent_name).run_async()
    return 0
