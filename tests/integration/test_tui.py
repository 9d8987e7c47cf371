"""`kizuna chat` (the Textual UI) on real processes: under Textual's pilot against a local
network of three nodes, and once in a real terminal (tmux) as a person types."""

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from kizuna import net
from kizuna.tui import PAGE_SIZE, ChatApp, Line, MessageList
from tests.helpers import eventually, run
from tests.integration.network import (TIMEOUT, create_group, make_clients, make_network, messages, start_node,
                                       wait_dead, wait_until)

pytestmark = pytest.mark.integration

NAMES = ("alice", "bobby", "charlie")
SIZE = (120, 40)
RESTART = 60.0


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    with make_network(tmp_path_factory.mktemp("tui-net")) as network:
        yield network


def group_named(app, name):
    return next((c.group.group_uuid for c in app.conversations if c.group.name == name), None)


def screen_lines(app, widget_id):
    """The plain text of each row of a list (#groups, #messages) as the app shows it."""
    return [line.text for item in app.query_one(f"#{widget_id}").children for line in item.query(Line)]


def text(app, widget_id):
    return app.query_one(f"#{widget_id}").text


async def until(pilot, condition, what, timeout=TIMEOUT):
    """Lets the app run until `condition()` holds; fails naming `what` (and the status line)."""
    await eventually(condition, f"{what} (status line: {text(pilot.app, 'status')!r})", timeout)


async def type_line(pilot, line):
    pilot.app.query_one("#compose").focus()
    await pilot.press(*line, "enter")


@contextlib.asynccontextmanager
async def chat(network, agent, page_size=PAGE_SIZE):
    """`agent`'s chat under Textual's pilot, once its groups are loaded: (app, pilot)."""
    app = ChatApp(network, agent, page_size=page_size)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: text(app, "title"), f"{agent}'s groups load")
        yield app, pilot


async def click(pilot, selector):
    """Clicks a widget once it is on the screen (a row just added has no place yet)."""
    await until(pilot, lambda: pilot.app.query(selector) and pilot.app.query_one(selector).region.height,
                f"{selector} is on the screen")
    await pilot.click(selector)


async def open_group(pilot, group):
    await click(pilot, f"#g-{group}")
    await until(pilot, lambda: pilot.app.open and pilot.app.open.group_uuid == group, "the group opens")


def showing(app, *parts):
    return lambda: any(all(p in line for p in parts) for line in screen_lines(app, "messages"))


def test_bobby_sees_a_new_group_with_the_banner_on_its_first_message_and_accept_ends_it(network):
    async def scenario():
        async with make_clients(network, ("alice",)) as clients:
            async with chat(network, "bobby") as (app, pilot):
                created = await clients["alice"].create_group("Banner", ["bobby"])
                group = created.group.group_uuid
                await until(pilot, lambda: group_named(app, "Banner"), "the invite puts the group in the list")
                await clients["alice"].send(group, "welcome, bobby")
                await until(pilot, showing(app, "alice: welcome, bobby"), "alice's message shows")
                await until(pilot, lambda: app.query_one("#banner").region.height > 0, "the banner shows")
                assert "First message" in text(app, "banner-text")
                await click(pilot, "#accept")
                await until(pilot, lambda: app.query_one("#banner").region.height == 0, "accept hides the banner")
                assert group in app.client.cached_groups.group_uuids
                assert "accepted Banner" in text(app, "status")
                await clients["alice"].send(group, "second message")
                await until(pilot, showing(app, "alice: second message"), "the next message shows")
                assert not app.query_one("#banner").has_class("shown")
    run(scenario(), timeout=120)


