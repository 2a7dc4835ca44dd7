"""Per-request deadlines without a timer per request.

asyncio.timeout() arms and cancels an event-loop timer for every request; under load that
cost a quarter of a worker's throughput (BENCHMARKS.md, kit). Here a request only notes
its task and deadline in a dict, and one sweep per worker, a few times a second, cancels
the tasks whose deadline has passed. A deadline is therefore honoured up to one sweep
period late, which is nothing next to deadlines of seconds.
"""

from __future__ import annotations

import asyncio

SWEEP_SECONDS = 0.05  # how late a deadline may be noticed


class Deadlines:
    def __init__(self) -> None:
        self.due: dict[asyncio.Task[object], float] = {}  # the caller adds to it directly
        self._expired: set[asyncio.Task[object]] = set()

    def finish(self, task: asyncio.Task[object]) -> bool:
        """Stop watching the task; True if its deadline passed (the task was cancelled
        for it: its cancellation is withdrawn here, so the request can still answer)."""
        del self.due[task]
        if self._expired and task in self._expired:
            self._expired.discard(task)
            task.uncancel()
            return True
        return False

    def sweep(self) -> None:
        now = asyncio.get_running_loop().time()
        for task, deadline in self.due.items():
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
