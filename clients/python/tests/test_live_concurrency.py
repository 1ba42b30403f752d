"""The live module never blocks the event loop: while BBB answers slowly, a hundred joins wait
together and the loop keeps serving everything else."""
from __future__ import annotations

import asyncio
import time

from eventyay_bbb.live import LiveBbb

from helpers import JOIN, Stack, bbb_room, context, query, run_live, unique

LATENCY_MS = 800
JOINS = 100


def test_a_hundred_joins_against_slow_bbb_run_concurrently(stack: Stack) -> None:
    event = unique("ev")
    rooms = {f"room-{n}": bbb_room(f"Room {n}", frozenset({JOIN})) for n in range(10)}
    users = [
        context(event_id=event, organizer_id="org-slow", user_id=f"user-{n}", display_name=f"User {n}", rooms=rooms)
        for n in range(JOINS)
    ]

    async def scenario(live: LiveBbb) -> None:
        gaps: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                before = time.monotonic()
                await asyncio.sleep(0.01)
                gaps.append(time.monotonic() - before)

        ticking = asyncio.create_task(ticker())
        started = time.monotonic()
        replies = await asyncio.gather(
            *(live.handle(["bbb.room_url", n, {"room": f"room-{n % 10}"}], users[n]) for n in range(JOINS))
        )
        took = time.monotonic() - started
        stop.set()
        await ticking

        assert [r[0] for r in replies] == ["success"] * JOINS, [r for r in replies if r[0] != "success"][:3]
        assert [r[1] for r in replies] == list(range(JOINS)), "each reply carries its request's id"
        assert {query(r[2]["url"])["userID"] for r in replies} == {f"user-{n}" for n in range(JOINS)}
        # Every join waited for a slow create, and all of them together took a few latencies:
        # one after the other they would have taken JOINS times as long.
        assert took >= LATENCY_MS / 1000
        assert took < 10 * LATENCY_MS / 1000, f"{JOINS} joins took {took:.1f} s"
        # The loop kept turning: no tick waited anywhere near one BBB answer.
        assert max(gaps) < 0.4, f"the event loop stalled for {max(gaps):.3f} s"
        assert len(gaps) >= took / 0.1, f"only {len(gaps)} ticks in {took:.1f} s"

    for server in ("slow-1", "slow-2"):
        stack.control(server, "latency", ms=LATENCY_MS)
    try:
        run_live(stack, scenario)
    finally:
        for server in ("slow-1", "slow-2"):
            stack.control(server, "latency", ms=0)
