"""Runs a node's lobby: `kizuna-lobby --listen ADDR --peer-listen HOST:PORT --tls-dir DIR
--data-dir DIR --conductor unix:PATH --dht unix:PATH --dht-peer-address HOST:PORT`.

Two listeners: `--listen` serves the UI's Lobby service, in plaintext, on loopback or a
Unix socket only; `--peer-listen` serves LobbyPeer (other lobbies' call_remote) over TLS
with the node's certificate, which this node's agent infos name."""

import asyncio
import dataclasses
import logging

from kizuna.v1 import admin_pb2, admin_pb2_grpc, lobby_pb2, lobby_pb2_grpc
from kizuna_node.common import metrics, node_secret, tls
from kizuna_node.common.background import round_failed
from kizuna_node.common.channels import ChannelPool
from kizuna_node.common.errors import KizunaError
from kizuna_node.common.retry import RetryPolicy, keep_trying
from kizuna_node.common.server import Listener, add_peer_arguments, base_parser, serve, setup_logging
from kizuna_node.lobby.admin import LobbyAdminServicer
from kizuna_node.lobby.limits import Limits
from kizuna_node.lobby.lobby import Lobby
from kizuna_node.lobby.outbox import OUTBOX_RETRY, Outbox
from kizuna_node.lobby.ports import ConductorPort, DhtPort, RemoteLobbies
from kizuna_node.lobby.receipts import RECEIPT_BATCH_SECONDS
from kizuna_node.lobby.servicer import Authenticator, LobbyPeerServicer, LobbyServicer
from kizuna_node.lobby.store import LobbyStore

log = logging.getLogger("kizuna.lobby")

# Hosting at start waits for the conductor and the DHT: a try a second, for half a minute.
HOSTING_RETRY = RetryPolicy(attempts=30, backoff_initial=1.0, backoff_max=1.0, budget=60.0)
AGENT_INFO_FIRST_REPUBLISH_SECONDS = 5.0
AGENT_INFO_REPUBLISH_SECONDS = 600.0


async def run(args) -> None:
    store = LobbyStore(args.data_dir)
    metrics.serve_metrics("lobby", args.metrics_listen, args.data_dir)
    pool = ChannelPool()
    secret = node_secret.load_or_create(args.node_secret_file)
    conductor = ConductorPort(pool.get(args.conductor), secret)
    node_tls = tls.load_or_create(args.tls_dir)
    lobby = Lobby(
        store,
        conductor,
        DhtPort(pool.get(args.dht), secret),
        RemoteLobbies(pool),
        args.advertise,
        args.dht_peer_address,
        RetryPolicy.from_args(args),
        liveness_window=args.liveness_window,
        outbox=Outbox(store, interval=args.outbox_interval,
                      retry=dataclasses.replace(OUTBOX_RETRY, backoff_initial=args.outbox_backoff_initial,
                                                backoff_max=args.outbox_backoff_max)),
        limits=Limits.from_args(args),
        receipt_batch_seconds=args.receipt_batch_seconds,
        tls_certificate=node_tls.certificate_der,
    )
    metrics.OUTBOX_ITEMS.set_function(lambda: len(lobby.delivery.outbox))
    metrics.OUTBOX_OLDEST.set_function(lobby.delivery.outbox.oldest_seconds)
    metrics.SIGNALS_QUEUED.set_function(lobby.signals.queued)
    background: list[asyncio.Task] = []

    def register_ui(server):
        lobby_pb2_grpc.add_LobbyServicer_to_server(LobbyServicer(lobby, Authenticator(conductor, lobby.hosting)), server)
        admin_pb2_grpc.add_LobbyAdminServicer_to_server(LobbyAdminServicer(lobby, secret), server)

    def register_peer(server):
        lobby_pb2_grpc.add_LobbyPeerServicer_to_server(LobbyPeerServicer(lobby), server)

    async def on_start(addresses):
        lobby.hosting.address = args.advertise or addresses[1]
        # Hosting needs the conductor and the DHT; an agent not hosted now is hosted
        # on its first call.
        await _host_until_done(lobby)
        background.append(asyncio.create_task(lobby.delivery.run_outbox()))
        held = lobby.group_keys.resume()
        if held:
            log.info("%d messages wait for their group key: asking their authors", held)
        background.append(asyncio.create_task(_catch_up_every(lobby, args.sync_interval, args.sync_agents_per_round)))
        background.append(asyncio.create_task(_republish_every(lobby, AGENT_INFO_REPUBLISH_SECONDS)))

    async def on_stop():
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await lobby.close()
        lobby.signals.close()
        await pool.close()
        store.close()

    owed = lobby.receipts.resume_receipts()  # before any call comes in, so none is queued twice
    if owed:
        log.info("%d receipts owed from before the restart are going out", owed)
    services = lobby_pb2.DESCRIPTOR.services_by_name
    admin = admin_pb2.DESCRIPTOR.services_by_name["LobbyAdmin"].full_name
    await serve([Listener(args.listen, [services["Lobby"].full_name, admin], register_ui),
                 Listener(args.peer_listen, [services["LobbyPeer"].full_name], register_peer, node_tls)],
                on_start, on_stop)


