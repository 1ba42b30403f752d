"""The clients' own rules (retries, deadlines, keys, errors, channel) against a scripted fake."""
from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest

from eventyay_bbb import DEFAULT_TIMEOUTS, AsyncBbbClient, BbbClient, BbbError, RetryPolicy, pb
from eventyay_bbb.live import LiveBbb

from fake_service import Fail, Sleep, serving
from helpers import bbb_room, context, reply_error

TOKEN = "fake-token-0123456789"
FAST = RetryPolicy(max_attempts=5, initial_backoff=0.01, max_backoff=0.05)
UNAVAILABLE = Fail(grpc.StatusCode.UNAVAILABLE, "unavailable", "ERROR_CODE_UNAVAILABLE")
BBB_FAILED = Fail(grpc.StatusCode.UNAVAILABLE, "bbb.failed", "ERROR_CODE_BBB_FAILED")
USER = {"id": "u", "display_name": "U"}


def call(kind: str, target: str, method: str, retry: RetryPolicy = FAST, **kwargs: Any) -> Any:
    """Calls ``method`` on a sync or an async client made for this one call."""
    if kind == "sync":
        with BbbClient(target, token=TOKEN, insecure=True, retry=retry) as client:
            return getattr(client, method)(**kwargs)

    async def main() -> Any:
        async with AsyncBbbClient(target, token=TOKEN, insecure=True, retry=retry) as client:
            return await getattr(client, method)(**kwargs)

    return asyncio.run(main())


KINDS = pytest.mark.parametrize("kind", ["sync", "async"])


@KINDS
def test_create_call_without_a_key_sends_one_key_on_every_retry(kind: str) -> None:
    with serving() as (fake, target):
        fake.script["CreateCall"] = [UNAVAILABLE, BBB_FAILED, fake_call_response("c-1")]
        call_id = call(kind, target, "create_call", event_id="e", organizer_id="o", member_ids=["a", "b"])
        assert call_id == "c-1"
        keys = [s.request.idempotency_key for s in fake.attempts("CreateCall")]
        assert len(keys) == 3 and len(set(keys)) == 1, keys
        uuid.UUID(keys[0])

        fake.script["CreateCall"] = [UNAVAILABLE, fake_call_response("c-2")]
        call(kind, target, "create_call", event_id="e", organizer_id="o", member_ids=["a"])
        assert fake.attempts("CreateCall")[-1].request.idempotency_key not in keys, "a new logical call, a new key"

        fake.script["CreateCall"] = [UNAVAILABLE, fake_call_response("c-3")]
        call(kind, target, "create_call", event_id="e", organizer_id="o", member_ids=["a"], idempotency_key="chat-42")
        assert [s.request.idempotency_key for s in fake.attempts("CreateCall")[-2:]] == ["chat-42", "chat-42"]


def fake_call_response(call_id: str) -> Any:
    return pb.CreateCallResponse(call_id=call_id)


@KINDS
def test_unavailable_is_retried_and_the_answer_returned(kind: str) -> None:
    with serving() as (fake, target):
        fake.script["RoomUrl"] = [BBB_FAILED, UNAVAILABLE, Fail(grpc.StatusCode.UNAVAILABLE, message="no reason")]
        fake.script["RoomUrl"].append(fake.script["RoomUrl"][0])  # keeps failing after that
        with pytest.raises(BbbError):
            call(kind, target, "room_url", event_id="e", organizer_id="o", room_id="r", user=USER)
        assert len(fake.attempts("RoomUrl")) == FAST.max_attempts

        fake.script["ListRecordings"] = [UNAVAILABLE, pb.ListRecordingsResponse(unreachable_servers=["x"])]
        listed = call(kind, target, "list_recordings", event_id="e", room_id="r", permissions=["p"])
        assert list(listed.unreachable_servers) == ["x"]
        assert len(fake.attempts("ListRecordings")) == 2


