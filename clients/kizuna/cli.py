"""The `kizuna` command: a local network (`kizuna net ...`) and a person's commands (`kizuna --as AGENT ...`).

    kizuna net up|down|status|stop NODE [--kill]|start NODE [--dir DIR]
    kizuna [--dir DIR] --as AGENT groups|create-group|send|history|accept|delete|block|unblock|
                                  block-agent|unblock-agent|watch
    kizuna [--dir DIR] tokens list [NODE] | issue AGENT | revoke TOKEN_ID [--node NODE]

Addresses and tokens come from DIR/network.json (DIR defaults to ./net); the token
commands call a node's conductor with the node's secret from its data directory. Output is one
line per item with names resolved; an error is one line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import datetime
import sys

import grpc

from kizuna import net
from kizuna.client import Client, ClientError, UiEvent
from kizuna.v1 import conductor_pb2, conductor_pb2_grpc, lobby_pb2

DEFAULT_DIR = "net"


class CliError(Exception):
    """A mistake in what the person asked for; printed as one line."""


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


def message_line(names: Names, record, with_group: bool = False) -> str:
    entry = record.entry
    prefix = f"[{names.group(entry.group_uuid)}] " if with_group else ""
    line = f"{when(entry.time_sent)}  {prefix}{names.agent(entry.author)}: {entry.payload}"
    if record.blocked_members:
        line += f"  (warning: you blocked {names.agents(record.blocked_members)})"
    elif record.warning:
        line += f"  (warning: {record.warning})"
    return line


def event_lines(names: Names, event: UiEvent) -> list[str]:
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
    raise CliError(f"no group {text!r} known to this agent (see `kizuna groups`)")


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
        raise CliError(f"no agent {text!r}: not a known username nor a base64 agent key")
    return key


# ---------------------------------------------------------------- agent commands


async def run_agent_command(args) -> int:
    network = net.load(args.dir)
    try:
        address, token = network.lobby_address(args.as_agent), network.token(args.as_agent)
    except net.NetError as exc:
        raise CliError(str(exc)) from None
    async with Client(address, token) as client:
        names = Names(network, client)
        try:
            return await COMMANDS[args.command](args, network, client, names)
        except ClientError as exc:
            if exc.code.name == "UNAVAILABLE" and "connect" in exc.details:
                raise CliError(
                    f"{args.as_agent}'s lobby at {address} is not reachable (see `kizuna net status --dir {args.dir}`)"
                ) from None
            raise


async def cmd_groups(args, network, client, names) -> int:
    answer = await client.groups()
    if not answer.details and not answer.groups.group_uuids and not answer.groups.blocked:
        print("no groups")
        return 0
    shown = set()
    for g in answer.details:
        shown.add(g.group_uuid)
        print(
            f"{g.group_uuid[:8]}  {g.name or '(unnamed)'}  [{STATE_WORDS.get(g.state, 'unknown')}]"
            f"  by {names.agent(g.creator)}, members: {names.agents(g.initial_members)}, since {when(g.timestamp)}"
        )
    for uuid in answer.groups.group_uuids:
        if uuid not in shown:
            print(f"{uuid[:8]}  (no details)  [accepted]")
    for uuid in answer.groups.blocked:
        if uuid not in shown:
            print(f"{uuid[:8]}  (no details)  [blocked]")
    return 0


async def cmd_create_group(args, network, client, names) -> int:
    participants = []
    for p in args.participants:
        # A name from network.json goes as its key, so it works before usernames propagate.
        try:
            participants.append(base64.b64encode(network.agent_key(p)).decode())
        except net.NetError:
            participants.append(p)
    answer = await client.create_group(args.name, participants)
    g = answer.group
    print(f'created "{g.name}" ({g.group_uuid}), members: {names.agents(g.initial_members)}')
    for outcome in answer.invites:
        print(outcome_line(names, outcome, what="invite to "))
    return 0


async def cmd_send(args, network, client, names) -> int:
    group_uuid = await resolve_group(client, args.group)
    answer = await client.send(group_uuid, args.text)
    print(f"sent to {names.group(group_uuid)} at {when(answer.message.entry.time_sent)}")
    for outcome in answer.outcomes:
        print(outcome_line(names, outcome))
    return 0


async def cmd_history(args, network, client, names) -> int:
    group_uuid = await resolve_group(client, args.group)
    if args.limit:
        records, token = [], ""
        while len(records) < args.limit:
            page = await client.history(group_uuid, page_size=min(500, args.limit - len(records)), page_token=token)
            records.extend(page.messages)
            token = page.next_page_token
            if not token or not page.messages:
                break
    else:
        records = await client.all_history(group_uuid)
    if not records:
        print(f"no messages in {names.group(group_uuid)}")
    for record in reversed(records):  # oldest first, as people read
        print(message_line(names, record))
    return 0


def _group_state_command(method: str, verb: str):
    async def command(args, network, client, names) -> int:
        group_uuid = await resolve_group(client, args.group)
        label = names.group(group_uuid)
        await getattr(client, method)(group_uuid)
        print(f"{verb} {label}")
        return 0

    return command


def _agent_block_command(method: str, verb: str):
    async def command(args, network, client, names) -> int:
        key = await resolve_agent(network, client, args.agent)
        blocked = await getattr(client, method)(key)
        print(f"{verb} {names.agent(key)}; blocked agents: {names.agents(blocked.agents) or 'none'}")
        return 0

    return command


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
        for line in event_lines(names, event):
            print(line, flush=True)
        seen += 1
    return 0


COMMANDS = {
    "groups": cmd_groups,
    "create-group": cmd_create_group,
    "send": cmd_send,
    "history": cmd_history,
    "accept": _group_state_command("accept", "accepted"),
    "delete": _group_state_command("delete", "deleted"),
    "block": _group_state_command("block", "blocked"),
    "unblock": _group_state_command("unblock", "unblocked"),
    "block-agent": _agent_block_command("block_agent", "blocked"),
    "unblock-agent": _agent_block_command("unblock_agent", "unblocked"),
    "watch": cmd_watch,
}


# ---------------------------------------------------------------- token commands


def conductor_call(network: net.Network, node: str, method: str, request):
    """One node-internal call to `node`'s conductor, with the node's secret."""
    record = network.node(node)
    try:
        metadata = net.conductor_metadata(record)
    except OSError as exc:
        raise CliError(f"cannot read node {node}'s secret at {net.secret_path(record)}: {exc.strerror}") from None
    with grpc.insecure_channel(record["conductor"]) as channel:
        stub = conductor_pb2_grpc.ConductorStub(channel)
        try:
            return getattr(stub, method)(request, metadata=metadata, timeout=net.RPC_TIMEOUT)
        except grpc.RpcError as exc:
            if exc.code() in net.TRANSIENT:
                raise CliError(
                    f"node {node}'s conductor at {record['conductor']} is not reachable"
                    f" (see `kizuna net status --dir {network.directory}`)"
                ) from None
            raise CliError(f"node {node}'s conductor: {exc.code().name}: {exc.details()}") from None


def token_line(names: Names, node: str, token) -> str:
    state = "revoked" if token.revoked else "active"
    return f"{token.token_id}  {names.agent(token.agent)}  node {node}  issued {when(token.created)}  {state}"


def cmd_tokens_list(args, network: net.Network, names: Names) -> int:
    nodes = [args.node] if args.node else list(network.nodes)
    if not nodes:
        raise CliError(f"no nodes in {net.config_path(network.directory)}")
    shown = 0
    for node in nodes:
        network.node(node)
        listed = conductor_call(network, node, "ListAppTokens", conductor_pb2.ListAppTokensRequest())
        for token in sorted(listed.tokens, key=lambda t: (t.created, t.token_id)):
            print(token_line(names, node, token))
            shown += 1
    if not shown:
        print("no app tokens")
    return 0


def cmd_tokens_issue(args, network: net.Network, names: Names) -> int:
    record = network.agent(args.agent)
    node, key = record["node"], base64.b64decode(record["agent"])
    answer = conductor_call(network, node, "IssueAppToken", conductor_pb2.IssueAppTokenRequest(agent=key))
    print(f"issued token {answer.token.token_id} for {names.agent(key)} on node {node}:")
    print(f"  {answer.app_token}")
    print(f"it is shown only now; `kizuna tokens revoke {answer.token.token_id}` revokes it")
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
        print(f"revoked token {token.token_id} of {names.agent(token.agent)} on node {node}{note}")
        return 0
    where = f"node {args.node}" if args.node else "any node"
    if unreachable:
        where += f" (not reachable: {', '.join(unreachable)})"
    raise CliError(f"no app token {args.token_id} on {where}; see `kizuna tokens list`")


TOKEN_COMMANDS = {"list": cmd_tokens_list, "issue": cmd_tokens_issue, "revoke": cmd_tokens_revoke}


def run_tokens_command(args) -> int:
    network = net.load(args.dir)
    return TOKEN_COMMANDS[args.tokens_command](args, network, Names(network))


# ---------------------------------------------------------------- net commands


def run_net_command(args) -> int:
    if args.net_command == "up":
        nodes = tuple(n for n in args.nodes.split(",") if n) if args.nodes else net.DEFAULT_NODES
        network = net.up(args.dir, nodes=nodes, timeout=args.timeout)
        for name, node in network.nodes.items():
            print(f"{name}: lobby {node['lobby']}  conductor {node['conductor']}  dht {node['group_dht']}")
        print(f"network in {network.directory / net.CONFIG_NAME}")
    elif args.net_command == "down":
        net.down(args.dir)
        print("stopped")
    elif args.net_command == "status":
        for name, services in net.status(args.dir).items():
            parts = []
            for service, s in services.items():
                state = "healthy" if s["healthy"] else "running, not healthy" if s["running"] else "stopped"
                parts.append(f"{service} {s['address']} {state}")
            print(f"{name}: " + ", ".join(parts))
    elif args.net_command == "stop":
        net.stop_node(args.dir, args.node, kill=args.kill)
        print(f"{args.node} {'killed' if args.kill else 'stopped'}")
    elif args.net_command == "start":
        net.start_node(args.dir, args.node, timeout=args.timeout)
        print(f"{args.node} started")
    return 0


# ---------------------------------------------------------------- parsing


def build_parser() -> argparse.ArgumentParser:
    # --dir and --as may come before or after the command; SUPPRESS keeps a subcommand
    # from overwriting what was given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", default=argparse.SUPPRESS, help=f"network directory (default ./{DEFAULT_DIR})")
    agent_common = argparse.ArgumentParser(add_help=False, parents=[common])
    agent_common.add_argument("--as", dest="as_agent", default=argparse.SUPPRESS, metavar="AGENT", help="act as this agent")

    parser = argparse.ArgumentParser(prog="kizuna", description="Kizuna group messaging on a local network")
    parser.add_argument("--dir", default=DEFAULT_DIR, help=f"network directory (default ./{DEFAULT_DIR})")
    parser.add_argument("--as", dest="as_agent", metavar="AGENT", help="act as this agent")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    net_parser = sub.add_parser("net", help="run a local network in the background", parents=[common])
    net_sub = net_parser.add_subparsers(dest="net_command", metavar="up|down|status|stop|start")
    net_sub.required = True
    p = net_sub.add_parser("up", help="start (or restart) every node", parents=[common])
    p.add_argument("--nodes", help="comma-separated node names (default alice,bobby,charlie)")
    p.add_argument("--timeout", type=float, default=30.0)
    net_sub.add_parser("down", help="stop every node", parents=[common])
    net_sub.add_parser("status", help="each node's services", parents=[common])
    p = net_sub.add_parser("stop", help="stop one node", parents=[common])
    p.add_argument("node")
    p.add_argument("--kill", action="store_true", help="SIGKILL, as when the machine goes offline")
    p = net_sub.add_parser("start", help="start one node again", parents=[common])
    p.add_argument("node")
    p.add_argument("--timeout", type=float, default=30.0)

    sub.add_parser("groups", help="the groups this agent knows", parents=[agent_common])
    p = sub.add_parser("create-group", help="create a group and invite its members", parents=[agent_common])
    p.add_argument("name")
    p.add_argument("participants", nargs="+", metavar="PARTICIPANT", help="username or base64 agent key")
    p = sub.add_parser("send", help="send a message to a group", parents=[agent_common])
    p.add_argument("group", metavar="GROUP")
    p.add_argument("text", metavar="TEXT")
    p = sub.add_parser("history", help="a group's messages, oldest first", parents=[agent_common])
    p.add_argument("group", metavar="GROUP")
    p.add_argument("--limit", type=int, help="only the newest N messages")
    for name, text in (("accept", "accept"), ("delete", "delete"), ("block", "block"), ("unblock", "unblock")):
        p = sub.add_parser(name, help=f"{text} a group", parents=[agent_common])
        p.add_argument("group", metavar="GROUP")
    for name in ("block-agent", "unblock-agent"):
        p = sub.add_parser(name, help=f"{name.split('-')[0]} an agent", parents=[agent_common])
        p.add_argument("agent", metavar="USERNAME_OR_KEY")
    p = sub.add_parser("watch", help="print signals as they arrive", parents=[agent_common])
    p.add_argument("--count", type=int, help="stop after N events")
    p.add_argument("--timeout", type=float, help="stop after S seconds")

    tokens_parser = sub.add_parser("tokens", help="app tokens: list, issue, revoke (node-internal)", parents=[common])
    tokens_sub = tokens_parser.add_subparsers(dest="tokens_command", metavar="list|issue|revoke")
    tokens_sub.required = True
    p = tokens_sub.add_parser("list", help="every node's app tokens (ids, never the tokens)", parents=[common])
    p.add_argument("node", nargs="?", metavar="NODE", help="only this node's")
    p = tokens_sub.add_parser("issue", help="a new app token for an agent", parents=[common])
    p.add_argument("agent", metavar="AGENT", help="an agent's name or username in network.json")
    p = tokens_sub.add_parser("revoke", help="revoke an app token by its id", parents=[common])
    p.add_argument("token_id", metavar="TOKEN_ID")
    p.add_argument("--node", metavar="NODE", help="the node that issued it (default: look on every node)")
    return parser


def one_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "failed"


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "net":
            code = run_net_command(args)
        elif args.command == "tokens":
            code = run_tokens_command(args)
        else:
            if not args.as_agent:
                raise CliError(f"`kizuna {args.command}` needs --as AGENT")
            code = asyncio.run(run_agent_command(args))
    except KeyboardInterrupt:
        code = 130
    except (CliError, ClientError, net.NetError, TimeoutError) as exc:
        print(f"kizuna: {one_line(str(exc))}", file=sys.stderr)
        code = 1
    except Exception as exc:  # noqa: BLE001 - a person sees one line, never a traceback
        print(f"kizuna: {type(exc).__name__}: {one_line(str(exc))}", file=sys.stderr)
        code = 1
    sys.exit(code)
