"""Private calls: the chat hook (``LiveBbb.create_call``) and ``bbb.call_url``."""
from __future__ import annotations

import uuid
from typing import Any

import pytest

from eventyay_bbb import AsyncBbbClient
from eventyay_bbb.live import LiveBbb, LiveError

from helpers import Stack, context, enters, query, reply_error, run_live, unique


class CountingClient:
    """Wraps the client to count the RPCs LiveBbb sends."""

    def __init__(self, client: AsyncBbbClient) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return await method(*args, **kwargs)

        return counted


def test_a_retried_call_message_makes_one_call(stack: Stack) -> None:
    event = unique("ev")
    ctx = context(event_id=event, user_id="alice")

    async def scenario(live: LiveBbb) -> None:
        key = unique("chat-event")
        first = await live.create_call(ctx, ["alice", "bob"], key)
        again = await live.create_call(ctx, ["alice", "bob"], key)
        assert first == again, "the same chat event id gives the same call"
        assert first["type"] == "bbb" and set(first) == {"type", "id"}
        assert str(uuid.UUID(first["id"])) == first["id"].lower()
        other = await live.create_call(ctx, ["alice", "bob"], unique("chat-event"))
        assert other["id"] != first["id"]
        keyless = [await live.create_call(ctx, ["alice", "bob"]) for _ in range(2)]
        assert keyless[0]["id"] != keyless[1]["id"], "without a key every message is a new call"
        numeric = await live.create_call(ctx, [1, 2], 987654321)  # eventyay's integer keys
        assert numeric == await live.create_call(ctx, ["1", "2"], "987654321")

    run_live(stack, scenario)


def test_members_join_and_nobody_else(stack: Stack) -> None:
    event = unique("ev")
    alice = context(event_id=event, user_id="alice", display_name="Alice")
    bob = context(event_id=event, user_id="bob", display_name="Bob")
    mallory = context(event_id=event, user_id="mallory", display_name="Mallory")
    bob_elsewhere = context(event_id=unique("ev"), user_id="bob", display_name="Bob")

    async def scenario(live: LiveBbb) -> None:
        call = await live.create_call(alice, ["alice", "bob"], unique("chat-event"))
        urls = []
        for ctx in (alice, bob):
            reply = await live.handle(["bbb.call_url", 1, {"call": call["id"]}], ctx)
            assert reply[0] == "success" and list(reply[2]) == ["url"], reply
            assert query(reply[2]["url"])["role"] == "MODERATOR", "everyone in a call moderates"
            assert enters(reply[2]["url"])
            urls.append(reply[2]["url"])
        assert query(urls[0])["meetingID"] == query(urls[1])["meetingID"]
        upper = await live.handle(["bbb.call_url", 2, {"call": call["id"].upper()}], bob)
        assert upper[0] == "success", "a call id in capitals is the same call"

        assert reply_error(await live.handle(["bbb.call_url", 3, {"call": call["id"]}], mallory)) == "bbb.failed"
        assert reply_error(await live.handle(["bbb.call_url", 4, {"call": call["id"]}], bob_elsewhere)) == "bbb.failed"
        unknown = str(uuid.uuid4())
        assert reply_error(await live.handle(["bbb.call_url", 5, {"call": unknown}], alice)) == "bbb.failed"

        nameless = context(event_id=event, user_id="bob", display_name="")
        reply = await live.handle(["bbb.call_url", 6, {"call": call["id"]}], nameless)
        assert reply_error(reply) == "bbb.join.missing_profile"

    run_live(stack, scenario)


@pytest.mark.parametrize("value", ["nope", "", 123, None, {"id": "x"}, ["a"], True, "x" * 100_000])
def test_malformed_call_ids_are_bbb_failed_without_asking_the_service(stack: Stack, value: Any) -> None:
    event = unique("ev")

    async def scenario(live: LiveBbb) -> None:
        counting = CountingClient(live.client)
        live.client = counting  # type: ignore[assignment]
        reply = await live.handle(["bbb.call_url", 9, {"call": value}], context(event_id=event))
        assert reply_error(reply) == "bbb.failed"
        assert "call_url" not in counting.calls
        nameless = context(event_id=event, display_name=None)
        reply = await live.handle(["bbb.call_url", 9, {"call": value}], nameless)
        assert reply_error(reply) == "bbb.join.missing_profile", "the profile is checked first"

    run_live(stack, scenario)