def test_alice_sends_from_the_tui_and_sees_delivery_read_receipt_typing_and_replies(network):
    bobby_key = network.agent_key("bobby")

    async def scenario():
        async with make_clients(network, ("bobby",)) as clients:
            bobby = clients["bobby"]
            async with chat(network, "alice") as (app, pilot):
                await type_line(pilot, "/create Pair bobby")
                await until(pilot, lambda: app.open and app.open.group_uuid == group_named(app, "Pair"),
                            "the created group opens")
                group = app.open.group_uuid
                await bobby.wait_for(lambda e: e.kind == "invite" and e.group_uuid == group, TIMEOUT)
                await bobby.accept(group)

                await type_line(pilot, "hello from the terminal")
                await wait_until(bobby, lambda: messages(bobby, group, "hello from the terminal"),
                                 "bobby gets what alice typed")
                await until(pilot, showing(app, "hello from the terminal", "bobby: delivered ✓"),
                            "alice sees it delivered to bobby")
                sent = messages(bobby, group, "hello from the terminal")[0].record
                await bobby.mark_read(group, [sent.message_hash])
                await until(pilot, showing(app, "hello from the terminal", "bobby: read ✓✓"),
                            "alice sees bobby's read receipt")

                await bobby.set_typing(group, True)
                await until(pilot, lambda: text(app, "typing") == "bobby is typing…", "alice sees bobby typing")
                await pilot.press(*"typing back")
                await wait_until(bobby, lambda: any(e.kind == "typing" and e.typing.agent != bobby_key
                                                    and e.typing.typing for e in bobby.events_so_far()),
                                 "bobby sees alice typing")
                await pilot.press("ctrl+u")
                question = await bobby.send(group, "which one?")
                await until(pilot, showing(app, "bobby: which one?"), "bobby's message shows")
                assert text(app, "typing") == "", "a message ends its author's typing line"

                await click(pilot, f"#m-{question.message.message_hash.hex()}")
                await pilot.press("r")
                assert "replying to bobby" in text(app, "replying")
                await type_line(pilot, "this one")
                await wait_until(bobby, lambda: messages(bobby, group, "this one"), "bobby gets the reply")
                reply = messages(bobby, group, "this one")[0].record
                assert reply.entry.reply_to == question.message.message_hash
                await until(pilot, showing(app, 'alice ↪ bobby "which one?": this one'), "alice sees her reply")
                assert text(app, "replying") == ""
    run(scenario(), timeout=150)


def test_alice_adds_and_removes_a_member_and_renames_the_group_with_slash_commands(network):
    charlie_key = network.agent_key("charlie")

    async def scenario():
        async with make_clients(network, ("bobby", "charlie")) as clients:
            charlie = clients["charlie"]
            async with chat(network, "alice") as (app, pilot):
                await type_line(pilot, "/create Team bobby")
                await until(pilot, lambda: app.open and app.open.group_uuid == group_named(app, "Team"),
                            "the created group opens")
                group = app.open.group_uuid
                await type_line(pilot, "/add charlie")
                await charlie.wait_for(lambda e: e.kind == "invite" and e.group_uuid == group, TIMEOUT)
                await until(pilot, lambda: "added charlie" in text(app, "status"), "alice sees charlie added")
                assert charlie_key in app.client.group_info(group).members
                await type_line(pilot, "/remove charlie")
                await charlie.wait_for(lambda e: e.kind == "group_update" and e.update.group.departed, TIMEOUT)
                await until(pilot, lambda: "removed charlie" in text(app, "status"), "alice sees charlie removed")
                assert charlie_key not in app.client.group_info(group).members
                await type_line(pilot, "/rename Crew")
                await until(pilot, lambda: group_named(app, "Crew") == group, "the list shows the new name")
                assert any("Crew" in line for line in screen_lines(app, "groups"))

                await type_line(pilot, "/remove nobody-at-all")
                await until(pilot, lambda: text(app, "status").startswith("/remove: "), "the refusal shows")
                assert "Traceback" not in text(app, "status")
                await type_line(pilot, "/frobnicate")
                await until(pilot, lambda: "no command /frobnicate" in text(app, "status"), "an unknown command")
    run(scenario(), timeout=150)


