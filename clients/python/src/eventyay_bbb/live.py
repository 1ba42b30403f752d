"""The BigBlueButton module of eventyay's live websocket, on top of :class:`AsyncBbbClient`.

It answers the module's documented actions exactly as eventyay's own module did::

    => ["bbb.room_url", 1234, {"room": "room_1"}]
    <- ["success", 1234, {"url": "https://…"}]
    => ["bbb.call_url", 1234, {"call": "f160bf4f-93c4-4b50-b348-6ef61db4dbe7"}]
    => ["bbb.recordings", 1234, {"room": "room_1"}]
    <- ["success", 1234, {"results": [{"start": "2020-08-02T19:30:00.000+02:00", …}]}]
    <- ["error", 1234, {"code": "bbb.join.missing_profile", "message": "…"}]

It imports no web framework: the backend describes the user, the event and the rooms in a
:class:`LiveContext`, and sends whatever :meth:`LiveBbb.handle` returns. The browser only ever
sees the codes in :data:`BROWSER_CODES`; every other failure (a malformed request, a wrong
token, the service's database, a deadline, the network) becomes ``bbb.failed`` and is logged on
the ``eventyay_bbb.live`` logger with its cause.
"""
from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._proto import bbb_pb2 as pb
from .client import AsyncBbbClient
from .errors import BbbError

__all__ = [
    "BROWSER_CODES",
    "LiveBbb",
    "LiveContext",
    "LiveError",
    "LiveRoom",
    "bbb_disabled_by_config",
    "room_settings",
]

logger = logging.getLogger("eventyay_bbb.live")

#: The texts sent with each error code; the only codes a browser ever receives from here.
MESSAGES: Mapping[str, str] = {
    "room.unknown": "Unknown room ID",
    "protocol.denied": "Permission denied.",
    "bbb.join.missing_profile": "Please set a display name in your profile before joining.",
    "bbb.failed": "The video conference could not be reached. Please try again in a moment.",
    "bbb.unavailable": "BBB is currently deactivated by the admin.",
    "bbb.unsupported_command": "Unsupported command.",
}
NO_MODULE_MESSAGE = "Room does not contain a matching module."
BROWSER_CODES = frozenset(MESSAGES)

# Wire reasons of the service that the browser knows; any other one becomes ``bbb.failed``.
_PASSED_REASONS = frozenset({"protocol.denied", "bbb.join.missing_profile", "bbb.failed"})

_FALSE_WORDS = frozenset({"", "0", "false", "no", "off", "none", "null"})
_DOMAIN = re.compile(r"[A-Za-z0-9.:-]{1,253}")


class LiveError(Exception):
    """A failure the consumer sends as ``["error", id, {"code": code, "message": message}]``."""

    def __init__(self, code: str, message: str | None = None) -> None:
        if code not in BROWSER_CODES:
            raise ValueError(f"{code!r} is not a code the browser knows")
        self.code = code
        self.message = message or MESSAGES[code]
        super().__init__(f"{code}: {self.message}")

    def as_error_body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class LiveRoom:
    """A room as the user sees it: its name, the config of its ``call.bigbluebutton`` module
    (None when it has none) and the user's effective permissions in it."""

    name: str = ""
    module_config: Mapping[str, Any] | None = None
    permissions: frozenset[str] = frozenset()


@dataclass(frozen=True, kw_only=True)
class LiveContext:
    """The user on the socket and their event, as the consumer knows them.

    ``event_config`` is the event's config dict (``bbb_disabled``, ``live_features``,
    ``bbb_disable_privatechat``); ``rooms`` maps the room ids the user may address to
    :class:`LiveRoom`; ``base_url`` is the event's site (eventyay's SITE_URL), against which
    the service resolves relative avatar and presentation URLs.
    """

    user_id: Any
    event_id: Any
    organizer_id: Any
    display_name: str | None = ""
    avatar_url: str | None = ""
    domain: str | None = ""
    timezone: str | None = "UTC"
    event_config: Mapping[str, Any] | None = field(default_factory=dict)
    rooms: Mapping[str, LiveRoom] = field(default_factory=dict)
    base_url: str | None = ""


def _flag(value: Any) -> bool:
    """A config value as a yes/no, leniently: missing, None, "" and "false"-like words are no."""
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_WORDS
    return bool(value)


