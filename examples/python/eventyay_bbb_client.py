"""A small client of eventyay-bbb for the eventyay backend (copy it, or import it).

- Every call has a deadline (``timeout``, seconds, for the whole call including retries).
- Only UNAVAILABLE is retried, and only for the calls that are safe to repeat (RoomUrl, CallUrl,
  ListRecordings): CreateCall is not idempotent, so it is never retried.
- Failures raise :class:`BbbError` carrying the wire ``reason`` the backend already sends to its
  clients (``bbb.failed``, ``bbb.join.missing_profile``, ``protocol.denied``, ...), decoded from
  the ``google.rpc.ErrorInfo`` detail.
- Several replicas: give ``dns:///eventyay-bbb-headless.NAMESPACE.svc:50051`` as the target; the
  channel balances calls round robin over every address DNS returns.

Needs grpcio and grpcio-status, and the stubs made by ``generate.py`` (in ./gen).
"""
from __future__ import annotations

import pathlib
import random
import sys
import time
from typing import Iterable, Optional

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "gen"))
from eventyay.bbb.v1 import bbb_pb2, bbb_pb2_grpc  # noqa: E402

__all__ = ["BbbClient", "BbbError", "bbb_pb2"]

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE})


class BbbError(Exception):
    """A failed call: ``reason`` is the wire name, ``error_code`` the ErrorCode enum name."""

    def __init__(self, status: grpc.StatusCode, reason: str, error_code: str, message: str):
        super().__init__(f"{reason or status.name}: {message}")
        self.status = status
        self.reason = reason
        self.error_code = error_code
        self.message = message

    @classmethod
    def from_rpc_error(cls, err: grpc.RpcError) -> "BbbError":
        reason, error_code = "", ""
        status = rpc_status.from_call(err)
        for detail in status.details if status else ():
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, error_code = info.reason, info.metadata.get("code", "")
        return cls(err.code(), reason, error_code, err.details() or "")


class BbbClient:
    def __init__(
        self,
        target: str,
        token: str,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.2,
        channel: Optional[grpc.Channel] = None,
    ):
        self._channel = channel or grpc.insecure_channel(
            target,
            options=[
                ("grpc.lb_policy_name", "round_robin"),
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.enable_retries", 0),  # retries are done here, where idempotency is known
            ],
        )
        self._stub = bbb_pb2_grpc.BbbServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff

    def close(self) -> None:
        self._channel.close()

    def room_url(
        self,
        *,
        event_id: str,
        organizer_id: str,
        room_id: str,
        room_name: str,
        user: bbb_pb2.User,
        permissions: Iterable[str],
        settings: Optional[bbb_pb2.RoomSettings] = None,
        domain: str = "",
    ) -> bbb_pb2.RoomUrlResponse:
        request = bbb_pb2.RoomUrlRequest(
            event_id=event_id,
            organizer_id=organizer_id,
            room_id=room_id,
            room_name=room_name,
            user=user,
            permissions=list(permissions),
            settings=settings or bbb_pb2.RoomSettings(),
            domain=domain,
        )
        return self._call(self._stub.RoomUrl, request, idempotent=True)

    def call_url(self, *, event_id: str, call_id: str, user: bbb_pb2.User, domain: str = "") -> bbb_pb2.CallUrlResponse:
        request = bbb_pb2.CallUrlRequest(event_id=event_id, call_id=call_id, user=user, domain=domain)
        return self._call(self._stub.CallUrl, request, idempotent=True)

    def create_call(self, *, event_id: str, organizer_id: str, member_ids: Iterable[str]) -> str:
        request = bbb_pb2.CreateCallRequest(event_id=event_id, organizer_id=organizer_id, member_ids=list(member_ids))
        return self._call(self._stub.CreateCall, request, idempotent=False).call_id

    def list_recordings(self, *, event_id: str, room_id: str, permissions: Iterable[str]) -> bbb_pb2.ListRecordingsResponse:
        request = bbb_pb2.ListRecordingsRequest(event_id=event_id, room_id=room_id, permissions=list(permissions))
        return self._call(self._stub.ListRecordings, request, idempotent=True)

    def _call(self, method, request, *, idempotent: bool):
        deadline = time.monotonic() + self._timeout
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            try:
                return method(request, timeout=max(remaining, 0.001), metadata=self._metadata)
            except grpc.RpcError as err:
                error = BbbError.from_rpc_error(err)
                pause = self._backoff * (2 ** attempt) * random.uniform(0.5, 1.5)
                retry = (
                    idempotent
                    and err.code() in RETRYABLE
                    and attempt < self._retries
                    and time.monotonic() + pause < deadline
                )
                if not retry:
                    raise error from None
                attempt += 1
                time.sleep(pause)
