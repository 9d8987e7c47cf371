"""Receipts, typing, replies and history (issue 6) on real processes.

A receiver's lobby sends the author a delivered receipt when a message lands and a read
receipt when its UI calls MarkRead; the author's UI hears each as a `receipt` signal
without asking, and GetMessages shows them on its copy. Typing is ephemeral. History pages
both ways from a cursor, each message exactly once.
"""

import uuid

import grpc
import pytest

from kizuna import net
from kizuna.client import ClientError
from tests.helpers import run
from tests.integration.network import (
    create_group,
    make_clients,
    make_network,
    messages,
    outcomes_by_name,
    settle,
    start_node,
    status_name,
    stop_node,
    wait_until,
)

pytestmark = pytest.mark.integration

NAMES = ("alice", "bobby", "charlie")
CATCH_UP = 30.0


def receipts(client, message_hash=None, receiver=None):
    """The receipts the client's UI heard, oldest first (for a message / from a receiver)."""
    return [e.receipt for e in client.events_so_far() if e.kind == "receipt"
            and (message_hash is None or e.receipt.message_hash == message_hash)
            and (receiver is None or e.receipt.receiver == receiver)]


def typings(client, group):
    return [e.typing for e in client.events_so_far() if e.kind == "typing" and e.group_uuid == group]


async def record_of(client, group, message_hash):
    return next(r for r in await client.all_history(group) if r.message_hash == message_hash)


def receipt_from(record, receiver):
    return next((r for r in record.receipts if r.receiver == receiver), None)


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    with make_network(tmp_path_factory.mktemp("receipts-history-net")) as network:
        yield network


# ---------------------------------------------------------------- receipts


def test_alice_hears_bobbys_delivered_receipt_unasked_and_his_read_receipt_after_mark_read(network):
    bobby_key, charlie_key = network.agent_key("bobby"), network.agent_key("charlie")

    async def scenario():
        async with make_clients(network, NAMES) as clients:
            alice, bobby = clients["alice"], clients["bobby"]
            group = (await create_group(clients, "Receipts", ["bobby", "charlie"])).group.group_uuid
            sent = await alice.send(group, "did you get this?")
            h = sent.message.message_hash
            await wait_until(alice, lambda: receipts(alice, h, bobby_key), "alice's UI hears bobby's delivered receipt")
            await wait_until(alice, lambda: receipts(alice, h, charlie_key), "alice's UI hears charlie's delivered receipt")
            before_read = await record_of(alice, group, h)
            await wait_until(bobby, lambda: messages(bobby, group, "did you get this?"), "bobby's UI shows it")
            marked = await bobby.mark_read(group, [h])
            await wait_until(alice, lambda: any(r.read_at for r in receipts(alice, h, bobby_key)),
                             "alice's UI hears bobby's read receipt")
            again = await bobby.mark_read(group, [h])
            with pytest.raises(ClientError) as unknown:
                await bobby.mark_read(group, [b"\x01" * 32])
            after_read = await record_of(alice, group, h)
            bobby_copy = await record_of(bobby, group, h)
            return (sent, receipts(alice, h, bobby_key), receipts(alice, h, charlie_key), before_read, after_read,
                    marked, again, unknown.value, bobby_copy)

    sent, from_bobby, from_charlie, before_read, after_read, marked, again, unknown, bobby_copy = run(scenario())
    assert marked == 1 and again == 0
    assert unknown.code == grpc.StatusCode.NOT_FOUND
    delivered, *rest = from_bobby
    assert delivered.delivered_at and not delivered.read_at
    assert delivered.message_hash == sent.message.message_hash
    assert delivered.group_uuid == sent.message.entry.group_uuid
    assert delivered.delivered_at == bobby_copy.entry.time_received
    assert len(rest) == 1 and rest[0].read_at >= delivered.delivered_at and rest[0].delivered_at == delivered.delivered_at
    assert len(from_charlie) == 1 and from_charlie[0].delivered_at and not from_charlie[0].read_at
    # GetMessages on alice's side shows each receiver's times
    assert receipt_from(before_read, bobby_key).delivered_at == delivered.delivered_at
    assert not receipt_from(before_read, bobby_key).read_at
    assert receipt_from(after_read, bobby_key).delivered_at == delivered.delivered_at
    assert receipt_from(after_read, bobby_key).read_at == rest[0].read_at
    assert receipt_from(after_read, charlie_key).delivered_at and not receipt_from(after_read, charlie_key).read_at
    assert {r.receiver for r in after_read.receipts} == {bobby_key, charlie_key}