def _explicitly_off(value: Any) -> bool:
    """Whether a feature switch says off (missing or None leave the feature on)."""
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip().lower() in _FALSE_WORDS - {"", "none", "null"}
    return not bool(value)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _count(value: Any) -> int:
    """A non-negative whole number from a stored config (int, integral float, digits); else 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and value >= 0:
        return min(value, 2**32 - 1)
    return 0


def _voice_bridge(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return _text(value)


def bbb_disabled_by_config(event_config: Mapping[str, Any] | None) -> bool:
    """Whether the event's config turns BBB off: ``bbb_disabled`` set, or
    ``live_features.bbb`` switched off."""
    if not isinstance(event_config, Mapping):
        return False
    if _flag(event_config.get("bbb_disabled")):
        return True
    features = event_config.get("live_features")
    return isinstance(features, Mapping) and _explicitly_off(features.get("bbb"))


def room_settings(
    module_config: Mapping[str, Any] | None, event_config: Mapping[str, Any] | None = None
) -> pb.RoomSettings:
    """eventyay's ``call.bigbluebutton`` config (and the event's ``bbb_disable_privatechat``)
    as the service's RoomSettings. Values may be missing, None, "" or of odd types, as stored
    configs have them; none of that is an error."""
    config = module_config if isinstance(module_config, Mapping) else {}
    settings = pb.RoomSettings(
        record=_flag(config.get("record")),
        waiting_room=_flag(config.get("waiting_room")),
        mute_on_start=_flag(config.get("bbb_mute_on_start")),
        disable_cam=_flag(config.get("bbb_disable_cam")),
        disable_chat=_flag(config.get("bbb_disable_chat")),
        hide_presentation=_flag(config.get("hide_presentation")),
        auto_microphone=_flag(config.get("auto_microphone")),
        auto_camera=_flag(config.get("auto_camera")),
        voice_bridge=_voice_bridge(config.get("voice_bridge")),
        prefer_server=_text(config.get("prefer_server")),
        presentation_url=_text(config.get("presentation")),
        # How many the room's sessions are expected to bring (its capacity): placement
        # reserves load for them.
        expected_participants=_count(config.get("expected_participants")),
    )
    event = event_config if isinstance(event_config, Mapping) else {}
    private_chat = event.get("bbb_disable_privatechat")
    # Unset leaves the service's default, which locks private chat as the original did.
    if private_chat is not None:
        settings.disable_private_chat = _flag(private_chat)
    return settings


def _domain(value: Any) -> str:
    text = _text(value)
    if "://" in text:
        text = urlsplit(text).netloc
    text = text.split("/", 1)[0]
    if text and not _DOMAIN.fullmatch(text):
        logger.warning("event domain %r is not a host name; joins go without the style sheet", value)
        return ""
    return text


def _base_url(value: Any) -> str:
    text = _text(value)
    if text and not re.match(r"https?://[^/\s]", text, flags=re.IGNORECASE):
        logger.warning("base_url %r is not an absolute http(s) URL; relative URLs are dropped", value)
        return ""
    return text


def _zone(name: Any) -> tzinfo:
    if isinstance(name, str) and name.strip():
        try:
            return ZoneInfo(name.strip())
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    logger.warning("unknown time zone %r; recording times are shown in UTC", name)
    return timezone.utc


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _iso(recording: pb.Recording, name: str, zone: tzinfo) -> str | None:
    if not recording.HasField(name):
        return None
    ts = getattr(recording, name)
    moment = _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)
    return moment.astimezone(zone).isoformat(timespec="milliseconds")


def _recording(recording: pb.Recording, zone: tzinfo) -> dict[str, Any]:
    return {
        "start": _iso(recording, "start", zone),
        "end": _iso(recording, "end", zone),
        "participants": str(recording.participants),
        "state": recording.state,
        "url": recording.url or None,
        "url_video": recording.url_video or None,
        "url_screenshare": recording.url_screenshare or None,
        "url_notes": recording.url_notes or None,
    }


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class LiveBbb:
    """The module's actions for one event loop: ``LiveBbb(AsyncBbbClient(target, token=…))``.

    Every method runs on ``grpc.aio``: many sockets' requests proceed concurrently in one loop,
    and a slow BBB server delays only the requests that wait for it.
    """

    def __init__(self, client: AsyncBbbClient) -> None:
        self.client = client
        self._actions: dict[str, Callable[[Mapping[str, Any], LiveContext], Awaitable[dict[str, Any]]]] = {
            "bbb.room_url": self.room_url,
            "bbb.call_url": self.call_url,
            "bbb.recordings": self.recordings,
        }

    # -- the websocket ---------------------------------------------------------------------

    async def handle(self, message: Any, ctx: LiveContext) -> list[Any]:
        """Answers one ``[action, id, body]`` message with the reply to send."""
        action: Any = None
        msg_id: Any = None
        body: Mapping[str, Any] = {}
        if isinstance(message, (list, tuple)) and message:
            action = message[0]
            msg_id = message[1] if len(message) > 1 else None
            if len(message) > 2 and isinstance(message[2], Mapping):
                body = message[2]
        handler = self._actions.get(action) if isinstance(action, str) else None
        try:
            if handler is None:
                raise LiveError("bbb.unsupported_command")
            return ["success", msg_id, await handler(body, ctx)]
        except LiveError as err:
            return ["error", msg_id, err.as_error_body()]
        except Exception:
            logger.exception("%s failed unexpectedly; answered bbb.failed", action)
            return ["error", msg_id, LiveError("bbb.failed").as_error_body()]

    async def room_url(self, body: Mapping[str, Any], ctx: LiveContext) -> dict[str, Any]:
        """``bbb.room_url``: ``{"room": id}`` → ``{"url": …}``."""
        room_id, room = self._room(body, ctx)
        try:
            response = await self.client.room_url(
                event_id=str(ctx.event_id),
                organizer_id=str(ctx.organizer_id),
                room_id=room_id,
                room_name=room.name if isinstance(room.name, str) else "",
                user=self._user(ctx),
                permissions=self._permissions(room),
                settings=room_settings(room.module_config, ctx.event_config),
                domain=_domain(ctx.domain),
                base_url=_base_url(ctx.base_url),
            )
        except BbbError as err:
            raise self._failure("bbb.room_url", err) from None
        return {"url": response.url}

    async def call_url(self, body: Mapping[str, Any], ctx: LiveContext) -> dict[str, Any]:
        """``bbb.call_url``: ``{"call": uuid}`` → ``{"url": …}``."""
        await self._require_calls(ctx)
        call_id = body.get("call")
        if not isinstance(call_id, str) or not _is_uuid(call_id):
            # Never sent on: a malformed id is a call the user is not in. The profile check
            # still comes first, as in the original.
            if not _text(ctx.display_name):
                raise LiveError("bbb.join.missing_profile")
            logger.info("bbb.call_url with a malformed call id; answered bbb.failed")
            raise LiveError("bbb.failed")
        try:
            response = await self.client.call_url(
                event_id=str(ctx.event_id),
                call_id=call_id,
                user=self._user(ctx),
                domain=_domain(ctx.domain),
                base_url=_base_url(ctx.base_url),
            )
        except BbbError as err:
            raise self._failure("bbb.call_url", err) from None
        return {"url": response.url}

    async def recordings(self, body: Mapping[str, Any], ctx: LiveContext) -> dict[str, Any]:
        """``bbb.recordings``: ``{"room": id}`` → ``{"results": [...]}``, newest first."""
        room_id, room = self._room(body, ctx)
        try:
            response = await self.client.list_recordings(
                event_id=str(ctx.event_id),
                room_id=room_id,
                permissions=self._permissions(room),
            )
        except BbbError as err:
            raise self._failure("bbb.recordings", err) from None
        if response.unreachable_servers:
            logger.warning(
                "bbb.recordings of room %s: servers %s could not be asked; their recordings are missing",
                room_id,
                ", ".join(response.unreachable_servers),
            )
        zone = _zone(ctx.timezone)
        return {"results": [_recording(r, zone) for r in response.results]}

    # -- chat, lifecycle and the availability gate ---------------------------------------

    async def create_call(
        self, ctx: LiveContext, member_ids: Iterable[Any], idempotency_key: Any = None
    ) -> dict[str, str]:
        """A private call for a call message in a direct conversation: returns the message's
        content body ``{"type": "bbb", "id": call_id}``. The same key (the chat event's id)
        gives the same call. Raises :class:`LiveError` (``bbb.unavailable`` or ``bbb.failed``)."""
        await self._require_calls(ctx)
        key = None if idempotency_key is None else str(idempotency_key)
        try:
            call_id = await self.client.create_call(
                event_id=str(ctx.event_id),
                organizer_id=str(ctx.organizer_id),
                member_ids=[str(m) for m in member_ids],
                idempotency_key=key,
            )
        except BbbError as err:
            raise self._failure("create_call", err) from None
        return {"type": "bbb", "id": call_id}

    async def forget_user(self, user_id: Any) -> int:
        """A user was deleted: removes them from every call. Raises BbbError on failure."""
        return await self.client.forget_user(str(user_id))

    async def delete_event(self, event_id: Any, end_meetings: bool = True) -> dict[str, Any]:
        """An event was cleared or deleted: drops its meetings and calls (ending running ones
        unless ``end_meetings=False``). Raises BbbError on failure."""
        response = await self.client.delete_event(str(event_id), end_meetings=end_meetings)
        return {
            "meetings_deleted": response.meetings_deleted,
            "meetings_ended": response.meetings_ended,
            "end_failed_on": list(response.end_failed_on),
        }

    async def availability(self, ctx: LiveContext) -> dict[str, bool]:
        """eventyay's ``is_bbb_available``: whether the configuration gives the event BBB rooms,
        and private calls. Like the original gate it is configuration only: both are False when
        the event's config turns BBB off, and otherwise the service says whether a server may
        serve the event (whatever its health). When the service cannot be asked, the event's
        config alone answers (logged): an outage is no admin's decision, and joins during one
        fail with the retryable ``bbb.failed`` instead."""
        if bbb_disabled_by_config(ctx.event_config):
            return {"rooms": False, "calls": False}
        try:
            response = await self.client.availability(
                event_id=str(ctx.event_id), organizer_id=str(ctx.organizer_id)
            )
        except BbbError as err:
            logger.warning("availability of event %s unknown, reported as configured: %s", ctx.event_id, err)
            return {"rooms": True, "calls": True}
        return {"rooms": response.rooms, "calls": response.calls}

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _room(body: Mapping[str, Any], ctx: LiveContext) -> tuple[str, LiveRoom]:
        given = body.get("room")
        if isinstance(given, int) and not isinstance(given, bool):
            given = str(given)
        room_id = given if isinstance(given, str) else ""
        room = ctx.rooms.get(room_id) if room_id else None
        if room is None:
            raise LiveError("room.unknown")
        if room.module_config is None:
            raise LiveError("room.unknown", NO_MODULE_MESSAGE)
        return room_id, room

    @staticmethod
    def _user(ctx: LiveContext) -> pb.User:
        return pb.User(
            id=str(ctx.user_id),
            display_name=ctx.display_name if isinstance(ctx.display_name, str) else "",
            avatar_url=_text(ctx.avatar_url),
        )

    @staticmethod
    def _permissions(room: LiveRoom) -> list[str]:
        return sorted(str(p) for p in (room.permissions or ()))

    async def _require_calls(self, ctx: LiveContext) -> None:
        """``bbb.unavailable`` when the configuration leaves the event without calls: BBB off
        in the event's config, or no server that may serve it takes calls."""
        if bbb_disabled_by_config(ctx.event_config):
            raise LiveError("bbb.unavailable")
        try:
            available = await self.client.availability(
                event_id=str(ctx.event_id), organizer_id=str(ctx.organizer_id)
            )
        except BbbError as err:
            # Not knowing is no reason to refuse: the call itself says what the service can do.
            logger.warning("availability of event %s unknown, going on: %s", ctx.event_id, err)
            return
        if not available.calls:
            raise LiveError("bbb.unavailable")

    @staticmethod
    def _failure(action: str, err: BbbError) -> LiveError:
        if err.reason in _PASSED_REASONS:
            if err.reason == "bbb.failed":
                logger.info("%s: the service answered bbb.failed", action)
            return LiveError(err.reason)
        logger.warning("%s failed, answered bbb.failed: %r", action, err)
        return LiveError("bbb.failed")
