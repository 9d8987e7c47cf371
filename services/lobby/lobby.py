"""The lobby: the Lobby DNA's logic for every agent this node hosts, assembled from its
workflows (each a module named for what it does) and the ports handed in (conductor, DHT,
other lobbies), so nothing here imports grpc. This module only builds and wires them."""

from kizuna_node.common.background import Background
from kizuna_node.lobby.attachments import Attachments
from kizuna_node.common.retry import RetryPolicy
from kizuna_node.lobby.catch_up import CatchUp
from kizuna_node.lobby.delivery import Delivery
from kizuna_node.lobby.directory import Directory
from kizuna_node.lobby.envelopes import EnvelopeChecker
from kizuna_node.lobby.group_changes import GroupChanges
from kizuna_node.lobby.group_keys import GroupKeys
from kizuna_node.lobby.groups import Groups
from kizuna_node.lobby.history import History
from kizuna_node.lobby.hosting import Hosting
from kizuna_node.lobby.inbox import Inbox
from kizuna_node.lobby.invites import Invites
from kizuna_node.lobby.limits import Limits, RateLimiter
from kizuna_node.lobby.liveness import PeerLiveness
from kizuna_node.lobby.messaging import Messaging
from kizuna_node.lobby.outbox import Outbox
from kizuna_node.lobby.peer_calls import IncomingCalls, OutgoingCalls
from kizuna_node.lobby.presence import Presence
from kizuna_node.lobby.receipts import RECEIPT_BATCH_SECONDS, Receipts
from kizuna_node.lobby.signals import SignalHub
from kizuna_node.lobby.source_chain import SourceChain
from kizuna_node.lobby.store import LobbyStore
from kizuna_node.lobby.transactions import Transactions


class Lobby:
    """`conductor`, `dht` and `remote` are the ports of kizuna_node.lobby.ports (or fakes in
    unit tests); `address` is where other lobbies reach this one; `dht_address` is what
    this node's agent infos advertise for its DHT; `tls_certificate` what both present.

    The workflows, by the behaviour they hold: `hosting` (hosted agents, usernames),
    `groups` (the Groups entry, blocking), `invites` (creating a group, receiving an
    invite), `group_changes`, `messaging` (send, and the seed's receive rules),
    `transactions` (idempotent sends), `receipts`, `presence` (typing), `attachments` (files sent with messages), `group_keys` (the Megolm session keys), `delivery` (call_remote, then the group's DHT, then
    the outbox), `catch_up` (the inboxes), `history`, and `peer` (the incoming
    `rpc_receive_*` calls)."""

    def __init__(self, store: LobbyStore, conductor, dht, remote, address: str, dht_address: str,
                 retry_policy: RetryPolicy, liveness_window: float = 5.0, outbox: Outbox | None = None,
                 limits: Limits = Limits(), receipt_batch_seconds: float = RECEIPT_BATCH_SECONDS,
                 tls_certificate: bytes = b""):
        self.store = store
        self.signals = SignalHub(store)
        self.background = Background()
        chain = SourceChain(store, conductor.sign)
        directory = Directory(dht, conductor.sign)
        self.directory = directory
        self.hosting = Hosting(store, conductor, dht, directory, address, dht_address, tls_certificate, self.background)
        self.groups = Groups(store, chain)
        self.liveness = PeerLiveness(liveness_window)
        calls = OutgoingCalls(directory, conductor, remote)
        inbox = Inbox(directory, dht, conductor, self.background)
        # not `outbox or ...`: an empty Outbox is falsy (it has a length)
        self.delivery = Delivery(calls, inbox, outbox if outbox is not None else Outbox(store), self.liveness,
                                 retry_policy, self.signals)
        self.invites = Invites(store, chain, conductor, self.hosting, self.delivery, inbox, self.signals,
                               self.background, limits)
        self.group_changes = GroupChanges(store, chain, conductor, dht, directory, self.hosting, self.groups,
                                          self.delivery, self.signals, limits)
        self.receipts = Receipts(store, conductor, self.hosting, self.groups, self.delivery, self.signals,
                                 self.background, receipt_batch_seconds)
        self.presence = Presence(store, conductor, self.hosting, self.groups, calls, self.liveness, retry_policy,
                                 self.signals)
        self.group_keys = GroupKeys(store, conductor, self.hosting, directory, calls, self.background, retry_policy)
        self.messaging = Messaging(store, conductor, self.hosting, self.groups, self.invites, self.group_changes,
                                   self.receipts, calls, self.delivery, self.signals, limits, self.group_keys)
        self.transactions = Transactions(store, conductor, self.messaging, self.delivery.outbox)
        self.attachments = Attachments(store, conductor, dht, self.groups, self.messaging)
        self.catch_up = CatchUp(store, self.hosting, inbox, self.invites, self.group_changes, self.receipts,
                                self.messaging, self.background, self.group_keys)
        self.history = History(store, self.groups, limits)
        self.envelopes = EnvelopeChecker(store, limits.envelope_window_seconds)
        self.peer = IncomingCalls(self.envelopes, self.hosting,
                                  RateLimiter(limits.messages_per_second, limits.message_burst),
                                  self.invites, self.messaging, self.group_changes, self.receipts, self.presence,
                                  self.group_keys)

    @property
    def outbox(self) -> Outbox:
        return self.delivery.outbox

    async def close(self) -> None:
        """Stops the work running in the background; the store stays open."""
        await self.background.stop()
