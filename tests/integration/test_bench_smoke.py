"""`make bench` keeps working: its smallest run, on a real local network, measures every
section, counts every message and leaves no process behind. No speed is asserted here;
the targets are for `make bench` to judge."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kizuna import net

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SMALLEST = ["--quick", "--echo-calls", "100", "--leveldb-puts", "100", "--sends", "10",
            "--throughput-per-sender", "5", "--fanout", "4", "--fanout-messages", "3",
            "--offline-rounds", "1", "--offline-sends", "3", "--catchup", "20", "--no-scale"]


def test_the_smallest_bench_run_measures_every_section_and_loses_nothing(tmp_path):
    out, network_dir = tmp_path / "result.json", tmp_path / "net"
    finished = subprocess.run(
        [sys.executable, "-m", "bench.run", *SMALLEST, "--out", str(out), "--dir", str(network_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=170,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "clients")])},
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    results = json.loads(out.read_text())
    assert "error" not in results
    for section in ("floors", "send_to_signal", "throughput", "fan_out", "offline_decision", "catch_up",
                    "footprint", "targets"):
        assert results.get(section), f"no {section} in the results"

    assert results["send_to_signal"]["lost"] == 0
    assert results["floors"]["echo"]["cross_process_tls"]["rtt"]["n"] == 100  # the floor of the TLS hops
    assert results["send_to_signal"]["ratio_to_tls_floor_p50"] > 0
    assert results["send_to_signal"]["send_to_signal"]["n"] == 10
    throughput = results["throughput"]
    assert throughput["deliveries_received"] == throughput["deliveries_expected"] == 8 * 5 * 2
    assert throughput["lost"] == 0 and throughput["duplicates"] == 0
    assert [f["members"] for f in results["fan_out"]] == [4] and results["fan_out"][0]["lost"] == 0
    assert results["catch_up"]["received"] == results["catch_up"]["away_messages"] >= 20
    assert {t["target"].split(" ")[0] for t in results["targets"]} >= {"send-to-signal", "catch-up", "each"}
    assert "targets:" in finished.stdout  # the table a user reads

    status = net.status(network_dir)  # the bench took its network down
    assert len(status) == 3
    assert not any(service["running"] for node in status.values() for service in node.values())


def test_the_quick_scale_section_measures_groups_catch_up_and_repair_and_loses_nothing(tmp_path):
    out = tmp_path / "scale.json"
    finished = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--quick", "--out", str(out), "--dir", str(tmp_path / "networks")],
        cwd=ROOT, capture_output=True, text=True, timeout=170,  # under pytest-timeout's 180 s, so a stall shows the bench's own output
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "clients")])},
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    scale = json.loads(out.read_text())["scale"]
    groups = scale["chat"]["groups"]
    assert [g["members"] for g in groups] == [4, 12]
    for g in groups:
        assert g["lost"] == 0 and g["until_last_member_signal"]["n"] == g["messages"]
        # one call per node the group reaches besides the sender's own: not one per member
        assert 1 <= g["lobby_calls_per_message"]["max"] <= g["nodes"]
    assert groups[1]["receivers_per_message"] > groups[1]["lobby_calls_per_message"]["max"]
    catch_up = scale["chat"]["catch_up"]
    assert catch_up["deliveries_received"] == catch_up["deliveries_expected"] > 0
    dht = scale["dht"]
    assert dht["holder_loss"]["ops_lost"] == 0 and dht["holder_loss"]["addresses_on_both_killed"] > 0
    assert dht["rejoin"]["ops_it_should_hold"] > 0 and dht["rejoin"]["seconds_healthy_to_repaired"] >= 0
    assert 0 < dht["clean_summary"]["bytes_per_round"] < 1000
    assert "targets:" in finished.stdout
    for directory in ("chat", "dht"):  # the bench took its networks down
        path = tmp_path / "networks" / directory
        if (path / "network.json").exists():
            status = net.status(path)
            assert not any(service["running"] for node in status.values() for service in node.values())