async def _host_until_done(lobby: Lobby) -> None:
    try:
        await keep_trying(HOSTING_RETRY, "hosting agents", lobby.hosting.host_agents)
    except KizunaError:
        log.error("gave up hosting agents at start; each is hosted on its first call")


async def _catch_up_every(lobby: Lobby, interval: float, agents_per_round: int) -> None:
    """Catch-up of every hosted agent at start, then every `interval` seconds of
    `agents_per_round` of them in turn."""
    at_most = None
    while True:
        try:
            await lobby.catch_up.sync_all(at_most)
            at_most = max(1, agents_per_round)
            lobby.envelopes.forget_expired()
            lobby.signals.expire()
            lobby.transactions.expire()
        except Exception as exc:  # noqa: BLE001 - one bad round must not end catch-up for good
            await round_failed(log, "catch-up round", exc)
        await asyncio.sleep(interval)


async def _republish_every(lobby: Lobby, interval: float) -> None:
    """Agent infos again a few seconds after start (once the DHT knows its peers), then
    every `interval` seconds, well within their one-hour lifetime."""
    await asyncio.sleep(AGENT_INFO_FIRST_REPUBLISH_SECONDS)
    while True:
        await lobby.hosting.republish_agent_infos()
        await asyncio.sleep(interval)


def main(argv=None) -> None:
    parser = base_parser("Kizuna lobby: the Lobby DNA's logic, call_remote and signals")
    parser.add_argument("--conductor", required=True, help="node-local address of this node's conductor (unix:PATH)")
    parser.add_argument("--dht", required=True, help="node-local address of this node's GroupDht (unix:PATH)")
    parser.add_argument("--dht-peer-address", required=True,
                        help="the peer address of this node's GroupDht, which the agent infos advertise")
    add_peer_arguments(parser)
    parser.add_argument("--liveness-window", type=float, default=5.0,
                        help="seconds a receiver that just failed goes straight to the DHT path")
    parser.add_argument("--sync-interval", type=float, default=5.0, help="seconds between inbox catch-ups")
    parser.add_argument("--sync-agents-per-round", type=int, default=10,
                        help="hosted agents caught up per periodic round at most, the next ones in turn (all at start)")
    parser.add_argument("--outbox-interval", type=float, default=0.25, help="seconds between outbox rounds")
    parser.add_argument("--outbox-backoff-initial", type=float, default=OUTBOX_RETRY.backoff_initial,
                        help="the wait before a queued item's second try, doubling after each try")
    parser.add_argument("--outbox-backoff-max", type=float, default=5.0,
                        help="the longest wait before retrying a queued item")
    parser.add_argument("--receipt-batch-seconds", type=float, default=RECEIPT_BATCH_SECONDS,
                        help="how long a receipt waits for others to the same author, to go out together")
    parser.add_argument("--node-secret-file", required=True, help="the node's secret, shared with its conductor and DHT (made when missing)")
    Limits.add_arguments(parser)
    RetryPolicy.add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(args.log_level, "lobby", args.log_format)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
