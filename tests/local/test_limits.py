"""The limiter machinery (run402_cli/local/control/limits.py) on a hand-driven clock."""

from __future__ import annotations

import asyncio
import threading

import pytest

from run402_cli.local.errors import GatewayError
from run402_cli.local.control.limits import (
    FAUCET_PER_ADDRESS,
    PROJECT_BURST,
    ConcurrencyGate,
    GateFull,
    Limits,
    LoginThrottle,
    TokenBucket,
    TTLCache,
    rate_limited,
)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


# --- TokenBucket ---------------------------------------------------------------------------


def test_bucket_grants_the_burst_then_refills_at_the_rate(clock):
    bucket = TokenBucket(rate=100, burst=200, clock=clock)
    assert all(bucket.acquire("p") == 0.0 for _ in range(200))
    wait = bucket.acquire("p")
    assert wait == pytest.approx(0.01)  # one token at 100/s
    clock.advance(0.055)  # 5.5 tokens
    assert [bucket.acquire("p") == 0.0 for _ in range(6)] == [True] * 5 + [False]


def test_bucket_keys_are_independent_and_refill_caps_at_the_burst(clock):
    bucket = TokenBucket(rate=1, burst=3, clock=clock)
    for _ in range(3):
        bucket.acquire("a")
    assert bucket.acquire("a") > 0 and bucket.acquire("b") == 0.0
    clock.advance(3600)  # an hour idle refills to the burst, no more
    assert [bucket.acquire("a") == 0.0 for _ in range(4)] == [True, True, True, False]


def test_a_refused_acquire_takes_nothing(clock):
    bucket = TokenBucket(rate=1, burst=2, clock=clock)
    bucket.acquire("k", cost=2)
    for _ in range(50):
        assert bucket.acquire("k") > 0
    clock.advance(1.0)
    assert bucket.acquire("k") == 0.0  # the 50 refusals did not dig a hole


def test_wait_time_refund_and_reset(clock):
    bucket = TokenBucket(rate=0.5, burst=2, clock=clock)
    assert bucket.wait_time("k") == 0.0
    bucket.acquire("k"), bucket.acquire("k")
    assert bucket.wait_time("k") == pytest.approx(2.0) and bucket.wait_time("k") == pytest.approx(2.0)
    bucket.refund("k")
    assert bucket.wait_time("k") == 0.0
    bucket.refund("k"), bucket.refund("k")  # never above the burst
    assert [bucket.acquire("k") == 0.0 for _ in range(3)] == [True, True, False]
    bucket.reset("k")
    assert bucket.acquire("k") == 0.0


def test_memory_is_bounded_under_key_churn(clock):
    bucket = TokenBucket(rate=1, burst=1, max_keys=100, clock=clock)
    for i in range(10_000):
        bucket.acquire(f"attacker-{i}")
    assert len(bucket) == 100
    # The most recently limited keys are the ones kept.
    assert bucket.acquire("attacker-9999") > 0 and bucket.acquire("attacker-0") == 0.0


def test_full_keys_are_forgotten(clock):
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    bucket.acquire("k")
    assert len(bucket) == 1
    clock.advance(1.0)
    bucket.refund("k")  # any touch of a full key drops it
    assert len(bucket) == 0


def test_bucket_is_thread_safe():
    bucket = TokenBucket(rate=1e-9, burst=1000)
    granted = []

    def worker() -> None:
        granted.append(sum(1 for _ in range(500) if bucket.acquire("k") == 0.0))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 1000  # 4000 attempts, exactly the burst granted


def test_bucket_refuses_nonsense():
    for kwargs in ({"rate": 0, "burst": 1}, {"rate": 1, "burst": 0}, {"rate": 1, "burst": 1, "max_keys": 0}):
        with pytest.raises(ValueError):
            TokenBucket(**kwargs)


# --- the 429 envelope ----------------------------------------------------------------------


