"""The lifecycle hooks (a user deleted, an event cleared) and the sync client's view of them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from eventyay_bbb import BbbClient, BbbError, pb
from eventyay_bbb.live import LiveBbb

from helpers import JOIN, Stack, bbb_room, context, enters, meeting_info, query, reply_error, run_live, unique


def test_a_forgotten_user_leaves_every_call(stack: Stack) -> None:
    event = unique("ev")
    alice = context(event_id=event, user_id="alice-" + event, display_name="Alice")
    bob = context(event_id=event, user_id="bob-" + event, display_name="Bob")

    async def scenario(live: LiveBbb) -> None:
        calls = [await live.create_call(alice, [alice.user_id, bob.user_id], unique("m")) for _ in range(2)]
        assert (await live.handle(["bbb.call_url", 1, {"call": calls[0]["id"]}], bob))[0] == "success"
        assert await live.forget_user(bob.user_id) == 2
        for call in calls:
            assert reply_error(await live.handle(["bbb.call_url", 2, {"call": call["id"]}], bob)) == "bbb.failed"
            assert (await live.handle(["bbb.call_url", 3, {"call": call["id"]}], alice))[0] == "success"
        assert await live.forget_user(bob.user_id) == 0

    run_live(stack, scenario)


def test_deleting_an_event_ends_and_forgets_its_meetings(stack: Stack) -> None:
    event = unique("ev")
    rooms = {"r": bbb_room("Doomed", frozenset({JOIN}))}
    ctx = context(event_id=event, user_id="alice", rooms=rooms)

    async def scenario(live: LiveBbb) -> None:
        room_url = (await live.handle(["bbb.room_url", 1, {"room": "r"}], ctx))[2]["url"]
        assert enters(room_url)
        call = await live.create_call(ctx, ["alice"], unique("m"))
        assert (await live.handle(["bbb.call_url", 2, {"call": call["id"]}], ctx))[0] == "success"

        deleted = await live.delete_event(event, end_meetings=True)
        assert deleted == {"meetings_deleted": 2, "meetings_ended": 2, "end_failed_on": []}
        assert meeting_info(stack, room_url)["hasBeenForciblyEnded"] == "true"
        assert reply_error(await live.handle(["bbb.call_url", 3, {"call": call["id"]}], ctx)) == "bbb.failed"
        # The room itself still exists in eventyay: its next join starts a new meeting.
        again = (await live.handle(["bbb.room_url", 4, {"room": "r"}], ctx))[2]["url"]
        assert query(again)["meetingID"] != query(room_url)["meetingID"]
        assert await live.delete_event(event, end_meetings=False) == {
            "meetings_deleted": 1,
            "meetings_ended": 0,
            "end_failed_on": [],
        }

    run_live(stack, scenario)


def test_the_sync_client_does_every_rpc(stack: Stack) -> None:
    event = unique("ev")
    with BbbClient(stack.target, token_file=stack.token_file, insecure=True) as client:
        availability = client.availability(event_id=event, organizer_id="org")
        assert availability.rooms and availability.calls
        joined = client.room_url(
            event_id=event,
            organizer_id="org",
            room_id="main",
            room_name="Main",
            user={"id": "ada", "display_name": "Ada"},
            permissions=[JOIN, "room:bbb.moderate", "room:bbb.recordings"],
            settings={"record": True},
        )
        assert joined.moderator and joined.server_id in ("main-1", "main-2") and enters(joined.url)
        stack.end_meeting(joined.server_id, joined.meeting_id)
        listed = client.list_recordings(event_id=event, room_id="main", permissions=["room:bbb.recordings"])
        assert len(listed.results) == 1 and listed.results[0].participants == 1
        assert list(listed.unreachable_servers) == []

        key = unique("k")
        call_id = client.create_call(event_id=event, organizer_id="org", member_ids=["ada"], idempotency_key=key)
        assert client.create_call(event_id=event, organizer_id="org", member_ids=["ada"], idempotency_key=key) == call_id
        call = client.call_url(event_id=event, call_id=call_id, user={"id": "ada", "display_name": "Ada"})
        assert enters(call.url)
        assert client.forget_user("ada") == 1
        with pytest.raises(BbbError) as raised:
            client.call_url(event_id=event, call_id=call_id, user={"id": "ada", "display_name": "Ada"})
        assert (raised.value.reason, raised.value.error_code) == ("bbb.failed", "ERROR_CODE_BBB_FAILED")
        deleted = client.delete_event(event, end_meetings=True)
        assert deleted.meetings_deleted == 2

        with pytest.raises(BbbError) as raised:
            client.list_recordings(event_id=event, room_id="main", permissions=[JOIN])
        assert raised.value.reason == "protocol.denied"
        assert raised.value.error_code == "ERROR_CODE_PERMISSION_DENIED"
        assert raised.value.status_code.name == "PERMISSION_DENIED"
        with pytest.raises(BbbError) as raised:
            client.room_url(
                event_id=event, organizer_id="org", room_id="main", user={"id": "x", "display_name": ""}, permissions=[JOIN]
            )
        assert raised.value.reason == "bbb.join.missing_profile"
        assert raised.value.error_code == "ERROR_CODE_MISSING_PROFILE"


def test_a_wrong_token_is_unauthenticated(stack: Stack) -> None:
    with BbbClient(stack.target, token="wrong-token-0123456789", insecure=True) as client:
        with pytest.raises(BbbError) as raised:
            client.availability(event_id="e", organizer_id="org")
    assert raised.value.reason == "unauthenticated"
    assert raised.value.error_code == "ERROR_CODE_UNAUTHENTICATED"
    assert raised.value.status_code.name == "UNAUTHENTICATED"


def test_dns_targets_resolve_and_balance(stack: Stack) -> None:
    port = stack.target.rsplit(":", 1)[1]
    with BbbClient(f"dns:///localhost:{port}", token=stack.token, insecure=True) as client:
        for _ in range(3):
            assert client.availability(event_id="e", organizer_id="org").rooms


def test_a_kept_schedule_sends_each_room_to_its_planned_server(stack: Stack) -> None:
    event = unique("ev")
    start = datetime.now(timezone.utc) + timedelta(minutes=1)

    def at(t: datetime) -> Timestamp:
        stamp = Timestamp()
        stamp.FromDatetime(t)
        return stamp

    sessions = [
        pb.PlannedSession(
            room_id=f"r{i}", start=at(start), end=at(start + timedelta(hours=1)), expected_participants=size
        )
        for i, size in enumerate([400, 30, 30, 30])
    ]
    with BbbClient(stack.target, token_file=stack.token_file, insecure=True) as client:
        kept = client.plan_schedule(event_id=event, organizer_id="org", sessions=sessions, keep=True)
        assert kept.kept == 4
        planned = {p.room_id: p.server_id for p in kept.placements}
        assert planned["r0"] not in {planned["r1"], planned["r2"], planned["r3"]}
        for room in ["r1", "r2", "r3", "r0"]:
            joined = client.room_url(
                event_id=event,
                organizer_id="org",
                room_id=room,
                room_name=room,
                user={"id": "ada", "display_name": "Ada"},
                permissions=[JOIN],
            )
            assert joined.server_id == planned[room]
        # A forecast alone keeps nothing.
        assert client.plan_schedule(event_id=event, organizer_id="org", sessions=sessions).kept == 0
        client.delete_event(event, end_meetings=True)
