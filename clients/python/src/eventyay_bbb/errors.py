"""The one exception every client call raises."""
from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

__all__ = ["BbbError"]

#: The domain of the service's ``google.rpc.ErrorInfo`` details.
ERROR_DOMAIN = "eventyay.bbb.v1"


class BbbError(Exception):
    """A failed call to eventyay-bbb.

    ``reason`` is the wire name from ``google.rpc.ErrorInfo`` (``bbb.failed``,
    ``bbb.join.missing_profile``, ``protocol.denied``, ``invalid_argument``, ``unauthenticated``,
    ``unavailable``, ...), ``error_code`` the ``ErrorCode`` name from its ``metadata["code"]``
    (``ERROR_CODE_BBB_FAILED``, ...), ``status_code`` the gRPC status. Transport failures and
    expired deadlines have no ErrorInfo: their ``reason`` and ``error_code`` are empty.
    ``field_violations`` names the fields of a ``google.rpc.BadRequest`` (INVALID_ARGUMENT).
    """

    def __init__(
        self,
        status_code: grpc.StatusCode,
        message: str = "",
        *,
        reason: str = "",
        error_code: str = "",
        field_violations: tuple[str, ...] = (),
    ) -> None:
        self.status_code = status_code
        self.message = message
        self.reason = reason
        self.error_code = error_code
        self.field_violations = field_violations
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.reason:
            text = f"{self.reason} ({self.status_code.name}"
            text += f", {self.error_code})" if self.error_code else ")"
        else:
            text = self.status_code.name
        return f"{text}: {self.message}" if self.message else text

    def __repr__(self) -> str:
        return (
            f"BbbError(status_code={self.status_code.name}, reason={self.reason!r}, "
            f"error_code={self.error_code!r}, message={self.message!r})"
        )

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later (only UNAVAILABLE is)."""
        return self.status_code == grpc.StatusCode.UNAVAILABLE

    @classmethod
    def from_rpc_error(cls, err: grpc.RpcError) -> BbbError:
        """Decodes a failed call (sync or ``grpc.aio``), its status details included."""
        code = _call_value(err, "code") or grpc.StatusCode.UNKNOWN
        message = _call_value(err, "details") or ""
        reason, error_code = "", ""
        violations: list[str] = []
        try:
            status = rpc_status.from_call(err)
        except (ValueError, TypeError, AttributeError):
            # Details that disagree with the status (a proxy rewrote one of them), or an
            # error object without trailing metadata: keep what the status itself says.
            status = None
        for detail in status.details if status is not None else ():
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                if info.domain in ("", ERROR_DOMAIN):
                    reason, error_code = info.reason, info.metadata.get("code", "")
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations.extend(v.field for v in bad.field_violations)
        return cls(
            code,
            message,
            reason=reason,
            error_code=error_code,
            field_violations=tuple(violations),
        )


def _call_value(err: grpc.RpcError, name: str):
    method = getattr(err, name, None)
    if method is None:
        return None
    try:
        return method()
    except Exception:  # an RpcError that is not a Call: nothing to read
        return None
