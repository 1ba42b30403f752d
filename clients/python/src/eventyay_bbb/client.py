"""Clients of eventyay-bbb's ``BbbService``: :class:`BbbClient` (blocking) and
:class:`AsyncBbbClient` (``grpc.aio``, for the backend's async consumers).

Both speak the same API and follow the same rules:

- **Deadlines.** Every call has one deadline for the whole logical call, retries included:
  ``timeout=`` (seconds) per call, else the client's default for that method
  (:data:`DEFAULT_TIMEOUTS`, overridable with ``timeouts=``).
- **Retries.** Only ``UNAVAILABLE`` is retried (reasons ``bbb.failed`` and ``unavailable``, and
  transport failures), with jittered exponential backoff, at most ``retry.max_attempts`` times,
  and never past the deadline. Every method is safe to repeat: ``CreateCall`` because each
  logical call carries an idempotency key -- the caller's, or one made here (a UUID) once and
  sent again on every retry. gRPC's own retries are switched off, as they know nothing of that.
- **Errors.** Every failure raises :class:`~eventyay_bbb.errors.BbbError`.
- **Channel.** TLS by default (system roots, or ``ca_file=``); plaintext only with
  ``insecure=True``. Load is balanced round robin over every address the target resolves to,
  so ``dns:///eventyay-bbb-headless.NAMESPACE.svc:50051`` spreads calls over all replicas.
"""
from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, Union

import grpc
import grpc.aio

from ._proto import bbb_pb2 as pb
from ._proto import bbb_pb2_grpc as pb_grpc
from .errors import BbbError

__all__ = [
    "AsyncBbbClient",
    "BbbClient",
    "DEFAULT_TIMEOUTS",
    "RetryPolicy",
    "UserLike",
    "SettingsLike",
]

#: Default deadlines in seconds, per RPC. A join waits for at most one BBB ``create`` (the
#: service's create timeout is 5 s, and a first placement whose create gets no answer moves on
#: to a second server), so joins get 10 s. ListRecordings asks every hosting server in
#: parallel, 10 s each: 15 s. DeleteEvent may end meetings on every server: the service's
#: 30 s cap. The others are database work.
DEFAULT_TIMEOUTS: Mapping[str, float] = {
    "RoomUrl": 10.0,
    "CallUrl": 10.0,
    "CreateCall": 5.0,
    "ListRecordings": 15.0,
    "ForgetUser": 10.0,
    "DeleteEvent": 30.0,
    "Availability": 5.0,
    "PlanSchedule": 10.0,
}

#: Methods that may be sent again after UNAVAILABLE. CreateCall is one only because every
#: request this client sends carries an idempotency key.
RETRYABLE_METHODS = frozenset(DEFAULT_TIMEOUTS)

#: No retry is started with less than this left before the deadline.
_MIN_ATTEMPT_SECONDS = 0.05

