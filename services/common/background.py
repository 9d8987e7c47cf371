"""Work nobody waits on (a receipt going back, an inbox link retired, a peer announcement,
a write to a holder marked down): started here, so that a service can wait for it to
settle or stop all of it."""

import asyncio

from kizuna_node.common import rpc
from kizuna_node.common.store import is_damage


async def round_failed(logger, what: str, exc: BaseException) -> None:
    """How a loop that must outlive one bad round reports it: damage to the store as a call
    finding it would (health NOT_SERVING), anything else with its traceback."""
    if is_damage(exc):
        await rpc.store_damage_found(what, exc)
    else:
        logger.error("%s failed", what, exc_info=exc)


class Background:
    def __init__(self):
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Waits for the work started so far, and for what that work started in turn."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self, *others: asyncio.Task) -> None:
        """Cancels the work (and `others`, tasks the node runs beside it) and waits for it to end."""
        tasks = [*others, *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