def test_with_bobby_offline_both_receipts_arrive_after_he_is_back_delivered_first(tmp_path):
    with make_network(tmp_path) as network:
        bobby_key = network.agent_key("bobby")

        async def setup():
            async with make_clients(network, NAMES) as clients:
                return (await create_group(clients, "Away", ["bobby", "charlie"])).group.group_uuid

        group = run(setup())

        async def scenario():
            async with make_clients(network, ("alice", "charlie")) as clients:
                alice = clients["alice"]
                await stop_node(tmp_path, "bobby", kill=True)
                sent = await alice.send(group, "for when you are back")
                h = sent.message.message_hash
                told_while_away = await alice.set_typing(group, True)
                assert receipts(alice, h, bobby_key) == []
                await start_node(tmp_path, "bobby")
                async with make_clients(network, ("bobby",)) as bobby_clients:
                    bobby = bobby_clients["bobby"]
                    await wait_until(bobby, lambda: messages(bobby, group, "for when you are back"),
                                     "bobby's UI shows the message after his restart", CATCH_UP)
                    await wait_until(alice, lambda: receipts(alice, h, bobby_key),
                                     "alice's UI hears bobby's delivered receipt once he is back", CATCH_UP)
                    assert await bobby.mark_read(group, [h]) == 1
                    await wait_until(alice, lambda: any(r.read_at for r in receipts(alice, h, bobby_key)),
                                     "alice's UI hears bobby's read receipt", CATCH_UP)
                    await settle(alice, [bobby], group)
                    bobby_typing = typings(bobby, group)
                return sent, told_while_away, receipts(alice, h, bobby_key), await record_of(alice, group, h), bobby_typing

        sent, told_while_away, heard, record, bobby_typing = run(scenario())
        assert status_name(outcomes_by_name(network, sent.outcomes)["bobby"].status) in ("STORED_IN_DHT", "QUEUED")
        assert told_while_away == 1  # only charlie was online
        assert bobby_typing == []    # typing never waits for anyone
        delivered, read = heard[0], heard[-1]
        assert delivered.delivered_at and not delivered.read_at, heard
        assert read.read_at and read.delivered_at == delivered.delivered_at, heard
        assert len(heard) == 2, heard
        mine = receipt_from(record, bobby_key)
        assert (mine.delivered_at, mine.read_at) == (delivered.delivered_at, read.read_at)


def test_a_receipt_owed_when_bobbys_node_is_killed_reaches_alice_after_his_restart(tmp_path):
    """Bobby's lobby holds receipts back for ten minutes, so his node dies owing the one for
    alice's message; restarted (with the usual batching), it sends it."""
    holding = {"bobby": {"lobby": ["--receipt-batch-seconds", "600"]}}
    with make_network(tmp_path, extra_args=holding) as network:
        bobby_key = network.agent_key("bobby")

        async def scenario():
            async with make_clients(network, ("alice", "bobby")) as clients:
                alice, bobby = clients["alice"], clients["bobby"]
                group = (await create_group(clients, "Owed", ["bobby"])).group.group_uuid
                h = (await alice.send(group, "receipt owed")).message.message_hash
                await wait_until(bobby, lambda: messages(bobby, group, "receipt owed"), "bobby's UI shows it")
                time_received = messages(bobby, group, "receipt owed")[0].record.entry.time_received
            await stop_node(tmp_path, "bobby", kill=True)
            config = net.load(tmp_path)
            config.nodes["bobby"]["extra_args"] = {}
            net.save(config)
            async with make_clients(network, ("alice",)) as clients:
                alice = clients["alice"]
                assert receipts(alice, h, bobby_key) == []
                await start_node(tmp_path, "bobby")
                await wait_until(alice, lambda: receipts(alice, h, bobby_key),
                                 "alice's UI hears the receipt bobby's lobby owed before it was killed", CATCH_UP)
                return time_received, receipts(alice, h, bobby_key), await record_of(alice, group, h)

        time_received, heard, record = run(scenario())
        assert [(r.delivered_at, r.read_at) for r in heard] == [(time_received, 0)]
        assert receipt_from(record, bobby_key).delivered_at == time_received


# ---------------------------------------------------------------- history


@pytest.fixture(scope="module")
def long_group(network):
    """A group of three with 120 messages: alice writes two of every three, bobby the third."""

    async def make():
        async with make_clients(network, NAMES) as clients:
            group = (await create_group(clients, "Long history", ["bobby", "charlie"])).group.group_uuid
            sent = []
            for i in range(120):
                author = "bobby" if i % 3 == 2 else "alice"
                sent.append((await clients[author].send(group, f"line {i:03d} by {author}")).message)
            await settle(clients["alice"], [clients["bobby"], clients["charlie"]], group)
            sentinel = (await clients["alice"].all_history(group))[0]
            return group, sent + [sentinel]

    return run(make())


