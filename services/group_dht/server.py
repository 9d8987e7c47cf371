"""Runs a node's DHT: `kizuna-group-dht --listen ADDR --data-dir DIR [--bootstrap ADDR ...]`."""

import asyncio
import os

import grpc

from kizuna.v1 import group_dht_pb2, group_dht_pb2_grpc
from services.common import node_secret
from services.common.channels import ChannelPool
from services.common.rpc import remote_error
from services.common.server import base_parser, serve, setup_logging
from services.group_dht.dht import DEFAULT_MAX_SPACES, GroupDhtNode
from services.group_dht.placement import DEFAULT_REPLICATION
from services.group_dht.servicer import GroupDhtServicer
from services.group_dht.store import DhtStore

SERVICE_NAME = group_dht_pb2.DESCRIPTOR.services_by_name["GroupDht"].full_name


class GrpcTransport:
    """The node's outgoing calls as GroupDht stubs over pooled channels; a failed call
    raises the domain error carrying the same status.

    Only ExchangePeers waits for the channel to be ready (within its timeout): it is how a
    node finds peers at start-up, when they may not be up yet. The data path (Publish, Get,
    GetLinks) fails fast with UNAVAILABLE on a channel that cannot connect, so a dead
    holder costs no more than a refused connection; the pool's short reconnect backoff
    lets a peer that comes back be reached again within about a second."""

    def __init__(self, pool: ChannelPool):
        self._pool = pool

    def _stub(self, address: str) -> group_dht_pb2_grpc.GroupDhtStub:
        return group_dht_pb2_grpc.GroupDhtStub(self._pool.get(address))

    @staticmethod
    async def _unary(call):
        try:
            return await call
        except grpc.aio.AioRpcError as exc:
            raise remote_error(exc) from exc

    async def publish(self, address, signed, timeout):
        request = group_dht_pb2.PublishRequest(op=signed, local_only=True)
        return await self._unary(self._stub(address).Publish(request, timeout=timeout))

    async def get(self, address, space, entry_address, timeout):
        request = group_dht_pb2.GetRequest(space=space, address=entry_address, local_only=True)
        return await self._unary(self._stub(address).Get(request, timeout=timeout))

    async def get_links(self, address, space, base, tag_prefix, timeout, with_targets=False):
        request = group_dht_pb2.GetLinksRequest(space=space, base=base, tag_prefix=tag_prefix, local_only=True,
                                                with_targets=with_targets)
        return await self._unary(self._stub(address).GetLinks(request, timeout=timeout))

    async def exchange_peers(self, address, node, known, timeout):
        request = group_dht_pb2.ExchangePeersRequest(known=known)
        getattr(request, "from").CopyFrom(node)
        return await self._unary(self._stub(address).ExchangePeers(request, timeout=timeout, wait_for_ready=True))


def bootstrap_addresses(values) -> list[str]:
    """`--bootstrap` values, each possibly comma-separated, flattened and de-duplicated."""
    addresses = [a.strip() for value in values or [] for a in value.split(",")]
    return list(dict.fromkeys(a for a in addresses if a))


async def run(args) -> None:
    store = DhtStore(args.data_dir)
    secret = node_secret.load_or_create(args.node_secret_file or os.path.join(args.data_dir, node_secret.DEFAULT_FILE))
    pool = ChannelPool()
    node = GroupDhtNode(
        store,
        GrpcTransport(pool),
        replication=args.replication,
        max_spaces=args.max_spaces,
        bootstrap=bootstrap_addresses(args.bootstrap),
    )

    def register(server):
        group_dht_pb2_grpc.add_GroupDhtServicer_to_server(GroupDhtServicer(node, secret), server)

    async def on_start(address):
        node.address = args.advertise or address
        await node.start()

    async def on_stop():
        await node.stop()
        await pool.close()
        store.close()

    await serve(args.listen, [SERVICE_NAME], register, on_start=on_start, on_stop=on_stop)


def main(argv=None) -> None:
    parser = base_parser("Kizuna group DHT: spaces, validated ops, rendezvous placement, peers")
    parser.add_argument("--bootstrap", action="append", default=[], help="address of another DHT node (repeatable, or comma-separated)")
    parser.add_argument("--replication", type=int, default=DEFAULT_REPLICATION, help="how many nodes hold each address")
    parser.add_argument("--max-spaces", type=int, default=DEFAULT_MAX_SPACES, help="the most spaces this node joins")
    parser.add_argument("--advertise", default="", help="address other nodes reach this one at (default: the bound address)")
    parser.add_argument("--node-secret-file", default="",
                        help="the node's secret, made when missing (default: DATA_DIR/node.secret)")
    args = parser.parse_args(argv)
    if args.replication < 1:
        parser.error("--replication must be at least 1")
    if args.max_spaces < 1:
        parser.error("--max-spaces must be at least 1")
    setup_logging(args.log_level, "group-dht")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
