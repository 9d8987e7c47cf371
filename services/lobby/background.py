"""Work a caller need not wait for (a receipt going back, an inbox link retired): started
here, so that the lobby can stop all of it when it stops."""

import asyncio


class Background:
    def __init__(self):
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
