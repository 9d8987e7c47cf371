"""Group messages: sending (sign the MessageEntry, keep it in the sender's history, deliver
it to every receiver at once) and receiving, by the seed's rules in the seed's order."""

import asyncio
import contextlib

from kizuna.v1 import common_pb2, conductor_pb2, lobby_pb2
from kizuna_node.common.errors import FailedPrecondition, InvalidArgument, KizunaError, PermissionDenied, parse
from kizuna_node.common.hashing import blake2b_256, now_micros
from kizuna_node.common.keys import signed_as, verify_signed
from kizuna_node.lobby.delivery import Delivery
from kizuna_node.lobby.group_changes import GroupChanges
from kizuna_node.lobby.group_keys import GroupKeys
from kizuna_node.lobby.groups import Groups
from kizuna_node.lobby.hosting import Hosting
from kizuna_node.lobby.invites import Invites
from kizuna_node.lobby.limits import Limits, RateLimiter
from kizuna_node.lobby.peer_calls import OutgoingCalls
from kizuna_node.lobby.receipts import Receipts
from kizuna_node.lobby.signals import SignalHub
from kizuna_node.lobby.store import LobbyStore


# Leads a Megolm plaintext that is a MessageContent (a message with files): UTF-8 never holds it.
CONTENT_MARK = b"\xff"


def content_plaintext(payload: str, attachments) -> bytes:
    """What a message's Megolm session encrypts: its text, or with files a MessageContent."""
    if not attachments:
        return payload.encode()
    return CONTENT_MARK + common_pb2.MessageContent(payload=payload, attachments=attachments).SerializeToString()


def open_content(own: common_pb2.MessageEntry, plaintext: bytes) -> None:
    """Puts a decrypted plaintext's text and files into the receiver's own entry."""
    if plaintext.startswith(CONTENT_MARK):
        content = parse(common_pb2.MessageContent, plaintext[len(CONTENT_MARK):], "message's content")
        own.payload = content.payload
        own.attachments.extend(content.attachments)
        return
    try:
        own.payload = plaintext.decode()
    except UnicodeDecodeError:
        raise InvalidArgument("the message's text is not UTF-8") from None


class KeyMissing(FailedPrecondition):
    """A message whose session key the receiver does not hold (yet)."""


