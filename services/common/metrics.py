"""Prometheus metrics: every service serves its own on `--metrics-listen` (loopback by
default), over HTTP at /metrics. The metrics are module-level, one set per process (a
process runs one service); the `service` label names it.

What is counted where: every RPC by method and status with its latency (rpc.rpc_method);
the lobby's deliveries by kind and first outcome and the outbox's later ones, its outbox
depth and oldest item, its queued signals; the DHT's ops stored, refused by reason, quorum
failures, and anti-entropy rounds and ops repaired; each LevelDB's size on disk."""

import logging
import os
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from kizuna_node.common.server import is_node_local

log = logging.getLogger("kizuna.metrics")

SERVICE = {"name": ""}  # set once by `serve_metrics`

RPCS = Counter("kizuna_rpcs", "RPCs served, by method and status code", ["service", "method", "code"])
RPC_SECONDS = Histogram("kizuna_rpc_seconds", "time to answer an RPC (a stream: until it ends)", ["service", "method"],
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
DELIVERIES = Counter("kizuna_deliveries", "items sent to a receiver, by kind and first outcome",
                     ["kind", "outcome"])
OUTBOX_OUTCOMES = Counter("kizuna_outbox_outcomes", "queued items that left the outbox, by kind and outcome",
                          ["kind", "outcome"])
OUTBOX_ATTEMPTS = Counter("kizuna_outbox_attempts", "tries of queued items that nobody took yet")
OUTBOX_ITEMS = Gauge("kizuna_outbox_items", "items waiting in the outbox (queued or in flight)")
OUTBOX_OLDEST = Gauge("kizuna_outbox_oldest_seconds", "age of the oldest outbox item (0 when empty)")
SIGNALS_QUEUED = Gauge("kizuna_signals_queued", "signals kept until a UI acks them, all agents together")
RETRY_GIVE_UPS = Counter("kizuna_retry_give_ups", "calls the retry policy gave up on, by what was called", ["what"])
DHT_OPS_STORED = Counter("kizuna_dht_ops_stored", "ops this DHT node stored (new to it)")
DHT_OPS_REFUSED = Counter("kizuna_dht_ops_refused", "ops this DHT node refused, by status code", ["code"])
DHT_QUORUM_FAILURES = Counter("kizuna_dht_quorum_failures", "publishes that stored on fewer holders than a quorum")
DHT_SYNC_ROUNDS = Counter("kizuna_dht_sync_rounds", "anti-entropy rounds with a peer, by whether anything differed",
                          ["result"])
DHT_OPS_REPAIRED = Counter("kizuna_dht_ops_repaired", "ops fetched and stored by anti-entropy")
STORE_BYTES = Gauge("kizuna_store_bytes", "size on disk of this service's LevelDB")


def _directory_bytes(path: str) -> int:
    total = 0
    for entry in Path(path).glob("*"):
        try:
            total += entry.stat().st_size
        except OSError:
            pass  # a file LevelDB removed in the meantime
    return total


def serve_metrics(service: str, address: str, data_dir: str) -> str:
    """Starts the /metrics HTTP endpoint on `address` (host:port, node-local only; port 0
    picks one) and answers the address as bound; "" for `address` turns metrics off."""
    SERVICE["name"] = service
    STORE_BYTES.set_function(lambda: _directory_bytes(data_dir))
    if not address:
        return ""
    if address.startswith("unix:") or not is_node_local(address):
        raise SystemExit(f"--metrics-listen {address}: metrics listen on a loopback host:port only")
    host, port = address.rsplit(":", 1)
    host = host.strip("[]")
    try:
        server, _ = start_http_server(int(port), addr=host)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot serve metrics on {address}: {exc}") from None
    bound = f"{address.rsplit(':', 1)[0]}:{server.server_port}"
    log.info("metrics on http://%s/metrics (pid %d)", bound, os.getpid())
    return bound
