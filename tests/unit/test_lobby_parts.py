"""The small pieces the lobby's workflows share: the page-token codec, the paces of work
retried in the background, start-up's keep-trying loop, periodic catch-up spread over
a node's many agents, and source chains of many agents committed in one write."""

import pytest

from kizuna.v1 import common_pb2
from kizuna_node.common.errors import FailedPrecondition, InvalidArgument, Unavailable
from kizuna_node.common.hashing import blake2b_256
from kizuna_node.common.keys import verify_signed
from kizuna_node.common.retry import RetryPolicy, keep_trying
from kizuna_node.lobby.catch_up import CatchUp
from kizuna_node.lobby.history import PageToken
from kizuna_node.lobby.source_chain import SourceChain
from kizuna_node.lobby.store import LobbyStore
from tests.helpers import run
from tests.unit.lobby_fakes import FakeConductor


def test_a_page_token_round_trips_its_direction_position_and_author():
    for token in (PageToken(True, (1_700_000_000_000_000, b"\x01" * 32)),
                  PageToken(False, (5, b"\xff" * 32), author=b"\x07" * 32)):
        assert PageToken.decode(token.encode()) == token


@pytest.mark.parametrize("text", ["not-a-token", "", PageToken(True, (1, b"\x01" * 32)).encode()[:-4],
                                  "eA" + PageToken(True, (1, b"\x01" * 32)).encode()[2:]])
def test_a_page_token_this_lobby_did_not_give_out_is_refused(text):
    with pytest.raises(InvalidArgument, match="page_token"):
        PageToken.decode(text)


def test_background_retries_wait_longer_each_time_up_to_the_policy_maximum():
    policy = RetryPolicy(backoff_initial=0.5, backoff_max=5.0)
    assert [policy.wait_before(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.wait_before(10_000) == 5.0


def test_keep_trying_retries_any_refusal_until_the_work_succeeds():
    failures = [Unavailable("the conductor is starting"), FailedPrecondition("the DHT has no peers yet")]

    async def work():
        if failures:
            raise failures.pop(0)
        return "hosted"

    policy = RetryPolicy(attempts=5, backoff_initial=0.001, backoff_max=0.001, budget=5.0)
    assert run(keep_trying(policy, "hosting", work)) == "hosted"
    assert failures == []


def test_keep_trying_gives_up_after_its_attempts_with_the_last_error():
    calls = []

    async def work():
        calls.append(1)
        raise Unavailable(f"try {len(calls)}")

    policy = RetryPolicy(attempts=3, backoff_initial=0.001, backoff_max=0.001, budget=5.0)
    with pytest.raises(Unavailable, match="try 3"):
        run(keep_trying(policy, "hosting", work))
    assert len(calls) == 3


def test_keep_trying_does_not_retry_a_bug():
    calls = []

    async def work():
        calls.append(1)
        raise ValueError("a bug, not a service still starting")

    with pytest.raises(ValueError):
        run(keep_trying(RetryPolicy(attempts=3, backoff_initial=0.001), "hosting", work))
    assert len(calls) == 1


def test_periodic_catch_up_of_many_agents_takes_the_next_few_in_turn_and_every_one_at_start():
    class Hosting:
        def agents(self):
            return [bytes([i]) * 32 for i in range(7)]

    catch_up = CatchUp(None, Hosting(), None, None, None, None, None, None, None)
    visited = []

    async def sync_inbox(agent, polling=False):
        visited.append((agent[0], polling))
        return 0, 0

    catch_up.sync_inbox = sync_inbox

    async def rounds():
        await catch_up.sync_all()
        await catch_up.sync_all(3)
        await catch_up.sync_all(3)
        await catch_up.sync_all(3)

    run(rounds())
    # the round at start reads every node an inbox may be on; the periodic ones its holders
    assert visited == [(i, False) for i in [0, 1, 2, 3, 4, 5, 6]] + [(i, True) for i in [0, 1, 2, 3, 4, 5, 6, 0, 1]]


def test_commit_each_grows_several_agents_chains_in_one_synced_write_each_action_signed_and_linked(tmp_path):
    conductor = FakeConductor()
    agents = [conductor.make_agent(f"agent-{i}") for i in range(5)]
    store = LobbyStore(str(tmp_path / "lobby"))
    writes = []
    batch = store.batch
    store.batch = lambda sync=True: writes.append(sync) or batch(sync)
    chain = SourceChain(store, conductor.sign)
    applied = []

    async def scenario():
        await chain.commit(agents[0], [("groups", b"first")])
        writes.clear()
        return await chain.commit_each([(agent, [("invite", b"invite"), ("groups", agent)],
                                         lambda _, agent=agent: applied.append(agent)) for agent in agents])

    committed = run(scenario())
    assert writes == [True]  # one synced write for all five chains
    assert applied == agents
    for agent, actions in zip(agents, committed):
        assert store.head(agent)[1] == blake2b_256(actions[-1].body)
        chain_of = store.actions(agent, 0, 10)
        assert [a.SerializeToString() for a in chain_of[-2:]] == [a.SerializeToString() for a in actions]
        prev = b""
        for seq, signed in enumerate(chain_of):
            action = common_pb2.Action.FromString(verify_signed(signed, "action"))
            assert (action.seq, action.prev_action, action.author) == (seq, prev, agent)
            prev = blake2b_256(signed.body)
        assert len(chain_of) == (3 if agent == agents[0] else 2)
    store.close()
