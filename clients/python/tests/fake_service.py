"""A scripted in-process BbbService on 127.0.0.1, for what the real service cannot be made to
do on demand: fail once and then succeed, hang, answer any status, record every attempt."""
from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from eventyay_bbb import pb
from eventyay_bbb._proto import bbb_pb2_grpc as pb_grpc

RESPONSES = {
    "RoomUrl": lambda: pb.RoomUrlResponse(url="https://bbb.example.org/join?x", server_id="s", meeting_id="m"),
    "CallUrl": lambda: pb.CallUrlResponse(url="https://bbb.example.org/join?call", server_id="s", meeting_id="m"),
    "CreateCall": lambda: pb.CreateCallResponse(call_id="6f1c2d9e-0000-4000-8000-000000000001"),
    "ListRecordings": lambda: pb.ListRecordingsResponse(),
    "ForgetUser": lambda: pb.ForgetUserResponse(calls=1),
    "DeleteEvent": lambda: pb.DeleteEventResponse(meetings_deleted=1),
    "Availability": lambda: pb.AvailabilityResponse(rooms=True, calls=True),
    "PlanSchedule": lambda: pb.PlanScheduleResponse(),
}


@dataclass(frozen=True)
class Fail:
    code: grpc.StatusCode
    reason: str = ""
    error_code: str = ""
    message: str = "scripted failure"
    bad_field: str = ""


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Seen:
    method: str
    request: Any
    metadata: dict[str, str]
    time_remaining: float | None
    at: float


class FakeBbb(pb_grpc.BbbServiceServicer):
    """``script[method]`` is a list of actions (Fail, Sleep, or a response message) taken one
    per attempt; the last one repeats. Unscripted methods answer a plain success."""

    def __init__(self) -> None:
        self.script: dict[str, list[Any]] = {}
        self.seen: list[Seen] = []

    def attempts(self, method: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method]

    def _answer(self, method: str, request: Any, context: grpc.ServicerContext) -> Any:
        self.seen.append(
            Seen(method, request, dict(context.invocation_metadata()), context.time_remaining(), time.monotonic())
        )
        actions = self.script.get(method) or [RESPONSES[method]()]
        action = actions.pop(0) if len(actions) > 1 else actions[0]
        if isinstance(action, Sleep):
            time.sleep(action.seconds)
            return RESPONSES[method]()
        if isinstance(action, Fail):
            details = []
            if action.reason:
                info = error_details_pb2.ErrorInfo(
                    reason=action.reason, domain="eventyay.bbb.v1", metadata={"code": action.error_code}
                )
                details.append(_packed(info))
            if action.bad_field:
                bad = error_details_pb2.BadRequest(
                    field_violations=[error_details_pb2.BadRequest.FieldViolation(field=action.bad_field)]
                )
                details.append(_packed(bad))
            status = status_pb2.Status(code=action.code.value[0], message=action.message, details=details)
            context.abort_with_status(rpc_status.to_status(status))
        return action

    def RoomUrl(self, request, context):  # noqa: N802 (gRPC's names)
        return self._answer("RoomUrl", request, context)

    def CallUrl(self, request, context):  # noqa: N802
        return self._answer("CallUrl", request, context)

    def CreateCall(self, request, context):  # noqa: N802
        return self._answer("CreateCall", request, context)

    def ListRecordings(self, request, context):  # noqa: N802
        return self._answer("ListRecordings", request, context)

    def ForgetUser(self, request, context):  # noqa: N802
        return self._answer("ForgetUser", request, context)

    def DeleteEvent(self, request, context):  # noqa: N802
        return self._answer("DeleteEvent", request, context)

    def Availability(self, request, context):  # noqa: N802
        return self._answer("Availability", request, context)

    def PlanSchedule(self, request, context):  # noqa: N802
        return self._answer("PlanSchedule", request, context)


def _packed(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


@contextmanager
def serving(tls: tuple[bytes, bytes] | None = None) -> Iterator[tuple[FakeBbb, str]]:
    """Runs a FakeBbb; yields it and its ``127.0.0.1:PORT``. ``tls``: (key PEM, cert PEM)."""
    fake = FakeBbb()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    pb_grpc.add_BbbServiceServicer_to_server(fake, server)
    if tls is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([tls]))
    server.start()
    try:
        yield fake, f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)
