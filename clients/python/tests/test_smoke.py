"""The old smoke checklist (examples/python/smoke.py), now through ``LiveBbb.handle``: the
messages a browser sends, the replies it gets."""
from __future__ import annotations

from eventyay_bbb.live import LiveBbb

from helpers import JOIN, MODERATE, RECORDINGS, Stack, bbb_room, context, enters, query, run_live, unique


def test_smoke_checklist_through_live_handle(stack: Stack) -> None:
    event = unique("ev")
    room = bbb_room("Smoke test", frozenset({JOIN}), record=True)
    moderator_room = bbb_room("Smoke test", frozenset({JOIN, MODERATE, RECORDINGS}), record=True)
    moderator = context(event_id=event, user_id="mod", display_name="Moderator", rooms={"smoke": moderator_room})
    attendee = context(event_id=event, user_id="att", display_name="Attendee", rooms={"smoke": room})
    nameless = context(event_id=event, user_id="x", display_name=" ", rooms={"smoke": room})
    stranger = context(event_id=event, user_id="stranger", display_name="S", rooms={})

    async def scenario(live: LiveBbb) -> None:
        reply = await live.handle(["bbb.room_url", 1, {"room": "smoke"}], moderator)
        assert reply[:2] == ["success", 1] and set(reply[2]) == {"url"}, reply
        mod_url = reply[2]["url"]
        assert query(mod_url)["role"] == "MODERATOR"
        assert enters(mod_url), "the moderator's join URL must open the BBB client"

        reply = await live.handle(["bbb.room_url", 2, {"room": "smoke"}], attendee)
        att_url = reply[2]["url"]
        assert query(att_url)["role"] == "VIEWER"
        assert query(att_url)["meetingID"] == query(mod_url)["meetingID"], "one meeting per room"
        assert enters(att_url)

        # The moderator ends the recorded meeting (the emulator's control surface stands in).
        server = next(s for s in stack.servers.values() if s.base in mod_url)
        stack.end_meeting(server.id, query(mod_url)["meetingID"])

        reply = await live.handle(["bbb.recordings", 3, {"room": "smoke"}], moderator)
        assert reply[0] == "success", reply
        [recording] = reply[2]["results"]
        assert recording["state"] == "published" and recording["url"]

        reply = await live.handle(["bbb.recordings", 4, {"room": "smoke"}], attendee)
        assert reply == ["error", 4, {"code": "protocol.denied", "message": reply[2]["message"]}]

        reply = await live.handle(["bbb.room_url", 5, {"room": "smoke"}], nameless)
        assert reply[0] == "error" and reply[2]["code"] == "bbb.join.missing_profile"

        call = await live.create_call(moderator, ["mod", "att"], unique("chat-event"))
        assert call["type"] == "bbb"
        reply = await live.handle(["bbb.call_url", 6, {"call": call["id"]}], attendee)
        assert reply[0] == "success" and enters(reply[2]["url"])

        reply = await live.handle(["bbb.call_url", 7, {"call": call["id"]}], stranger)
        assert reply[0] == "error" and reply[2]["code"] == "bbb.failed"

    run_live(stack, scenario)