@KINDS
def test_retries_stay_inside_one_deadline(kind: str) -> None:
    patient = RetryPolicy(max_attempts=100, initial_backoff=0.05, max_backoff=0.2)
    with serving() as (fake, target):
        fake.script["CallUrl"] = [BBB_FAILED]
        started = time.monotonic()
        with pytest.raises(BbbError) as raised:
            call(kind, target, "call_url", retry=patient, event_id="e", call_id="c", user=USER, timeout=1.0)
        took = time.monotonic() - started
        assert raised.value.reason == "bbb.failed"
        assert took < 1.25, f"{took:.2f} s for a 1 s deadline"
        attempts = fake.attempts("CallUrl")
        assert len(attempts) >= 3
        remaining = [a.time_remaining for a in attempts]
        assert all(r is not None and r <= 1.2 for r in remaining)
        # Every attempt gets what is left of the one deadline (as the server sees it).
        deadlines = [a.at + a.time_remaining for a in attempts]
        assert max(deadlines) - min(deadlines) < 0.05, deadlines
        assert remaining[-1] < remaining[0] - 0.1
        pauses = [b.at - a.at for a, b in zip(attempts, attempts[1:])]
        assert all(p >= 0.025 for p in pauses), pauses  # at least half the first backoff


@KINDS
@pytest.mark.parametrize(
    "failure",
    [
        Fail(grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument", "ERROR_CODE_INVALID_ARGUMENT", "room_id: bad", "room_id"),
        Fail(grpc.StatusCode.PERMISSION_DENIED, "protocol.denied", "ERROR_CODE_PERMISSION_DENIED"),
        Fail(grpc.StatusCode.FAILED_PRECONDITION, "bbb.join.missing_profile", "ERROR_CODE_MISSING_PROFILE"),
        Fail(grpc.StatusCode.UNAUTHENTICATED, "unauthenticated", "ERROR_CODE_UNAUTHENTICATED"),
        Fail(grpc.StatusCode.UNIMPLEMENTED),
    ],
)
def test_other_failures_are_not_retried_and_carry_their_reason(kind: str, failure: Fail) -> None:
    with serving() as (fake, target):
        fake.script["RoomUrl"] = [failure]
        with pytest.raises(BbbError) as raised:
            call(kind, target, "room_url", event_id="e", organizer_id="o", room_id="r", user=USER)
        err = raised.value
        assert len(fake.attempts("RoomUrl")) == 1
        assert (err.status_code, err.reason, err.error_code) == (failure.code, failure.reason, failure.error_code)
        assert err.message == failure.message
        assert err.field_violations == ((failure.bad_field,) if failure.bad_field else ())
        assert not err.retryable
        assert (failure.reason or failure.code.name) in str(err)


@KINDS
def test_an_expired_deadline_is_a_bbb_error_without_reason(kind: str) -> None:
    with serving() as (fake, target):
        fake.script["RoomUrl"] = [Sleep(2.0)]
        started = time.monotonic()
        with pytest.raises(BbbError) as raised:
            call(kind, target, "room_url", event_id="e", organizer_id="o", room_id="r", user=USER, timeout=0.3)
        assert time.monotonic() - started < 1.0
        assert raised.value.status_code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert (raised.value.reason, raised.value.error_code) == ("", "")


def test_default_deadlines_per_method_and_overrides() -> None:
    assert DEFAULT_TIMEOUTS["RoomUrl"] > 5 and DEFAULT_TIMEOUTS["CallUrl"] > 5, "longer than one BBB create"
    assert DEFAULT_TIMEOUTS["ListRecordings"] == 15 and DEFAULT_TIMEOUTS["DeleteEvent"] <= 30
    with serving() as (fake, target):
        with BbbClient(target, token=TOKEN, insecure=True) as client:
            client.room_url(event_id="e", organizer_id="o", room_id="r", user=USER)
            client.call_url(event_id="e", call_id="c", user=USER)
            client.create_call(event_id="e", organizer_id="o", member_ids=["a"])
            client.list_recordings(event_id="e", room_id="r")
            client.forget_user("u")
            client.delete_event("e", end_meetings=True)
            client.availability(event_id="e", organizer_id="o")
            client.plan_schedule(event_id="e", organizer_id="o", sessions=[])
        for seen in fake.seen:
            expected = DEFAULT_TIMEOUTS[seen.method]
            assert expected - 1.0 < seen.time_remaining <= expected + 0.2, (seen.method, seen.time_remaining)
        fake.seen.clear()
        with BbbClient(target, token=TOKEN, insecure=True, timeouts={"RoomUrl": 3}) as client:
            client.room_url(event_id="e", organizer_id="o", room_id="r", user=USER)
            client.room_url(event_id="e", organizer_id="o", room_id="r", user=USER, timeout=1.5)
        assert 2.0 < fake.seen[0].time_remaining <= 3.2
        assert 0.5 < fake.seen[1].time_remaining <= 1.7


def test_the_bearer_token_given_or_from_a_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}-file\n")
    with serving() as (fake, target):
        with BbbClient(target, token=TOKEN, insecure=True) as client:
            client.forget_user("u")
        with BbbClient(target, token_file=token_file, insecure=True) as client:
            client.forget_user("u")
        assert [s.metadata["authorization"] for s in fake.seen] == [f"Bearer {TOKEN}", f"Bearer {TOKEN}-file"]
        assert fake.seen[0].request.user_id == "u"


