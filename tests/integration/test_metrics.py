"""Every service's Prometheus metrics, scraped after the seed's scenario with one node
offline: the counters say what happened."""

import base64
import collections
import json
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kizuna import net
from tests.helpers import run
from tests.integration.network import create_group, make_clients, make_network, outcomes_by_name, status_name

pytestmark = pytest.mark.integration

NAMES = ("alice", "bobby", "charlie")


def scrape(address: str) -> dict[tuple, float]:
    """(sample name, sorted label items) -> value, from one /metrics endpoint."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_the_deliveries_rpcs_and_ops_of_the_seed_scenario_with_one_node_offline(tmp_path):
    with make_network(tmp_path) as network:
        async def scenario():
            async with make_clients(network, NAMES) as clients:
                created = await create_group(clients, "Counted", ["bobby", "charlie"])
                net.stop_node(tmp_path, "charlie", kill=True)
                return created, await clients["alice"].send(created.group.group_uuid, "one online, one away")
        created, answer = run(scenario())
        outcomes = {n: status_name(o.status) for n, o in outcomes_by_name(network, answer.outcomes).items()}
        assert outcomes == {"bobby": "DELIVERED", "charlie": "STORED_IN_DHT"}
        invites = collections.Counter(status_name(o.status) for o in created.invites)

        recorded = net.load(tmp_path)
        alice = {service: scrape(address) for service, address in recorded.node("alice")["metrics"].items()}
        bobby = {service: scrape(address) for service, address in recorded.node("bobby")["metrics"].items()}

        lobby = alice["lobby"]
        assert value(lobby, "kizuna_deliveries_total", kind="message", outcome="DELIVERED") == 1
        assert value(lobby, "kizuna_deliveries_total", kind="message", outcome="STORED_IN_DHT") == 1
        for outcome in ("DELIVERED", "STORED_IN_DHT", "QUEUED", "FAILED"):  # as CreateGroup answered
            assert value(lobby, "kizuna_deliveries_total", kind="invite", outcome=outcome) == invites[outcome], outcome
        assert sum(invites.values()) == 2
        assert value(lobby, "kizuna_deliveries_total", kind="message", outcome="QUEUED") == 0
        assert value(lobby, "kizuna_rpcs_total", service="lobby", method="SendGroupMessage", code="OK") == 1
        assert value(lobby, "kizuna_rpcs_total", service="lobby", method="CreateGroup", code="OK") == 1
        assert value(lobby, "kizuna_rpc_seconds_count", service="lobby", method="SendGroupMessage") == 1
        assert value(lobby, "kizuna_outbox_items") == 0

        # bobby's lobby took one call for the message, his conductor signed (its receipt), his DHT stored ops
        assert value(bobby["lobby"], "kizuna_rpcs_total", service="lobby", method="ReceiveGroupMessage", code="OK") >= 1
        assert value(bobby["conductor"], "kizuna_rpcs_total", service="conductor", method="Sign", code="OK") >= 1
        assert value(bobby["group_dht"], "kizuna_dht_ops_stored_total") > 0
        # charlie's copy went to the group space's holders on alice's and bobby's nodes
        assert value(alice["group_dht"], "kizuna_rpcs_total", service="group_dht", method="Publish", code="OK") >= 1
        for service, samples in {**{f"alice {k}": v for k, v in alice.items()},
                                 **{f"bobby {k}": v for k, v in bobby.items()}}.items():
            assert value(samples, "kizuna_store_bytes") > 0, service


def test_the_logs_of_a_run_are_json_lines_with_one_spelling_per_id_and_no_message_text(tmp_path):
    debug = {name: {svc: ["--log-level", "DEBUG"] for svc in ("lobby", "conductor", "group_dht")} for name in NAMES}
    with make_network(tmp_path, extra_args=debug) as network:
        async def scenario():
            async with make_clients(network, NAMES) as clients:
                created = await create_group(clients, "Logged", ["bobby", "charlie"])
                net.stop_node(tmp_path, "charlie", kill=True)
                await clients["alice"].send(created.group.group_uuid, "a secret only members may read")
                return created.group
        group = run(scenario())
    lines = []
    for path in sorted((tmp_path / "logs").glob("*.log")):
        for line in path.read_text().splitlines():
            if line.startswith("--- "):  # the runner's own marker between starts
                continue
            record = json.loads(line)  # every line a JSON object
            assert {"ts", "level", "service", "logger", "event"} <= set(record), line
            lines.append((path.name, record, line))
    assert {r["service"] for _, r, _ in lines} == {"lobby", "conductor", "group_dht"}
    text = "\n".join(line for _, _, line in lines)
    assert "a secret only members may read" not in text
    requests = [r for _, r, _ in lines if "code" in r]
    assert requests and all(r["method"] and r["code"] for r in requests)
    assert {"SendGroupMessage", "CreateGroup", "Publish", "SignBatch"} <= {r["method"] for r in requests}
    for name in NAMES:
        key = network.agent_key(name)
        assert base64.b64encode(key).decode()[:8] in text, name
        assert key.hex()[:16] not in text, f"{name}'s key spelled in hex"
    assert group.dna_hash.hex()[:16] in text
    assert base64.b64encode(group.dna_hash).decode()[:8] not in text