UserLike = Union[pb.User, Mapping[str, Any]]
SettingsLike = Union[pb.RoomSettings, Mapping[str, Any]]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How UNAVAILABLE is retried: at most ``max_attempts`` attempts in all, the n-th retry
    after a pause drawn from [d/2, d] with d = min(max_backoff, initial_backoff * multiplier**(n-1))."""

    max_attempts: int = 3
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("backoffs must not be negative, and the multiplier at least 1")

    def pause(self, retry: int, rng: random.Random) -> float:
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (retry - 1))
        return rng.uniform(ceiling / 2, ceiling)


def _read_token(token: str | None, token_file: str | os.PathLike[str] | None) -> str:
    if (token is None) == (token_file is None):
        raise ValueError("give exactly one of token= and token_file=")
    if token_file is not None:
        with open(token_file, encoding="utf-8") as f:
            token = f.read()
    assert token is not None
    token = token.strip()
    if not token or any(c.isspace() or not c.isprintable() for c in token):
        raise ValueError("the bearer token must be one non-empty word of printable characters")
    return token


def _channel_options(extra: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [
        # Every address DNS returns gets calls (a headless Service lists every replica).
        ("grpc.lb_policy_name", "round_robin"),
        # Retries happen in this module, which knows which calls are safe to repeat.
        ("grpc.enable_retries", 0),
        # Find a dead connection (a replica gone without a FIN) within about 40 s.
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        *extra,
    ]


def _credentials(insecure: bool, ca_file: str | os.PathLike[str] | None) -> grpc.ChannelCredentials | None:
    if insecure:
        if ca_file is not None:
            raise ValueError("ca_file= is for TLS; it makes no sense with insecure=True")
        return None
    root = None
    if ca_file is not None:
        with open(ca_file, "rb") as f:
            root = f.read()
    return grpc.ssl_channel_credentials(root_certificates=root)


def _user(user: UserLike) -> pb.User:
    if isinstance(user, pb.User):
        return user
    return pb.User(
        id=str(user.get("id", "")),
        display_name=str(user.get("display_name") or ""),
        avatar_url=str(user.get("avatar_url") or ""),
    )


def _settings(settings: SettingsLike | None) -> pb.RoomSettings:
    if settings is None:
        return pb.RoomSettings()
    if isinstance(settings, pb.RoomSettings):
        return settings
    return pb.RoomSettings(**dict(settings))


class _Requests:
    """Builds the requests both clients send; holds what they share."""

    def __init__(
        self,
        target: str,
        token: str | None,
        token_file: str | os.PathLike[str] | None,
        timeouts: Mapping[str, float] | None,
        retry: RetryPolicy | None,
    ) -> None:
        if not target:
            raise ValueError("target must name the service, e.g. dns:///eventyay-bbb:50051")
        self.target = target
        self._metadata = (("authorization", f"Bearer {_read_token(token, token_file)}"),)
        unknown = set(timeouts or ()) - set(DEFAULT_TIMEOUTS)
        if unknown:
            raise ValueError(f"timeouts= names unknown methods: {sorted(unknown)}")
        self._timeouts = {**DEFAULT_TIMEOUTS, **(timeouts or {})}
        self._retry = retry or RetryPolicy()
        self._rng = random.Random()

    def _deadline(self, method: str, timeout: float | None) -> float:
        seconds = self._timeouts[method] if timeout is None else timeout
        if not seconds > 0:
            raise ValueError("timeout must be a positive number of seconds")
        return time.monotonic() + seconds

    def _next_pause(self, method: str, attempt: int, err: BbbError, deadline: float) -> float | None:
        """The pause before the next attempt, or None when ``err`` is final."""
        if not err.retryable or method not in RETRYABLE_METHODS:
            return None
        if attempt >= self._retry.max_attempts:
            return None
        pause = self._retry.pause(attempt, self._rng)
        if time.monotonic() + pause + _MIN_ATTEMPT_SECONDS >= deadline:
            return None
        return pause

    @staticmethod
    def room_url_request(
        *,
        event_id: str,
        organizer_id: str,
        room_id: str,
        user: UserLike,
        permissions: Iterable[str],
        room_name: str,
        settings: SettingsLike | None,
        domain: str,
        base_url: str,
    ) -> pb.RoomUrlRequest:
        return pb.RoomUrlRequest(
            event_id=event_id,
            organizer_id=organizer_id,
            room_id=room_id,
            room_name=room_name,
            user=_user(user),
            permissions=sorted(set(permissions)),
            settings=_settings(settings),
            domain=domain,
            base_url=base_url,
        )

    @staticmethod
    def call_url_request(
        *, event_id: str, call_id: str, user: UserLike, domain: str, base_url: str
    ) -> pb.CallUrlRequest:
        return pb.CallUrlRequest(
            event_id=event_id, call_id=call_id, user=_user(user), domain=domain, base_url=base_url
        )

    @staticmethod
    def create_call_request(
        *, event_id: str, organizer_id: str, member_ids: Iterable[str], idempotency_key: str | None
    ) -> pb.CreateCallRequest:
        # One key per logical call, made before the first attempt and sent on every retry:
        # the service then answers a retry whose first attempt did get through with that
        # attempt's call instead of making a second one.
        return pb.CreateCallRequest(
            event_id=event_id,
            organizer_id=organizer_id,
            member_ids=list(member_ids),
            idempotency_key=idempotency_key or str(uuid.uuid4()),
        )


class BbbClient(_Requests):
    """Blocking client. ``BbbClient("dns:///eventyay-bbb:50051", token_file="/run/secrets/bbb")``.

    ``insecure=True`` for plaintext (a sidecar, tests); otherwise TLS with ``ca_file=`` or the
    system roots. ``options=`` adds gRPC channel options. Close it, or use it as a context
    manager.
    """

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        insecure: bool = False,
        ca_file: str | os.PathLike[str] | None = None,
        timeouts: Mapping[str, float] | None = None,
        retry: RetryPolicy | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        super().__init__(target, token, token_file, timeouts, retry)
        credentials = _credentials(insecure, ca_file)
        opts = _channel_options(options)
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=opts)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=opts)
        self._stub = pb_grpc.BbbServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> BbbClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, request: Any, timeout: float | None) -> Any:
        deadline = self._deadline(method, timeout)
        rpc: Callable[..., Any] = getattr(self._stub, method)
        attempt = 0
        while True:
            attempt += 1
            try:
                return rpc(
                    request,
                    timeout=max(deadline - time.monotonic(), 0.001),
                    metadata=self._metadata,
                )
            except grpc.RpcError as rpc_error:
                err = BbbError.from_rpc_error(rpc_error)
            pause = self._next_pause(method, attempt, err, deadline)
            if pause is None:
                raise err
            time.sleep(pause)

    def room_url(
        self,
        *,
        event_id: str,
        organizer_id: str,
        room_id: str,
        user: UserLike,
        permissions: Iterable[str] = (),
        room_name: str = "",
        settings: SettingsLike | None = None,
        domain: str = "",
        base_url: str = "",
        timeout: float | None = None,
    ) -> pb.RoomUrlResponse:
        """A join URL for a room's video channel (``RoomUrl``)."""
        request = self.room_url_request(
            event_id=event_id,
            organizer_id=organizer_id,
            room_id=room_id,
            user=user,
            permissions=permissions,
            room_name=room_name,
            settings=settings,
            domain=domain,
            base_url=base_url,
        )
        return self._call("RoomUrl", request, timeout)

    def call_url(
        self,
        *,
        event_id: str,
        call_id: str,
        user: UserLike,
        domain: str = "",
        base_url: str = "",
        timeout: float | None = None,
    ) -> pb.CallUrlResponse:
        """A join URL for a private call (``CallUrl``)."""
        request = self.call_url_request(
            event_id=event_id, call_id=call_id, user=user, domain=domain, base_url=base_url
        )
        return self._call("CallUrl", request, timeout)

    def create_call(
        self,
        *,
        event_id: str,
        organizer_id: str,
        member_ids: Iterable[str],
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """Records a private call (``CreateCall``); returns its id."""
        request = self.create_call_request(
            event_id=event_id,
            organizer_id=organizer_id,
            member_ids=member_ids,
            idempotency_key=idempotency_key,
        )
        return self._call("CreateCall", request, timeout).call_id

    def list_recordings(
        self,
        *,
        event_id: str,
        room_id: str,
        permissions: Iterable[str] = (),
        timeout: float | None = None,
    ) -> pb.ListRecordingsResponse:
        """A room's recordings, newest first (``ListRecordings``)."""
        request = pb.ListRecordingsRequest(
            event_id=event_id, room_id=room_id, permissions=sorted(set(permissions))
        )
        return self._call("ListRecordings", request, timeout)

    def forget_user(self, user_id: str, *, timeout: float | None = None) -> int:
        """Removes a deleted user from every call's invitees; returns how many calls."""
        return self._call("ForgetUser", pb.ForgetUserRequest(user_id=user_id), timeout).calls

    def delete_event(
        self, event_id: str, *, end_meetings: bool = False, timeout: float | None = None
    ) -> pb.DeleteEventResponse:
        """Deletes an event's meetings and calls, ending running ones when asked."""
        request = pb.DeleteEventRequest(event_id=event_id, end_meetings=end_meetings)
        return self._call("DeleteEvent", request, timeout)

    def availability(
        self, *, event_id: str, organizer_id: str, timeout: float | None = None
    ) -> pb.AvailabilityResponse:
        """Whether the fleet's configuration gives an event's rooms a server, and its private
        calls one; servers' health does not count."""
        request = pb.AvailabilityRequest(event_id=event_id, organizer_id=organizer_id)
        return self._call("Availability", request, timeout)

    def plan_schedule(
        self,
        *,
        event_id: str,
        organizer_id: str,
        sessions: Sequence[pb.PlannedSession],
        slot_minutes: int = 0,
        keep: bool = False,
        timeout: float | None = None,
    ) -> pb.PlanScheduleResponse:
        """A forecast of the event's sessions: where each would run, every server's planned
        load per slot, and the slots the fleet cannot hold. With ``keep`` the forecast becomes
        the event's plan (replacing the earlier one; no sessions drop it): each room goes to
        its planned server when its session starts, and that server reserves the session's
        load from 5 minutes before. Without it nothing is stored or reserved."""
        request = pb.PlanScheduleRequest(
            event_id=event_id,
            organizer_id=organizer_id,
            sessions=sessions,
            slot_minutes=slot_minutes,
            keep=keep,
        )
        return self._call("PlanSchedule", request, timeout)


class AsyncBbbClient(_Requests):
    """The same client on ``grpc.aio``: every method is a coroutine, retries wait with
    ``asyncio.sleep``, and nothing blocks the event loop.

    A ``grpc.aio`` channel belongs to the event loop it is first used in: make the client in
    that loop (for a Channels worker, lazily from the first consumer) and close it with
    ``await client.close()`` or ``async with``.
    """

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        insecure: bool = False,
        ca_file: str | os.PathLike[str] | None = None,
        timeouts: Mapping[str, float] | None = None,
        retry: RetryPolicy | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        super().__init__(target, token, token_file, timeouts, retry)
        credentials = _credentials(insecure, ca_file)
        opts = _channel_options(options)
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(target, options=opts)
        else:
            self._channel = grpc.aio.secure_channel(target, credentials, options=opts)
        self._stub = pb_grpc.BbbServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncBbbClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, method: str, request: Any, timeout: float | None) -> Any:
        deadline = self._deadline(method, timeout)
        rpc: Callable[..., Awaitable[Any]] = getattr(self._stub, method)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await rpc(
                    request,
                    timeout=max(deadline - time.monotonic(), 0.001),
                    metadata=self._metadata,
                )
            except grpc.RpcError as rpc_error:
                err = BbbError.from_rpc_error(rpc_error)
            pause = self._next_pause(method, attempt, err, deadline)
            if pause is None:
                raise err
            await asyncio.sleep(pause)

    async def room_url(
        self,
        *,
        event_id: str,
        organizer_id: str,
        room_id: str,
        user: UserLike,
        permissions: Iterable[str] = (),
        room_name: str = "",
        settings: SettingsLike | None = None,
        domain: str = "",
        base_url: str = "",
        timeout: float | None = None,
    ) -> pb.RoomUrlResponse:
        """A join URL for a room's video channel (``RoomUrl``)."""
        request = self.room_url_request(
            event_id=event_id,
            organizer_id=organizer_id,
            room_id=room_id,
            user=user,
            permissions=permissions,
            room_name=room_name,
            settings=settings,
            domain=domain,
            base_url=base_url,
        )
        return await self._call("RoomUrl", request, timeout)

    async def call_url(
        self,
        *,
        event_id: str,
        call_id: str,
        user: UserLike,
        domain: str = "",
        base_url: str = "",
        timeout: float | None = None,
    ) -> pb.CallUrlResponse:
        """A join URL for a private call (``CallUrl``)."""
        request = self.call_url_request(
            event_id=event_id, call_id=call_id, user=user, domain=domain, base_url=base_url
        )
        return await self._call("CallUrl", request, timeout)

    async def create_call(
        self,
        *,
        event_id: str,
        organizer_id: str,
        member_ids: Iterable[str],
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """Records a private call (``CreateCall``); returns its id."""
        request = self.create_call_request(
            event_id=event_id,
            organizer_id=organizer_id,
            member_ids=member_ids,
            idempotency_key=idempotency_key,
        )
        return (await self._call("CreateCall", request, timeout)).call_id

    async def list_recordings(
        self,
        *,
        event_id: str,
        room_id: str,
        permissions: Iterable[str] = (),
        timeout: float | None = None,
    ) -> pb.ListRecordingsResponse:
        """A room's recordings, newest first (``ListRecordings``)."""
        request = pb.ListRecordingsRequest(
            event_id=event_id, room_id=room_id, permissions=sorted(set(permissions))
        )
        return await self._call("ListRecordings", request, timeout)

    async def forget_user(self, user_id: str, *, timeout: float | None = None) -> int:
        """Removes a deleted user from every call's invitees; returns how many calls."""
        response = await self._call("ForgetUser", pb.ForgetUserRequest(user_id=user_id), timeout)
        return response.calls

    async def delete_event(
        self, event_id: str, *, end_meetings: bool = False, timeout: float | None = None
    ) -> pb.DeleteEventResponse:
        """Deletes an event's meetings and calls, ending running ones when asked."""
        request = pb.DeleteEventRequest(event_id=event_id, end_meetings=end_meetings)
        return await self._call("DeleteEvent", request, timeout)

    async def availability(
        self, *, event_id: str, organizer_id: str, timeout: float | None = None
    ) -> pb.AvailabilityResponse:
        """Whether the fleet's configuration gives an event's rooms a server, and its private
        calls one; servers' health does not count."""
        request = pb.AvailabilityRequest(event_id=event_id, organizer_id=organizer_id)
        return await self._call("Availability", request, timeout)

    async def plan_schedule(
        self,
        *,
        event_id: str,
        organizer_id: str,
        sessions: Sequence[pb.PlannedSession],
        slot_minutes: int = 0,
        keep: bool = False,
        timeout: float | None = None,
    ) -> pb.PlanScheduleResponse:
        """A forecast of the event's sessions: where each would run, every server's planned
        load per slot, and the slots the fleet cannot hold. With ``keep`` the forecast becomes
        the event's plan (replacing the earlier one; no sessions drop it): each room goes to
        its planned server when its session starts, and that server reserves the session's
        load from 5 minutes before. Without it nothing is stored or reserved."""
        request = pb.PlanScheduleRequest(
            event_id=event_id,
            organizer_id=organizer_id,
            sessions=sessions,
            slot_minutes=slot_minutes,
            keep=keep,
        )
        return await self._call("PlanSchedule", request, timeout)
