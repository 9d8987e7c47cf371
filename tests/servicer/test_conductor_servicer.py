"""The Conductor's RPC layer on a real in-process grpc.aio server on port 0:
each refusal is the status that says what is wrong, never INTERNAL."""

import asyncio
import threading

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kizuna.v1 import common_pb2, conductor_pb2, conductor_pb2_grpc
from kizuna_node.common.errors import Unavailable
from kizuna_node.conductor.conductor import Conductor
from kizuna_node.conductor.ports import Spaces
from kizuna_node.conductor.servicer import ConductorServicer
from kizuna_node.conductor.store import ConductorStore
from kizuna_node.lobby.ports import ConductorPort
from tests.helpers import run


class FakeDht(Spaces):
    """The node's DHT as `Spaces`: takes every join and leave; refuses a join with `refuse` when set."""

    def __init__(self):
        self.refuse: Exception | None = None

    async def join_space(self, space, agent, template, properties, updates=(), claim=None):
        if self.refuse is not None:
            raise self.refuse

    async def leave_space(self, space, agent):
        pass


class _CallsSeen(grpc.aio.ServerInterceptor):
    """Records the method of every call the server takes, in order."""

    def __init__(self):
        self.methods: list[str] = []

    async def intercept_service(self, continuation, handler_call_details):
        self.methods.append(handler_call_details.method)
        return await continuation(handler_call_details)


