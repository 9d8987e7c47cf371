"""`kizuna node init` and `kizuna node run`, as a person runs a node of their own: two nodes
in directories of their own, the second joining the first by its pinned address; a group
and a message between them; Ctrl-C stops every service."""

import os
import signal
import subprocess
import sys

import pytest

from kizuna import net
from tests.conftest import REPO_ROOT
from tests.helpers import eventually

pytestmark = pytest.mark.integration

KIZUNA = [sys.executable, "-m", "kizuna"]


def kizuna(*args: str, timeout: float = 60) -> str:
    result = subprocess.run([*KIZUNA, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"kizuna {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def test_two_standalone_nodes_join_by_address_and_chat_and_stop_on_ctrl_c(tmp_path, free_port):
    dirs = {name: tmp_path / name for name in ("alice", "bobby")}
    for name, directory in dirs.items():
        kizuna("node", "init", "--dir", str(directory), "--name", name, "--ui", f"127.0.0.1:{free_port()}",
               "--lobby-peer", f"127.0.0.1:{free_port()}", "--dht-peer", f"127.0.0.1:{free_port()}")
    info = kizuna("node", "info", "--dir", str(dirs["alice"]))
    join = info.split("--bootstrap ", 1)[1].split()[0]
    assert "#" in join  # the address carries alice's certificate fingerprint

    runs = {}
    try:
        runs["alice"] = subprocess.Popen([*KIZUNA, "node", "run", "--dir", str(dirs["alice"])], cwd=REPO_ROOT,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        runs["bobby"] = subprocess.Popen([*KIZUNA, "node", "run", "--dir", str(dirs["bobby"]), "--bootstrap", join],
                                         cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, process in runs.items():
            line = ""
            while "serving;" not in line:
                line = process.stdout.readline()
                assert line or process.poll() is None, f"{name}'s node exited"
        created = kizuna("--dir", str(dirs["alice"]), "--as", "alice", "create-group", "Friends", "bobby")
        assert "delivered" in created
        sent = kizuna("--dir", str(dirs["alice"]), "--as", "alice", "send", "Friends", "hello from my own machine")
        assert "delivered" in sent
        history = kizuna("--dir", str(dirs["bobby"]), "--as", "bobby", "history", "Friends")
        assert "hello from my own machine" in history
    finally:
        pids = []
        for name, process in runs.items():
            pids += [p for p in net.load(dirs[name]).node(name).get("pids", {}).values() if p]
            process.send_signal(signal.SIGINT)
        for process in runs.values():
            process.wait(timeout=30)
    assert all(p.returncode == 0 for p in runs.values())
    eventually(lambda: not any(net.is_alive(pid) for pid in pids), "every service of both nodes stopped", 15)
    assert os.path.exists(dirs["alice"] / "network.json")
