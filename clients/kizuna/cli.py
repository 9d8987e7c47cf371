"""The `kizuna` command: a local network (`kizuna net ...`) and a person's commands (`kizuna --as AGENT ...`).

    kizuna net up|down|status|stop NODE [--kill]|start NODE [--dir DIR]
    kizuna [--dir DIR] --as AGENT groups|create-group|send|reply|history|conversations|accept|delete|
                                  block|unblock|block-agent|unblock-agent|add|remove|rename|leave|
                                  read|watch|blocked-agents|send-file|fetch-file|pin|unpin|pins
    kizuna [--dir DIR] tokens list [NODE] | issue AGENT [--save] | revoke TOKEN_ID [--node NODE]
    kizuna [--dir DIR] admin outbox NODE | retry NODE [--item HASH] [--receiver AGENT] | signals NODE | spaces NODE

Addresses and tokens come from DIR/network.json (DIR defaults to $KIZUNA_DIR, else ./net;
the agent to $KIZUNA_AS; its token to $KIZUNA_TOKEN, else network.json's); the token and
admin commands call a node's services with the node's secret from its data directory.

Output is one line per item with names resolved, or with `--json` one JSON document
(protobuf's JSON mapping: bytes in base64), one per line for `watch` and `history`. An
error is one line on stderr (a JSON object with `--json`) and an exit code that tells
what went wrong: see EXIT_CODES.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import datetime
import importlib.metadata
import json
import os
import sys
from pathlib import Path

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from kizuna import files_cli, net
from kizuna import node as node_config
from kizuna.client import Client, ClientError, UiEvent
from kizuna.v1 import (admin_pb2, admin_pb2_grpc, conductor_pb2, conductor_pb2_grpc, group_dht_pb2,
                       group_dht_pb2_grpc, lobby_pb2)

DEFAULT_DIR = "net"


# What a script can tell apart by the exit code alone.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_UNAUTHENTICATED, EXIT_UNREACHABLE = range(7)
EXIT_CODES = {
    EXIT_OK: "done",
    EXIT_FAILED: "failed for another reason",
    EXIT_USAGE: "usage: a wrong command, option or argument (INVALID_ARGUMENT included)",
    EXIT_NOT_FOUND: "not found: no such group, agent, message, node or token",
    EXIT_REFUSED: "refused: not allowed, or not in a state that allows it",
    EXIT_UNAUTHENTICATED: "unauthenticated: the app token is missing, wrong or revoked",
    EXIT_UNREACHABLE: "unreachable: a node or service did not answer",
}
EXIT_BY_STATUS = {
    "INVALID_ARGUMENT": EXIT_USAGE, "OUT_OF_RANGE": EXIT_USAGE,
    "NOT_FOUND": EXIT_NOT_FOUND,
    "PERMISSION_DENIED": EXIT_REFUSED, "FAILED_PRECONDITION": EXIT_REFUSED, "ALREADY_EXISTS": EXIT_REFUSED,
    "RESOURCE_EXHAUSTED": EXIT_REFUSED, "ABORTED": EXIT_REFUSED,
    "UNAUTHENTICATED": EXIT_UNAUTHENTICATED,
    "UNAVAILABLE": EXIT_UNREACHABLE, "DEADLINE_EXCEEDED": EXIT_UNREACHABLE,
}


class CliError(Exception):
    """What went wrong, printed as one line; `exit_code` tells its kind (EXIT_CODES)."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code


def not_found(message: str) -> CliError:
    return CliError(message, EXIT_NOT_FOUND)


# ---------------------------------------------------------------- output


def to_json(value):
    """A protobuf message (protobuf's JSON mapping), or a dict or list holding some."""
    if isinstance(value, Message):
        return json_format.MessageToDict(value, preserving_proto_field_name=True)
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def say(args, text: str | None, value=None) -> None:
    """`text` for a person, or with --json `value` as one line of JSON (nothing if None)."""
    if getattr(args, "json", False):
        if value is not None:
            print(json.dumps(to_json(value), separators=(",", ":"), ensure_ascii=False), flush=True)
    elif text is not None:
        print(text, flush=True)


def say_lines(args, lines: list[str], value) -> None:
    """Several lines for a person, or one JSON document."""
    say(args, "\n".join(lines) if lines else None, value)


# ---------------------------------------------------------------- formatting


class Names:
    """Turns agent keys and group uuids into what a person reads."""

    def __init__(self, network: net.Network, client: Client | None = None):
        self.by_key = network.usernames_by_key()
        self.client = client

    def agent(self, key: bytes) -> str:
        if key in self.by_key:
            return self.by_key[key]
        return base64.b64encode(key).decode()[:10] + "…" if key else "?"

    def agents(self, keys) -> str:
        return ", ".join(self.agent(k) for k in keys)

    def group(self, group_uuid: str) -> str:
        info = self.client.group_info(group_uuid) if self.client else None
        if info is not None and info.name:
            return info.name
        return group_uuid[:8]


def when(micros: int) -> str:
    if not micros:
        return "-"
    return datetime.datetime.fromtimestamp(micros / 1e6).strftime("%Y-%m-%d %H:%M:%S")


STATE_WORDS = {
    lobby_pb2.INVITED: "invited",
    lobby_pb2.ACCEPTED: "accepted",
    lobby_pb2.BLOCKED: "blocked",
    lobby_pb2.GROUP_STATE_UNSPECIFIED: "unknown",
}

DELIVERY_WORDS = {
    lobby_pb2.DELIVERED: "delivered",
    lobby_pb2.STORED_IN_DHT: "stored in the group's DHT",
    lobby_pb2.QUEUED: "queued in the outbox",
    lobby_pb2.FAILED: "failed",
    lobby_pb2.DELIVERY_STATUS_UNSPECIFIED: "unknown",
}


def outcome_line(names: Names, outcome, what: str = "") -> str:
    line = f"  {what}{names.agent(outcome.receiver)}: {DELIVERY_WORDS.get(outcome.status, 'unknown')}"
    if outcome.detail:
        line += f" ({outcome.detail})"
    return line