@pytest.mark.parametrize(
    "event_config",
    [
        {"bbb_disabled": True},
        {"bbb_disabled": "true"},
        {"live_features": {"bbb": False}},
        {"live_features": {"bbb": "false"}, "bbb_disabled": False},
    ],
)
def test_bbb_off_for_the_event_is_bbb_unavailable_before_anything_else(stack: Stack, event_config: dict) -> None:
    event = unique("ev")
    on = context(event_id=event, user_id="alice")
    off = context(event_id=event, user_id="alice", display_name="", event_config=event_config)

    async def scenario(live: LiveBbb) -> None:
        call = await live.create_call(on, ["alice"], unique("chat-event"))
        reply = await live.handle(["bbb.call_url", 1, {"call": call["id"]}], off)
        assert reply == ["error", 1, {"code": "bbb.unavailable", "message": "BBB is currently deactivated by the admin."}]
        reply = await live.handle(["bbb.call_url", 2, {"call": "malformed"}], off)
        assert reply_error(reply) == "bbb.unavailable"
        with pytest.raises(LiveError) as raised:
            await live.create_call(off, ["alice"], unique("chat-event"))
        assert raised.value.code == "bbb.unavailable"
        assert await live.availability(off) == {"rooms": False, "calls": False}

    run_live(stack, scenario)


def test_bbb_switched_on_explicitly_still_works(stack: Stack) -> None:
    event = unique("ev")
    ctx = context(event_id=event, user_id="alice", event_config={"bbb_disabled": False, "live_features": {"bbb": True}})

    async def scenario(live: LiveBbb) -> None:
        call = await live.create_call(ctx, ["alice"], unique("chat-event"))
        assert (await live.handle(["bbb.call_url", 1, {"call": call["id"]}], ctx))[0] == "success"

    run_live(stack, scenario)


def test_no_server_for_calls_is_bbb_unavailable(stack: Stack) -> None:
    """org-ro's only server is rooms-only: its rooms work, its calls cannot."""
    ro = context(event_id=unique("ev"), organizer_id="org-ro", user_id="alice")
    normal = context(event_id=unique("ev"), organizer_id="org", user_id="alice")

    async def scenario(live: LiveBbb) -> None:
        assert await live.availability(ro) == {"rooms": True, "calls": False}
        assert await live.availability(normal) == {"rooms": True, "calls": True}
        call = await live.create_call(normal, ["alice"], unique("chat-event"))
        reply = await live.handle(["bbb.call_url", 1, {"call": call["id"]}], ro)
        assert reply_error(reply) == "bbb.unavailable"
        with pytest.raises(LiveError) as raised:
            await live.create_call(ro, ["alice"], unique("chat-event"))
        assert raised.value.code == "bbb.unavailable"
        assert raised.value.message

    run_live(stack, scenario)


def test_a_call_the_service_refuses_is_bbb_failed(stack: Stack) -> None:
    ctx = context(event_id=unique("ev"), user_id="alice")

    async def scenario(live: LiveBbb) -> None:
        for members in ([], ["not a valid id"]):
            with pytest.raises(LiveError) as raised:
                await live.create_call(ctx, members, unique("chat-event"))
            assert raised.value.code == "bbb.failed"

    run_live(stack, scenario)


def test_availability_without_any_server_or_without_the_service(stack: Stack) -> None:
    nowhere = context(event_id=unique("ev"), organizer_id="org-without-servers")

    async def scenario(live: LiveBbb) -> None:
        assert await live.availability(nowhere) == {"rooms": False, "calls": False}

    run_live(stack, scenario)
    unreachable = context(event_id="e", organizer_id="org")
    # The service itself down: the event's config alone answers, so eventyay does not show
    # BBB as deactivated by the admin during an outage.
    assert run_live(stack, lambda live: live.availability(unreachable), target="127.0.0.1:9", timeouts={"Availability": 0.5}) == {
        "rooms": True,
        "calls": True,
    }