async def pages(client, group, page_size, newer=False, author=b"", **cursor):
    """Every page from a cursor, following next_page_token; [[record, ...], ...]. Each
    next page is asked with the same direction and author and the token in place of the
    cursor."""
    out, token = [], ""
    while True:
        page = await client.history(group, page_size=page_size, page_token=token, newer=newer, author=author,
                                    **({} if token else cursor))
        out.append(list(page.messages))
        if not page.next_page_token:
            return out
        assert page.messages, "a page token after an empty page"
        assert len(page.messages) == page_size
        token = page.next_page_token


def flat(pages_):
    return [r.message_hash for page in pages_ for r in page]


@pytest.mark.parametrize("viewer", ["alice", "charlie"])
def test_paging_both_ways_returns_each_message_once_in_order_with_no_gaps(network, long_group, viewer):
    group, sent = long_group
    order = [m.message_hash for m in sent]  # oldest first

    async def read():
        async with make_clients(network, (viewer,), signals=False) as clients:
            client = clients[viewer]
            return await pages(client, group, 7), await pages(client, group, 7, newer=True)

    older, newer = run(read())
    assert flat(older) == list(reversed(order))
    assert flat(newer) == order
    assert len(older) == len(newer) == -(-len(order) // 7)
    assert all(len(p) == 7 for p in older[:-1]) and len(older[-1]) == len(order) % 7 or 7
    for got in (older, newer):
        assert len(set(flat(got))) == len(order)
    times = [r.entry.time_sent for p in newer for r in p]
    assert times == sorted(times)


def test_paging_from_a_message_or_a_time_starts_just_past_it(network, long_group):
    group, sent = long_group
    order = [m.message_hash for m in sent]
    times = [m.entry.time_sent for m in sent]

    async def read():
        async with make_clients(network, ("bobby",), signals=False) as clients:
            bobby = clients["bobby"]
            at = order[50]
            t = times[80]
            return {
                "older_from_msg": flat(await pages(bobby, group, 7, cursor_message=at)),
                "newer_from_msg": flat(await pages(bobby, group, 7, cursor_message=at, newer=True)),
                "older_from_time": flat(await pages(bobby, group, 7, cursor_time=t)),
                "newer_from_time": flat(await pages(bobby, group, 7, cursor_time=t, newer=True)),
                "newer_from_past": flat(await pages(bobby, group, 500, cursor_time=1, newer=True)),
                "older_from_future": flat(await pages(bobby, group, 500, cursor_time=times[-1] + 10**9)),
            }

    got = run(read())
    assert got["older_from_msg"] == list(reversed(order[:50]))
    assert got["newer_from_msg"] == order[51:]
    assert got["older_from_time"] == list(reversed([h for h, s in zip(order, times) if s < times[80]]))
    assert got["newer_from_time"] == [h for h, s in zip(order, times) if s > times[80]]
    assert got["newer_from_past"] == order
    assert got["older_from_future"] == list(reversed(order))


def test_author_filter_pages_only_that_authors_messages(network, long_group):
    group, sent = long_group
    bobby_key = network.agent_key("bobby")
    by_bobby = [m.message_hash for m in sent if m.entry.author == bobby_key]
    assert len(by_bobby) == 40

    async def read():
        async with make_clients(network, ("charlie",), signals=False) as clients:
            charlie = clients["charlie"]
            return (await pages(charlie, group, 7, author=bobby_key),
                    await pages(charlie, group, 7, author=bobby_key, newer=True),
                    await pages(charlie, group, 7, author=bobby_key, cursor_message=by_bobby[20], newer=True))

    older, newer, from_message = run(read())
    assert flat(older) == list(reversed(by_bobby))
    assert flat(newer) == by_bobby
    assert flat(from_message) == by_bobby[21:]
    assert all(r.entry.author == bobby_key for p in newer for r in p)


def test_bad_history_requests_are_refused(network, long_group):
    group, _ = long_group

    async def read():
        async with make_clients(network, ("alice",), signals=False) as clients:
            alice = clients["alice"]
            codes = {}
            for what, kwargs in {
                "page_size over 500": {"page_size": 501},
                "foreign token": {"page_token": "bm90LWEtdG9rZW4="},
                "unknown cursor message": {"cursor_message": b"\x02" * 32},
                "short author": {"author": b"\x03" * 5},
            }.items():
                try:
                    await alice.history(group, **kwargs)
                    codes[what] = "OK"
                except ClientError as exc:
                    codes[what] = exc.code.name
            return codes

    assert run(read()) == {"page_size over 500": "INVALID_ARGUMENT", "foreign token": "INVALID_ARGUMENT",
                           "unknown cursor message": "NOT_FOUND", "short author": "INVALID_ARGUMENT"}


# ---------------------------------------------------------------- conversations, replies, typing


def test_conversations_list_every_groups_latest_message_most_recent_first(network, long_group):
    group, sent = long_group

    async def scenario():
        async with make_clients(network, NAMES) as clients:
            alice = clients["alice"]
            quiet = (await create_group(clients, "Quiet", ["bobby"])).group.group_uuid
            other = (await create_group(clients, "Other", ["charlie"])).group.group_uuid
            await alice.send(other, "older in other")
            latest_other = (await alice.send(other, "newest anywhere")).message
            return quiet, other, latest_other, await alice.conversations(), await clients["bobby"].conversations()

    quiet, other, latest_other, alices, bobbys = run(scenario())
    by_group = {c.group.group_uuid: c for c in alices}
    assert by_group[other].latest.message_hash == latest_other.message_hash
    assert by_group[group].latest.message_hash == sent[-1].message_hash
    assert not by_group[quiet].HasField("latest")
    assert [c.group.group_uuid for c in alices].index(other) == 0
    assert [c.group.group_uuid for c in alices].index(group) < [c.group.group_uuid for c in alices].index(quiet) \
        or by_group[quiet].group.timestamp > sent[-1].entry.time_sent
    latest_times = [c.latest.entry.time_sent if c.HasField("latest") else c.group.timestamp for c in alices]
    assert latest_times == sorted(latest_times, reverse=True)
    assert other not in {c.group.group_uuid for c in bobbys}
    assert {group, quiet} <= {c.group.group_uuid for c in bobbys}


def test_a_reply_names_a_message_of_its_own_group_only(network, long_group):
    group, sent = long_group

    async def scenario():
        async with make_clients(network, NAMES) as clients:
            alice, bobby = clients["alice"], clients["bobby"]
            elsewhere = (await create_group(clients, "Elsewhere", ["bobby"])).group.group_uuid
            foreign = (await alice.send(elsewhere, "in another group")).message.message_hash
            codes = {}
            for what, reply_to in {"other group": foreign, "unknown": b"\x05" * 32, "short": b"\x05"}.items():
                try:
                    await bobby.send(group, "a bad reply", reply_to=reply_to)
                    codes[what] = "OK"
                except ClientError as exc:
                    codes[what] = exc.code.name
            reply = await bobby.send(group, "answering line 0", reply_to=sent[0].message_hash)
            await wait_until(alice, lambda: messages(alice, group, "answering line 0"), "alice's UI shows the reply")
            shown = messages(alice, group, "answering line 0")[0].record
            return codes, reply, shown, [r.entry.payload for r in await alice.all_history(group)]

    codes, reply, shown, payloads = run(scenario())
    assert codes == {"other group": "INVALID_ARGUMENT", "unknown": "INVALID_ARGUMENT", "short": "INVALID_ARGUMENT"}
    assert reply.message.entry.reply_to == sent[0].message_hash
    assert shown.entry.reply_to == sent[0].message_hash
    assert "a bad reply" not in payloads


def test_typing_reaches_online_members_as_a_signal_and_is_never_stored(network):
    bobby_key = network.agent_key("bobby")

    async def scenario():
        async with make_clients(network, NAMES) as clients:
            alice, bobby, charlie = clients["alice"], clients["bobby"], clients["charlie"]
            group = (await create_group(clients, f"Typing {uuid.uuid4().hex[:6]}", ["bobby", "charlie"])).group.group_uuid
            told = await bobby.set_typing(group, True)
            for client in (alice, charlie):
                await wait_until(client, lambda c=client: typings(c, group), "the typing signal arrives")
            stopped = await bobby.set_typing(group, False)
            await wait_until(alice, lambda: len(typings(alice, group)) >= 2, "the stopped-typing signal arrives")
            histories = {n: await clients[n].all_history(group) for n in NAMES}
            conversations = {c.group.group_uuid: c for c in await alice.conversations()}
            return told, stopped, typings(alice, group), typings(charlie, group), typings(bobby, group), histories, \
                conversations[group]

    told, stopped, alices, charlies, bobbys, histories, conversation = run(scenario())
    assert told == 2 and stopped == 2
    assert [t.typing for t in alices] == [True, False]
    assert all(t.agent == bobby_key for t in alices + charlies)
    assert charlies[0].typing and charlies[0].timestamp > 0
    assert bobbys == []  # not echoed to the typist
    assert histories == {n: [] for n in NAMES}
    assert not conversation.HasField("latest")