def test_rate_limited_envelope_rounds_up_to_whole_seconds():
    err = rate_limited(0.01, "slow down", scope="x")
    assert isinstance(err, GatewayError) and err.status == 429 and err.code == "RATE_LIMITED"
    body = err.body()
    assert body["retry_after"] == 1 and body["retryable"] is True and body["details"] == {"scope": "x"}
    assert err.headers == {"Retry-After": "1"}
    assert rate_limited(11.2, "x").body()["retry_after"] == 12


# --- LoginThrottle -------------------------------------------------------------------------


def test_five_failures_lock_the_account_even_for_the_right_password(clock):
    login = LoginThrottle(clock=clock)
    for _ in range(5):
        login.begin("acct", "client")  # each a wrong password: nothing given back
    with pytest.raises(GatewayError) as info:
        login.begin("acct", "client")  # would be the right password: refused all the same
    assert info.value.status == 429 and info.value.details == {"scope": "account"}
    assert 1 <= info.value.body()["retry_after"] <= 60
    clock.advance(60)
    login.begin("acct", "client")
    login.succeeded("acct", "client")


def test_a_success_resets_the_account(clock):
    login = LoginThrottle(clock=clock)
    for _ in range(3):
        for _ in range(4):
            login.begin("acct", "client")
        login.begin("acct", "client")
        login.succeeded("acct", "client")  # 4 failures then a success, three times: never locked


def test_the_client_budget_spans_accounts(clock):
    login = LoginThrottle(clock=clock)
    for i in range(30):
        login.begin(f"acct-{i % 6}", "client")  # 6 accounts x 5 failures
    with pytest.raises(GatewayError) as info:
        login.begin("fresh-acct", "client")
    assert info.value.details == {"scope": "client"}
    login.begin("fresh-acct", "another-client")  # another client is not affected


def test_a_refused_account_attempt_does_not_spend_the_clients_budget(clock):
    login = LoginThrottle(account_failures=1, client_failures=3, window=60, clock=clock)
    login.begin("victim", "client")
    for _ in range(10):
        with pytest.raises(GatewayError):
            login.begin("victim", "client")
    login.begin("other", "client")
    login.begin("other2", "client")  # client budget: 3 attempts, the 10 refusals not among them


# --- faucet and project limits -------------------------------------------------------------


def test_faucet_per_address_and_global(clock):
    limits = Limits(clock=clock)
    for _ in range(FAUCET_PER_ADDRESS):
        limits.check_faucet("0xaa")
    with pytest.raises(GatewayError) as info:
        limits.check_faucet("0xaa")
    assert info.value.details == {"scope": "address"} and info.value.body()["retry_after"] >= 30
    # Invented addresses each have a budget, the faucet as a whole does not.
    with pytest.raises(GatewayError) as info:
        for i in range(1000):
            limits.check_faucet(f"0x{i:040x}")
    assert info.value.details == {"scope": "global"}
    assert i < 200
    # An address refused for global reasons kept its own budget.
    clock.advance(1.0)
    limits.check_faucet("0xbb")


def test_project_rate_limit(clock):
    limits = Limits(clock=clock)
    for _ in range(int(PROJECT_BURST)):
        limits.check_project("prj_a")
    with pytest.raises(GatewayError) as info:
        limits.check_project("prj_a")
    assert info.value.status == 429 and info.value.body()["retry_after"] == 1
    limits.check_project("prj_b")
    clock.advance(0.1)
    for _ in range(10):
        limits.check_project("prj_a")


# --- TTLCache ------------------------------------------------------------------------------


def test_cache_expires_is_invalidated_and_bounded(clock):
    cache: TTLCache[str] = TTLCache(ttl=5, max_keys=3, clock=clock)
    cache.put("a", "A")
    assert cache.get("a") == "A"
    clock.advance(5.1)
    assert cache.get("a") is None
    started = cache.now()
    clock.advance(1)
    cache.put("b", "B", fetched_at=started)
    assert cache.get("b", not_before=started + 0.5) is None  # read across an invalidation: stale
    cache.put("c", "C")
    assert cache.get("c", not_before=started) == "C"
    cache.invalidate("c")
    assert cache.get("c") is None
    for k in "defgh":
        cache.put(k, k)
    assert len(cache) == 3 and cache.get("h") == "h" and cache.get("d") is None


