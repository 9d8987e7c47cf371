"""What the CLI prints for scripts and people: JSON of protobuf answers, exit codes from
gRPC statuses, and every command's help with an example."""

import argparse
import json

import grpc
import pytest

from kizuna import cli, net
from kizuna.client import ClientError
from kizuna.v1 import common_pb2


def leaf_commands(parser, path=""):
    """(path, parser) of every command that runs something."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += leaf_commands(child, f"{path} {name}".strip())
    return found or [(path, parser)]


def test_every_command_has_an_example_and_the_exit_codes_in_its_help():
    commands = leaf_commands(cli.build_parser())
    assert len(commands) >= 30
    for path, parser in commands:
        text = parser.format_help()
        assert f"example:\n  {cli.EXAMPLES[path]}" in text, path
        assert "5 unauthenticated" in text, path
        assert cli.EXAMPLES[path].startswith("kizuna ") and path.split()[-1] in cli.EXAMPLES[path], path


def test_help_shows_defaults_worth_showing():
    text = dict(leaf_commands(cli.build_parser()))["admin outbox"].format_help()
    assert "(default 100)" in text or "(default: 100)" in text
    assert "(default: None)" not in text


def test_json_is_protobufs_mapping_with_bytes_in_base64(capsys):
    args = argparse.Namespace(json=True)
    cli.say(args, "for people", {"groups": common_pb2.Groups(group_uuids=["g1"]), "key": b"\x01\x02"})
    assert json.loads(capsys.readouterr().out) == {"groups": {"group_uuids": ["g1"]}, "key": "AQI="}
    cli.say(args, "only for people")
    cli.say(argparse.Namespace(json=False), "for people", {"ignored": True})
    assert capsys.readouterr().out == "for people\n"


@pytest.mark.parametrize("error, code", [
    (ClientError(grpc.StatusCode.INVALID_ARGUMENT, "bad"), cli.EXIT_USAGE),
    (ClientError(grpc.StatusCode.NOT_FOUND, "gone"), cli.EXIT_NOT_FOUND),
    (ClientError(grpc.StatusCode.PERMISSION_DENIED, "no"), cli.EXIT_REFUSED),
    (ClientError(grpc.StatusCode.FAILED_PRECONDITION, "not now"), cli.EXIT_REFUSED),
    (ClientError(grpc.StatusCode.UNAUTHENTICATED, "revoked"), cli.EXIT_UNAUTHENTICATED),
    (ClientError(grpc.StatusCode.UNAVAILABLE, "down"), cli.EXIT_UNREACHABLE),
    (ClientError(grpc.StatusCode.DEADLINE_EXCEEDED, "slow"), cli.EXIT_UNREACHABLE),
    (ClientError(grpc.StatusCode.INTERNAL, "oops"), cli.EXIT_FAILED),
    (net.NotFound("no node"), cli.EXIT_NOT_FOUND),
    (net.NetError("could not start"), cli.EXIT_FAILED),
    (cli.CliError("ambiguous"), cli.EXIT_USAGE),
    (TimeoutError(), cli.EXIT_UNREACHABLE),
    (RuntimeError("surprise\nsecond line"), cli.EXIT_FAILED),
])
def test_each_failure_has_its_exit_code_and_one_line(error, code):
    exit_code, line = cli.failure(error)
    assert exit_code == code and line and "\n" not in line


def test_a_json_error_is_one_json_line_on_stderr(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--dir", str(tmp_path), "--json", "tokens", "list"])
    out, err = capsys.readouterr()
    assert done.value.code == cli.EXIT_NOT_FOUND and out == ""
    assert json.loads(err)["error"] == {"exit_code": 3, "kind": "not found",
                                        "message": json.loads(err)["error"]["message"]}
    assert "no network in" in json.loads(err)["error"]["message"]
