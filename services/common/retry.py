"""The retry policy for outgoing calls: one tenacity policy with named settings.

It retries only transient statuses and gives up within its overall budget; callers
decide what giving up means (for call_remote: a failed outcome, or a fallback).
"""

import dataclasses
import logging
import time

import tenacity

from kizuna_node.common import metrics
from kizuna_node.common.errors import TRANSIENT, KizunaError
from kizuna_node.common.settings import FlagSettings

log = logging.getLogger("kizuna.retry")

MIN_ATTEMPT = 0.05


@dataclasses.dataclass(frozen=True)
class RetryPolicy(FlagSettings):
    """attempts: tries at most; backoff_initial/backoff_max: exponential backoff with
    jitter between tries (seconds); attempt_timeout: the deadline of one try; budget:
    the most all tries together may take."""

    attempts: int = 3
    backoff_initial: float = 0.05
    backoff_max: float = 0.2
    attempt_timeout: float = 0.5
    budget: float = 0.9

    FLAG_PREFIX = "retry"

    def retrying(self, what: str, budget: float | None = None) -> tenacity.AsyncRetrying:
        """The tenacity loop of this policy; `budget`, when given, is what is left of it."""
        def give_up(state: tenacity.RetryCallState):
            metrics.RETRY_GIVE_UPS.labels(what.split(" ", 1)[0]).inc()
            log.info("giving up on %s after %d attempts: %s", what, state.attempt_number, state.outcome.exception())
            raise state.outcome.exception()

        return tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.attempts)
            | tenacity.stop_after_delay(self.budget if budget is None else budget),
            wait=tenacity.wait_random_exponential(multiplier=self.backoff_initial, max=self.backoff_max),
            retry=tenacity.retry_if_exception(is_transient),
            retry_error_callback=give_up,
            reraise=True,
        )

    def for_batch(self, items: int, seconds_per_item: float) -> "RetryPolicy":
        """This policy for one call carrying `items` items of work for the callee (a message
        or an invite for each receiver a lobby hosts): each try, and the budget, longer by
        the work it carries, so a live callee doing it is not taken for an unreachable one."""
        extra = max(0, items - 1) * seconds_per_item
        return dataclasses.replace(self, attempt_timeout=self.attempt_timeout + extra, budget=self.budget + extra)

    def wait_before(self, failures: int) -> float:
        """The pause after `failures` failed tries before the next one, for work retried in
        the background (the outbox, receipts, start-up): exponential from backoff_initial,
        at most backoff_max."""
        return min(self.backoff_max, self.backoff_initial * 2 ** min(max(failures, 0), 32))


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT)


async def keep_trying(policy: RetryPolicy, what: str, work):
    """Runs `await work()` until it succeeds, pausing `policy.wait_before` between tries, for
    as many tries and as long as the policy allows; any KizunaError is worth another try
    (start-up work waiting for a service that is still starting). Returns its result or
    raises the last error."""
    retrying = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(policy.attempts) | tenacity.stop_after_delay(policy.budget),
        wait=lambda state: policy.wait_before(state.attempt_number - 1),
        retry=tenacity.retry_if_exception_type(KizunaError),
        before_sleep=lambda state: log.warning("%s failed (%s); trying again", what, state.outcome.exception()),
        reraise=True,
    )
    return await retrying(work)


async def call_with_policy(policy: RetryPolicy, what: str, call):
    """Runs `await call(timeout)` under the policy; returns (result, attempts) or raises
    the last error. `call` raises KizunaError (e.g. Unavailable from kizuna_node.common.rpc.remote_error) on failure.

    The first attempt runs bare, since most calls succeed at once; when it fails
    transiently, tenacity's loop takes over with that failure as its own first attempt,
    so every wait and stop after it is the policy's."""
    deadline = time.monotonic() + policy.budget

    def timeout() -> float:  # no attempt runs past the budget
        return max(MIN_ATTEMPT, min(policy.attempt_timeout, deadline - time.monotonic()))

    try:
        return await call(timeout()), 1
    except KizunaError as exc:
        if not is_transient(exc) or policy.attempts <= 1:
            exc.attempts = 1
            raise
        first_failure = exc
    attempts = 1
    try:
        async for attempt in policy.retrying(what, budget=max(0.0, deadline - time.monotonic())):
            with attempt:
                attempts = attempt.retry_state.attempt_number
                if attempts == 1:
                    raise first_failure
                result = await call(timeout())
    except KizunaError as exc:
        exc.attempts = attempts
        raise
    return result, attempts