def message_line(names: Names, record, with_group: bool = False, with_hash: bool = False) -> str:
    entry = record.entry
    prefix = f"[{names.group(entry.group_uuid)}] " if with_group else ""
    ident = f"{record.message_hash.hex()[:8]}  " if with_hash else ""
    line = f"{when(entry.time_sent)}  {ident}{prefix}{names.agent(entry.author)}: {entry.payload}"
    line += files_cli.attachment_words(entry)
    if entry.reply_to:
        line += f"  (reply to {entry.reply_to.hex()[:8]})"
    if record.receipts:
        line += "  (" + "; ".join(receipt_words(names, r) for r in record.receipts) + ")"
    if record.blocked_members:
        line += f"  (warning: you blocked {names.agents(record.blocked_members)})"
    elif record.warning:
        line += f"  (warning: {record.warning})"
    return line


def receipt_words(names: Names, receipt) -> str:
    if receipt.read_at:
        return f"read by {names.agent(receipt.receiver)} at {when(receipt.read_at)}"
    if receipt.delivered_at:
        return f"delivered to {names.agent(receipt.receiver)} at {when(receipt.delivered_at)}"
    return f"no receipt from {names.agent(receipt.receiver)}"


def update_words(names: Names, update, author: bytes) -> str:
    """A group change as a person reads it."""
    who = names.agent(author)
    if update.change == "add":
        return f"{who} added {names.agents(update.subjects)}"
    if update.change == "remove":
        return f"{who} removed {names.agents(update.subjects)}"
    if update.change == "rename":
        return f'{who} renamed the group to "{update.name}"'
    if update.change == "leave":
        return f"{who} left"
    if update.change in ("pin", "unpin"):
        return f"{who} {update.change}ned message {update.message_hash.hex()[:8]}"
    return f"{who} changed the group ({update.change or 'unknown change'})"


def event_lines(names: Names, event: UiEvent) -> list[str]:
    if event.kind == "group_update":
        signal = event.signal.group_update
        group = signal.group
        line = (f'group: {update_words(names, signal.update, signal.author)} in "{group.name}" ({group.group_uuid[:8]});'
                f" members: {names.agents(group.members)}")
        if group.departed:
            line += "; you are no longer a member"
        return [line]
    if event.kind == "receipt":
        receipt = event.receipt
        return [f"receipt: your message {receipt.message_hash.hex()[:8]} in {names.group(receipt.group_uuid)}"
                f" {receipt_words(names, receipt)}"]
    if event.kind == "typing":
        typing = event.signal.typing.typing
        doing = "is typing" if typing.typing else "stopped typing"
        return [f"typing: {names.agent(typing.agent)} {doing} in {names.group(typing.group_uuid)}"]
    if event.kind == "invite":
        group = event.signal.invite.group
        inviter = names.agent(event.signal.invite.inviter or group.creator)
        return [f'invite: {inviter} invited you to "{group.name}" ({group.group_uuid[:8]}), members: {names.agents(group.initial_members)}']
    if event.kind == "delivery":
        delivery = event.signal.delivery
        return [f"delivery: your message {delivery.message_hash.hex()[:8]} in {names.group(delivery.group_uuid)}"
                f" -> {outcome_line(names, delivery.outcome).strip()}"]
    if event.kind != "message":
        return []
    lines = [message_line(names, event.record, with_group=True)]
    if event.first_message:
        lines.append(f"  first message from {names.group(event.group_uuid)}: [{' / '.join(event.actions)}]")
    return lines


# ---------------------------------------------------------------- resolving names


async def resolve_group(client: Client, text: str) -> str:
    """A group_uuid from a full uuid, a unique uuid prefix or a unique group name."""
    answer = await client.groups()
    known = {g.group_uuid: g for g in answer.details}
    for uuid in [*answer.groups.group_uuids, *answer.groups.blocked]:
        known.setdefault(uuid, lobby_pb2.GroupInfo(group_uuid=uuid))
    if text in known:
        return text
    by_prefix = [u for u in known if u.startswith(text)]
    if len(by_prefix) == 1:
        return by_prefix[0]
    by_name = [u for u, g in known.items() if g.name == text]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_prefix) > 1 or len(by_name) > 1:
        raise CliError(f"{text!r} names more than one group; use more of the group id")
    raise not_found(f"no group {text!r} known to this agent (see `kizuna groups`)")


async def resolve_agent(network: net.Network, client: Client, text: str) -> bytes:
    """An agent key from a name in network.json, a username the lobby knows, or base64."""
    try:
        return network.agent_key(text)
    except net.NetError:
        pass
    try:
        info = await client.agent_by_username(text)
        if info.agent:
            return info.agent
    except ClientError as exc:
        if exc.code.name not in ("NOT_FOUND", "INVALID_ARGUMENT"):
            raise
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise not_found(f"no agent {text!r}: not a known username nor a base64 agent key")
    return key


# ---------------------------------------------------------------- agent commands


async def run_agent_command(args) -> int:
    network = net.load(args.dir)
    try:
        address = network.lobby_address(args.as_agent)
        token = args.token or network.token(args.as_agent)
    except net.NetError as exc:
        raise not_found(str(exc)) from None
    async with Client(address, token) as client:
        names = Names(network, client)
        try:
            command = COMMANDS.get(args.command) or files_cli.COMMANDS[args.command]
            return await command(args, network, client, names)
        except ClientError as exc:
            if exc.code.name == "UNAVAILABLE" and "connect" in exc.details:
                raise CliError(
                    f"{args.as_agent}'s lobby at {address} is not reachable (see `kizuna net status --dir {args.dir}`)",
                    EXIT_UNREACHABLE) from None
            if exc.code.name == "UNAUTHENTICATED":
                raise CliError(f"{exc}; if the token was revoked, `kizuna tokens issue {args.as_agent} --save`"
                               " gives this agent a new one", EXIT_UNAUTHENTICATED) from None
            raise


async def cmd_groups(args, network, client, names) -> int:
    answer = await client.groups()
    lines, shown = [], set()
    for g in answer.details:
        shown.add(g.group_uuid)
        lines.append(
            f"{g.group_uuid[:8]}  {g.name or '(unnamed)'}  [{STATE_WORDS.get(g.state, 'unknown')}]"
            f"  by {names.agent(g.creator)}, members: {names.agents(g.members or g.initial_members)},"
            f" admins: {names.agents(g.admins) or names.agent(g.creator)}, since {when(g.timestamp)}"
        )
    for state, uuids in (("accepted", answer.groups.group_uuids), ("blocked", answer.groups.blocked)):
        lines.extend(f"{uuid[:8]}  (no details)  [{state}]" for uuid in uuids if uuid not in shown)
    say_lines(args, lines or ["no groups"], answer)
    return 0


