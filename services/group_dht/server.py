"""Runs a node's DHT: `kizuna-group-dht --listen unix:PATH --peer-listen HOST:PORT --tls-dir DIR
--data-dir DIR [--bootstrap HOST:PORT[#FINGERPRINT] ...]`.

`--listen` is for the node's own lobby and conductor (a Unix socket, or loopback), in
plaintext; `--peer-listen` for other nodes' DHTs, over TLS with the node's certificate.
Both serve GroupDht: the node-internal calls (JoinSpace, LeaveSpace) need the node secret
on either."""

import asyncio
import os

from kizuna.v1 import group_dht_pb2, group_dht_pb2_grpc
from kizuna_node.common import metrics, node_secret, tls
from kizuna_node.common.channels import ChannelPool
from kizuna_node.common.errors import KizunaError
from kizuna_node.common.server import Listener, add_peer_arguments, base_parser, serve, setup_logging
from kizuna_node.group_dht.dht import DEFAULT_MAX_SPACES, GroupDhtNode
from kizuna_node.group_dht.identity import NodeIdentity
from kizuna_node.group_dht.placement import DEFAULT_REPLICATION
from kizuna_node.group_dht.ports import GrpcTransport
from kizuna_node.group_dht.servicer import GroupDhtServicer
from kizuna_node.group_dht.peers import GONE_SECONDS
from kizuna_node.group_dht.store import DhtStore
from kizuna_node.group_dht.sync import SYNC_INTERVAL

SERVICE_NAME = group_dht_pb2.DESCRIPTOR.services_by_name["GroupDht"].full_name


def bootstrap_addresses(values) -> list[str]:
    """`--bootstrap` values, each possibly comma-separated, flattened and de-duplicated."""
    addresses = [a.strip() for value in values or [] for a in value.split(",")]
    return list(dict.fromkeys(a for a in addresses if a))


async def run(args) -> None:
    store = DhtStore(args.data_dir)
    metrics.serve_metrics("group_dht", args.metrics_listen, args.data_dir)
    secret = node_secret.load_or_create(args.node_secret_file or os.path.join(args.data_dir, node_secret.DEFAULT_FILE))
    pool = ChannelPool()
    node_tls = tls.load_or_create(args.tls_dir)
    node = GroupDhtNode(
        store,
        GrpcTransport(pool, NodeIdentity(store)),
        replication=args.replication,
        max_spaces=args.max_spaces,
        bootstrap=bootstrap_addresses(args.bootstrap),
        tls_certificate=node_tls.certificate_der,
        sync_interval=args.sync_interval,
        gone_after=args.gone_after,
    )

    def register(server):
        group_dht_pb2_grpc.add_GroupDhtServicer_to_server(GroupDhtServicer(node, secret), server)

    async def on_start(addresses):
        node.address = args.advertise or addresses[1]
        await node.start()

    async def on_stop():
        await node.stop()
        await pool.close()
        store.close()

    await serve([Listener(args.listen, [SERVICE_NAME], register),
                 Listener(args.peer_listen, [SERVICE_NAME], register, node_tls)], on_start=on_start, on_stop=on_stop)


def main(argv=None) -> None:
    parser = base_parser("Kizuna group DHT: spaces, validated ops, rendezvous placement, peers")
    parser.add_argument("--bootstrap", action="append", default=[],
                        help="peer address of another DHT node, HOST:PORT or HOST:PORT#FINGERPRINT to pin its"
                             " certificate (repeatable, or comma-separated)")
    parser.add_argument("--replication", type=int, default=DEFAULT_REPLICATION, help="how many nodes hold each address")
    parser.add_argument("--max-spaces", type=int, default=DEFAULT_MAX_SPACES, help="the most spaces this node joins")
    parser.add_argument("--sync-interval", type=float, default=SYNC_INTERVAL,
                        help="seconds between the paced anti-entropy rounds of a space")
    parser.add_argument("--gone-after", type=float, default=GONE_SECONDS,
                        help="seconds a peer answers nothing before its addresses go to the next nodes in line")
    add_peer_arguments(parser)
    parser.add_argument("--node-secret-file", default="",
                        help="the node's secret, made when missing (default: DATA_DIR/node.secret)")
    args = parser.parse_args(argv)
    if args.replication < 1:
        parser.error("--replication must be at least 1")
    if args.sync_interval <= 0 or args.gone_after <= 0:
        parser.error("--sync-interval and --gone-after must be positive")
    if args.max_spaces < 1:
        parser.error("--max-spaces must be at least 1")
    for address in bootstrap_addresses(args.bootstrap):
        try:
            tls.split_pin(address)
        except KizunaError as exc:
            parser.error(f"--bootstrap {address}: {exc.message}")
    setup_logging(args.log_level, "group_dht", args.log_format)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