# --- ConcurrencyGate -----------------------------------------------------------------------


def test_gate_caps_per_key_queues_then_refuses():
    async def scenario() -> None:
        gate = ConcurrencyGate(per_key=2, queue=2, max_wait=5)
        release = asyncio.Event()
        order: list[int] = []

        async def job(i: int) -> None:
            async with gate.slot("a"):
                order.append(i)
                await release.wait()

        tasks = [asyncio.create_task(job(i)) for i in range(4)]
        await asyncio.sleep(0.01)
        assert gate.active("a") == 2 and gate.waiting("a") == 2 and order == [0, 1]
        with pytest.raises(GateFull):
            await gate.acquire("a")  # the queue is full
        async with gate.slot("b"):  # another key is not affected
            assert gate.active("b") == 1
        release.set()
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2, 3]  # FIFO
        assert len(gate) == 0  # nothing kept for idle keys

    asyncio.run(scenario())


def test_gate_wait_is_bounded_and_a_timed_out_waiter_leaves_no_trace():
    async def scenario() -> None:
        gate = ConcurrencyGate(per_key=1, queue=5, max_wait=0.05)
        await gate.acquire("a")
        with pytest.raises(GateFull):
            await gate.acquire("a")
        assert gate.waiting("a") == 0 and gate.active("a") == 1
        gate.release("a")
        assert len(gate) == 0

    asyncio.run(scenario())


def test_a_cancelled_waiter_does_not_leak_a_slot():
    async def scenario() -> None:
        gate = ConcurrencyGate(per_key=1, queue=5, max_wait=5)
        await gate.acquire("a")
        waiter = asyncio.create_task(gate.acquire("a"))
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        gate.release("a")
        assert len(gate) == 0
        await asyncio.wait_for(gate.acquire("a"), 1)  # the slot is free again
        gate.release("a")

    asyncio.run(scenario())


def test_a_slot_handed_to_a_waiter_that_gives_up_is_passed_on():
    async def scenario() -> None:
        gate = ConcurrencyGate(per_key=1, queue=5, max_wait=5)
        await gate.acquire("a")
        first = asyncio.create_task(gate.acquire("a"))
        second = asyncio.create_task(gate.acquire("a"))
        await asyncio.sleep(0.01)
        gate.release("a")  # hands the slot to `first` ...
        first.cancel()     # ... which is cancelled before it runs again
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.wait_for(second, 1)  # the slot went on to `second`
        assert gate.active("a") == 1
        gate.release("a")
        assert len(gate) == 0

    asyncio.run(scenario())


def test_limits_run_sql_maps_a_full_gate_to_429():
    async def scenario() -> None:
        limits = Limits()
        gate = limits.sql_gate
        hold = [await gate.acquire("p") for _ in range(gate.per_key)]
        waiters = [asyncio.create_task(gate.acquire("p")) for _ in range(gate.queue)]
        await asyncio.sleep(0.01)
        with pytest.raises(GatewayError) as info:
            await limits.run_sql("p", lambda: "ran")
        assert info.value.status == 429 and info.value.body()["retry_after"] >= 1
        assert await limits.run_sql("q", lambda: "ran") == "ran"  # another project runs
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        for _ in hold:
            gate.release("p")
        assert len(gate) == 0

    asyncio.run(scenario())


@pytest.mark.parametrize("raw, rate", [(None, 100.0), ("250", 250.0), ("0.5", 0.5), ("0", 100.0),
                                       ("-3", 100.0), ("nan", 100.0), ("inf", 100.0), ("lots", 100.0)])
def test_the_project_rate_is_the_contracts_unless_the_operator_sets_a_sane_one(raw, rate, clock):
    from run402_cli.local.control.limits import project_rate

    env = {} if raw is None else {"RUN402_LOCAL_PROJECT_RATE": raw}
    assert project_rate(env) == rate
    limits = Limits(clock=clock, rate=rate)
    granted = sum(1 for _ in range(int(rate * 2) + 5) if limits.project_rate.acquire("prj_1") == 0)
    assert granted == int(rate * 2)  # the burst scales with the rate: two seconds' worth
