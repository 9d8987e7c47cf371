"""The DHT node: one front object that assembles membership, quorum writes, reads, group-state
catch-up and gossip over one store, one peer table and one handler for outgoing calls."""

import asyncio

from kizuna.v1 import common_pb2, group_dht_pb2
from kizuna_node.group_dht import placement
from kizuna_node.common.background import Background
from kizuna_node.group_dht.calls import CALL_TIMEOUT, PeerCalls
from kizuna_node.group_dht.callers import LOCAL, Callers
from kizuna_node.group_dht.catch_up import GroupCatchUp
from kizuna_node.group_dht.context import NodeContext
from kizuna_node.group_dht.gossip import GOSSIP_INTERVAL, Gossip
from kizuna_node.group_dht.holding import Holding
from kizuna_node.group_dht.identity import NodeIdentity
from kizuna_node.group_dht.membership import DEFAULT_MAX_SPACES, Membership
from kizuna_node.group_dht.peers import PeerTable
from kizuna_node.group_dht.ports import Transport
from kizuna_node.group_dht.read import Reader
from kizuna_node.group_dht.store import DhtStore
from kizuna_node.group_dht.sync import SYNC_INTERVAL, AntiEntropy
from kizuna_node.group_dht.write import Writer

__all__ = ["DEFAULT_MAX_SPACES", "GroupDhtNode"]