class Messaging:
    def __init__(self, store: LobbyStore, conductor, hosting: Hosting, groups: Groups, invites: Invites,
                 group_changes: GroupChanges, receipts: Receipts, calls: OutgoingCalls, delivery: Delivery,
                 signals: SignalHub, limits: Limits, group_keys: GroupKeys):
        self._store = store
        self._conductor = conductor
        self._hosting = hosting
        self._groups = groups
        self._invites = invites
        self._group_changes = group_changes
        self._receipts = receipts
        self._calls = calls
        self._delivery = delivery
        self._signals = signals
        self._limits = limits
        self._send_rate = RateLimiter(limits.messages_per_second, limits.message_burst)
        self._receive_locks: dict[bytes, asyncio.Lock] = {}
        self._group_keys = group_keys
        group_keys.apply_held = self.receive_held

    async def send_group_message(self, agent: bytes, group_uuid: str, payload: str, reply_to: bytes = b"",
                                 app_token: str = "", transaction_id: str = "", attachments=()):
        """Encrypts the text once for the group (the author's Megolm session), signs the
        MessageEntry, stores it in the sender's history, and delivers it to every receiver
        (the group's members now) at once, one call per other lobby that hosts some of them,
        and in-process (no call) to those this lobby hosts; one outcome per receiver.
        Receivers that do not hold the session yet get its key first. The entry and each
        lobby's first envelope are signed in one conductor call, which also checks
        `app_token` when given; `transaction_id`, when given, is kept with the message (see
        Transactions). `attachments` (FileRefs of files stored in the group's space) are
        encrypted with the text. Returns (record, outcomes, the call_remote attempts made)."""
        info, entry = self._prepare_message(agent, group_uuid, payload, reply_to, attachments)
        encrypted, shares = await self._conductor.encrypt_group_message(
            agent, group_uuid, content_plaintext(payload, attachments), await self._group_keys.holders(entry.receiver),
            app_token)
        sent = common_pb2.MessageEntry()
        sent.CopyFrom(entry)
        sent.payload = ""
        sent.ClearField("attachments")
        sent.encrypted.CopyFrom(encrypted)
        body = sent.SerializeToString()
        unsigned = common_pb2.Signed(body=body, author=agent)
        here = [r for r in entry.receiver if self._hosting.is_hosted(r)]  # taken in-process: no call
        by_lobby = await self._calls.by_lobby([r for r in entry.receiver if not self._hosting.is_hosted(r)])
        envelopes = [self._calls.group_message_envelope(receivers, unsigned) for receivers in by_lobby]
        signature, *envelope_signatures = await self._conductor.sign_batch(agent, [body, *envelopes], app_token)
        signed = signed_as(agent, body, signature)
        record = lobby_pb2.MessageRecord(entry=entry, message_hash=blake2b_256(body))
        items = [[lobby_pb2.OutboxItem(author=agent, receiver=receiver, kind="message", signed=signed,
                                       signed_hash=record.message_hash, group_uuid=group_uuid, space=info.dna_hash)
                  for receiver in receivers]
                 for receivers in [here, *by_lobby]]
        key_items = self._group_keys.key_items(agent, group_uuid, info.dna_hash, shares)
        for item in key_items:  # queued just before the message: should both wait, the key goes first
            item.queued_at = now_micros() - 1
        outbox = self._delivery.outbox
        every_item = [item for node_items in items for item in node_items]
        with self._store.batch() as batch:  # the history and what is owed to each receiver, at once
            self._store.put_message(batch, agent, record)
            outbox.in_flight(batch, key_items + every_item)
            if transaction_id:
                self._store.put_transaction(agent, transaction_id, lobby_pb2.SendGroupMessageResponse(message=record),
                                            batch)
        if key_items:  # before the message, so that it decrypts on arrival
            await self._deliver_keys(agent, key_items)
        per_lobby = []

        async def delivering():
            per_lobby[:] = await asyncio.gather(
                self._delivery.deliver_here(
                    items[0], lambda receivers: self.receive_group_messages(receivers, signed, caller=agent)),
                *(self._delivery.deliver_to_node(
                    node_items,
                    lobby_pb2.RemoteCall(envelope=signed_as(agent, envelope, envelope_signature),
                                         item_signature=signature))
                  for node_items, envelope, envelope_signature in zip(items[1:], envelopes, envelope_signatures)))
            return [outcome for outcomes in per_lobby for outcome in outcomes]
        await outbox.track(every_item, delivering())
        by_receiver = {o.receiver: o for outcomes in per_lobby for o in outcomes}
        lobby_calls = sum(max((o.attempts for o in outcomes), default=0) for outcomes in per_lobby)
        return record, [by_receiver[r] for r in entry.receiver], lobby_calls

    async def _deliver_keys(self, agent: bytes, key_items: list[lobby_pb2.OutboxItem]) -> None:
        """Key shares to their receivers: in-process to those this lobby hosts, one call
        per other lobby to the rest; each settled in the outbox as any item."""
        here = [item for item in key_items if self._hosting.is_hosted(item.receiver)]
        away = [item for item in key_items if not self._hosting.is_hosted(item.receiver)]

        async def delivering():
            here_outcomes, away_outcomes = await asyncio.gather(
                self._delivery.deliver_here(here, lambda receivers: self._group_keys.receive_group_keys(
                    receivers, [item.signed for item in here], caller=agent)),
                self._delivery.deliver_per_node(away))
            return here_outcomes + away_outcomes
        await self._delivery.outbox.track(here + away, delivering())

    def _prepare_message(self, agent: bytes, group_uuid: str, payload: str, reply_to: bytes, attachments=()):
        """Checks a message the agent wants to send: (group, unsigned entry)."""
        info = self.check_sendable(agent, group_uuid, payload, reply_to, bool(attachments))
        self._send_rate.take(agent, "sending")
        entry = common_pb2.MessageEntry(
            author=agent,
            receiver=[m for m in info.members if m != agent],
            group_uuid=group_uuid,
            payload=payload,
            time_sent=now_micros(),
            reply_to=reply_to,
            attachments=attachments,
        )
        return info, entry

    def check_sendable(self, agent: bytes, group_uuid: str, payload: str, reply_to: bytes, with_files: bool = False):
        """The group, when the agent may send this text (with files, it may be empty) to it."""
        info = self._groups.require_group(agent, group_uuid)
        if info.departed:
            raise FailedPrecondition("this agent is no longer a member of the group")
        if self._store.is_deleted_group(agent, group_uuid) or info.state != lobby_pb2.ACCEPTED:
            raise FailedPrecondition("accept the group before sending to it")
        if reply_to:
            replied = self._store.get_message(agent, reply_to)
            if replied is None or replied.entry.group_uuid != group_uuid:
                raise InvalidArgument("reply_to names no message in this group")
        if not payload and not with_files:
            raise InvalidArgument("payload is empty")
        if len(payload.encode()) > self._limits.max_payload_bytes:
            raise InvalidArgument(f"payload is larger than {self._limits.max_payload_bytes} bytes")
        return info

    async def receive_group_message(self, to_agent: bytes, signed, caller: bytes | None = None) -> bool:
        """The seed's rules, in order: verify the signature and that the author belongs to
        the group; drop a duplicate; a blocked group gets nothing (and the call still
        succeeds); a blocked member gets a warning naming them; else the message is
        signalled. Stored with time_received. `caller`: who made the call_remote (None for
        a message fetched from the inbox). False for a message not taken (a duplicate, a
        blocked group)."""
        taken, error = (await self.receive_group_messages([to_agent], signed, caller))[0]
        if error is not None:
            raise error
        return taken

    async def receive_held(self, agent: bytes, signed) -> bool:
        """A message held for its key, received again now that the key came; False when it
        still does not decrypt (it stays held)."""
        _, error = (await self.receive_group_messages([agent], signed, hold=False))[0]
        if error is not None and not isinstance(error, KeyMissing):
            raise error
        return error is None

    async def receive_group_messages(self, to_agents, signed, caller: bytes | None = None, hold: bool = True):
        """receive_group_message for several receivers this lobby hosts, each by its own
        rules and with its own outcome, (taken, error or None) in order; what they take is
        written in one batch. A receiver without the key of the message's session holds it
        until the key comes (`hold`), and it counts as taken."""
        outcomes: dict[bytes, tuple[bool, KizunaError | None]] = {}
        try:
            entry = self._verify_message(signed, caller)
        except KizunaError as exc:  # the same for every receiver: checked once
            return [(False, exc) for _ in to_agents]
        addressed = set(entry.receiver)
        checked = []
        for agent in dict.fromkeys(to_agents):
            try:
                await self._hosting.require_hosted(agent)
                checked.append((agent, *await self._verify_for(agent, entry, addressed, caller)))
            except KizunaError as exc:
                outcomes[agent] = (False, exc)
        message_hash = blake2b_256(signed.body)
        checked = await self._decrypt(checked, entry, signed, message_hash, outcomes, hold)
        async with contextlib.AsyncExitStack() as locks:
            for agent, _, _ in sorted(checked, key=lambda c: c[0]):
                await locks.enter_async_context(self._receive_locks.setdefault(agent, asyncio.Lock()))
            taken = []
            for agent, entry, info in checked:
                record = await self._take(agent, entry, message_hash)
                outcomes[agent] = (record is not None, None)
                if record is not None:
                    taken.append((agent, entry, info, record))
            receipts, signals = [], []
            with self._store.batch() as batch:
                for agent, entry, info, record in taken:
                    first = info.state != lobby_pb2.ACCEPTED and not self._store.has_messages(agent, entry.group_uuid)
                    self._store.put_message(batch, agent, record)
                    self._store.restore_group(batch, agent, entry.group_uuid)  # shows the banner again
                    receipts.append(self._receipts.owe_receipt(batch, agent, record.entry, message_hash,
                                                               info.dna_hash))
                    signals.append(self._signals.keep(batch, agent, lobby_pb2.Signal(
                        message=lobby_pb2.MessageSignal(message=record, first_message=first))))
            for (agent, _, _, _), receipt, signal in zip(taken, receipts, signals):
                self._signals.publish(agent, signal)
                self._receipts.queue_receipt(*receipt)
        return [outcomes[agent] for agent in to_agents]

    async def _decrypt(self, checked, entry, signed, message_hash: bytes, outcomes: dict, hold: bool) -> list:
        """The checked receivers whose copy of the entry now holds the text, decrypted by the
        conductor with the session the author shared with each; the others get their outcome
        in `outcomes`: held for the key (or KeyMissing without `hold`), or refused."""
        wanted = [(agent, own, info) for agent, own, info in checked
                  if not self._store.has_seen(agent, message_hash)
                  and entry.group_uuid not in self._store.get_groups(agent).blocked]
        for agent, _, _ in checked:
            outcomes.setdefault(agent, (False, None))  # a duplicate, or a blocked group: nothing to decrypt
        if not wanted:
            return []
        results = await self._conductor.decrypt_group_messages([
            conductor_pb2.GroupCiphertext(agent=agent, group_uuid=entry.group_uuid, sender=entry.author,
                                          encrypted=entry.encrypted) for agent, _, _ in wanted])
        decrypted = []
        for (agent, own, info), (plaintext, error, missing_key) in zip(wanted, results):
            if missing_key:
                if hold:
                    self._group_keys.hold(agent, entry, signed)
                    outcomes[agent] = (True, None)
                else:
                    outcomes[agent] = (False, KeyMissing(error))
                continue
            if error:
                outcomes[agent] = (False, PermissionDenied(error))
                continue
            try:
                open_content(own, plaintext)
            except InvalidArgument as exc:
                outcomes[agent] = (False, exc)
                continue
            own.ClearField("encrypted")
            decrypted.append((agent, own, info))
            del outcomes[agent]
        return decrypted

    async def _take(self, to_agent: bytes, entry, message_hash: bytes) -> lobby_pb2.MessageRecord | None:
        """The record the agent keeps of a verified message, or None when it takes nothing
        (a duplicate, a blocked group); a blocked member in it gets a warning."""
        if self._store.has_seen(to_agent, message_hash):
            return None
        if entry.group_uuid in self._store.get_groups(to_agent).blocked:
            return None
        blocked = set(self._store.get_blocked_agents(to_agent).agents)
        involved = [entry.author, *[r for r in entry.receiver if r != to_agent]]
        blocked_members = [a for a in involved if a in blocked]
        entry.time_received = now_micros()  # each receiver's entry is its own parse
        record = lobby_pb2.MessageRecord(entry=entry, message_hash=message_hash, blocked_members=blocked_members)
        if blocked_members:
            names = ", ".join([await self._hosting.display_name(a) for a in blocked_members])
            record.warning = f"someone in this group is blocked by you: {names}"
        return record

    @staticmethod
    def _verify_message(signed, caller: bytes | None) -> common_pb2.MessageEntry:
        """The entry of a message signed by its author (who made the call, if one did)."""
        entry = parse(common_pb2.MessageEntry, verify_signed(signed, "message"), "message")
        if entry.author != signed.author:
            raise PermissionDenied("the message's author did not sign it")
        if caller is not None and caller != entry.author:
            raise PermissionDenied("the caller is not the message's author")
        if entry.HasField("time_received"):
            raise InvalidArgument("a sent message carries no time_received")
        if entry.payload or entry.attachments or not entry.encrypted.ciphertext or not entry.encrypted.session_id:
            raise InvalidArgument("a message travels encrypted: `encrypted` set, `payload` empty")
        return entry

    async def _verify_for(self, to_agent: bytes, entry: common_pb2.MessageEntry, addressed: set,
                          caller: bytes | None):
        """(the receiver's own copy of the entry, group) when the message is addressed to
        the agent, and its author and every receiver it names are members of the group as
        the agent knows it; refused otherwise."""
        if to_agent not in addressed:
            raise PermissionDenied("the message is not addressed to this agent")
        info = self._store.get_group_info(to_agent, entry.group_uuid)
        if info is None and caller is not None:
            await self._invites.take_waiting_invites(to_agent)  # its invite may wait in the DHT
            info = self._store.get_group_info(to_agent, entry.group_uuid)
        if info is None:
            raise FailedPrecondition(f"this agent has no invite to group {entry.group_uuid}")
        members = set(info.members)
        if (entry.author not in members or not addressed <= members) \
                and await self._group_changes.refresh_group(to_agent, entry.group_uuid):
            info = self._store.get_group_info(to_agent, entry.group_uuid)
            members = set(info.members)
        if info.departed:
            raise FailedPrecondition("this agent is no longer a member of the group")
        if entry.author not in members:
            raise PermissionDenied("the author is not a member of the group")
        if not addressed <= members:
            raise PermissionDenied("the message names receivers outside the group")
        own = common_pb2.MessageEntry()
        own.CopyFrom(entry)  # each receiver stamps its own time_received
        return own, info