def participant_refs(network, participants) -> list[str]:
    """A name from network.json goes as its key, so it works before usernames propagate."""
    refs = []
    for p in participants:
        try:
            refs.append(base64.b64encode(network.agent_key(p)).decode())
        except net.NetError:
            refs.append(p)
    return refs


async def cmd_create_group(args, network, client, names) -> int:
    answer = await client.create_group(args.name, participant_refs(network, args.participants))
    g = answer.group
    say_lines(args, [f'created "{g.name}" ({g.group_uuid}), members: {names.agents(g.initial_members)}',
                     *(outcome_line(names, outcome, what="invite to ") for outcome in answer.invites)], answer)
    return 0


async def resolve_message(client: Client, group_uuid: str, prefix: str) -> bytes:
    """A message_hash in the group from a unique hex prefix of it, or the whole hash in
    base64 (as `--json` shows it)."""
    wanted = prefix.lower()
    if not wanted or any(c not in "0123456789abcdef" for c in wanted):
        try:
            wanted = base64.b64decode(prefix, validate=True).hex()
        except (binascii.Error, ValueError):
            wanted = ""
        if len(wanted) != 64:
            raise CliError(f"{prefix!r} is not a message hash (hex, as `kizuna history` shows, or base64)")
    found = [r.message_hash for r in await client.all_history(group_uuid) if r.message_hash.hex().startswith(wanted)]
    if len(found) > 1:
        raise CliError(f"{prefix!r} names more than one message; use more of its hash")
    if not found:
        raise not_found(f"no message {prefix!r} in this group (see `kizuna history`)")
    return found[0]


async def _send(args, client, names, group_uuid: str, text: str, reply_to: bytes = b"") -> int:
    answer = await client.send(group_uuid, text, reply_to=reply_to)
    return say_sent(args, names, group_uuid, answer, f"reply to {reply_to.hex()[:8]}" if reply_to else "sent")


def say_sent(args, names, group_uuid: str, answer, what: str) -> int:
    say_lines(args, [f"{what} to {names.group(group_uuid)} at {when(answer.message.entry.time_sent)}"
                     f" ({answer.message.message_hash.hex()[:8]})",
                     *(outcome_line(names, outcome) for outcome in answer.outcomes)], answer)
    return 0


async def cmd_send(args, network, client, names) -> int:
    group_uuid = await resolve_group(client, args.group)
    reply_to = await resolve_message(client, group_uuid, args.reply_to) if args.reply_to else b""
    return await _send(args, client, names, group_uuid, args.text, reply_to)


async def cmd_reply(args, network, client, names) -> int:
    group_uuid = await resolve_group(client, args.group)
    return await _send(args, client, names, group_uuid, args.text,
                       await resolve_message(client, group_uuid, args.message))


def parse_time(text: str) -> int:
    """Microseconds since the epoch from an integer (microseconds) or a local ISO date/time."""
    if text.isdigit():
        return int(text)
    try:
        return int(datetime.datetime.fromisoformat(text).timestamp() * 1_000_000)
    except ValueError:
        raise CliError(f"{text!r} is not a time: give YYYY-MM-DD[ HH:MM[:SS]] or microseconds") from None


async def cmd_history(args, network, client, names) -> int:
    group_uuid = await resolve_group(client, args.group)
    author = await resolve_agent(network, client, args.author) if args.author else b""
    cursor_time = parse_time(args.from_time) if args.from_time else 0
    cursor_message = await resolve_message(client, group_uuid, args.from_message) if args.from_message else b""
    records, token = [], ""
    while args.limit is None or len(records) < args.limit:
        size = 500 if args.limit is None else min(500, args.limit - len(records))
        page = await client.history(group_uuid, page_size=size, page_token=token,
                                    cursor_message=b"" if token else cursor_message,
                                    cursor_time=0 if token else cursor_time, newer=args.newer, author=author)
        records.extend(page.messages)
        token = page.next_page_token
        if not token or not page.messages:
            break
    if not records:
        say(args, f"no messages in {names.group(group_uuid)}")
    if not args.newer:
        records.reverse()  # oldest first, as people read
    for record in records:
        say(args, message_line(names, record, with_hash=True), record)
    return 0


async def cmd_conversations(args, network, client, names) -> int:
    conversations = await client.conversations()
    lines = []
    for c in conversations:
        g = c.group
        head = f"{g.group_uuid[:8]}  {g.name or '(unnamed)'}  [{STATE_WORDS.get(g.state, 'unknown')}]"
        if c.HasField("latest"):
            entry = c.latest.entry
            lines.append(f"{head}  {when(entry.time_sent)}  {names.agent(entry.author)}: {entry.payload}")
        else:
            lines.append(f"{head}  no messages yet")
    say_lines(args, lines or ["no conversations"], {"conversations": conversations})
    return 0


def say_update(args, names, answer, text: str) -> None:
    say_lines(args, [text, *(outcome_line(names, outcome, what="told ") for outcome in answer.outcomes)], answer)


def _members_command(method: str, verb: str):
    async def command(args, network, client, names) -> int:
        group_uuid = await resolve_group(client, args.group)
        answer = await getattr(client, method)(group_uuid, participant_refs(network, args.participants))
        g = answer.group
        say_update(args, names, answer, f'{verb} {", ".join(args.participants)} in "{g.name}";'
                                        f' members: {names.agents(g.members)}')
        return 0

    return command


async def cmd_rename(args, network, client, names) -> int:
    group_uuid = await resolve_group(client, args.group)
    old = names.group(group_uuid)
    answer = await client.rename(group_uuid, args.name)
    say_update(args, names, answer, f'renamed "{old}" to "{answer.group.name}"')
    return 0


async def cmd_leave(args, network, client, names) -> int:
    group_uuid = await resolve_group(client, args.group)
    label = names.group(group_uuid)
    answer = await client.leave(group_uuid)
    say_update(args, names, answer, f'left "{label}"')
    return 0


