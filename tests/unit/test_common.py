"""The shared mechanics: the LevelDB wrapper, signatures, DNA hashes and the retry policy."""

import time

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kizuna.v1 import common_pb2
from kizuna_node.common import dna
from kizuna_node.common.errors import (
    DataLoss,
    InvalidArgument,
    KizunaError,
    NotFound,
    PermissionDenied,
    RemoteError,
    Unavailable,
    error_for,
)
from kizuna_node.common.keys import check_agent_key, verify_signed
from kizuna_node.common.retry import RetryPolicy, call_with_policy, is_transient
from kizuna_node.common.server import ParsingServer
from kizuna_node.common.store import Store, from_u64, u64
from tests.helpers import run

# ---- Store -------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "db"))
    yield s
    s.close()


def test_u64_keys_sort_in_numeric_order(store):
    table = store.table(b"seq:")
    numbers = [0, 1, 2, 9, 10, 255, 256, 1000, 2**32, 2**64 - 1]
    for n in reversed(numbers):
        table.put(u64(n), str(n).encode())
    assert [from_u64(k) for k, _ in table.items()] == numbers
    assert [from_u64(k) for k, _ in table.items(reverse=True)] == numbers[::-1]
    assert [from_u64(k) for k, _ in table.items(start=u64(10), stop=u64(1000))] == [10, 255, 256]


def test_tables_with_different_prefixes_do_not_see_each_other(store):
    a, b = store.table(b"a:"), store.table(b"b:")
    a.put(b"k", b"1")
    b.put(b"k", b"2")
    assert a.get(b"k") == b"1"
    assert b.get(b"k") == b"2"
    assert list(a.items()) == [(b"k", b"1")]
    assert a.count() == 1


def test_batch_writes_all_its_keys_across_tables(store):
    a, b = store.table(b"a:"), store.table(b"b:")
    a.put(b"old", b"x")
    with store.batch() as batch:
        batch.put(a, b"one", b"1")
        batch.put(b, b"two", b"2")
        batch.delete(a, b"old")
    assert a.get(b"one") == b"1"
    assert b.get(b"two") == b"2"
    assert a.get(b"old") is None


def test_batch_that_fails_midway_writes_nothing(store):
    a, b = store.table(b"a:"), store.table(b"b:")
    a.put(b"old", b"x")
    with pytest.raises(RuntimeError):
        with store.batch() as batch:
            batch.put(a, b"one", b"1")
            batch.delete(a, b"old")
            batch.put(b, b"two", b"2")
            raise RuntimeError("crash in the middle of a logical change")
    assert a.get(b"one") is None
    assert b.get(b"two") is None
    assert a.get(b"old") == b"x"


def test_store_data_survives_reopening(tmp_path):
    path = str(tmp_path / "db")
    s = Store(path)
    s.table(b"t:").put(u64(7), b"seven")
    s.close()
    s = Store(path)
    try:
        assert s.table(b"t:").get(u64(7)) == b"seven"
    finally:
        s.close()


# ---- signatures --------------------------------------------------------------------


def keypair() -> tuple[Ed25519PrivateKey, bytes]:
    private = Ed25519PrivateKey.generate()
    return private, private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_verify_signed_accepts_a_good_signature_and_returns_the_body():
    private, public = keypair()
    signed = common_pb2.Signed(body=b"body", signature=private.sign(b"body"), author=public)
    assert verify_signed(signed) == b"body"


def test_verify_signed_refuses_a_changed_body():
    private, public = keypair()
    signed = common_pb2.Signed(body=b"bodY", signature=private.sign(b"body"), author=public)
    with pytest.raises(PermissionDenied):
        verify_signed(signed)


def test_verify_signed_refuses_another_authors_signature():
    private, _ = keypair()
    _, other = keypair()
    signed = common_pb2.Signed(body=b"body", signature=private.sign(b"body"), author=other)
    with pytest.raises(PermissionDenied):
        verify_signed(signed)


def test_verify_signed_refuses_a_truncated_signature():
    private, public = keypair()
    signed = common_pb2.Signed(body=b"body", signature=private.sign(b"body")[:63], author=public)
    with pytest.raises(PermissionDenied):
        verify_signed(signed)


