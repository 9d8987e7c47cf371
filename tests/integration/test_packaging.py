"""The client alone (clients/pyproject.toml, `kizuna-client`), installed into a new virtual
environment: it imports and talks to a real node without any of the node's dependencies,
and ships its types and its contract."""

import importlib.metadata
import json
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.integration.network import make_network

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_ONLY = ("plyvel", "tenacity", "vodozemac", "grpc_tools", "kizuna_node", "services")
CHECK = f"""
import importlib.util, json, pathlib
import kizuna.client, kizuna.v1.lobby_pb2_grpc
package = pathlib.Path(kizuna.__file__).parent
print(json.dumps({{
    "node_only": [name for name in {NODE_ONLY!r} if importlib.util.find_spec(name)],
    "shipped": sorted(str(p.relative_to(package)) for p in package.rglob("*")
                      if p.suffix in (".typed", ".pyi", ".proto")),
}}))
"""


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory) -> Path:
    """A new environment with only `pip install ./clients` in it (from a copy, so the build
    leaves nothing in the checkout)."""
    root = tmp_path_factory.mktemp("client-only")
    source = root / "source"
    shutil.copytree(REPO_ROOT / "clients", source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    installed = subprocess.run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", str(source)],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return root / "venv" / "bin"


def test_the_client_alone_imports_without_the_nodes_dependencies_and_ships_types_and_protos(client_venv):
    checked = subprocess.run([client_venv / "python", "-c", CHECK], capture_output=True, text=True, timeout=60,
                             cwd=client_venv)  # not the checkout, whose packages would be found
    assert checked.returncode == 0, checked.stderr
    found = json.loads(checked.stdout)
    assert found["node_only"] == []
    shipped = set(found["shipped"])
    assert "py.typed" in shipped
    assert {"v1/lobby_pb2.pyi", "v1/lobby_pb2_grpc.pyi", "protos/lobby.proto", "protos/common.proto"} <= shipped
    version = subprocess.run([client_venv / "kizuna", "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.strip() == f"kizuna {importlib.metadata.version('kizuna')}"


def test_the_client_alone_talks_to_a_real_node(client_venv, tmp_path):
    with make_network(tmp_path, nodes=("alice", "bobby")) as network:
        created = subprocess.run([client_venv / "kizuna", "--dir", str(network.directory), "--as", "alice", "--json",
                                  "create-group", "Solo", "bobby"], capture_output=True, text=True, timeout=60,
                                 cwd=client_venv)
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout)["group"]["name"] == "Solo"
        listed = subprocess.run([client_venv / "kizuna", "--dir", str(network.directory), "--as", "alice", "--json",
                                 "groups"], capture_output=True, text=True, timeout=60, cwd=client_venv)
        assert [g["name"] for g in json.loads(listed.stdout)["details"]] == ["Solo"]


def test_the_whole_nodes_wheel_ships_the_services_as_kizuna_node_beside_the_client(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(REPO_ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.egg-info", "build", "net", "results"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "wheels"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = (tmp_path / "wheels").glob("kizuna-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if "/" in name and ".dist-info" not in name} == {"kizuna", "kizuna_node"}
    assert {"kizuna_node/lobby/server.py", "kizuna_node/group_dht/server.py", "kizuna_node/conductor/server.py",
            "kizuna/py.typed", "kizuna/protos/lobby.proto", "kizuna/v1/lobby_pb2_grpc.pyi"} <= set(names)
