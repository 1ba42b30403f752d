"""``bbb.room_url`` through ``LiveBbb.handle`` against the real service and its emulator."""
from __future__ import annotations

import logging
import time

import pytest

from eventyay_bbb import pb
from eventyay_bbb.live import LiveBbb, LiveRoom, room_settings

from helpers import (
    JOIN,
    MODERATE,
    Stack,
    bbb_room,
    context,
    enters,
    meeting_info,
    query,
    reply_error,
    run_live,
    server_of,
    unique,
)


def test_moderators_and_attendees_join_one_meeting(stack: Stack) -> None:
    event = unique("ev")
    rooms_for = lambda perms: {"stage": bbb_room("Main stage", frozenset(perms))}  # noqa: E731

    async def scenario(live: LiveBbb) -> None:
        urls = {}
        for user, perms in [
            ("speaker", {JOIN, MODERATE}),
            ("organizer", {JOIN, "event.update"}),
            ("editor", {JOIN, "room:update"}),
            ("viewer", {JOIN}),
        ]:
            ctx = context(event_id=event, user_id=user, display_name=user.title(), rooms=rooms_for(perms))
            reply = await live.handle(["bbb.room_url", user, {"room": "stage"}], ctx)
            assert reply[0:2] == ["success", user], reply
            assert list(reply[2]) == ["url"], reply
            urls[user] = reply[2]["url"]
        for user in ("speaker", "organizer", "editor"):
            assert query(urls[user])["role"] == "MODERATOR", user
        assert query(urls["viewer"])["role"] == "VIEWER"
        assert len({query(u)["meetingID"] for u in urls.values()}) == 1
        for url in urls.values():
            assert enters(url)
        assert query(urls["viewer"])["fullName"] == "Viewer"
        assert query(urls["viewer"])["userID"] == "viewer"

    run_live(stack, scenario)


def test_room_config_as_eventyay_stores_it_reaches_bbb(stack: Stack) -> None:
    event = unique("ev")
    config = {
        "record": True,
        "waiting_room": True,
        "auto_microphone": True,
        "auto_camera": "true",
        "hide_presentation": 1,
        "voice_bridge": 54321,  # stored as an int
        "bbb_mute_on_start": True,
        "bbb_disable_cam": True,
        "bbb_disable_chat": True,
    }
    rooms = {"conf": bbb_room("Configured room", frozenset({JOIN}), **config)}
    plain = {"plain": bbb_room("Plain room", frozenset({JOIN}))}

    async def scenario(live: LiveBbb) -> None:
        reply = await live.handle(["bbb.room_url", 1, {"room": "conf"}], context(event_id=event, rooms=rooms))
        url = reply[2]["url"]
        q = query(url)
        assert q["guest"] == "true", "waiting_room puts attendees in the waiting room"
        assert q["userdata-bbb_listen_only_mode"] == "false", "auto_microphone"
        assert q["userdata-bbb_auto_share_webcam"] == "true", "auto_camera"
        assert q["userdata-bbb_hide_presentation_on_join"] == "true", "hide_presentation"
        info = meeting_info(stack, url)
        assert info["recording"] == "true"
        assert info["voiceBridge"] == "54321"
        assert info["meetingName"] == "Configured room"

        reply = await live.handle(["bbb.room_url", 2, {"room": "plain"}], context(event_id=event, rooms=plain))
        q = query(reply[2]["url"])
        assert q["guest"] == "false"
        assert q["userdata-bbb_listen_only_mode"] == "true"
        assert "userdata-bbb_auto_share_webcam" not in q
        assert "userdata-bbb_hide_presentation_on_join" not in q
        assert meeting_info(stack, reply[2]["url"])["recording"] == "false"

    run_live(stack, scenario)