def test_a_group_not_open_counts_its_unread_messages_until_bobby_opens_it_and_alice_hears_them_read(network):
    bobby_key = network.agent_key("bobby")

    async def scenario():
        async with make_clients(network, ("alice", "bobby")) as clients:
            alice = clients["alice"]
            shown = (await create_group(clients, "Shown", ["bobby"])).group.group_uuid
            other = (await create_group(clients, "Elsewhere", ["bobby"])).group.group_uuid
            async with chat(network, "bobby") as (app, pilot):
                await open_group(pilot, shown)
                sent = [await alice.send(other, text) for text in ("one", "two")]
                await until(pilot, lambda: "  Elsewhere (2)" in screen_lines(app, "groups"), "two unread in the list")
                assert not any(line.startswith("alice:") for line in screen_lines(app, "messages"))
                await open_group(pilot, other)
                await until(pilot, showing(app, "alice: two"), "opening it shows the messages")
                assert "▸ Elsewhere" in screen_lines(app, "groups")
                for answer in sent:
                    h = answer.message.message_hash
                    await wait_until(alice, lambda h=h: any(e.kind == "receipt" and e.receipt.message_hash == h
                                                            and e.receipt.receiver == bobby_key and e.receipt.read_at
                                                            for e in alice.events_so_far()),
                                     "alice hears bobby read it")
    run(scenario(), timeout=120)


def test_history_pages_back_as_bobby_scrolls_up_each_message_once_in_order(network):
    payloads = [f"number {i:02d}" for i in range(12)]

    async def scenario():
        async with make_clients(network, ("alice", "bobby")) as clients:
            group = (await create_group(clients, "Long", ["bobby"])).group.group_uuid
            for payload in payloads:
                await clients["alice"].send(group, payload)
            await wait_until(clients["bobby"], lambda: messages(clients["bobby"], group, payloads[-1]),
                             "bobby has every message")
            async with chat(network, "bobby", page_size=5) as (app, pilot):
                await open_group(pilot, group)
                await until(pilot, lambda: len(screen_lines(app, "messages")) == 5, "the newest page shows")
                assert [line.split(": ", 1)[1] for line in screen_lines(app, "messages")] == payloads[-5:]
                app.query_one(MessageList).focus()
                for _ in range(30):
                    if len(screen_lines(app, "messages")) == 12:
                        break
                    await pilot.press("up")
                    await pilot.pause()
                await until(pilot, lambda: len(screen_lines(app, "messages")) == 12, "every page loads")
                assert [line.split(": ", 1)[1] for line in screen_lines(app, "messages")] == payloads
                assert app.open.older_token == ""
    run(scenario(), timeout=150)


def test_the_tui_says_reconnecting_when_bobbys_lobby_dies_and_shows_messages_after_its_restart(network):
    async def scenario():
        async with make_clients(network, ("alice", "bobby")) as clients:
            alice = clients["alice"]
            group = (await create_group(clients, "Restart", ["bobby"])).group.group_uuid
            await alice.send(group, "before the crash")
            async with chat(network, "bobby") as (app, pilot):
                await open_group(pilot, group)
                await until(pilot, showing(app, "alice: before the crash"), "the history shows")
                lobby_pid = net.load(network.directory).node("bobby")["pids"]["lobby"]
                os.kill(lobby_pid, signal.SIGKILL)
                await until(pilot, lambda: "reconnecting…" in text(app, "status"), "the TUI says it reconnects")
                await asyncio.to_thread(wait_dead, lobby_pid)
                await type_line(pilot, "typed while it was down")
                await until(pilot, lambda: text(app, "status").startswith("sending: UNAVAILABLE"), "the send fails")
                assert app.query_one("#compose").value == "typed while it was down", "the words are kept"
                await alice.send(group, "while your lobby was down")
                await start_node(network.directory, "bobby")
                await until(pilot, lambda: text(app, "status") == "reconnected", "the stream is back", RESTART)
                await alice.send(group, "after the restart")
                await until(pilot, showing(app, "alice: after the restart"), "a message after the restart shows",
                            RESTART)
                await type_line(pilot, "")
                await until(pilot, showing(app, "bobby: typed while it was down", "alice: delivered ✓"),
                            "the kept words go out after the restart")
                await app.client.sync_inbox()
                await until(pilot, showing(app, "alice: while your lobby was down"),
                            "the message sent while it was down shows", RESTART)
                lines = screen_lines(app, "messages")
                assert len(lines) == len(set(lines)), "each message shows once"
    run(scenario(), timeout=200)


# ---------------------------------------------------------------- a real terminal