async def cmd_read(args, network, client, names) -> int:
    """Marks every message of the group by someone else read (the lobby skips ones already read)."""
    group_uuid = await resolve_group(client, args.group)
    me = client.agent or network.agent_key(args.as_agent)
    hashes = [r.message_hash for r in await client.all_history(group_uuid) if r.entry.author != me]
    marked = 0
    for start in range(0, len(hashes), 100):
        marked += await client.mark_read(group_uuid, hashes[start:start + 100])
    say(args, f"marked {marked} message{'' if marked == 1 else 's'} read in {names.group(group_uuid)}",
        {"group_uuid": group_uuid, "marked": marked})
    return 0


def _group_state_command(method: str, verb: str):
    async def command(args, network, client, names) -> int:
        group_uuid = await resolve_group(client, args.group)
        label = names.group(group_uuid)
        groups = await getattr(client, method)(group_uuid)
        say(args, f"{verb} {label}", groups)
        return 0

    return command


def _agent_block_command(method: str, verb: str):
    async def command(args, network, client, names) -> int:
        key = await resolve_agent(network, client, args.agent)
        blocked = await getattr(client, method)(key)
        say(args, f"{verb} {names.agent(key)}; blocked agents: {names.agents(blocked.agents) or 'none'}", blocked)
        return 0

    return command


async def cmd_blocked_agents(args, network, client, names) -> int:
    blocked = await client.blocked_agents()
    say_lines(args, [names.agent(key) for key in blocked.agents] or ["no blocked agents"], blocked)
    return 0


def event_json(event: UiEvent) -> dict:
    """One line of `watch --json`: the event's kind and group, the signal as it came, and
    what the UI decided for it (the banner, a warning)."""
    value = {"kind": event.kind, "group_uuid": event.group_uuid, "signal": event.signal}
    if event.first_message:
        value["banner"] = list(event.actions)
    if event.warning:
        value["warning"] = event.warning
    if event.receipt is not None:
        value["receipt"] = event.receipt  # the signal may carry several: this event is for this one
    return value


