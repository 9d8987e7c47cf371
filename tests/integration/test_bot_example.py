"""The README's bot example, run as it is written there, against a real network: invited,
it accepts, and answers a message with its echo, as a reply."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run
from tests.integration.network import TIMEOUT, create_group, make_clients, make_network

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


def bot_source() -> str:
    found = re.search(r"<!-- bot example -->\n```python\n(.*?)```", README.read_text(), re.S)
    assert found, "the README has no bot example"
    return found.group(1)


def test_the_readme_bot_accepts_an_invite_and_echoes_a_message_as_a_reply(tmp_path):
    script = tmp_path / "echo_bot.py"
    script.write_text(bot_source())
    with make_network(tmp_path / "net", nodes=("alice", "bobby")) as network:
        bot = subprocess.Popen([sys.executable, str(script), str(network.directory), "bobby"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            async def talk():
                async with make_clients(network, ["alice"]) as clients:
                    alice = clients["alice"]
                    created = await create_group(clients, "Bots", ["bobby"])
                    group = created.group.group_uuid
                    sent = await alice.send(group, "ping")
                    echo = await alice.wait_for(lambda e: e.kind == "message", timeout=TIMEOUT * 3)
                    return sent, echo
            sent, echo = run(talk())
            assert echo.record.entry.payload == "echo: ping"
            assert echo.record.entry.reply_to == sent.message.message_hash
            assert bot.poll() is None, bot.stderr.read()  # still serving
        finally:
            bot.kill()
            bot.communicate(timeout=TIMEOUT)
