"""Runs a node's conductor: `kizuna-conductor --listen unix:PATH --data-dir DIR --dht unix:PATH`.

The conductor holds the node's keys and serves its own node only: it listens on a Unix
socket (or loopback), never on a peer-facing address, and every call needs the node secret."""

import asyncio
import os

import grpc

from kizuna.v1 import conductor_pb2, conductor_pb2_grpc
from kizuna_node.common import metrics, node_secret
from kizuna_node.common.server import Listener, base_parser, serve, setup_logging
from kizuna_node.conductor.conductor import Conductor
from kizuna_node.conductor.ports import DhtSpaces
from kizuna_node.conductor.e2e import ROTATION_MESSAGES, ROTATION_SECONDS
from kizuna_node.conductor.servicer import ConductorServicer
from kizuna_node.conductor.store import ConductorStore

async def run(args) -> None:
    store = ConductorStore(args.data_dir)
    metrics.serve_metrics("conductor", args.metrics_listen, args.data_dir)
    secret = node_secret.load_or_create(args.node_secret_file or os.path.join(args.data_dir, node_secret.DEFAULT_FILE))
    channel = grpc.aio.insecure_channel(args.dht)
    spaces = DhtSpaces(channel, secret)
    conductor = Conductor(store, spaces.join_space, spaces.leave_space, spaces.node_id,
                          rotation_messages=args.rotation_messages, rotation_seconds=args.rotation_seconds)

    def register(server):
        conductor_pb2_grpc.add_ConductorServicer_to_server(ConductorServicer(conductor, secret), server)

    async def on_stop():
        await channel.close()
        store.close()

    service = conductor_pb2.DESCRIPTOR.services_by_name["Conductor"].full_name
    await serve([Listener(args.listen, [service], register)], on_stop=on_stop)


def main(argv=None) -> None:
    parser = base_parser("Kizuna conductor: keystore, cells, app tokens, DNA clones")
    parser.add_argument("--dht", required=True, help="node-local address of this node's GroupDht")
    parser.add_argument("--node-secret-file", default="",
                        help="the node's secret, made when missing (default: DATA_DIR/node.secret)")
    parser.add_argument("--rotation-messages", type=int, default=ROTATION_MESSAGES,
                        help="messages an agent's group session encrypts before a new one replaces it")
    parser.add_argument("--rotation-seconds", type=float, default=ROTATION_SECONDS,
                        help="age at which an agent's group session is replaced")
    args = parser.parse_args(argv)
    if args.rotation_messages < 1 or args.rotation_seconds <= 0:
        parser.error("--rotation-messages and --rotation-seconds must be positive")
    setup_logging(args.log_level, "conductor", args.log_format)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
