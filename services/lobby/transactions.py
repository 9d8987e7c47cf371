"""Idempotent sends: a send repeated with the transaction id its UI chose answers as the
first one did and stores and sends nothing again, also after a restart of the lobby."""

import asyncio
import time

from kizuna.v1 import lobby_pb2
from kizuna_node.common.errors import InvalidArgument, Unauthenticated
from kizuna_node.common.hashing import blake2b_256, now_micros
from kizuna_node.lobby.messaging import Messaging
from kizuna_node.lobby.outbox import Outbox
from kizuna_node.lobby.store import LobbyStore

MAX_TRANSACTION_ID = 64
TRANSACTION_MAX_AGE_SECONDS = 24 * 3600  # a repeat later than this is a new send
SWEEP_SECONDS = 600  # old transactions are looked for at most this often


def check_transaction_id(transaction_id: str) -> None:
    if not (0 < len(transaction_id) <= MAX_TRANSACTION_ID and transaction_id.isascii()
            and transaction_id.isprintable()):
        raise InvalidArgument(f"transaction_id is 1 to {MAX_TRANSACTION_ID} printable ASCII characters")


class Transactions:
    def __init__(self, store: LobbyStore, conductor, messaging: Messaging, outbox: Outbox,
                 max_age_seconds: float = TRANSACTION_MAX_AGE_SECONDS):
        self._store = store
        self._conductor = conductor
        self._messaging = messaging
        self._outbox = outbox
        self._max_age_micros = int(max_age_seconds * 1_000_000)
        self._under_way: dict[tuple[bytes, str], asyncio.Event] = {}
        self._swept_at = 0.0

    async def send_group_message(self, agent: bytes, transaction_id: str, group_uuid: str, payload: str,
                                 reply_to: bytes = b"", app_token: str = ""):
        """Messaging.send_group_message, once per agent and `transaction_id` (none: every
        time): a repeat, also one made while the first is under way, gets the first's
        (record, outcomes) and 0 calls. The id is kept with the message, in its write."""
        if not transaction_id:
            return await self._messaging.send_group_message(agent, group_uuid, payload, reply_to, app_token)
        check_transaction_id(transaction_id)
        key = (agent, transaction_id)
        while key in self._under_way:
            await self._under_way[key].wait()
        first = self._store.get_transaction(agent, transaction_id)
        if first is not None and first.message.entry.time_sent >= now_micros() - self._max_age_micros:
            if app_token and (await self._conductor.resolve_token(app_token)).agent != agent:
                raise Unauthenticated("the app token names another agent")
            return first.message, list(first.outcomes) or self._outcomes_now(first.message), 0
        self._under_way[key] = done = asyncio.Event()
        try:
            record, outcomes, calls = await self._messaging.send_group_message(
                agent, group_uuid, payload, reply_to, app_token, transaction_id=transaction_id)
            self._store.put_transaction(agent, transaction_id, lobby_pb2.SendGroupMessageResponse(
                message=record, outcomes=outcomes, lobby_calls=calls))
            return record, outcomes, calls
        finally:
            del self._under_way[key]
            done.set()

    def _outcomes_now(self, record: lobby_pb2.MessageRecord) -> list[lobby_pb2.DeliveryOutcome]:
        """The outcomes of a send whose answer a crash lost: a receiver still owed the
        message is QUEUED; the others took it (or the DHT did for them) before the crash."""
        owed = {item.receiver for item in self._outbox.pending()
                if item.kind == "message" and blake2b_256(item.signed.body) == record.message_hash}
        return [lobby_pb2.DeliveryOutcome(receiver=receiver, status=lobby_pb2.QUEUED) if receiver in owed
                else lobby_pb2.DeliveryOutcome(receiver=receiver, status=lobby_pb2.DELIVERED,
                                               detail="taken before the lobby restarted")
                for receiver in record.entry.receiver]

    def expire(self) -> int:
        """Forgets the transactions older than their bound, at most every SWEEP_SECONDS; how many."""
        if time.monotonic() - self._swept_at < SWEEP_SECONDS:
            return 0
        self._swept_at = time.monotonic()
        return self._store.forget_transactions_before(now_micros() - self._max_age_micros)
