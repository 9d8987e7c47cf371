"""`make demo`'s program: it plays the seed's scenario and leaves no process running."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration


def processes_using(directory) -> list[str]:
    """Command lines of running processes that name the directory (as their --data-dir)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(directory) in cmdline and "kizuna_node." in cmdline:
            found.append(cmdline)
    return found


def test_demo_prints_the_scenario_as_each_ui_saw_it_and_stops_every_process(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "kizuna.demo", "--dir", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Peer traffic (lobby to lobby, DHT to DHT) is TLS" in out
    assert out.count("(TLS, certificate ") == 4
    assert "bobby's UI]  invite from alice to 'Weekend trip'" in out
    assert "charlie's UI]  message from alice: 'Hi both! Hiking on Saturday?'" in out
    assert "first message of this group: [accept / delete / block]" in out
    assert "warning: someone in this group is blocked by you: bobby" in out
    # the group changes: dana added, a receipt, bobby removed, a new name
    assert "dana's UI]  invite from alice to 'Weekend trip'" in out
    assert "bobby's UI]  group change: alice added dana" in out
    assert "dana's UI]  message from alice: 'Welcome dana!'" in out
    assert "dana's UI]  1 message in her history: Welcome dana!" in out
    assert "alice's UI]  receipt: 'Welcome dana!' delivered to dana" in out
    assert "alice's UI]  receipt: 'Welcome dana!' read by dana" in out
    assert out.index("delivered to dana") < out.index("read by dana")
    assert "bobby's UI]  group change: alice removed bobby" in out
    assert "bobby's UI]  the group is gone from his group list" in out
    assert "alice's UI]  sent 'Just the three of us now' to charlie, dana" in out
    assert "bobby's UI]  received nothing" in out
    assert "charlie's UI]  group change: alice renamed the group to 'Saturday hike'" in out
    assert "alice's UI]  'Saturday hike' (alice, charlie, dana) - latest: alice: Just the three of us now" in out
    assert "All processes stopped." in out

    network = json.loads((tmp_path / "network.json").read_text())
    assert len(network["nodes"]) == 4
    assert processes_using(tmp_path) == []
