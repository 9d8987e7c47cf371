"""The `kizuna` commands for files and pins: send-file, fetch-file (with a progress bar on
stderr), pin, unpin and pins; and how a message's files read in a history line."""

from __future__ import annotations

import sys
from pathlib import Path

from kizuna import cli

BAR_WIDTH = 30


def size_words(size: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024 or unit == "MiB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def attachment_words(entry) -> str:
    """A message's files as a history line ends with them."""
    return "".join(f"  [file: {ref.name}, {size_words(ref.size)}]" for ref in entry.attachments)


class ProgressBar:
    """`bar(done, total)` redraws one plain-text line on stderr; `bar.end()` closes it."""

    def __init__(self, label: str, stream=None):
        self._label = label
        self._stream = stream or sys.stderr
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        part = done / total if total else 1.0
        filled = int(BAR_WIDTH * part)
        self._stream.write(f"\r{self._label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {part:4.0%}"
                           f"  {size_words(done)} of {size_words(total)}")
        self._stream.flush()
        self._drawn = True

    def end(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()


async def cmd_send_file(args, network, client, names) -> int:
    group_uuid = await cli.resolve_group(client, args.group)
    path = Path(args.path)
    if not path.is_file():
        raise cli.CliError(f"{args.path}: no such file")
    bar = ProgressBar(f"sending {path.name}")
    try:
        answer = await client.send_file(group_uuid, path, text=args.text, progress=bar)
    finally:
        bar.end()
    return cli.say_sent(args, names, group_uuid, answer, f"{path.name} ({size_words(path.stat().st_size)}) sent")


async def cmd_fetch_file(args, network, client, names) -> int:
    group_uuid = await cli.resolve_group(client, args.group)
    message_hash = await cli.resolve_message(client, group_uuid, args.message)
    record = next(r for r in await client.all_history(group_uuid) if r.message_hash == message_hash)
    if args.attachment >= len(record.entry.attachments):
        raise cli.not_found(f"message {args.message} has no file {args.attachment}")
    bar = ProgressBar(f"fetching {record.entry.attachments[args.attachment].name}")
    try:
        dest = await client.fetch_file(record, args.dest, progress=bar, attachment=args.attachment)
    finally:
        bar.end()
    cli.say(args, f"saved {dest} ({size_words(dest.stat().st_size)}, SHA-256 checked)",
            {"saved": str(dest), "size": dest.stat().st_size, "attachment": record.entry.attachments[args.attachment]})
    return 0


def _pin_command(method: str, verb: str):
    async def command(args, network, client, names) -> int:
        group_uuid = await cli.resolve_group(client, args.group)
        message_hash = await cli.resolve_message(client, group_uuid, args.message)
        answer = await getattr(client, method)(group_uuid, message_hash)
        cli.say(args, f"{verb} {message_hash.hex()[:8]} in {names.group(group_uuid)}"
                      f" ({len(answer.group.pinned)} pinned)", answer)
        return 0
    return command


async def cmd_pins(args, network, client, names) -> int:
    group_uuid = await cli.resolve_group(client, args.group)
    pinned = await client.pins(group_uuid)
    cli.say_lines(args, [cli.message_line(names, record, with_hash=True) for record in pinned]
                  or [f"no pinned messages in {names.group(group_uuid)}"], {"pinned": pinned})
    return 0


COMMANDS = {
    "send-file": cmd_send_file,
    "fetch-file": cmd_fetch_file,
    "pin": _pin_command("pin", "pinned"),
    "unpin": _pin_command("unpin", "unpinned"),
    "pins": cmd_pins,
}


def add_parsers(sub, agent_common) -> None:
    p = sub.add_parser("send-file", help="send a file (at most 64 MiB) to a group, with a progress bar",
                       parents=[agent_common])
    p.add_argument("group", metavar="GROUP")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--text", default="", help="a text to go with the file (default: none)")
    p = sub.add_parser("fetch-file", help="fetch a message's file, checked against its hash", parents=[agent_common])
    p.add_argument("group", metavar="GROUP")
    p.add_argument("message", metavar="MESSAGE_HASH_PREFIX")
    p.add_argument("dest", metavar="DEST", help="a file to write, or a directory to put the file in by its name")
    p.add_argument("--attachment", type=int, default=0, help="which of the message's files (default: 0, the first)")
    for name, text in (("pin", "pin a message for the whole group"), ("unpin", "unpin a pinned message")):
        p = sub.add_parser(name, help=text, parents=[agent_common])
        p.add_argument("group", metavar="GROUP")
        p.add_argument("message", metavar="MESSAGE_HASH_PREFIX")
    p = sub.add_parser("pins", help="a group's pinned messages, oldest pin first", parents=[agent_common])
    p.add_argument("group", metavar="GROUP")
