"""The generated code under clients/kizuna/v1 is what `make proto` makes from protos/ now.

The comparison ignores only the lines that stamp the generator's own version (protobuf's
runtime check, GRPC_GENERATED_VERSION), so a newer grpcio-tools on a fresh machine does
not fail it, while any change to a .proto that was not regenerated does.
"""

import importlib.resources
import re
import sys
from pathlib import Path

import pytest
from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTOS = REPO_ROOT / "protos"
GENERATED = REPO_ROOT / "clients"
PROTO_FILES = sorted(PROTOS.glob("kizuna/v1/*.proto"))
OUTPUTS = ("_pb2.py", "_pb2_grpc.py", "_pb2.pyi", "_pb2_grpc.pyi")
BIN = Path(sys.executable).parent

_VERSION_STAMPS = [
    re.compile(r"^# Protobuf Python Version: .*$", re.M),
    re.compile(r"_runtime_version\.ValidateProtobufRuntimeVersion\([^)]*\)", re.S),
    re.compile(r"^GRPC_GENERATED_VERSION = .*$", re.M),
]


def without_version_stamps(text: str) -> str:
    for stamp in _VERSION_STAMPS:
        text = stamp.sub("<version>", text)
    return text


def generated_names(proto: Path) -> list[str]:
    rel = proto.relative_to(PROTOS).with_suffix("")
    return [f"{rel}{suffix}" for suffix in OUTPUTS]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        # What `python -m grpc_tools.protoc` adds itself: the well-known types.
        f"-I{importlib.resources.files('grpc_tools') / '_proto'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--pyi_out={out}",
        f"--plugin=protoc-gen-mypy_grpc={BIN / 'protoc-gen-mypy_grpc'}",
        f"--mypy_grpc_out={out}",
        *map(str, PROTO_FILES),
    ]
    assert protoc.main(args) == 0, "protoc failed on protos/kizuna/v1"
    return out


def test_there_are_protos():
    assert {p.name for p in PROTO_FILES} >= {"common.proto", "conductor.proto", "group_dht.proto", "lobby.proto"}


@pytest.mark.parametrize("proto", PROTO_FILES, ids=lambda p: p.name)
def test_every_proto_has_its_three_committed_outputs(proto):
    missing = [name for name in generated_names(proto) if not (GENERATED / name).is_file()]
    assert not missing, f"missing generated files {missing}: run `make proto`"


@pytest.mark.parametrize("proto", PROTO_FILES, ids=lambda p: p.name)
def test_committed_generated_code_matches_the_protos(proto, regenerated):
    for name in generated_names(proto):
        fresh = without_version_stamps((regenerated / name).read_text())
        committed_path = GENERATED / name
        assert committed_path.is_file(), f"{name} is missing: run `make proto`"
        committed = without_version_stamps(committed_path.read_text())
        assert committed == fresh, f"clients/{name} is stale: run `make proto`"


def test_no_generated_file_without_a_proto():
    expected = {name for proto in PROTO_FILES for name in generated_names(proto)}
    present = {
        str(p.relative_to(GENERATED))
        for p in (GENERATED / "kizuna" / "v1").iterdir()
        if p.name.endswith(OUTPUTS)
    }
    assert present <= expected, f"generated files without a .proto: {sorted(present - expected)}"