@pytest.mark.parametrize(
    "config",
    [
        {"record": None, "voice_bridge": None, "prefer_server": None, "presentation": None},
        {"waiting_room": "", "auto_camera": "false", "bbb_disable_chat": 0, "voice_bridge": ""},
        {"hide_presentation": [], "voice_bridge": "abc", "prefer_server": 17, "presentation": 3.5},
        {"voice_bridge": "123", "record": "no", "presentation": "  "},
        {"voice_bridge": 12345.0, "prefer_server": "no-such-server", "unknown_key": object()},
        {"expected_participants": "lots"},
        {"expected_participants": -5},
        {"expected_participants": 10**12},
    ],
)
def test_odd_stored_configs_still_join(stack: Stack, config: dict) -> None:
    event = unique("ev")
    rooms = {"r": bbb_room("Odd", frozenset({JOIN}), **config)}

    async def scenario(live: LiveBbb) -> None:
        reply = await live.handle(["bbb.room_url", 1, {"room": "r"}], context(event_id=event, rooms=rooms))
        assert reply[0] == "success", reply
        assert enters(reply[2]["url"])

    run_live(stack, scenario)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [(250, 250), ("250", 250), (250.0, 250), (" 40 ", 40), (None, 0), ("", 0), (True, 0), (-1, 0), (2.5, 0)],
)
def test_expected_participants_from_the_room_config(stored: object, expected: int) -> None:
    assert room_settings({"expected_participants": stored}).expected_participants == expected


def test_config_mapping_onto_room_settings() -> None:
    settings = room_settings(
        {
            "record": True,
            "hide_presentation": True,
            "waiting_room": True,
            "auto_microphone": True,
            "auto_camera": True,
            "bbb_mute_on_start": True,
            "bbb_disable_cam": True,
            "bbb_disable_chat": True,
            "voice_bridge": " 12345 ",
            "prefer_server": "main-2",
            "presentation": "/media/slides.pdf",
        },
        {"bbb_disable_privatechat": False},
    )
    assert settings == pb.RoomSettings(
        record=True,
        hide_presentation=True,
        waiting_room=True,
        auto_microphone=True,
        auto_camera=True,
        mute_on_start=True,
        disable_cam=True,
        disable_chat=True,
        disable_private_chat=False,
        voice_bridge="12345",
        prefer_server="main-2",
        presentation_url="/media/slides.pdf",
    )
    # The event's private-chat lock is left to the service's default (locked) unless set.
    assert not room_settings({}, {}).HasField("disable_private_chat")
    assert not room_settings({}, {"bbb_disable_privatechat": None}).HasField("disable_private_chat")
    assert room_settings({}, {"bbb_disable_privatechat": "true"}).disable_private_chat is True
    assert room_settings(None, None) == pb.RoomSettings()
    assert room_settings({"record": "false", "waiting_room": "0", "auto_camera": "off"}) == pb.RoomSettings()
    assert room_settings({"voice_bridge": True}).voice_bridge == ""


def test_prefer_server_by_id_or_by_url(stack: Stack) -> None:
    event = unique("ev")
    rooms = {
        "by-id": bbb_room("By id", frozenset({JOIN}), prefer_server="main-2"),
        "by-url": bbb_room("By URL", frozenset({JOIN}), prefer_server=stack.servers["main-1"].base + "/bigbluebutton/"),
    }

    async def scenario(live: LiveBbb) -> None:
        ctx = context(event_id=event, rooms=rooms)
        by_id = await live.handle(["bbb.room_url", 1, {"room": "by-id"}], ctx)
        by_url = await live.handle(["bbb.room_url", 2, {"room": "by-url"}], ctx)
        assert server_of(stack, by_id[2]["url"]) == "main-2"
        assert server_of(stack, by_url[2]["url"]) == "main-1"

    run_live(stack, scenario)


def test_room_errors_the_browser_knows(stack: Stack) -> None:
    event = unique("ev")
    rooms = {
        "bbb": bbb_room("BBB", frozenset({JOIN})),
        "stream": LiveRoom(name="Stream only", module_config=None, permissions=frozenset({JOIN})),
        "locked": bbb_room("Locked", frozenset({"room:view"})),
    }

    async def scenario(live: LiveBbb) -> None:
        ctx = context(event_id=event, rooms=rooms)
        unknown = await live.handle(["bbb.room_url", 1, {"room": "nope"}], ctx)
        assert unknown == ["error", 1, {"code": "room.unknown", "message": "Unknown room ID"}]
        no_module = await live.handle(["bbb.room_url", 2, {"room": "stream"}], ctx)
        assert no_module == [
            "error",
            2,
            {"code": "room.unknown", "message": "Room does not contain a matching module."},
        ]
        for body in [{}, {"room": None}, {"room": ["bbb"]}, {"room": {"id": "bbb"}}]:
            assert reply_error(await live.handle(["bbb.room_url", 3, body], ctx)) == "room.unknown", body
        assert reply_error(await live.handle(["bbb.room_url", 4, "bbb"], ctx)) == "room.unknown"
        assert reply_error(await live.handle(["bbb.room_url", 5], ctx)) == "room.unknown"

        denied = await live.handle(["bbb.room_url", 6, {"room": "locked"}], ctx)
        assert reply_error(denied) == "protocol.denied"

        for name in ["", "   ", None]:
            nameless = context(event_id=event, display_name=name, rooms=rooms)
            reply = await live.handle(["bbb.room_url", 7, {"room": "bbb"}], nameless)
            assert reply_error(reply) == "bbb.join.missing_profile", name

        for action in ["bbb.end_meeting", "bbb.", "chat.send", 42, None]:
            reply = await live.handle([action, 8, {"room": "bbb"}], ctx)
            assert reply_error(reply) == "bbb.unsupported_command", action
        assert reply_error(await live.handle("bbb.room_url", ctx)) == "bbb.unsupported_command"

    run_live(stack, scenario)


