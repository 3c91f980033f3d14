"""The gateway's function workers, as a pool: `invoke` finds an idle warm worker of the image
(or starts one, within the per-function and total caps) and runs the invocation under the
image's time and memory caps. Workers themselves are workers.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Awaitable, Callable

from run402_cli.local.functions.workers import (
    FunctionImage, Invocation, LogSink, MemoryExceeded, Outcome, Worker, WorkerDied,
)

__all__ = ["WorkerPool"]


class WorkerPool:
    """All workers of the gateway. `invoke` finds or starts one and runs the invocation under
    the image's caps."""

    def __init__(self, node: str, *, permission_flag: str = "--experimental-permission", per_function: int = 4,
                 total: int = 32, idle_seconds: float = 300.0) -> None:
        self.node = node
        self.permission_flag = permission_flag
        self.per_function = per_function
        self.total = total
        self.idle_seconds = idle_seconds
        self._workers: dict[FunctionImage, list[Worker]] = {}
        self._freed = asyncio.Condition()
        self._reaper: asyncio.Task[None] | None = None

    def _count(self) -> int:
        return sum(len(ws) for ws in self._workers.values())

    def _drop(self, w: Worker) -> None:
        w.kill()
        ws = self._workers.get(w.image)
        if ws and w in ws:
            ws.remove(w)
            if not ws:
                del self._workers[w.image]

    def retire(self, project_id: str, name: str | None = None) -> None:
        """Stop the idle workers of a project (or one function) and mark the busy ones to go
        when done: called when a release changes what they run or a secret changes."""
        for image in [i for i in self._workers if i.project_id == project_id and (name is None or i.name == name)]:
            for w in list(self._workers.get(image, [])):
                if not w.busy:
                    self._drop(w)
                else:
                    w.last_used = -1.0  # dropped when it finishes

    async def _acquire(self, image: FunctionImage, deadline: float) -> Worker | None:
        """An idle live worker of the image, or None when the caller should start one."""
        async with self._freed:
            while True:
                ws = self._workers.setdefault(image, [])
                for w in ws:
                    if not w.busy and w.alive():
                        w.busy = True
                        return w
                for w in [w for w in ws if not w.alive()]:
                    self._drop(w)
                ws = self._workers.setdefault(image, [])
                if not ws:
                    self._retire_superseded(image)
                if len(ws) < self.per_function:
                    if self._count() >= self.total:
                        idle = sorted((w for wl in self._workers.values() for w in wl if not w.busy),
                                      key=lambda w: w.last_used)
                        if idle:
                            self._drop(idle[0])
                    if self._count() < self.total:
                        w = Worker(image)
                        w.busy = True
                        self._workers.setdefault(image, []).append(w)
                        return w
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise asyncio.TimeoutError
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._freed.wait(), remaining)

    def _retire_superseded(self, image: FunctionImage) -> None:
        """A function's first worker of a new image (new code, limits or secrets): the idle
        workers of its older images go now — they hold the old secrets — not at the idle timeout."""
        for old in [i for i in self._workers if i != image and (i.project_id, i.name) == (image.project_id, image.name)]:
            for w in list(self._workers.get(old, [])):
                if w.busy:
                    w.last_used = -1.0
                else:
                    self._drop(w)

    async def _release(self, w: Worker, keep: bool) -> None:
        w.busy = False
        w.sink = None
        if not keep or not w.alive() or w.last_used < 0:
            self._drop(w)
        else:
            w.last_used = time.monotonic()
        async with self._freed:
            self._freed.notify_all()

    async def invoke(self, image: FunctionImage, load: Callable[[], Awaitable[tuple[bytes, dict[str, str]]]],
                     inv: Invocation, sink: LogSink) -> Outcome:
        """Run `inv` on a worker of `image`; `load()` gives (bundle, env) when one must start."""
        self._ensure_reaper()
        started = time.monotonic()
        deadline = started + image.timeout_seconds
        try:
            w = await self._acquire(image, deadline)
        except asyncio.TimeoutError:
            return Outcome(code="FUNCTION_TIMEOUT", message=f"No worker became free within the function's "
                           f"{image.timeout_seconds} s timeout", duration_ms=(time.monotonic() - started) * 1000)
        assert w is not None
        w.sink = sink
        keep = False
        cold = not w.alive()
        try:
            outcome = await asyncio.wait_for(self._run(w, load, inv, cold), max(0.001, deadline - time.monotonic()))
            keep = outcome.code is None or outcome.code in ("FUNCTION_ERROR", "FUNCTION_BAD_RESPONSE",
                                                            "ROUTED_RESPONSE_TOO_LARGE")
        except asyncio.TimeoutError:
            sink("error", time.time() * 1000, f"Task timed out after {image.timeout_seconds} seconds")
            outcome = Outcome(code="FUNCTION_TIMEOUT",
                              message=f"The function did not respond within its {image.timeout_seconds} s timeout")
        except MemoryExceeded as exc:
            sink("error", time.time() * 1000, str(exc))
            outcome = Outcome(code="FUNCTION_MEMORY_EXCEEDED", message=str(exc))
        except WorkerDied:
            outcome = Outcome(code="FUNCTION_CRASHED", message="The function's worker exited during the invocation")
        except RuntimeError as exc:  # the module did not load
            sink("error", time.time() * 1000, str(exc))
            outcome = Outcome(code="FUNCTION_INIT_FAILED", message=str(exc).splitlines()[0][:500])
        finally:
            await self._release(w, keep)
        outcome.cold = cold
        outcome.duration_ms = (time.monotonic() - started) * 1000
        return outcome

    async def _run(self, w: Worker, load: Callable[[], Awaitable[tuple[bytes, dict[str, str]]]],
                   inv: Invocation, cold: bool) -> Outcome:
        if cold:
            bundle, env = await load()
            await w.start(self.node, self.permission_flag, bundle, env)
        task = asyncio.ensure_future(w.invoke(inv))
        cap = w.image.memory_mb
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=0.02)
                if done:
                    return task.result()
                if w.rss_mb() > cap:
                    w.kill()
                    raise MemoryExceeded(f"The function used more than its {cap} MB of memory")
                if not w.alive():
                    # the process is gone; the socket read fails with _Dead shortly
                    continue
        finally:
            if not task.done():
                task.cancel()
                w.kill()

    # -- housekeeping ---------------------------------------------------------------------------
    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.ensure_future(self._reap())

    async def _reap(self) -> None:
        while self._workers:
            await asyncio.sleep(min(30.0, self.idle_seconds / 2))
            now = time.monotonic()
            for ws in list(self._workers.values()):
                for w in list(ws):
                    if not w.busy and (now - w.last_used > self.idle_seconds or not w.alive()):
                        self._drop(w)

    def close(self) -> None:
        for ws in list(self._workers.values()):
            for w in list(ws):
                w.kill()
        self._workers.clear()
        if self._reaper is not None:
            self._reaper.cancel()
