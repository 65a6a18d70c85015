"""The openai backend's per-endpoint slots: at most n holders; waiters go lowest priority (the
build's estimate of the tree's remaining work, negated, else the call's iteration) first, FIFO
among equals; a cancelled waiter never keeps a slot."""

from __future__ import annotations

import asyncio

from escpro.roles.backends.openai import _priority, _Slots
from escpro.roles.base import RoleRequest


def test_waiters_go_by_priority_then_arrival_and_never_exceed_the_limit():
    async def main():
        slots = _Slots(2)
        order, held, peak = [], [0], [0]
        gate = asyncio.Event()

        async def call(name, prio):
            await slots.acquire(prio)
            held[0] += 1
            peak[0] = max(peak[0], held[0])
            order.append(name)
            await gate.wait()
            held[0] -= 1
            slots.release()

        tasks = [asyncio.create_task(call(n, p)) for n, p in
                 (("a", 5), ("b", 5), ("c", 3), ("d", 1), ("e", 3), ("f", 0))]
        await asyncio.sleep(0.01)
        assert order == ["a", "b"]  # the first two take the free slots
        gate.set()
        await asyncio.gather(*tasks)
        return order, peak[0]

    order, peak = asyncio.run(main())
    assert order == ["a", "b", "f", "d", "c", "e"]
    assert peak <= 2


def test_a_cancelled_waiter_passes_its_slot_on():
    async def main():
        slots = _Slots(1)
        await slots.acquire(0)
        waiter = asyncio.create_task(slots.acquire(0))
        other = asyncio.create_task(slots.acquire(1))
        await asyncio.sleep(0)
        waiter.cancel()
        slots.release()  # would go to `waiter`, which is cancelled: `other` gets it
        await asyncio.wait_for(other, 1)  # raises TimeoutError if the slot was lost with `waiter`
        assert waiter.cancelled() and other.done() and not other.cancelled()
        slots.release()
        await asyncio.wait_for(slots.acquire(0), 1)  # and the slot is free again afterwards
        return True

    assert asyncio.run(main())


def test_priority_is_the_requests_typed_field_never_its_meta():
    assert _priority(RoleRequest("reward", (), priority=-42.5)) == -42.5
    assert _priority(RoleRequest("reward", ())) == 0
    # meta only labels the call: a key named priority there orders nothing
    assert _priority(RoleRequest("reward", (), meta={"iteration": 7, "priority": -9})) == 0
    # priority is not part of a request's identity (answer reuse, llm_calls.prompt_hash)
    assert RoleRequest("reward", (), priority=3.0) == RoleRequest("reward", ())
    assert RoleRequest("reward", (), priority=3.0).key("m") == RoleRequest("reward", ()).key("m")


def test_the_build_queues_by_remaining_work_else_by_iteration():
    from escpro.mcts.calls import CallRecorder

    rec = CallRecorder("run", "tree", [])
    rec.start_iteration(7)
    assert rec.call_priority() == 7
    rec.priority = -42.5
    assert rec.call_priority() == -42.5