class ServerThread:
    """A grpc.aio server with the ConductorServicer, on its own event loop in a thread."""

    def __init__(self, conductor: Conductor, interceptors=()):
        self._conductor = conductor
        self._interceptors = list(interceptors)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server = None

    def _run(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> int:
        self._server = grpc.aio.server(interceptors=self._interceptors)
        conductor_pb2_grpc.add_ConductorServicer_to_server(ConductorServicer(self._conductor, SECRET), self._server)
        port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return port

    def start(self) -> str:
        self._thread.start()
        return f"127.0.0.1:{self._run(self._start())}"

    def stop(self) -> None:
        if self._server is not None:
            self._run(self._server.stop(0))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


@pytest.fixture
def conductor_server(tmp_path):
    """(stub, fake dht) for a Conductor on a temporary LevelDB served on a free port."""
    store = ConductorStore(str(tmp_path / "conductor"))
    dht = FakeDht()
    server = ServerThread(Conductor(store, dht.join_space))
    address = server.start()
    channel = grpc.intercept_channel(grpc.insecure_channel(address), _WithSecret())
    try:
        yield conductor_pb2_grpc.ConductorStub(channel), dht
    finally:
        channel.close()
        server.stop()
        store.close()


SECRET = "test-node-secret"


class _WithSecret(grpc.UnaryUnaryClientInterceptor):
    """Adds the node's secret to every call, as the node's own lobby does."""

    def intercept_unary_unary(self, continuation, details, request):
        metadata = list(details.metadata or []) + [("x-kizuna-node-secret", SECRET)]
        return continuation(details._replace(metadata=metadata), request)


def test_a_call_without_the_node_secret_is_permission_denied(tmp_path):
    store = ConductorStore(str(tmp_path / "conductor"))
    server = ServerThread(Conductor(store, FakeDht().join_space))
    address = server.start()
    try:
        with grpc.insecure_channel(address) as channel:
            stub = conductor_pb2_grpc.ConductorStub(channel)
            for call, request in [(stub.CreateAgent, conductor_pb2.CreateAgentRequest(name="x")),
                                  (stub.Sign, conductor_pb2.SignRequest(agent=b"a" * 32, data=b"x"))]:
                with pytest.raises(grpc.RpcError) as raised:
                    call(request, timeout=10, metadata=(("x-kizuna-node-secret", "wrong"),))
                assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert store.list_agents() == []
    finally:
        server.stop()
        store.close()


def refusal(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(request, timeout=10)
    error = raised.value
    assert error.code() != grpc.StatusCode.INTERNAL, error.details()
    assert error.details(), "a refusal says what is wrong"
    return error


def test_create_agent_then_list_agents_shows_it(conductor_server):
    stub, _ = conductor_server
    created = stub.CreateAgent(conductor_pb2.CreateAgentRequest(name="alice"), timeout=10)
    assert len(created.agent.agent) == 32
    assert created.app_token
    assert created.lobby_cell.template == "lobby"
    listed = stub.ListAgents(conductor_pb2.ListAgentsRequest(), timeout=10)
    assert [a.agent for a in listed.agents] == [created.agent.agent]
    assert listed.agents[0].name == "alice"


@pytest.mark.parametrize("agent", [b"", b"short", b"\x01" * 33])
def test_malformed_agent_key_is_invalid_argument_with_a_message(conductor_server, agent):
    stub, _ = conductor_server
    for call, request in [
        (stub.Sign, conductor_pb2.SignRequest(agent=agent, data=b"x")),
        (stub.ListCells, conductor_pb2.ListCellsRequest(agent=agent)),
        (stub.CloneDna, conductor_pb2.CloneDnaRequest(agent=agent, template="group")),
    ]:
        error = refusal(call, request)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "32-byte" in error.details()


def test_unknown_agent_is_not_found(conductor_server):
    stub, _ = conductor_server
    stranger = b"\x05" * 32
    for call, request in [
        (stub.Sign, conductor_pb2.SignRequest(agent=stranger, data=b"x")),
        (stub.ListCells, conductor_pb2.ListCellsRequest(agent=stranger)),
    ]:
        assert refusal(call, request).code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("token", ["", "no-such-token"])
def test_resolve_token_unknown_is_unauthenticated(conductor_server, token):
    stub, _ = conductor_server
    stub.CreateAgent(conductor_pb2.CreateAgentRequest(name="alice"), timeout=10)
    error = refusal(stub.ResolveToken, conductor_pb2.ResolveTokenRequest(app_token=token))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_resolve_token_names_the_agent(conductor_server):
    stub, _ = conductor_server
    created = stub.CreateAgent(conductor_pb2.CreateAgentRequest(name="alice"), timeout=10)
    resolved = stub.ResolveToken(conductor_pb2.ResolveTokenRequest(app_token=created.app_token), timeout=10)
    assert resolved.agent == created.agent


def test_signing_with_an_app_token_signs_only_for_the_agent_it_names_while_it_is_live(conductor_server):
    stub, _ = conductor_server
    alice = stub.CreateAgent(conductor_pb2.CreateAgentRequest(name="alice"), timeout=10)
    bobby = stub.CreateAgent(conductor_pb2.CreateAgentRequest(name="bobby"), timeout=10)
    key = Ed25519PublicKey.from_public_bytes(alice.agent.agent)

    signed = stub.SignBatch(conductor_pb2.SignBatchRequest(agent=alice.agent.agent, data=[b"one", b"two"],
                                                           app_token=alice.app_token), timeout=10)
    for data, signature in zip([b"one", b"two"], signed.signatures):
        key.verify(signature, data)  # raises when it does not verify
    single = stub.Sign(conductor_pb2.SignRequest(agent=alice.agent.agent, data=b"one", app_token=alice.app_token),
                       timeout=10)
    key.verify(single.signature, b"one")

    for call, request in [
        (stub.SignBatch, conductor_pb2.SignBatchRequest(agent=alice.agent.agent, data=[b"x"], app_token=bobby.app_token)),
        (stub.Sign, conductor_pb2.SignRequest(agent=alice.agent.agent, data=b"x", app_token=bobby.app_token)),
    ]:
        error = refusal(call, request)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "names another agent" in error.details()

    listed = stub.ListAppTokens(conductor_pb2.ListAppTokensRequest(agent=alice.agent.agent), timeout=10)
    for token in listed.tokens:
        stub.RevokeAppToken(conductor_pb2.RevokeAppTokenRequest(token_id=token.token_id), timeout=10)
    error = refusal(stub.SignBatch, conductor_pb2.SignBatchRequest(agent=alice.agent.agent, data=[b"x"],
                                                                   app_token=alice.app_token))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in error.details()


def _clone_request(agent: bytes, template: str = "group") -> conductor_pb2.CloneDnaRequest:
    properties = common_pb2.GroupProperties(group_uuid="g-1", name="friends", creator=agent, initial_members=[agent])
    return conductor_pb2.CloneDnaRequest(agent=agent, template=template, properties=properties)


def test_clone_dna_when_the_dht_refuses_is_failed_precondition(conductor_server):
    stub, dht = conductor_server
    alice = stub.CreateAgent(conductor_pb2.CreateAgentRequest(name="alice"), timeout=10).agent.agent
    dht.refuse = Unavailable("connection refused")
    error = refusal(stub.CloneDna, _clone_request(alice))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "connection refused" in error.details()
    cells = stub.ListCells(conductor_pb2.ListCellsRequest(agent=alice), timeout=10).cells
    assert [c.template for c in cells] == ["lobby"]


def test_clone_dna_bad_template_is_invalid_argument(conductor_server):
    stub, _ = conductor_server
    alice = stub.CreateAgent(conductor_pb2.CreateAgentRequest(name="alice"), timeout=10).agent.agent
    error = refusal(stub.CloneDna, _clone_request(alice, template="lobby"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_clone_dna_then_list_cells_shows_the_clone_cell(conductor_server):
    stub, _ = conductor_server
    alice = stub.CreateAgent(conductor_pb2.CreateAgentRequest(name="alice"), timeout=10).agent.agent
    cell = stub.CloneDna(_clone_request(alice), timeout=10).cell
    assert len(cell.dna_hash) == 32
    cells = stub.ListCells(conductor_pb2.ListCellsRequest(agent=alice), timeout=10).cells
    assert {c.template for c in cells} == {"lobby", "group"}


def test_the_lobbys_port_signs_more_than_one_call_takes_in_several_and_keeps_the_order(tmp_path):
    """A 16 KiB message to a big group makes more than the 1 MiB the conductor signs at
    once: the lobby's ConductorPort splits it, and every signature matches its item."""
    store = ConductorStore(str(tmp_path / "conductor"))
    calls = _CallsSeen()
    server = ServerThread(Conductor(store, FakeDht().join_space), interceptors=[calls])
    address = server.start()
    try:
        with grpc.intercept_channel(grpc.insecure_channel(address), _WithSecret()) as setup:
            created = conductor_pb2_grpc.ConductorStub(setup).CreateAgent(
                conductor_pb2.CreateAgentRequest(name="alice"), timeout=10)
        alice, app_token = created.agent, created.app_token
        items = [bytes([i]) * (16 * 1024 + i) for i in range(100)]  # about 1.6 MiB

        async def sign():
            channel = grpc.aio.insecure_channel(address)
            try:
                return await ConductorPort(channel, SECRET).sign_batch(alice.agent, items, app_token)
            finally:
                await channel.close()

        signatures = run(sign())
        key = Ed25519PublicKey.from_public_bytes(alice.agent)
        assert len(signatures) == len(items)
        for item, signature in zip(items, signatures):
            key.verify(signature, item)
        assert calls.methods.count("/kizuna.v1.Conductor/SignBatch") > 1  # it did take more than one call
    finally:
        server.stop()
        store.close()