@pytest.mark.parametrize("author", [b"", b"\x01" * 31, b"\x01" * 33])
def test_verify_signed_refuses_a_malformed_author_as_invalid_argument(author):
    private, _ = keypair()
    signed = common_pb2.Signed(body=b"body", signature=private.sign(b"body"), author=author)
    with pytest.raises(InvalidArgument):
        verify_signed(signed)
    with pytest.raises(InvalidArgument, match="32-byte"):
        check_agent_key(author)


# ---- DNA hashes --------------------------------------------------------------------

ALICE, BOBBY, CHARLIE = b"\x0a" * 32, b"\x0b" * 32, b"\x0c" * 32


def properties(**overrides):
    fields = dict(group_uuid="uuid-1", name="friends", creator=ALICE,
                  initial_members=[ALICE, BOBBY], network_seed="seed")
    fields.update(overrides)
    return common_pb2.GroupProperties(**fields)


def test_group_dna_hash_is_stable_and_32_bytes():
    assert dna.group_dna_hash(properties()) == dna.group_dna_hash(properties())
    assert len(dna.group_dna_hash(properties())) == 32
    assert dna.lobby_dna_hash() == dna.LOBBY_DNA_HASH


@pytest.mark.parametrize(
    "change",
    [
        dict(group_uuid="uuid-2"),
        dict(name="family"),
        dict(creator=BOBBY),
        dict(initial_members=[ALICE, BOBBY, CHARLIE]),
        dict(initial_members=[BOBBY, ALICE]),
        dict(network_seed="other"),
    ],
    ids=["group_uuid", "name", "creator", "added_member", "member_order", "network_seed"],
)
def test_group_dna_hash_changes_with_each_property(change):
    assert dna.group_dna_hash(properties(**change)) != dna.group_dna_hash(properties())


def test_group_dna_hash_differs_from_the_lobby_dna_hash():
    assert dna.group_dna_hash(properties()) != dna.LOBBY_DNA_HASH


def test_check_group_properties_accepts_good_and_refuses_bad():
    dna.check_group_properties(properties())
    for bad in [
        properties(group_uuid=""),
        properties(initial_members=[]),
        properties(creator=CHARLIE),
        properties(creator=b"short", initial_members=[b"short"]),
        properties(initial_members=[ALICE, ALICE]),
    ]:
        with pytest.raises(InvalidArgument):
            dna.check_group_properties(bad)


# ---- retry policy ------------------------------------------------------------------

FAST = RetryPolicy(attempts=4, backoff_initial=0.001, backoff_max=0.005, attempt_timeout=0.1, budget=2.0)


class Flaky:
    """A call that fails with `codes` in turn, then answers "ok"."""

    def __init__(self, *codes: str):
        self.codes = list(codes)
        self.calls = 0
        self.timeouts: list[float] = []

    async def __call__(self, timeout: float):
        self.calls += 1
        self.timeouts.append(timeout)
        if self.codes:
            raise error_for(self.codes.pop(0), "remote said no")
        return "ok"


def run_call_with_policy(policy, call):
    """`call` through `call_with_policy`: (its answer, the attempts it took)."""
    return run(call_with_policy(policy, "test call", call))


@pytest.mark.parametrize("code", ["UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"])
def test_retry_policy_retries_transient_codes_until_success(code):
    call = Flaky(code, code)
    assert run_call_with_policy(FAST, call) == ("ok", 3)
    assert call.calls == 3
    assert call.timeouts == [FAST.attempt_timeout] * 3


@pytest.mark.parametrize("code", ["PERMISSION_DENIED", "INVALID_ARGUMENT", "FAILED_PRECONDITION", "NOT_FOUND"])
def test_retry_policy_never_retries_a_refusal(code):
    call = Flaky(code)
    with pytest.raises(KizunaError) as raised:
        run_call_with_policy(FAST, call)
    assert raised.value.code == code
    assert call.calls == 1


def test_retry_policy_gives_up_after_its_attempts_with_the_last_error():
    call = Flaky(*["UNAVAILABLE"] * 10)
    with pytest.raises(Unavailable):
        run_call_with_policy(FAST, call)
    assert call.calls == FAST.attempts


def test_retry_policy_gives_up_within_its_budget():
    policy = RetryPolicy(attempts=1000, backoff_initial=0.02, backoff_max=0.05, attempt_timeout=0.1, budget=0.3)
    call = Flaky(*["UNAVAILABLE"] * 1000)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        run_call_with_policy(policy, call)
    elapsed = time.monotonic() - started
    assert 1 < call.calls < 1000
    # The budget bounds the time spent deciding to try again; one more backoff may follow it.
    assert elapsed < policy.budget + policy.backoff_max + 0.5


