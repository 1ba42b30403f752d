"""``bbb.recordings``: what the browser's recordings list gets, in the event's time zone."""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from eventyay_bbb.live import LiveBbb, LiveContext

from helpers import (
    JOIN,
    MODERATE,
    RECORDINGS,
    Stack,
    bbb_room,
    context,
    enters,
    query,
    reply_error,
    run_live,
    server_of,
    unique,
)

KEYS = {"start", "end", "participants", "state", "url", "url_video", "url_screenshare", "url_notes"}
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")


def offset_text(zone: ZoneInfo, at: datetime) -> str:
    minutes = int(zone.utcoffset(at.replace(tzinfo=None)).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def record_sessions(stack: Stack, live: LiveBbb, ctx: LiveContext, room: str, participants: list[int]):
    """One recorded session per entry, each with that many users entering; ended by the
    moderator. Returns the wall-clock span the sessions took."""

    async def run() -> tuple[datetime, datetime]:
        began = datetime.now(timezone.utc)
        for count in participants:
            url = ""
            for n in range(count):
                user = context(
                    event_id=ctx.event_id,
                    organizer_id=ctx.organizer_id,
                    user_id=f"user-{n}",
                    display_name=f"User {n}",
                    rooms=ctx.rooms,
                )
                reply = await live.handle(["bbb.room_url", n, {"room": room}], user)
                url = reply[2]["url"]
                assert enters(url)
            stack.end_meeting(server_of(stack, url), query(url)["meetingID"])
        return began, datetime.now(timezone.utc)

    return run()


def test_recordings_in_the_seed_fields_newest_first_in_the_event_zone(stack: Stack) -> None:
    event = unique("ev")
    rooms = {"talks": bbb_room("Talks", frozenset({JOIN, MODERATE, RECORDINGS}), record=True)}
    kolkata = context(event_id=event, rooms=rooms, timezone="Asia/Kolkata")
    berlin = context(event_id=event, rooms=rooms, timezone="Europe/Berlin")

    async def scenario(live: LiveBbb) -> None:
        began, ended = await record_sessions(stack, live, kolkata, "talks", [3, 1])
        reply = await live.handle(["bbb.recordings", 7, {"room": "talks"}], kolkata)
        assert reply[0:2] == ["success", 7] and list(reply[2]) == ["results"], reply
        results = reply[2]["results"]
        assert len(results) == 2
        for rec in results:
            assert set(rec) == KEYS, rec
            assert ISO_MS.match(rec["start"]) and ISO_MS.match(rec["end"]), rec
            assert rec["start"].endswith("+05:30") and rec["end"].endswith("+05:30")
            start, end = datetime.fromisoformat(rec["start"]), datetime.fromisoformat(rec["end"])
            assert began - timedelta(seconds=1) <= start <= end <= ended + timedelta(seconds=1)
            assert rec["state"] == "published"
            assert rec["url"].startswith("http://127.0.0.1:") and "/playback/presentation/" in rec["url"]
            assert rec["url_video"] and "/playback/video/" in rec["url_video"]
            assert rec["url_screenshare"] is None and rec["url_notes"] is None
        # Newest first: the second session (1 participant) before the first (3).
        assert [r["participants"] for r in results] == ["1", "3"]
        assert datetime.fromisoformat(results[0]["start"]) > datetime.fromisoformat(results[1]["start"])

        in_berlin = (await live.handle(["bbb.recordings", 8, {"room": "talks"}], berlin))[2]["results"]
        zone = ZoneInfo("Europe/Berlin")
        for here, there in zip(results, in_berlin):
            assert datetime.fromisoformat(here["start"]) == datetime.fromisoformat(there["start"])
            assert there["start"].endswith(offset_text(zone, datetime.fromisoformat(there["start"])))
            assert {k: v for k, v in here.items() if k not in ("start", "end")} == {
                k: v for k, v in there.items() if k not in ("start", "end")
            }

    run_live(stack, scenario)


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", None, "../../etc/passwd"])
def test_an_unknown_time_zone_falls_back_to_utc_with_a_warning(
    stack: Stack, zone: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    event = unique("ev")
    rooms = {"r": bbb_room("R", frozenset({JOIN, RECORDINGS}), record=True)}
    ctx = context(event_id=event, rooms=rooms, timezone=zone)

    async def scenario(live: LiveBbb) -> list:
        await record_sessions(stack, live, ctx, "r", [1])
        return (await live.handle(["bbb.recordings", 1, {"room": "r"}], ctx))[2]["results"]

    with caplog.at_level(logging.WARNING, logger="eventyay_bbb.live"):
        [rec] = run_live(stack, scenario)
    assert rec["start"].endswith("+00:00") and ISO_MS.match(rec["start"])
    assert any("time zone" in r.getMessage() for r in caplog.records)


def test_recordings_errors(stack: Stack) -> None:
    event = unique("ev")
    rooms = {
        "r": bbb_room("R", frozenset({JOIN, MODERATE}), record=True),
        "never": bbb_room("Never used", frozenset({JOIN, RECORDINGS})),
        "unrecorded": bbb_room("Not recorded", frozenset({JOIN, RECORDINGS})),
    }
    ctx = context(event_id=event, rooms=rooms)

    async def scenario(live: LiveBbb) -> None:
        assert reply_error(await live.handle(["bbb.recordings", 1, {"room": "r"}], ctx)) == "protocol.denied"
        assert reply_error(await live.handle(["bbb.recordings", 2, {"room": "x"}], ctx)) == "room.unknown"
        assert await live.handle(["bbb.recordings", 3, {"room": "never"}], ctx) == ["success", 3, {"results": []}]
        await record_sessions(stack, live, ctx, "unrecorded", [1])
        assert await live.handle(["bbb.recordings", 4, {"room": "unrecorded"}], ctx) == ["success", 4, {"results": []}]

    run_live(stack, scenario)


def test_recordings_when_every_server_fails_are_bbb_failed(stack: Stack) -> None:
    event = unique("ev")
    rooms = {"r": bbb_room("R", frozenset({JOIN, RECORDINGS}), record=True)}
    ctx = context(event_id=event, organizer_id="org-down", rooms=rooms)

    async def scenario(live: LiveBbb) -> None:
        await record_sessions(stack, live, ctx, "r", [1])
        assert len((await live.handle(["bbb.recordings", 1, {"room": "r"}], ctx))[2]["results"]) == 1
        stack.control("down-1", "fault", mode="unavailable")
        try:
            reply = await live.handle(["bbb.recordings", 2, {"room": "r"}], ctx)
            assert reply_error(reply) == "bbb.failed"
        finally:
            stack.control("down-1", "fault", mode="none")

    stack.wait_healthy("down-1")
    run_live(stack, scenario)
    stack.wait_healthy("down-1")
