"""The retry policy for outgoing calls: one tenacity policy with named settings.

It retries only transient statuses and gives up within its overall budget; callers
decide what giving up means (for call_remote: a failed outcome, or a fallback).
"""

import dataclasses
import logging
import time

import tenacity

from services.common.errors import KizunaError
from services.common.settings import FlagSettings

log = logging.getLogger("kizuna.retry")

MIN_ATTEMPT = 0.05
TRANSIENT = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"})


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

    def retrying(self, what: str) -> tenacity.AsyncRetrying:
        def give_up(state: tenacity.RetryCallState):
            log.info("giving up on %s after %d attempts: %s", what, state.attempt_number, state.outcome.exception())
            raise state.outcome.exception()

        return tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.attempts) | tenacity.stop_after_delay(self.budget),
            wait=tenacity.wait_random_exponential(multiplier=self.backoff_initial, max=self.backoff_max),
            retry=tenacity.retry_if_exception(is_transient),
            retry_error_callback=give_up,
            reraise=True,
        )


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, KizunaError) and exc.code in TRANSIENT


async def call_with_policy(policy: RetryPolicy, what: str, call):
    """Runs `await call(timeout)` under the policy; returns (result, attempts) or raises
    the last error. `call` raises KizunaError (e.g. RemoteError) on failure."""
    attempts = 0
    deadline = time.monotonic() + policy.budget
    try:
        async for attempt in policy.retrying(what):
            with attempt:
                attempts = attempt.retry_state.attempt_number
                # no attempt runs past the budget
                result = await call(max(MIN_ATTEMPT, min(policy.attempt_timeout, deadline - time.monotonic())))
    except KizunaError as exc:
        exc.attempts = attempts
        raise
    return result, attempts