class Tmux:
    """A tmux server on a socket of its own, with one session running `command`."""

    def __init__(self, command, env):
        self.socket = f"kizuna-test-{uuid.uuid4().hex[:8]}"
        self.tmux("new-session", "-d", "-x", str(SIZE[0]), "-y", str(SIZE[1]), "-s", "chat",
                  *(arg for k, v in env.items() for arg in ("-e", f"{k}={v}")), command)

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True, capture_output=True, text=True,
                              timeout=10).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "chat")

    def wait_for(self, wanted, timeout=TIMEOUT) -> str:
        """The screen's text once it shows `wanted`."""
        shown = ""

        def on_screen():
            nonlocal shown
            shown = self.screen()
            return wanted in shown
        try:
            eventually(on_screen, f"{wanted!r} on the screen", timeout, interval=0.1)
        except pytest.fail.Exception:
            pytest.fail(f"{wanted!r} not on the screen within {timeout:.0f}s:\n{shown}")
        return shown

    def alive(self) -> bool:
        return subprocess.run(["tmux", "-L", self.socket, "has-session", "-t", "chat"],
                              capture_output=True).returncode == 0

    def kill(self):
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def test_kizuna_chat_in_a_real_terminal_sends_by_keystrokes_and_shows_the_reply(network, tmp_path):
    assert shutil.which("tmux"), "tmux is needed for this test (apt-get install tmux)"
    kizuna = Path(sys.executable).parent / "kizuna"

    async def setup():
        async with make_clients(network, ("alice", "bobby")) as clients:
            return (await create_group(clients, "Terminal", ["bobby"])).group.group_uuid
    group = run(setup())
    tmux = Tmux(f"{kizuna} chat --as alice", {"KIZUNA_DIR": str(network.directory), "TERM": "xterm-256color"})
    try:
        tmux.wait_for("Terminal")
        tmux.tmux("send-keys", "-t", "chat", "-l", "hello from tmux")
        tmux.tmux("send-keys", "-t", "chat", "Enter")

        async def answer():
            async with make_clients(network, ("bobby",)) as clients:
                bobby = clients["bobby"]
                await eventually(lambda: bobby.all_history(group), "bobby gets what alice typed")
                assert [r.entry.payload for r in await bobby.all_history(group)] == ["hello from tmux"]
                await bobby.send(group, "hello back from bobby")
        run(answer())
        shown = tmux.wait_for("bobby: hello back from bobby")
        assert "alice: hello from tmux" in shown
        (tmp_path / "screen.txt").write_text(shown)
        tmux.tmux("send-keys", "-t", "chat", "C-q")
        eventually(lambda: not tmux.alive(), "kizuna chat quits on ctrl+q")
    finally:
        tmux.kill()


def test_a_file_sent_with_slash_file_shows_with_its_size_and_bobby_fetches_it_checked(network, tmp_path):
    data = os.urandom(700 * 1024)  # more than one piece on the wire
    source = tmp_path / "notes.bin"
    source.write_bytes(data)
    (tmp_path / "inbox").mkdir()

    async def scenario():
        async with make_clients(network, ("alice", "bobby")) as clients:
            group = (await create_group(clients, "Files", ["bobby"])).group.group_uuid
            async with chat(network, "alice") as (app, pilot):
                await open_group(pilot, group)
                await type_line(pilot, f"/file {source}")
                await until(pilot, lambda: text(app, "status") == "sent notes.bin", "alice's file goes")
                await until(pilot, showing(app, "alice: ", "[file: notes.bin, 700.0 KiB]"), "alice sees it sent")
            async with chat(network, "bobby") as (app, pilot):
                await open_group(pilot, group)
                await until(pilot, showing(app, "[file: notes.bin, 700.0 KiB]"), "bobby sees the file")
                row = next(item for item in app.query_one("#messages").children
                           if "notes.bin" in item.query_one(Line).text)
                await click(pilot, f"#{row.id}")
                await type_line(pilot, f"/fetch {tmp_path / 'inbox'}")
                await until(pilot, lambda: text(app, "status").startswith("saved "), "bobby's fetch ends")
                assert "SHA-256 checked" in text(app, "status")
    run(scenario(), timeout=150)
    assert (tmp_path / "inbox" / "notes.bin").read_bytes() == data
