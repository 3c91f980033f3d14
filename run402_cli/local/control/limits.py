"""Fair sharing between tenants: rate limits, per-project concurrency gates, the verified-project
cache. One `Limits` per gateway process, on `ctx.limits`.

Why each piece exists:
- `TokenBucket`: the hosted API's per-project rate limit (100 requests/s), the
  password-guessing throttle and the faucet. Keyed by string, thread-safe (sync routes run in
  worker threads), bounded memory: an attacker who invents keys only evicts the oldest ones.
- `ConcurrencyGate`: one project may hold only a few of PostgREST's pool connections or of the
  SQL worker threads at a time; the rest of its burst waits in a short queue or gets a 429.
  Event-loop only (it guards async code).
- `TTLCache`: verified project rows, so the REST hot path needs neither a thread nor a database
  connection, both of which a busy tenant can use up; and verified project tokens, so the same
  key is not decoded and HMAC-checked afresh on every request (control/callers.py says when a
  remembered verification still holds).
All clocks are monotonic and injectable, so the unit tests drive time by hand.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import threading
import time
from collections import OrderedDict, deque
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Generic, Mapping, TypeVar

from run402_cli.local.errors import GatewayError

__all__ = [
    "ConcurrencyGate", "GateFull", "Limits", "LoginThrottle", "TTLCache", "TokenBucket", "rate_limited",
    "PROJECT_RATE", "PROJECT_BURST", "REST_PER_PROJECT", "REST_QUEUE", "SQL_PER_PROJECT", "SQL_QUEUE",
    "SQL_THREADS", "LOOKUP_THREADS", "LOGIN_ACCOUNT_FAILURES", "LOGIN_CLIENT_FAILURES", "LOGIN_WINDOW",
    "FAUCET_PER_ADDRESS", "FAUCET_ADDRESS_WINDOW", "TOKEN_CACHE_KEYS", "project_rate",
]

Clock = Callable[[], float]
T = TypeVar("T")

PROJECT_RATE = 100.0        # requests/s, the contract's figure
PROJECT_BURST = 200.0       # test suites and page loads come in bursts well above one second's worth
# PostgREST's db-pool is 10 (postgrest.render_config): one project gets 4, so 6 stay for the others.
REST_PER_PROJECT = 4
REST_QUEUE = 16
REST_MAX_WAIT = 15.0
# `projects sql` opens its own connection and holds a worker thread for the whole statement
# (timeout 30 s), so the total is capped too, and one project may hold only a quarter of it.
SQL_THREADS = 8
SQL_PER_PROJECT = 2
SQL_QUEUE = 8
SQL_MAX_WAIT = 35.0
LOOKUP_THREADS = 4          # cache misses of the project row (a short indexed read)
LOGIN_ACCOUNT_FAILURES = 5  # per project+email ...
LOGIN_CLIENT_FAILURES = 30  # ... and per remote address+project ...
LOGIN_WINDOW = 60.0         # ... per this many seconds
# The faucet is the only source of test USDC, and the team tier costs 80 drips: an address may
# take 100 at once (enough for any tier), then 100 an hour. The global bucket bounds the ledger's
# growth however many addresses a caller invents.
FAUCET_PER_ADDRESS = 100
FAUCET_ADDRESS_WINDOW = 3600.0
FAUCET_GLOBAL_RATE = 10.0
FAUCET_GLOBAL_BURST = 200
MAX_KEYS = 10_000
TOKEN_CACHE_KEYS = 2048     # verified tokens remembered (a few hundred bytes each)


def _seconds(wait: float) -> int:
    return max(1, math.ceil(wait))


def rate_limited(wait: float, message: str, **details: Any) -> GatewayError:
    """The one 429 envelope: `retry_after` in the body (the contract) and the header (HTTP)."""
    secs = _seconds(wait)
    return GatewayError(429, "RATE_LIMITED", message, category="rate_limit", retryable=True,
                        hint=f"Retry after {secs} s", details=details or None,
                        extra={"retry_after": secs}, headers={"Retry-After": str(secs)})


class TokenBucket:
    """`burst` tokens per key, refilled at `rate` per second.

    Memory: at most `max_keys` keys. A key idle long enough to be full again is the same as an
    absent one; the least recently touched key is evicted first, which is the one most likely
    to be full, so eviction under churn forgets the least.
    """

    def __init__(self, rate: float, burst: float, *, max_keys: int = MAX_KEYS, clock: Clock = time.monotonic):
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate > 0, burst >= 1 and max_keys >= 1 are required")
        self.rate, self.burst, self.max_keys, self._clock = float(rate), float(burst), max_keys, clock
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def _level(self, key: str, now: float) -> float:
        entry = self._keys.get(key)
        if entry is None:
            return self.burst
        tokens, at = entry
        return min(self.burst, tokens + max(0.0, now - at) * self.rate)

    def _store(self, key: str, tokens: float, now: float) -> None:
        if tokens >= self.burst:  # full: nothing to remember
            self._keys.pop(key, None)
            return
        self._keys[key] = (tokens, now)
        self._keys.move_to_end(key)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)

    def acquire(self, key: str, cost: float = 1.0) -> float:
        """Take `cost` tokens: 0.0 when granted, else the seconds until they would be (nothing taken)."""
        with self._lock:
            now = self._clock()
            level = self._level(key, now)
            if level >= cost:
                self._store(key, level - cost, now)
                return 0.0
            return (cost - level) / self.rate

    def wait_time(self, key: str, cost: float = 1.0) -> float:
        """Seconds until `cost` tokens are there; takes nothing."""
        with self._lock:
            level = self._level(key, self._clock())
            return 0.0 if level >= cost else (cost - level) / self.rate

    def refund(self, key: str, cost: float = 1.0) -> None:
        with self._lock:
            now = self._clock()
            self._store(key, min(self.burst, self._level(key, now) + cost), now)

    def reset(self, key: str) -> None:
        with self._lock:
            self._keys.pop(key, None)

    def __len__(self) -> int:
        return len(self._keys)


class LoginThrottle:
    """Password guessing: an attempt spends one token from the account's budget and one from the
    client's *before* the password is checked, so neither a wrong nor a right password gets
    through an empty budget, and concurrent guesses cannot race past the check. A success gives
    the account its whole budget back and the client its token."""

    def __init__(self, *, account_failures: int = LOGIN_ACCOUNT_FAILURES,
                 client_failures: int = LOGIN_CLIENT_FAILURES, window: float = LOGIN_WINDOW,
                 max_keys: int = MAX_KEYS, clock: Clock = time.monotonic):
        self.accounts = TokenBucket(account_failures / window, account_failures, max_keys=max_keys, clock=clock)
        self.clients = TokenBucket(client_failures / window, client_failures, max_keys=max_keys, clock=clock)

    def begin(self, account: str, client: str) -> None:
        wait = self.clients.acquire(client)
        if wait:
            raise rate_limited(wait, "Too many failed sign-ins from this client", scope="client")
        wait = self.accounts.acquire(account)
        if wait:
            self.clients.refund(client)  # a refused attempt checked no password
            raise rate_limited(wait, "Too many failed sign-ins for this account", scope="account")

    def succeeded(self, account: str, client: str) -> None:
        self.accounts.reset(account)
        self.clients.refund(client)


class GateFull(Exception):
    def __init__(self, retry_after: float):
        super().__init__(f"gate full, retry after {retry_after:g}s")
        self.retry_after = retry_after


@dataclass
class _Slots:
    active: int = 0
    waiters: deque = field(default_factory=deque)


class ConcurrencyGate:
    """At most `per_key` holders per key; up to `queue` more wait (FIFO, at most `max_wait` s);
    anyone beyond gets GateFull. A key's entry exists only while it has holders or waiters, so
    memory follows the requests in flight, not the keys ever seen. Event-loop only."""

    def __init__(self, per_key: int, queue: int, *, max_wait: float, retry_after: float = 1.0):
        self.per_key, self.queue, self.max_wait, self.retry_after = per_key, queue, max_wait, retry_after
        self._slots: dict[str, _Slots] = {}

    def active(self, key: str) -> int:
        slots = self._slots.get(key)
        return slots.active if slots else 0

    def waiting(self, key: str) -> int:
        slots = self._slots.get(key)
        return len(slots.waiters) if slots else 0

    def __len__(self) -> int:
        return len(self._slots)

    async def acquire(self, key: str) -> None:
        slots = self._slots.setdefault(key, _Slots())
        if slots.active < self.per_key and not slots.waiters:
            slots.active += 1
            return
        if len(slots.waiters) >= self.queue:
            self._drop_if_idle(key, slots)
            raise GateFull(self.retry_after)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        slots.waiters.append(fut)
        try:
            done, _ = await asyncio.wait({fut}, timeout=self.max_wait)
        except BaseException:  # cancelled while waiting
            self._abandon(key, slots, fut)
            raise
        if not done:
            self._abandon(key, slots, fut)
            raise GateFull(self.retry_after)
        # release() handed its slot over: `active` already counts us.

    def _abandon(self, key: str, slots: _Slots, fut: asyncio.Future[None]) -> None:
        if fut.done() and not fut.cancelled():
            self.release(key)  # the slot arrived just as we gave up: pass it on
            return
        fut.cancel()
        try:
            slots.waiters.remove(fut)
        except ValueError:
            pass
        self._drop_if_idle(key, slots)

    def release(self, key: str) -> None:
        slots = self._slots[key]
        while slots.waiters:
            fut = slots.waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # hand the slot over; `active` is unchanged
                return
        slots.active -= 1
        self._drop_if_idle(key, slots)

    def _drop_if_idle(self, key: str, slots: _Slots) -> None:
        if slots.active <= 0 and not slots.waiters and self._slots.get(key) is slots:
            del self._slots[key]

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        await self.acquire(key)
        try:
            yield
        finally:
            self.release(key)


class TTLCache(Generic[T]):
    """Values for `ttl` seconds, at most `max_keys`, thread-safe. `get(..., not_before=t)` also
    refuses values fetched before `t` (an invalidation signal: the gateway's schema_changed_at,
    which project deletion bumps)."""

    def __init__(self, ttl: float, max_keys: int = 1024, *, clock: Clock = time.monotonic):
        self.ttl, self.max_keys, self._clock = ttl, max_keys, clock
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[T, float]] = OrderedDict()

    def now(self) -> float:
        return self._clock()

    def get(self, key: str, *, not_before: float = float("-inf")) -> T | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            value, fetched_at = item
            if fetched_at < not_before or self._clock() - fetched_at > self.ttl:
                del self._items[key]
                return None
            return value

    def put(self, key: str, value: T, *, fetched_at: float | None = None) -> None:
        """`fetched_at`: when the read *started*, so a value read across an invalidation is stale."""
        with self._lock:
            self._items[key] = (value, self._clock() if fetched_at is None else fetched_at)
            self._items.move_to_end(key)
            while len(self._items) > self.max_keys:
                self._items.popitem(last=False)

    def invalidate(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


def project_rate(env: Mapping[str, str] | None = None) -> float:
    """Requests/s one project may make: the contract's 100, or RUN402_LOCAL_PROJECT_RATE (a
    positive number) for an operator who wants another figure locally, e.g. to measure the
    gateway itself rather than its limit. A bad value is the default, never no limit."""
    raw = (os.environ if env is None else env).get("RUN402_LOCAL_PROJECT_RATE", "")
    try:
        rate = float(raw)
    except ValueError:
        return PROJECT_RATE
    return rate if math.isfinite(rate) and rate > 0 else PROJECT_RATE


class Limits:
    """Every limiter of one gateway process (a field of GatewayContext)."""

    def __init__(self, clock: Clock = time.monotonic, *, rate: float | None = None):
        self.rate = project_rate() if rate is None else rate
        self.project_rate = TokenBucket(self.rate, self.rate * PROJECT_BURST / PROJECT_RATE, clock=clock)
        self.login = LoginThrottle(clock=clock)
        self.faucet_address = TokenBucket(FAUCET_PER_ADDRESS / FAUCET_ADDRESS_WINDOW, FAUCET_PER_ADDRESS,
                                          clock=clock)
        self.faucet_global = TokenBucket(FAUCET_GLOBAL_RATE, FAUCET_GLOBAL_BURST, clock=clock)
        self.rest_gate = ConcurrencyGate(REST_PER_PROJECT, REST_QUEUE, max_wait=REST_MAX_WAIT)
        self.sql_gate = ConcurrencyGate(SQL_PER_PROJECT, SQL_QUEUE, max_wait=SQL_MAX_WAIT)
        self.projects: TTLCache[Any] = TTLCache(ttl=5.0, clock=clock)
        self.tokens: TTLCache[Any] = TTLCache(ttl=60.0, max_keys=TOKEN_CACHE_KEYS, clock=clock)
        self._thread_limiters: dict[str, Any] = {}

    def check_project(self, project_id: str) -> None:
        """The contract's per-project rate limit; call it once the caller's key is verified
        (a forged key naming a project must not spend that project's budget)."""
        wait = self.project_rate.acquire(project_id)
        if wait:
            raise rate_limited(wait, f"Rate limit of {self.rate:g} requests/s for this project exceeded",
                               limit_per_second=self.rate)

    def check_faucet(self, address: str) -> None:
        wait = self.faucet_address.acquire(address)
        if wait:
            raise rate_limited(wait, f"The faucet gives an address at most {FAUCET_PER_ADDRESS} drips "
                               f"per {FAUCET_ADDRESS_WINDOW / 3600:g} h", scope="address")
        wait = self.faucet_global.acquire("*")
        if wait:
            self.faucet_address.refund(address)  # this address got nothing
            raise rate_limited(wait, "The faucet is busy; retry shortly", scope="global")

    def thread_limiter(self, name: str, size: int) -> Any:
        """A dedicated anyio CapacityLimiter (created in the event loop, on first use): work
        behind it cannot use up Starlette's shared thread pool, nor be starved by it."""
        limiter = self._thread_limiters.get(name)
        if limiter is None:
            import anyio

            limiter = self._thread_limiters[name] = anyio.CapacityLimiter(size)
        return limiter

    async def in_thread(self, name: str, size: int, fn: Callable[..., T], *args: Any) -> T:
        import anyio.to_thread

        return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=self.thread_limiter(name, size))

    async def run_sql(self, key: str, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in one of SQL_THREADS threads, at most SQL_PER_PROJECT at a time for `key`."""
        try:
            async with self.sql_gate.slot(key):
                return await self.in_thread("sql", SQL_THREADS, fn, *args)
        except GateFull as full:
            raise _busy(full) from None

    @asynccontextmanager
    async def rest_slot(self, key: str) -> AsyncIterator[None]:
        try:
            await self.rest_gate.acquire(key)
        except GateFull as full:
            raise _busy(full) from None
        try:
            yield
        finally:
            self.rest_gate.release(key)


def _busy(full: GateFull) -> GatewayError:
    return rate_limited(full.retry_after, "Too many concurrent requests for this project; retry shortly",
                        limit="concurrency")