class GroupDhtNode:
    """Calls to other nodes go through the injected `transport`; `address` is the one other
    nodes reach this node at (set once the server is bound), where it presents
    `tls_certificate` (DER), which its signed node info names."""

    def __init__(
        self,
        store: DhtStore,
        transport: Transport,
        *,
        replication: int = placement.DEFAULT_REPLICATION,
        max_spaces: int = DEFAULT_MAX_SPACES,
        bootstrap=(),
        advertise: str = "",
        call_timeout: float = CALL_TIMEOUT,
        gossip_interval: float = GOSSIP_INTERVAL,
        tls_certificate: bytes = b"",
        sync_interval: float = SYNC_INTERVAL,
        gone_after: float | None = None,
    ):
        if replication < 1:
            raise ValueError("replication must be at least 1")
        identity = NodeIdentity(store)
        self.node_id = identity.node_id
        self.peers = PeerTable(store, self.node_id)
        if gone_after is not None:
            self.peers.gone_seconds = gone_after
        self._background = Background()
        self._ctx = NodeContext(store, self.node_id, self.peers, PeerCalls(transport, self.peers, call_timeout),
                                self._background, replication)
        self._gossip = Gossip(self._ctx, identity, advertise, bootstrap, gossip_interval, tls_certificate)
        self._ctx.calls.introduce = self._gossip.introduce
        self._callers = Callers(self._ctx, tls_certificate)
        self._membership = Membership(self._ctx, self._announce, max_spaces)
        self._reader = Reader(self._ctx)
        holding = Holding(store, self._gossip.learn_address)
        self._catch_up = GroupCatchUp(store, self._reader, holding)
        self._writer = Writer(self._ctx, self._catch_up, holding)
        self._sync = AntiEntropy(self._ctx, self._catch_up, holding, sync_interval)
        self.peers.on_return = self._sync.peer_returned
        self._tasks: list[asyncio.Task] = []

    # settings and who this node is

    @property
    def address(self) -> str:
        return self._gossip.address

    @address.setter
    def address(self, value: str) -> None:
        self._gossip.address = value

    @property
    def replication(self) -> int:
        return self._ctx.replication

    @property
    def max_spaces(self) -> int:
        return self._membership.max_spaces

    @property
    def bootstrap(self) -> tuple[str, ...]:
        """The addresses gossip exchanges with besides the known peers."""
        return self._gossip.bootstrap

    def learn_address(self, address: str, certificate: bytes = b"") -> bool:
        """Adds a DHT address (and the certificate it must present) to bootstrap from; whether it was new."""
        return self._gossip.learn_address(address, certificate)

    def node_info(self) -> group_dht_pb2.NodeInfo:
        """This node's word about itself, signed with its node key."""
        return self._gossip.node_info()

    def holders(self, space: bytes, address: bytes) -> list[bytes]:
        """The ids of the nodes known in the space that hold the address, best first."""
        return self._ctx.holders(space, address)

    # life cycle

    async def start(self) -> None:
        """Starts gossiping (at once with every bootstrap address and known peer, then
        periodically) and anti-entropy (at once with every peer of each space, then paced)."""
        self._tasks = [asyncio.create_task(self._gossip.run()), asyncio.create_task(self._sync.run())]

    async def stop(self) -> None:
        await self._background.stop(*self._tasks)

    async def settle(self) -> None:
        """Waits for the background work started so far (peer announcements, writes to
        holders marked down)."""
        await self._background.settle()

    def _announce(self) -> None:
        self._background.spawn(self._gossip.exchange_with_peers(everyone=True))  # a changed word, to all at once

    # spaces

    async def join_space(self, space: bytes, agent: bytes, template: str, properties: common_pb2.GroupProperties,
                         updates=(), claim: group_dht_pb2.SpaceClaim | None = None) -> None:
        await self._membership.join_space(space, agent, template, properties, updates, claim)

    async def leave_space(self, space: bytes, agent: bytes) -> None:
        await self._membership.leave_space(space, agent)

    async def list_spaces(self, caller: bytes = LOCAL) -> group_dht_pb2.ListSpacesResponse:
        """The spaces the caller may read: every one for this node's own services."""
        listed = self._membership.list_spaces()
        readable = [r for r in listed.spaces if self._callers.may_read(caller, r.space)]
        del listed.spaces[:]
        listed.spaces.extend(readable)
        for record in listed.spaces:
            record.sync.CopyFrom(self._sync.stats(record.space))
            record.nodes.extend(sorted(self._ctx.nodes_in_space(record.space)))
        return listed

    # callers

    def authenticate(self, metadata, method: str) -> bytes:
        """The id of the node a read comes from (see callers.Callers.authenticate)."""
        return self._callers.authenticate(metadata, method)

    def check_read(self, caller: bytes, space: bytes, base: bytes = b"", address: bytes = b"") -> None:
        """PermissionDenied unless the caller may read the space (the links from `base`, the entry at `address`)."""
        self._callers.check_read(caller, space, base, address)

    # ops

    async def publish(self, signed: common_pb2.Signed, local_only: bool = False) -> group_dht_pb2.PublishResponse:
        return await self._writer.publish(signed, local_only)

    async def get(self, space: bytes, address: bytes, local_only: bool = False) -> group_dht_pb2.GetResponse:
        return await self._reader.get(space, address, local_only)

    async def get_links(
        self, space: bytes, base: bytes, tag_prefix: bytes = b"", local_only: bool = False, with_targets: bool = False,
        holders_only: bool = False,
    ) -> group_dht_pb2.GetLinksResponse:
        return await self._reader.get_links(space, base, tag_prefix, local_only, with_targets, holders_only)

    async def refresh_group_state(self, space: bytes) -> bool:
        return await self._catch_up.refresh_group_state(space)

    # anti-entropy

    def sync_summary(self, request: group_dht_pb2.SyncSummaryRequest) -> group_dht_pb2.SyncSummaryResponse:
        return self._sync.answer_summary(request)

    def fetch_ops(self, request: group_dht_pb2.FetchOpsRequest) -> group_dht_pb2.FetchOpsResponse:
        return self._sync.answer_fetch(request)

    async def sync_with_peers(self, space: bytes) -> int:
        """One anti-entropy round with every live peer of the space; the ops it stored."""
        stored = await asyncio.gather(*(self._sync.sync_with(space, p) for p in self._sync.live_peers(space)),
                                      return_exceptions=True)
        return sum(n for n in stored if isinstance(n, int))

    # peers

    async def exchange_peers(
        self, sender: group_dht_pb2.NodeInfo, known: list[group_dht_pb2.NodeInfo]
    ) -> group_dht_pb2.ExchangePeersResponse:
        return await self._gossip.exchange_peers(sender, known)

    async def exchange_with_peers(self) -> None:
        await self._gossip.exchange_with_peers()