def test_retry_policy_does_not_retry_exceptions_outside_the_error_vocabulary():
    calls = 0

    async def broken(timeout):
        nonlocal calls
        calls += 1
        raise ValueError("a bug, not a transient failure")

    with pytest.raises(ValueError):
        run_call_with_policy(FAST, broken)
    assert calls == 1
    assert not is_transient(ValueError())
    assert is_transient(Unavailable("x"))


def test_a_status_from_another_service_arrives_as_the_error_class_of_its_code():
    assert isinstance(error_for("UNAVAILABLE", "down"), Unavailable)
    assert isinstance(error_for("NOT_FOUND", "gone"), NotFound)
    assert error_for("NOT_FOUND", "gone").message == "gone"
    assert isinstance(error_for("DATA_LOSS", "lost"), DataLoss)
    other = error_for("ABORTED", "lost")
    assert isinstance(other, RemoteError) and other.code == "ABORTED"
    assert is_transient(error_for("DEADLINE_EXCEEDED", "slow")) and not is_transient(other)


# ---------------------------------------------------------------- the parse guard


class _Details:
    def __init__(self, method):
        self.method = method


class _CountingHandler(grpc.GenericRpcHandler):
    """A generic handler that counts how often each method name is asked of it."""

    def __init__(self, inner: grpc.GenericRpcHandler):
        self.inner = inner
        self.asked: dict[str, int] = {}

    def service(self, handler_call_details):
        method = handler_call_details.method
        self.asked[method] = self.asked.get(method, 0) + 1
        return self.inner.service(handler_call_details)


class _RecordingServer:
    """Stands in for a grpc.aio server: keeps the generic handlers it is given."""

    def __init__(self):
        self.handlers: list[grpc.GenericRpcHandler] = []

    def add_generic_rpc_handlers(self, handlers):
        self.handlers.extend(handlers)


def test_the_parse_guard_wraps_each_known_method_once_and_remembers_no_unknown_name():
    async def say(request, context):
        return request

    inner = _CountingHandler(grpc.method_handlers_generic_handler("t.Echo", {"Say": grpc.unary_unary_rpc_method_handler(
        say, request_deserializer=common_pb2.Signed.FromString, response_serializer=common_pb2.Signed.SerializeToString)}))
    server = _RecordingServer()
    ParsingServer(server).add_generic_rpc_handlers((inner,))
    [guard] = server.handlers
    first = guard.service(_Details("/t.Echo/Say"))
    assert first is guard.service(_Details("/t.Echo/Say"))
    assert first.request_deserializer is None  # it parses the bytes itself, refusing bad ones
    for i in range(200):
        assert guard.service(_Details(f"/x.Y/M{i}")) is None  # UNIMPLEMENTED for the caller
        assert guard.service(_Details(f"/x.Y/M{i}")) is None
    # the known method was wrapped once and then remembered; no unknown name was remembered
    assert inner.asked == {"/t.Echo/Say": 1, **{f"/x.Y/M{i}": 2 for i in range(200)}}


class _AbortingContext:
    """What rpc_method needs of a grpc.aio context: abort raises as gRPC's does."""

    def __init__(self):
        self.aborted = None

    async def abort(self, code, details):
        self.aborted = (code, details)
        raise grpc.aio.AbortError()


def test_a_damaged_store_found_by_a_call_is_data_loss_and_tells_the_server_once(monkeypatch):
    import asyncio

    import plyvel

    from kizuna_node.common import rpc

    told = []

    async def not_serving():
        told.append(True)
    monkeypatch.setattr(rpc, "store_damaged", {"callback": not_serving, "seen": False})

    class Servicer:
        @rpc.rpc_method
        async def Read(self, request, context):
            raise plyvel.CorruptionError(b"Corruption: block checksum mismatch")

    async def call_twice():
        answers = []
        for _ in range(2):
            context = _AbortingContext()
            with pytest.raises(grpc.aio.AbortError):
                await Servicer().Read(None, context)
            answers.append(context.aborted)
        return answers
    answers = asyncio.run(call_twice())
    assert [code for code, _ in answers] == [grpc.StatusCode.DATA_LOSS] * 2
    assert all("store is damaged" in details for _, details in answers)
    assert told == [True]  # health turned NOT_SERVING once