def test_invalid_argument_and_unauthenticated_become_bbb_failed_and_are_logged(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    event = unique("ev")
    rooms = {"bad room id": bbb_room("Bad", frozenset({JOIN})), "ok": bbb_room("Ok", frozenset({JOIN}))}

    async def invalid(live: LiveBbb) -> list:
        return await live.handle(["bbb.room_url", 1, {"room": "bad room id"}], context(event_id=event, rooms=rooms))

    async def unauthenticated(live: LiveBbb) -> list:
        return await live.handle(["bbb.room_url", 2, {"room": "ok"}], context(event_id=event, rooms=rooms))

    with caplog.at_level(logging.WARNING, logger="eventyay_bbb.live"):
        assert reply_error(run_live(stack, invalid)) == "bbb.failed"
        assert any("invalid_argument" in r.getMessage() and "room_id" in r.getMessage() for r in caplog.records)
        caplog.clear()
        assert reply_error(run_live(stack, unauthenticated, token="not-the-token")) == "bbb.failed"
        assert any("unauthenticated" in r.getMessage() for r in caplog.records), caplog.text


def test_transport_failure_becomes_bbb_failed_within_the_deadline(caplog: pytest.LogCaptureFixture) -> None:
    import asyncio
    import socket

    from eventyay_bbb import AsyncBbbClient

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def scenario() -> tuple[list, float]:
        async with AsyncBbbClient(f"127.0.0.1:{port}", token="t" * 20, insecure=True, timeouts={"RoomUrl": 1.5}) as c:
            started = time.monotonic()
            reply = await LiveBbb(c).handle(
                ["bbb.room_url", 1, {"room": "r"}], context(event_id="e", rooms={"r": bbb_room()})
            )
            return reply, time.monotonic() - started

    with caplog.at_level(logging.WARNING, logger="eventyay_bbb.live"):
        reply, took = asyncio.run(scenario())
    assert reply_error(reply) == "bbb.failed"
    assert took < 2.0
    assert any("UNAVAILABLE" in r.getMessage() for r in caplog.records), caplog.text


def test_bbb_down_is_bbb_failed(stack: Stack) -> None:
    """org-down's only server fails every API call: joins answer bbb.failed (the service tried
    BBB), and the server comes back afterwards."""
    event = unique("ev")
    rooms = {"r": bbb_room("Down", frozenset({JOIN}))}
    ctx = context(event_id=event, organizer_id="org-down", rooms=rooms)

    async def join(live: LiveBbb) -> list:
        return await live.handle(["bbb.room_url", 1, {"room": "r"}], ctx)

    async def availability(live: LiveBbb) -> dict:
        return await live.availability(ctx)

    stack.wait_healthy("down-1")
    assert run_live(stack, join)[0] == "success"
    assert stack.serve is not None
    unhealthy = r'"message":"server is unhealthy[^"]*".*"server":"down-1"'
    unhealthy_before = len(stack.serve.matching(unhealthy))
    stack.control("down-1", "fault", mode="unavailable")
    try:
        started = time.monotonic()
        assert reply_error(run_live(stack, join)) == "bbb.failed"
        assert time.monotonic() - started < 10.5, "answered within the join's deadline"
        # The failing server is soon unhealthy, and the availability gate does not follow:
        # an outage is not "deactivated by the admin".
        deadline = time.monotonic() + 15
        while len(stack.serve.matching(unhealthy)) == unhealthy_before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(stack.serve.matching(unhealthy)) > unhealthy_before, "down-1 never became unhealthy"
        assert run_live(stack, availability) == {"rooms": True, "calls": True}
    finally:
        stack.control("down-1", "fault", mode="none")
    stack.wait_healthy("down-1")


def test_relative_avatar_and_presentation_urls_use_base_url(stack: Stack) -> None:
    event = unique("ev")
    rooms = {
        "a": bbb_room("With slides", frozenset({JOIN}), presentation="/media/slides.pdf"),
        "b": bbb_room("With slides too", frozenset({JOIN}), presentation="/media/slides.pdf"),
        "c": bbb_room("And again", frozenset({JOIN}), presentation="media/slides.pdf"),
    }
    pattern = r'"level":"WARN".*"field":"settings\.presentation_url"'

    def presentation_warnings() -> int:
        return len(stack.log_lines(pattern))

    def wait_for_warnings(count: int) -> None:
        deadline = time.monotonic() + 5
        while presentation_warnings() < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert presentation_warnings() == count

    async def scenario(live: LiveBbb) -> None:
        before = presentation_warnings()
        # No base URL: a relative avatar and presentation are left out (with a warning).
        bare = context(event_id=event, avatar_url="/media/avatars/ada.png", rooms=rooms)
        reply = await live.handle(["bbb.room_url", 1, {"room": "a"}], bare)
        assert reply[0] == "success" and "avatarURL" not in query(reply[2]["url"])
        wait_for_warnings(before + 1)

        # With the event's site as base URL both are resolved against it.
        based = context(
            event_id=event, avatar_url="/media/avatars/ada.png", rooms=rooms, base_url="https://ev.example.org/"
        )
        reply = await live.handle(["bbb.room_url", 2, {"room": "b"}], based)
        assert query(reply[2]["url"])["avatarURL"] == "https://ev.example.org/media/avatars/ada.png"
        # A third join without base URL marks the log: exactly one more warning means the
        # based join before it made none.
        reply = await live.handle(["bbb.room_url", 3, {"room": "c"}], bare)
        wait_for_warnings(before + 2)

        absolute = context(event_id=event, avatar_url="https://cdn.example.org/a.png", rooms=rooms)
        reply = await live.handle(["bbb.room_url", 4, {"room": "a"}], absolute)
        assert query(reply[2]["url"])["avatarURL"] == "https://cdn.example.org/a.png"

        junk = context(event_id=event, avatar_url="/a.png", rooms=rooms, base_url="not a url")
        reply = await live.handle(["bbb.room_url", 5, {"room": "a"}], junk)
        assert reply[0] == "success", "a bad base URL is dropped, never a failed join"

    run_live(stack, scenario)


def test_long_names_are_shortened_not_refused(stack: Stack) -> None:
    event = unique("ev")
    rooms = {"r": bbb_room("R" * 400, frozenset({JOIN}))}

    async def scenario(live: LiveBbb) -> None:
        ctx = context(event_id=event, display_name="é" * 300, rooms=rooms)
        reply = await live.handle(["bbb.room_url", 1, {"room": "r"}], ctx)
        assert reply[0] == "success", reply
        url = reply[2]["url"]
        assert 2 <= len(query(url)["fullName"]) <= 256
        assert 2 <= len(meeting_info(stack, url)["meetingName"]) <= 256
        assert enters(url)

    run_live(stack, scenario)


def test_event_domain_gives_the_style_sheet(stack: Stack) -> None:
    event = unique("ev")
    rooms = {"r": bbb_room("Styled", frozenset({JOIN}))}

    async def scenario(live: LiveBbb) -> None:
        for domain, expected in [
            ("events.example.org", "https://events.example.org/_bbb.css"),
            ("https://events.example.org/some/path", "https://events.example.org/_bbb.css"),
            ("not a domain!", None),
            (None, None),
        ]:
            reply = await live.handle(["bbb.room_url", 1, {"room": "r"}], context(event_id=event, domain=domain, rooms=rooms))
            assert reply[0] == "success", (domain, reply)
            assert query(reply[2]["url"]).get("userdata-bbb_custom_style_url") == expected, domain

    run_live(stack, scenario)
