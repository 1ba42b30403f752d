"""Python client of eventyay-bbb, the BigBlueButton front door of the eventyay platform.

- :class:`BbbClient` and :class:`AsyncBbbClient`: every ``BbbService`` RPC, with deadlines,
  safe retries and one exception type, :class:`BbbError`.
- :mod:`eventyay_bbb.live`: the BBB module of eventyay's live websocket (``bbb.room_url``,
  ``bbb.call_url``, ``bbb.recordings``) and its chat, lifecycle and availability hooks, on top
  of :class:`AsyncBbbClient`.
- :data:`pb`: the generated messages (``pb.User``, ``pb.RoomSettings``, ...).
"""
from ._proto import bbb_pb2 as pb
from .client import DEFAULT_TIMEOUTS, AsyncBbbClient, BbbClient, RetryPolicy
from .errors import BbbError

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TIMEOUTS",
    "AsyncBbbClient",
    "BbbClient",
    "BbbError",
    "RetryPolicy",
    "pb",
]