def test_round_robin_over_every_address() -> None:
    with serving() as (one, first), serving() as (two, second):
        target = f"ipv4:{first},{second}"
        with BbbClient(target, token=TOKEN, insecure=True) as client:
            for _ in range(20):
                client.availability(event_id="e", organizer_id="o")
        assert len(one.seen) >= 5 and len(two.seen) >= 5, (len(one.seen), len(two.seen))


def test_async_retries_leave_the_event_loop_free() -> None:
    with serving() as (fake, target):
        fake.script["Availability"] = [UNAVAILABLE, UNAVAILABLE, pb.AvailabilityResponse(rooms=True, calls=True)]

        async def main() -> tuple[float, int]:
            gaps: list[float] = []
            done = asyncio.Event()

            async def ticker() -> None:
                while not done.is_set():
                    before = time.monotonic()
                    await asyncio.sleep(0.005)
                    gaps.append(time.monotonic() - before)

            task = asyncio.create_task(ticker())
            slow = RetryPolicy(max_attempts=3, initial_backoff=0.3, max_backoff=0.6)
            async with AsyncBbbClient(target, token=TOKEN, insecure=True, retry=slow) as client:
                started = time.monotonic()
                answer = await client.availability(event_id="e", organizer_id="o")
                took = time.monotonic() - started
            done.set()
            await task
            assert answer.rooms
            return took, max(gaps)

        took, worst_gap = asyncio.run(main())
        assert took >= 0.15 + 0.3, "two pauses were taken"
        assert worst_gap < 0.25, f"the loop stalled {worst_gap:.3f} s during the retry pauses"


@pytest.mark.parametrize(
    "failure",
    [
        UNAVAILABLE,  # the service's database
        Fail(grpc.StatusCode.NOT_FOUND, "not_found", "ERROR_CODE_NOT_FOUND"),
        Fail(grpc.StatusCode.INTERNAL, "something.new", "ERROR_CODE_UNSPECIFIED"),
        Fail(grpc.StatusCode.UNIMPLEMENTED),
        Sleep(3.0),
    ],
)
def test_live_turns_every_unknown_failure_into_bbb_failed(failure: Any, caplog: pytest.LogCaptureFixture) -> None:
    with serving() as (fake, target):
        fake.script["RoomUrl"] = [failure]

        async def main() -> list:
            async with AsyncBbbClient(target, token=TOKEN, insecure=True, retry=FAST, timeouts={"RoomUrl": 0.5}) as c:
                return await LiveBbb(c).handle(["bbb.room_url", 5, {"room": "r"}], context(event_id="e", rooms={"r": bbb_room()}))

        with caplog.at_level(logging.WARNING, logger="eventyay_bbb.live"):
            reply = asyncio.run(main())
        assert reply == ["error", 5, {"code": "bbb.failed", "message": reply[2]["message"]}]
        cause = failure.reason or failure.code.name if isinstance(failure, Fail) else "DEADLINE_EXCEEDED"
        assert any(cause in r.getMessage() for r in caplog.records), caplog.text


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (Fail(grpc.StatusCode.PERMISSION_DENIED, "protocol.denied", "ERROR_CODE_PERMISSION_DENIED"), "protocol.denied"),
        (Fail(grpc.StatusCode.FAILED_PRECONDITION, "bbb.join.missing_profile", "ERROR_CODE_MISSING_PROFILE"), "bbb.join.missing_profile"),
        (BBB_FAILED, "bbb.failed"),
    ],
)
def test_live_passes_the_reasons_the_browser_knows(failure: Fail, code: str) -> None:
    with serving() as (fake, target):
        fake.script["RoomUrl"] = [failure]

        async def main() -> list:
            async with AsyncBbbClient(target, token=TOKEN, insecure=True, retry=FAST) as c:
                return await LiveBbb(c).handle(["bbb.room_url", 1, {"room": "r"}], context(event_id="e", rooms={"r": bbb_room()}))

        assert reply_error(asyncio.run(main())) == code


