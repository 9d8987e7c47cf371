"""`kizuna tokens ...`: what the parser makes of it, and its one-line errors without a network."""

import json

import pytest

from kizuna import cli


def parse(*argv):
    return cli.build_parser().parse_args(list(argv))


def test_tokens_list_takes_an_optional_node():
    assert (parse("tokens", "list").tokens_command, parse("tokens", "list").node) == ("list", None)
    args = parse("tokens", "list", "bobby")
    assert (args.command, args.tokens_command, args.node) == ("tokens", "list", "bobby")


def test_tokens_issue_takes_an_agent():
    args = parse("tokens", "issue", "alice")
    assert (args.tokens_command, args.agent) == ("issue", "alice")


def test_tokens_revoke_takes_a_token_id_and_an_optional_node():
    args = parse("tokens", "revoke", "0123456789abcdef")
    assert (args.tokens_command, args.token_id, args.node) == ("revoke", "0123456789abcdef", None)
    args = parse("tokens", "revoke", "0123456789abcdef", "--node", "alice")
    assert args.node == "alice"


@pytest.mark.parametrize("argv", [
    ("--dir", "somewhere", "tokens", "list"),
    ("tokens", "--dir", "somewhere", "list"),
    ("tokens", "list", "--dir", "somewhere"),
])
def test_dir_may_come_before_or_after_the_tokens_command(argv):
    assert parse(*argv).dir == "somewhere"


@pytest.mark.parametrize("argv", [("tokens",), ("tokens", "issue"), ("tokens", "revoke"), ("tokens", "forget", "x")])
def test_incomplete_or_unknown_tokens_commands_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as done:
        parse(*argv)
    assert done.value.code == 2
    assert "usage: kizuna tokens" in capsys.readouterr().err


def run_main(capsys, *argv):
    with pytest.raises(SystemExit) as done:
        cli.main(list(argv))
    out, err = capsys.readouterr()
    return done.value.code, out, err


def test_tokens_without_a_network_is_one_line_and_not_found(tmp_path, capsys):
    code, out, err = run_main(capsys, "--dir", str(tmp_path), "tokens", "list")
    assert code == cli.EXIT_NOT_FOUND == 3 and out == ""
    assert err.startswith("kizuna: no network in") and len(err.splitlines()) == 1


def _network_json(tmp_path):
    (tmp_path / "alice").mkdir()
    (tmp_path / "network.json").write_text(json.dumps({
        "nodes": {"alice": {"conductor": "127.0.0.1:1", "lobby": "127.0.0.1:2", "group_dht": "127.0.0.1:3",
                            "data_dir": str(tmp_path / "alice"), "pids": {}, "extra_args": {}}},
        "agents": {"alice": {"node": "alice", "agent": "A" * 43 + "=", "encryption_key": "", "app_token": "t",
                             "username": "alice"}},
    }))


@pytest.mark.parametrize("argv, words, exit_code", [
    (("tokens", "list", "nobody"), "no node named 'nobody'", cli.EXIT_NOT_FOUND),
    (("tokens", "issue", "nobody"), "no agent named 'nobody'", cli.EXIT_NOT_FOUND),
    (("tokens", "revoke", "00", "--node", "nobody"), "no node named 'nobody'", cli.EXIT_NOT_FOUND),
    (("tokens", "issue", "alice"), "cannot read node alice's secret", cli.EXIT_REFUSED),
])
def test_unknown_names_and_a_missing_node_secret_are_one_line_errors(tmp_path, capsys, argv, words, exit_code):
    _network_json(tmp_path)
    code, out, err = run_main(capsys, "--dir", str(tmp_path), *argv)
    assert code == exit_code and out == ""
    assert err.startswith("kizuna: ") and words in err and len(err.splitlines()) == 1


def test_kizuna_dir_and_kizuna_as_are_the_defaults_and_flags_win(monkeypatch):
    monkeypatch.setenv("KIZUNA_DIR", "/srv/chat")
    monkeypatch.setenv("KIZUNA_AS", "bobby")
    args = parse("groups")
    assert (args.dir, args.as_agent) == ("/srv/chat", "bobby")
    args = parse("--dir", "here", "groups", "--as", "charlie")
    assert (args.dir, args.as_agent) == ("here", "charlie")
    monkeypatch.delenv("KIZUNA_DIR")
    monkeypatch.delenv("KIZUNA_AS")
    assert (parse("groups").dir, parse("groups").as_agent) == (cli.DEFAULT_DIR, None)


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as done:
        parse("--version")
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"kizuna {cli._version()}" != "kizuna unknown (not installed)"


def test_admin_commands_take_a_node_and_their_options():
    args = parse("admin", "retry", "alice", "--item", "ab12", "--receiver", "bobby")
    assert (args.command, args.admin_command, args.node, args.item, args.receiver) == ("admin", "retry", "alice",
                                                                                       "ab12", "bobby")
    assert parse("admin", "outbox", "bobby", "--limit", "5").limit == 5
