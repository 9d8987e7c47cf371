"""The client's signal stream against a stand-in lobby: it resumes from its last seq after a
break, skipping what it saw; `events()`, callbacks per kind, and the bounded buffer."""

import asyncio

import grpc
import pytest

from kizuna.client import Client, ClientError
from kizuna.v1 import lobby_pb2
from tests.helpers import run
from tests.unit.test_client_banner import StubLobby, message_signal


def numbered(seq, text):
    signal = message_signal("g1", text)
    signal.seq = seq
    return signal


READY = lobby_pb2.Signal(ready=lobby_pb2.Ready(agent=b"b" * 32))


class Stream:
    """One Signals call: its signals, then the end (or `error`)."""

    def __init__(self, signals, error=None):
        self._signals, self._error = list(signals), error

    async def read(self):
        if self._signals:
            return self._signals.pop(0)
        if self._error is not None:
            raise self._error
        await asyncio.Event().wait()  # open, nothing more to say

    def cancel(self):
        pass


class StreamingLobby(StubLobby):
    """Answers each Signals call with the next of `streams`, and records each `since`."""

    def __init__(self, streams):
        super().__init__(accepted=["g1"])
        self.streams, self.since = list(streams), []

    def Signals(self, request, metadata=None):
        self.since.append(request.since)
        return self.streams.pop(0)


def unavailable():
    return grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "restarting")


def test_a_broken_stream_resumes_from_the_last_seq_and_skips_what_it_saw():
    lobby = StreamingLobby([
        Stream([numbered(1, "one"), READY, numbered(2, "two")], error=unavailable()),
        Stream([numbered(2, "two"), numbered(3, "three"), READY]),
    ])

    async def scenario():
        client = Client("127.0.0.1:1", "token", stub=lobby, auto_ack=False)
        seen = []
        async for event in client.events():
            seen.append((event.seq, event.record.entry.payload))
            if len(seen) == 3:
                break
        await client.close()
        return seen, client.reconnects

    seen, reconnects = run(scenario())
    assert seen == [(1, "one"), (2, "two"), (3, "three")]
    assert lobby.since == [0, 2] and reconnects == 1


def test_a_refused_stream_ends_events_with_its_error():
    refused = grpc.aio.AioRpcError(grpc.StatusCode.UNAUTHENTICATED, grpc.aio.Metadata(), grpc.aio.Metadata(), "no")
    lobby = StreamingLobby([Stream([numbered(1, "one"), READY], error=refused)])

    async def scenario():
        client = Client("127.0.0.1:1", "token", stub=lobby, auto_ack=False)
        seen = []
        with pytest.raises(ClientError) as ended:
            async for event in client.events():
                seen.append(event.seq)
        await client.close()
        return seen, ended.value

    seen, error = run(scenario())
    assert seen == [1] and error.code == grpc.StatusCode.UNAUTHENTICATED


def test_callbacks_run_per_kind_and_an_unknown_kind_is_refused():
    async def scenario():
        client = Client("127.0.0.1:1", "token", stub=StubLobby(accepted=["g1"]))
        got, also = [], []

        async def later(event):
            also.append(event.record.entry.payload)
        client.on("message", lambda event: got.append(event.record.entry.payload))
        client.on("message", later)
        client.on("invite", lambda event: got.append("invite?"))
        await client.feed_signal(numbered(1, "one"))
        with pytest.raises(ValueError, match="kind is one of"):
            client.on("messages", print)
        return got, also

    assert run(scenario()) == (["one"], ["one"])


def test_a_full_buffer_holds_the_stream_until_the_consumer_takes_an_event():
    async def scenario():
        client = Client("127.0.0.1:1", "token", stub=StubLobby(accepted=["g1"]), buffer=2)
        for seq in (1, 2):
            await client.feed_signal(numbered(seq, str(seq)))
        third = asyncio.ensure_future(client.feed_signal(numbered(3, "3")))
        for _ in range(20):  # turns of the loop, for the feed to go as far as it can
            await asyncio.sleep(0)
        held = not third.done()
        first = await client.next_event(1)
        await asyncio.wait_for(third, 1)
        return held, first.seq, [e.seq for e in client.events_so_far()]

    assert run(scenario()) == (True, 1, [1, 2, 3])