def test_live_call_url_goes_on_when_availability_cannot_be_asked() -> None:
    with serving() as (fake, target):
        fake.script["Availability"] = [Fail(grpc.StatusCode.UNIMPLEMENTED)]

        async def main() -> tuple[list, dict]:
            async with AsyncBbbClient(target, token=TOKEN, insecure=True, retry=FAST) as c:
                live = LiveBbb(c)
                ctx = context(event_id="e")
                reply = await live.handle(["bbb.call_url", 1, {"call": str(uuid.uuid4())}], ctx)
                return reply, await live.availability(ctx)

        reply, availability = asyncio.run(main())
        assert reply == ["success", 1, {"url": "https://bbb.example.org/join?call"}]
        assert availability == {"rooms": True, "calls": True}, "a service that cannot be asked is no admin's decision"


def test_bad_arguments_are_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        BbbClient("127.0.0.1:1", insecure=True)
    with pytest.raises(ValueError):
        BbbClient("127.0.0.1:1", token="t" * 20, token_file=tmp_path / "t", insecure=True)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError):
        BbbClient("127.0.0.1:1", token_file=tmp_path / "empty", insecure=True)
    with pytest.raises(ValueError):
        BbbClient("127.0.0.1:1", token="two words", insecure=True)
    with pytest.raises(ValueError):
        BbbClient("127.0.0.1:1", token="t" * 20, insecure=True, ca_file=tmp_path / "ca.pem")
    with pytest.raises(ValueError):
        BbbClient("127.0.0.1:1", token="t" * 20, insecure=True, timeouts={"RoomURL": 3})
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with BbbClient("127.0.0.1:1", token="t" * 20, insecure=True) as client:
        with pytest.raises(ValueError):
            client.forget_user("u", timeout=0)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    where = tmp_path_factory.mktemp("tls")
    key, cert = where / "key.pem", where / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return key, cert


def test_tls_by_default_with_a_ca_file(certificate: tuple[Path, Path]) -> None:
    key, cert = certificate
    with serving(tls=(key.read_bytes(), cert.read_bytes())) as (fake, target):
        with BbbClient(target, token=TOKEN, ca_file=cert) as client:
            assert client.availability(event_id="e", organizer_id="o").rooms
        with BbbClient(target, token=TOKEN) as client:  # system roots do not know this certificate
            with pytest.raises(BbbError) as raised:
                client.availability(event_id="e", organizer_id="o", timeout=1)
            assert raised.value.status_code == grpc.StatusCode.UNAVAILABLE and raised.value.reason == ""
        with BbbClient(target, token=TOKEN, insecure=True) as client:
            with pytest.raises(BbbError):
                client.availability(event_id="e", organizer_id="o", timeout=1)
        assert len(fake.seen) == 1, "only the client trusting the certificate got through"

        async def main() -> bool:
            async with AsyncBbbClient(target, token=TOKEN, ca_file=cert) as client:
                return (await client.availability(event_id="e", organizer_id="o")).calls

        assert asyncio.run(main())


def test_plaintext_only_when_asked() -> None:
    with serving() as (fake, target):
        with BbbClient(target, token=TOKEN) as client:
            with pytest.raises(BbbError) as raised:
                client.availability(event_id="e", organizer_id="o", timeout=1)
        assert raised.value.status_code == grpc.StatusCode.UNAVAILABLE
        assert fake.seen == [], "a TLS client never speaks plaintext"