async def cmd_watch(args, network, client, names) -> int:
    await client.start_signals()
    print(f"watching as {args.as_agent} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout if args.timeout else None
    seen = 0
    while args.count is None or seen < args.count:
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= 0:
            break
        try:
            event = await client.next_event(remaining if remaining is not None else 3600.0)
        except TimeoutError:
            if deadline is None:
                continue
            break
        say_lines(args, event_lines(names, event), event_json(event))
        seen += 1
    return 0


async def cmd_chat(args, network, client, names) -> int:
    from kizuna.tui import run_chat  # Textual is loaded for the chat only
    return await run_chat(network, args.as_agent)


COMMANDS = {
    "chat": cmd_chat,
    "groups": cmd_groups,
    "create-group": cmd_create_group,
    "send": cmd_send,
    "reply": cmd_reply,
    "history": cmd_history,
    "conversations": cmd_conversations,
    "add": _members_command("add_members", "added"),
    "remove": _members_command("remove_members", "removed"),
    "rename": cmd_rename,
    "leave": cmd_leave,
    "read": cmd_read,
    "accept": _group_state_command("accept", "accepted"),
    "delete": _group_state_command("delete", "deleted"),
    "block": _group_state_command("block", "blocked"),
    "unblock": _group_state_command("unblock", "unblocked"),
    "block-agent": _agent_block_command("block_agent", "blocked"),
    "unblock-agent": _agent_block_command("unblock_agent", "unblocked"),
    "watch": cmd_watch,
    "blocked-agents": cmd_blocked_agents,
}


# ---------------------------------------------------------------- token commands


def node_call(network: net.Network, node: str, service: str, stub_class, method: str, request):
    """One node-internal call to `node`'s `service` ("conductor", "lobby" or "group_dht"),
    with the node's secret."""
    record = network.node(node)
    try:
        metadata = net.conductor_metadata(record)
    except OSError as exc:
        raise CliError(f"cannot read node {node}'s secret at {net.secret_path(record)}: {exc.strerror}",
                       EXIT_REFUSED) from None
    with grpc.insecure_channel(record[service]) as channel:
        try:
            return getattr(stub_class(channel), method)(request, metadata=metadata, timeout=net.RPC_TIMEOUT)
        except grpc.RpcError as exc:
            if exc.code() in net.TRANSIENT:
                raise CliError(
                    f"node {node}'s {service} at {record[service]} is not reachable"
                    f" (see `kizuna net status --dir {network.directory}`)", EXIT_UNREACHABLE) from None
            raise CliError(f"node {node}'s {service}: {exc.code().name}: {exc.details()}",
                           EXIT_BY_STATUS.get(exc.code().name, EXIT_FAILED)) from None


def conductor_call(network: net.Network, node: str, method: str, request):
    return node_call(network, node, "conductor", conductor_pb2_grpc.ConductorStub, method, request)


def token_line(names: Names, node: str, token) -> str:
    state = "revoked" if token.revoked else "active"
    return f"{token.token_id}  {names.agent(token.agent)}  node {node}  issued {when(token.created)}  {state}"


def cmd_tokens_list(args, network: net.Network, names: Names) -> int:
    nodes = [args.node] if args.node else list(network.nodes)
    if not nodes:
        raise not_found(f"no nodes in {net.config_path(network.directory)}")
    lines, listing = [], []
    for node in nodes:
        network.node(node)
        listed = conductor_call(network, node, "ListAppTokens", conductor_pb2.ListAppTokensRequest())
        for token in sorted(listed.tokens, key=lambda t: (t.created, t.token_id)):
            lines.append(token_line(names, node, token))
            listing.append({"node": node, "token": token})
    say_lines(args, lines or ["no app tokens"], {"tokens": listing})
    return 0


def cmd_tokens_issue(args, network: net.Network, names: Names) -> int:
    record = network.agent(args.agent)
    node, key = record["node"], base64.b64decode(record["agent"])
    answer = conductor_call(network, node, "IssueAppToken", conductor_pb2.IssueAppTokenRequest(agent=key))
    lines = [f"issued token {answer.token.token_id} for {names.agent(key)} on node {node}:", f"  {answer.app_token}"]
    if args.save:
        net.save_token(network, args.agent, answer.app_token)
        lines.append(f"saved in {net.config_path(network.directory)}: the CLI now uses it for {args.agent}")
    else:
        lines.append("it is shown only now (unless saved with --save)")
    lines.append(f"`kizuna tokens revoke {answer.token.token_id}` revokes it")
    say_lines(args, lines, {"node": node, "token": answer.token, "app_token": answer.app_token, "saved": args.save})
    return 0


def cmd_tokens_revoke(args, network: net.Network, names: Names) -> int:
    """Revokes the token on the node that issued it: `--node`, else whichever lists it."""
    nodes = [args.node] if args.node else list(network.nodes)
    unreachable = []
    for node in nodes:
        network.node(node)
        try:
            listed = conductor_call(network, node, "ListAppTokens", conductor_pb2.ListAppTokensRequest())
        except CliError:
            if args.node:
                raise
            unreachable.append(node)
            continue
        found = next((t for t in listed.tokens if t.token_id == args.token_id), None)
        if found is None:
            continue
        was_revoked = found.revoked
        token = conductor_call(network, node, "RevokeAppToken",
                               conductor_pb2.RevokeAppTokenRequest(token_id=args.token_id)).token
        note = " (it already was)" if was_revoked else ""
        say(args, f"revoked token {token.token_id} of {names.agent(token.agent)} on node {node}{note}",
            {"node": node, "token": token, "already_revoked": was_revoked})
        return 0
    where = f"node {args.node}" if args.node else "any node"
    if unreachable:
        where += f" (not reachable: {', '.join(unreachable)})"
    raise not_found(f"no app token {args.token_id} on {where}; see `kizuna tokens list`")


TOKEN_COMMANDS = {"list": cmd_tokens_list, "issue": cmd_tokens_issue, "revoke": cmd_tokens_revoke}


def run_tokens_command(args) -> int:
    network = net.load(args.dir)
    return TOKEN_COMMANDS[args.tokens_command](args, network, Names(network))


# ---------------------------------------------------------------- admin commands


def admin_call(network: net.Network, node: str, method: str, request):
    """One LobbyAdmin call to `node`'s lobby, with the node's secret."""
    return node_call(network, node, "lobby", admin_pb2_grpc.LobbyAdminStub, method, request)


def cmd_admin_outbox(args, network: net.Network, names: Names) -> int:
    listed = admin_call(network, args.node, "ListOutbox", admin_pb2.ListOutboxRequest(limit=args.limit))
    lines = []
    for item in listed.items:
        state = "sending now" if item.in_flight else f"next try {when(item.next_attempt)}"
        lines.append(f"{item.kind} {item.item_hash.hex()[:16]}  from {names.agent(item.author)} to"
                     f" {names.agent(item.receiver)}  group {item.group_uuid}  queued {when(item.queued_at)}"
                     f"  tries {item.attempts}  {state}")
    lines.append(f"{listed.total} items in node {args.node}'s outbox"
                 + (f" ({len(listed.items)} shown)" if len(listed.items) < listed.total else ""))
    say_lines(args, lines, listed)
    return 0


def cmd_admin_retry(args, network: net.Network, names: Names) -> int:
    try:
        item_hash = bytes.fromhex(args.item) if args.item else b""
    except ValueError:
        raise CliError(f"{args.item!r} is not an item hash (hex, as `kizuna admin outbox` shows it)") from None
    if item_hash and len(item_hash) != 32:
        listed = admin_call(network, args.node, "ListOutbox", admin_pb2.ListOutboxRequest(limit=1000))
        matches = [i.item_hash for i in listed.items if i.item_hash.startswith(item_hash)]
        if len(set(matches)) != 1:
            raise CliError(f"{args.item} names {len(set(matches))} outbox items; give more of its hash")
        item_hash = matches[0]
    receiver = base64.b64decode(network.agent(args.receiver)["agent"]) if args.receiver else b""
    answer = admin_call(network, args.node, "RetryOutbox",
                        admin_pb2.RetryOutboxRequest(item_hash=item_hash, receiver=receiver))
    say(args, f"{answer.retried} items of node {args.node}'s outbox are being tried now", answer)
    return 0


def cmd_admin_signals(args, network: net.Network, names: Names) -> int:
    listed = admin_call(network, args.node, "ListQueuedSignals", admin_pb2.ListQueuedSignalsRequest())
    say_lines(args, [f"{names.agent(queued.agent)}  {queued.count} signals kept, not yet acked by a UI"
                     for queued in listed.agents] or [f"no signals kept on node {args.node}"], listed)
    return 0


def cmd_admin_spaces(args, network: net.Network, names: Names) -> int:
    listed = node_call(network, args.node, "group_dht", group_dht_pb2_grpc.GroupDhtStub, "ListSpaces",
                       group_dht_pb2.ListSpacesRequest())
    lines = []
    for space in listed.spaces:
        what = "the Lobby space" if space.template != "group" else f"group {space.name or space.properties.name}"
        nodes = ", ".join(n.hex()[:16] for n in space.nodes)
        lines.append(f"{space.space.hex()[:16]}  {what}  {space.ops} ops  {len(space.agents)} agents here"
                     f"  {len(space.members)} members  repair rounds {space.sync.rounds}"
                     f" (ops repaired {space.sync.ops_repaired})  held by {len(space.nodes)} nodes: {nodes}")
    say_lines(args, lines, listed)
    return 0


ADMIN_COMMANDS = {"outbox": cmd_admin_outbox, "retry": cmd_admin_retry, "signals": cmd_admin_signals,
                  "spaces": cmd_admin_spaces}


def run_admin_command(args) -> int:
    network = net.load(args.dir)
    return ADMIN_COMMANDS[args.admin_command](args, network, Names(network))


# ---------------------------------------------------------------- net commands


def run_net_command(args) -> int:
    if args.net_command == "up":
        if args.nodes and args.nodes.isdigit():
            nodes = net.numbered_nodes(int(args.nodes))
        else:
            nodes = tuple(n for n in args.nodes.split(",") if n) if args.nodes else net.DEFAULT_NODES
        network = net.up(args.dir, nodes=nodes, timeout=args.timeout, agents_per_node=args.agents_per_node)
        lines = []
        for name, node in network.nodes.items():
            agents = net.agent_names(name, node.get("agents_per_node", 1))
            hosting = f"  agents {agents[0]}..{agents[-1]} ({len(agents)})" if len(agents) > 1 else ""
            lines.append(f"{name}: lobby {node['lobby']}  conductor {node['conductor']}  dht {node['group_dht']}{hosting}")
        config = network.directory / net.CONFIG_NAME
        say_lines(args, [*lines, f"network in {config}"], {"config": str(config), "nodes": network.nodes})
    elif args.net_command == "down":
        net.down(args.dir)
        say(args, "stopped", {"stopped": True})
    elif args.net_command == "status":
        status = net.status(args.dir)
        lines = []
        for name, services in status.items():
            parts = []
            for service, s in services.items():
                state = "healthy" if s["healthy"] else "running, not healthy" if s["running"] else "stopped"
                parts.append(f"{service} {s['address']} {state}")
            lines.append(f"{name}: " + ", ".join(parts))
        say_lines(args, lines, status)
    elif args.net_command == "stop":
        net.stop_node(args.dir, args.node, kill=args.kill)
        say(args, f"{args.node} {'killed' if args.kill else 'stopped'}", {"node": args.node, "stopped": True})
    elif args.net_command == "start":
        net.start_node(args.dir, args.node, timeout=args.timeout)
        say(args, f"{args.node} started", {"node": args.node, "started": True})
    return 0


# ---------------------------------------------------------------- node commands


NODE_SETTINGS = {  # flag dest -> config key
    "ui": "listen.ui", "lobby_peer": "listen.lobby_peer", "dht_peer": "listen.dht_peer",
    "advertise_host": "listen.advertise_host", "bootstrap": "network.bootstrap",
}


def _describe(record: dict) -> list[str]:
    return [
        f"node {record['name']} in {record['data_dir']}",
        f"  UI (this machine only): {record['lobby']}",
        f"  peers reach it over TLS at lobby {record['lobby_advertise']}, DHT {record['dht_advertise']}",
        f"  certificate fingerprint (SHA-256): {record['fingerprint']}",
        f"  a friend joins with: kizuna node run --dir DIR --bootstrap {node_config.bootstrap_address(record)}",
    ]


def run_node_command(args) -> int:
    directory = args.node_dir
    overrides = {key: getattr(args, dest) for dest, key in NODE_SETTINGS.items() if getattr(args, dest, None)}
    try:
        if args.node_command == "init":
            config = node_config.init(directory, args.name, **{
                dest: value for dest, value in ((d, getattr(args, d)) for d in ("ui", "lobby_peer", "dht_peer",
                                                                                 "advertise_host", "bootstrap"))
                if value})
            config = node_config.load_config(directory, overrides=overrides)
            record = node_config.node_record(config)
            say_lines(args, [*_describe(record), f"settings in {Path(directory).resolve() / node_config.CONFIG_FILE};"
                                                 f" start it with `kizuna node run --dir {directory}`"], record)
            return 0
        record = node_config.node_record(node_config.load_config(directory, overrides=overrides))
    except node_config.ConfigError as exc:
        raise CliError(str(exc)) from None
    if args.node_command == "info":
        say_lines(args, _describe(record), record)
        return 0

    def ready(network):
        say_lines(args, [*_describe(record), f"serving; chat with `kizuna --dir {directory} --as {record['name']} ...`;"
                                             " Ctrl-C stops the node"], {**record, "serving": True})

    return net.run_node(directory, record, timeout=args.timeout, on_ready=ready)


# ---------------------------------------------------------------- parsing


def _version() -> str:
    for distribution in ("kizuna", "kizuna-client"):  # the whole node, or the client alone
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            pass
    return "unknown (not installed)"


EXAMPLES = {  # one per command, shown at the end of its --help
    "net up": "kizuna net up --dir net --nodes alice,bobby,charlie",
    "net down": "kizuna net down --dir net",
    "net status": "kizuna net status --json",
    "net stop": "kizuna net stop charlie --kill",
    "net start": "kizuna net start charlie",
    "chat": "kizuna --dir net --as alice chat",
    "groups": "kizuna --as alice groups --json",
    "create-group": "kizuna --as alice create-group Family bobby charlie",
    "send": "kizuna --as alice send Family 'dinner at 8?'",
    "reply": "kizuna --as bobby reply Family 3fa2 'yes!'",
    "history": "kizuna --as bobby history Family --limit 20 --json",
    "conversations": "kizuna --as bobby conversations",
    "add": "kizuna --as alice add Family dana",
    "remove": "kizuna --as alice remove Family dana",
    "rename": "kizuna --as alice rename Family 'The Family'",
    "leave": "kizuna --as charlie leave Family",
    "read": "kizuna --as bobby read Family",
    "accept": "kizuna --as bobby accept Family",
    "delete": "kizuna --as bobby delete Family",
    "block": "kizuna --as bobby block Family",
    "unblock": "kizuna --as bobby unblock Family",
    "block-agent": "kizuna --as bobby block-agent charlie",
    "unblock-agent": "kizuna --as bobby unblock-agent charlie",
    "blocked-agents": "kizuna --as bobby blocked-agents",
    "watch": "kizuna --as bobby watch --json --count 10 --timeout 60",
    "send-file": "kizuna --as alice send-file friends photo.jpg --text 'us, last summer'",
    "fetch-file": "kizuna --as bobby fetch-file friends 3fa2c1d0 ~/Downloads",
    "pin": "kizuna --as alice pin friends 3fa2c1d0",
    "unpin": "kizuna --as alice unpin friends 3fa2c1d0",
    "pins": "kizuna --as bobby pins friends --json",
    "admin outbox": "kizuna admin outbox alice",
    "admin retry": "kizuna admin retry alice --receiver charlie",
    "admin signals": "kizuna admin signals bobby",
    "admin spaces": "kizuna admin spaces alice --json",
    "tokens list": "kizuna tokens list alice",
    "tokens issue": "kizuna tokens issue alice --save",
    "tokens revoke": "kizuna tokens revoke 5d1c0e2a",
    "node init": "kizuna node init --dir ~/kizuna --name alice --advertise-host 192.168.1.20",
    "node run": "kizuna node run --dir ~/kizuna",
    "node info": "kizuna node info --dir ~/kizuna",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows an option's default when it has one worth showing."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or not action.option_strings
                or action.default in (None, False, True, argparse.SUPPRESS)):
            return text
        return f"{text} (default: %(default)s)"


def _finish_help(parser: argparse.ArgumentParser, path: str = "") -> None:
    """Every command's help: defaults shown, the exit codes, and its example."""
    parser.formatter_class = HelpFormatter
    codes = "exit codes: " + ", ".join(f"{code} {words.split(':')[0]}" for code, words in EXIT_CODES.items())
    parser.epilog = (f"example:\n  {EXAMPLES[path]}\n\n" if path in EXAMPLES else "") + codes
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                _finish_help(child, f"{path} {name}".strip())


def build_parser() -> argparse.ArgumentParser:
    # --dir, --as, --token and --json may come before or after the command; SUPPRESS keeps
    # a subcommand from overwriting what was given before it.
    json_common = argparse.ArgumentParser(add_help=False)
    json_common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                             help="print JSON (one document per line for watch and history)")
    common = argparse.ArgumentParser(add_help=False, parents=[json_common])
    common.add_argument("--dir", default=argparse.SUPPRESS,
                        help=f"network directory (default: $KIZUNA_DIR, else ./{DEFAULT_DIR})")
    agent_common = argparse.ArgumentParser(add_help=False, parents=[common])
    agent_common.add_argument("--as", dest="as_agent", default=argparse.SUPPRESS, metavar="AGENT",
                              help="act as this agent (default: $KIZUNA_AS)")
    agent_common.add_argument("--token", default=argparse.SUPPRESS,
                              help="the agent's app token (default: $KIZUNA_TOKEN, else the one in network.json)")

    parser = argparse.ArgumentParser(prog="kizuna", description="Kizuna group messaging on a local network")
    parser.add_argument("--version", action="version", version=f"kizuna {_version()}")
    parser.add_argument("--dir", default=os.environ.get("KIZUNA_DIR", DEFAULT_DIR),
                        help=f"network directory (default: $KIZUNA_DIR, else ./{DEFAULT_DIR})")
    parser.add_argument("--as", dest="as_agent", metavar="AGENT", default=os.environ.get("KIZUNA_AS"),
                        help="act as this agent (default: $KIZUNA_AS)")
    parser.add_argument("--token", default=os.environ.get("KIZUNA_TOKEN"),
                        help="the agent's app token (default: $KIZUNA_TOKEN, else the one in network.json)")
    parser.add_argument("--json", action="store_true", default=False,
                        help="print JSON (one document per line for watch and history)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    net_parser = sub.add_parser("net", help="run a local network in the background", parents=[common])
    net_sub = net_parser.add_subparsers(dest="net_command", metavar="up|down|status|stop|start")
    net_sub.required = True
    p = net_sub.add_parser("up", help="start (or restart) every node", parents=[common])
    p.add_argument("--nodes", help="comma-separated node names (default alice,bobby,charlie), or a number N"
                                   " of nodes named n01..nN")
    p.add_argument("--agents-per-node", type=int, default=None, metavar="M",
                   help="agents each node hosts, each with its own keys, chain and token: NODE, NODE-2, ..."
                        " (default: as recorded, else 1)")
    p.add_argument("--timeout", type=float, default=30.0)
    net_sub.add_parser("down", help="stop every node", parents=[common])
    net_sub.add_parser("status", help="each node's services", parents=[common])
    p = net_sub.add_parser("stop", help="stop one node", parents=[common])
    p.add_argument("node")
    p.add_argument("--kill", action="store_true", help="SIGKILL, as when the machine goes offline")
    p = net_sub.add_parser("start", help="start one node again", parents=[common])
    p.add_argument("node")
    p.add_argument("--timeout", type=float, default=30.0)

    sub.add_parser("chat", help="chat in this terminal: groups, messages, replies, group commands",
                   parents=[agent_common])
    sub.add_parser("groups", help="the groups this agent knows", parents=[agent_common])
    p = sub.add_parser("create-group", help="create a group and invite its members", parents=[agent_common])
    p.add_argument("name")
    p.add_argument("participants", nargs="+", metavar="PARTICIPANT", help="username or base64 agent key")
    p = sub.add_parser("send", help="send a message to a group", parents=[agent_common])
    p.add_argument("group", metavar="GROUP")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--reply-to", metavar="MESSAGE_HASH_PREFIX", help="the message (in the group) this one answers")
    p = sub.add_parser("reply", help="answer a message of a group", parents=[agent_common])
    p.add_argument("group", metavar="GROUP")
    p.add_argument("message", metavar="MESSAGE_HASH_PREFIX")
    p.add_argument("text", metavar="TEXT")
    p = sub.add_parser("history", help="a group's messages, oldest first", parents=[agent_common])
    p.add_argument("group", metavar="GROUP")
    p.add_argument("--limit", type=int, help="only N messages: the newest (--older) or the oldest (--newer)")
    direction = p.add_mutually_exclusive_group()
    direction.add_argument("--older", dest="newer", action="store_false", default=False,
                           help="from the newest end (or the cursor) towards older messages (default)")
    direction.add_argument("--newer", dest="newer", action="store_true",
                           help="from the oldest end (or the cursor) towards newer messages")
    cursor = p.add_mutually_exclusive_group()
    cursor.add_argument("--from-time", metavar="TIME", help="start after (--newer) or before (--older) this time")
    cursor.add_argument("--from-message", metavar="MESSAGE_HASH_PREFIX", help="start after or before this message")
    p.add_argument("--author", metavar="AGENT", help="only this agent's messages")
    sub.add_parser("conversations", help="every group with its latest message, most recent first",
                   parents=[agent_common])
    for name, text in (("add", "add members to"), ("remove", "remove members from")):
        p = sub.add_parser(name, help=f"admins: {text} a group", parents=[agent_common])
        p.add_argument("group", metavar="GROUP")
        p.add_argument("participants", nargs="+", metavar="PARTICIPANT", help="username or base64 agent key")
    p = sub.add_parser("rename", help="admins: rename a group", parents=[agent_common])
    p.add_argument("group", metavar="GROUP")
    p.add_argument("name", metavar="NAME")
    p = sub.add_parser("leave", help="leave a group", parents=[agent_common])
    p.add_argument("group", metavar="GROUP")
    p = sub.add_parser("read", help="mark every unread message of a group read", parents=[agent_common])
    p.add_argument("group", metavar="GROUP")
    for name, text in (("accept", "accept"), ("delete", "delete"), ("block", "block"), ("unblock", "unblock")):
        p = sub.add_parser(name, help=f"{text} a group", parents=[agent_common])
        p.add_argument("group", metavar="GROUP")
    for name in ("block-agent", "unblock-agent"):
        p = sub.add_parser(name, help=f"{name.split('-')[0]} an agent", parents=[agent_common])
        p.add_argument("agent", metavar="USERNAME_OR_KEY")
    sub.add_parser("blocked-agents", help="the agents this agent blocked", parents=[agent_common])
    p = sub.add_parser("watch", help="print signals as they arrive", parents=[agent_common])
    p.add_argument("--count", type=int, help="stop after N events")
    p.add_argument("--timeout", type=float, help="stop after S seconds")
    files_cli.add_parsers(sub, agent_common)

    admin_parser = sub.add_parser("admin", help="a node operator's view: outbox, queued signals, DHT spaces"
                                                 " (node-internal)", parents=[common])
    admin_sub = admin_parser.add_subparsers(dest="admin_command", metavar="outbox|retry|signals|spaces")
    p = admin_sub.add_parser("outbox", help="what waits in a lobby's outbox, oldest first", parents=[common])
    p.add_argument("node")
    p.add_argument("--limit", type=int, default=100, help="items shown at most (default 100)")
    p = admin_sub.add_parser("retry", help="try a lobby's queued items now (all, or those named)", parents=[common])
    p.add_argument("node")
    p.add_argument("--item", help="only the item with this hash (or a prefix of it, as `outbox` shows)")
    p.add_argument("--receiver", help="only the items for this agent")
    p = admin_sub.add_parser("signals", help="signals kept for each agent until its UI acks them", parents=[common])
    p.add_argument("node")
    p = admin_sub.add_parser("spaces", help="the DHT spaces a node holds, with op counts", parents=[common])
    p.add_argument("node")
    tokens_parser = sub.add_parser("tokens", help="app tokens: list, issue, revoke (node-internal)", parents=[common])
    node_parser = sub.add_parser("node", help="one node of your own: init, run, info", parents=[json_common])
    node_sub = node_parser.add_subparsers(dest="node_command", metavar="init|run|info")
    node_sub.required = True
    node_common = argparse.ArgumentParser(add_help=False, parents=[json_common])
    node_common.add_argument("--dir", dest="node_dir", required=True, help="the node's directory")
    node_common.add_argument("--ui", help="the UI's address: loopback host:port or unix:PATH")
    node_common.add_argument("--lobby-peer", help="host:port other lobbies reach this one at (TLS)")
    node_common.add_argument("--dht-peer", help="host:port other DHT nodes reach this one at (TLS)")
    node_common.add_argument("--advertise-host", help="the host or address other nodes dial")
    node_common.add_argument("--bootstrap", action="append", metavar="HOST:PORT[#FINGERPRINT]",
                             help="a known node's DHT peer address (repeatable)")
    p = node_sub.add_parser("init", help="make a node's directory: TLS key and certificate, secret, kizuna.toml",
                            parents=[node_common])
    p.add_argument("--name", required=True, help="the node's agent's name and username")
    p = node_sub.add_parser("run", help="run the node in the foreground until Ctrl-C", parents=[node_common])
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the services to start")
    node_sub.add_parser("info", help="the node's addresses and certificate fingerprint", parents=[node_common])

    tokens_sub = tokens_parser.add_subparsers(dest="tokens_command", metavar="list|issue|revoke")
    tokens_sub.required = True
    p = tokens_sub.add_parser("list", help="every node's app tokens (ids, never the tokens)", parents=[common])
    p.add_argument("node", nargs="?", metavar="NODE", help="only this node's")
    p = tokens_sub.add_parser("issue", help="a new app token for an agent", parents=[common])
    p.add_argument("agent", metavar="AGENT", help="an agent's name or username in network.json")
    p.add_argument("--save", action="store_true", help="record it in network.json, where the CLI takes tokens from")
    p = tokens_sub.add_parser("revoke", help="revoke an app token by its id", parents=[common])
    p.add_argument("token_id", metavar="TOKEN_ID")
    p.add_argument("--node", metavar="NODE", help="the node that issued it (default: look on every node)")
    _finish_help(parser)
    return parser


def one_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "failed"


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "net":
            code = run_net_command(args)
        elif args.command == "node":
            code = run_node_command(args)
        elif args.command == "tokens":
            code = run_tokens_command(args)
        elif args.command == "admin":
            if not args.admin_command:
                raise CliError("`kizuna admin` needs a command: outbox, retry, signals or spaces")
            code = run_admin_command(args)
        else:
            if not args.as_agent:
                raise CliError(f"`kizuna {args.command}` needs --as AGENT")
            code = asyncio.run(run_agent_command(args))
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:  # noqa: BLE001 - a person sees one line, never a traceback
        code, message = failure(exc)
        if getattr(args, "json", False):
            print(json.dumps({"error": {"exit_code": code, "kind": EXIT_CODES[code].split(":")[0],
                                        "message": message}}), file=sys.stderr)
        else:
            print(f"kizuna: {message}", file=sys.stderr)
    sys.exit(code)


def failure(exc: Exception) -> tuple[int, str]:
    """The exit code and the one line a person reads for what went wrong."""
    if isinstance(exc, CliError):
        return exc.exit_code, one_line(str(exc))
    if isinstance(exc, ClientError):
        return EXIT_BY_STATUS.get(exc.code.name, EXIT_FAILED), one_line(str(exc))
    if isinstance(exc, net.NotFound):
        return EXIT_NOT_FOUND, one_line(str(exc))
    if isinstance(exc, net.NetError):
        return EXIT_FAILED, one_line(str(exc))
    if isinstance(exc, TimeoutError):
        return EXIT_UNREACHABLE, one_line(str(exc)) if str(exc) else "timed out"
    return EXIT_FAILED, f"{type(exc).__name__}: {one_line(str(exc))}"
