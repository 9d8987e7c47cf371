"""The node operator's view of its lobby (LobbyAdmin): the outbox and the queued signals.
Served on the node-local UI listener; every call needs the node's secret."""

from kizuna.v1 import admin_pb2, admin_pb2_grpc
from kizuna_node.common import node_secret
from kizuna_node.common.errors import InvalidArgument
from kizuna_node.common.hashing import HASH_LEN, blake2b_256
from kizuna_node.common.keys import check_agent_key
from kizuna_node.common.rpc import rpc_method
from kizuna_node.lobby.lobby import Lobby

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


class LobbyAdminServicer(admin_pb2_grpc.LobbyAdminServicer):
    def __init__(self, lobby: Lobby, secret: str):
        self._lobby = lobby
        self._secret = secret

    def _check(self, context) -> None:
        node_secret.check(context.invocation_metadata(), self._secret)

    @rpc_method
    async def ListOutbox(self, request, context):
        self._check(context)
        if request.limit > MAX_LIMIT:
            raise InvalidArgument(f"limit is at most {MAX_LIMIT}")
        outbox = self._lobby.delivery.outbox
        items = outbox.pending()
        return admin_pb2.ListOutboxResponse(total=len(items), items=[
            admin_pb2.OutboxEntry(author=item.author, receiver=item.receiver, kind=item.kind,
                                  group_uuid=item.group_uuid, item_hash=blake2b_256(item.signed.body),
                                  queued_at=item.queued_at, next_attempt=item.next_attempt, attempts=item.attempts,
                                  in_flight=outbox.is_in_flight(item))
            for item in items[:request.limit or DEFAULT_LIMIT]])

    @rpc_method
    async def RetryOutbox(self, request, context):
        self._check(context)
        if request.item_hash and len(request.item_hash) != HASH_LEN:
            raise InvalidArgument(f"item_hash is {HASH_LEN} bytes")
        if request.receiver:
            check_agent_key(request.receiver, "receiver")
        retried = self._lobby.delivery.outbox.retry_now(request.item_hash, request.receiver)
        return admin_pb2.RetryOutboxResponse(retried=retried)

    @rpc_method
    async def ListQueuedSignals(self, request, context):
        self._check(context)
        return admin_pb2.ListQueuedSignalsResponse(agents=[
            admin_pb2.QueuedSignals(agent=agent, count=count)
            for agent, count in sorted(self._lobby.signals.queued_by_agent().items())])
