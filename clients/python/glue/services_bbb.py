# eventyay: app/eventyay/base/services/bbb.py -- replaces the BBB service (server choice, BBB
# API calls, recordings), which now lives in eventyay-bbb. What stays is the glue: one client
# per process (sync) and per event loop (async), the availability gate, and the lifecycle hooks.
import asyncio
import logging
import threading
import weakref

from django.conf import settings

from eventyay_bbb import AsyncBbbClient, BbbClient, BbbError
from eventyay_bbb.live import LiveBbb, LiveContext, bbb_disabled_by_config

logger = logging.getLogger(__name__)

_live_by_loop = weakref.WeakKeyDictionary()
_sync_client = None
_sync_lock = threading.Lock()


def _client_options():
    return {
        "token_file": settings.EVENTYAY_BBB_TOKEN_FILE,
        "insecure": settings.EVENTYAY_BBB_INSECURE,
        "ca_file": None if settings.EVENTYAY_BBB_INSECURE else (settings.EVENTYAY_BBB_CA_FILE or None),
    }


def get_live() -> LiveBbb:
    """The LiveBbb of the running event loop (a grpc.aio channel belongs to one loop; Channels
    runs consumers in one, async_to_sync makes others)."""
    loop = asyncio.get_running_loop()
    live = _live_by_loop.get(loop)
    if live is None:
        live = LiveBbb(AsyncBbbClient(settings.EVENTYAY_BBB_TARGET, **_client_options()))
        _live_by_loop[loop] = live
    return live


def get_sync_client() -> BbbClient:
    """For sync code (serializers, model methods, Celery tasks). Made on first use, so a
    forking worker makes its own after the fork."""
    global _sync_client
    with _sync_lock:
        if _sync_client is None:
            _sync_client = BbbClient(settings.EVENTYAY_BBB_TARGET, **_client_options())
        return _sync_client


def event_context(event, user=None, rooms=None) -> LiveContext:
    """What LiveBbb needs to know of an event (and of the user, for the websocket)."""
    profile = (getattr(user, "profile", None) or {}) if user is not None else {}
    avatar = profile.get("avatar") or {}
    return LiveContext(
        user_id=str(user.pk) if user is not None else "",
        display_name=profile.get("display_name") or "",
        avatar_url=(avatar.get("url") if isinstance(avatar, dict) else "") or "",
        event_id=str(event.pk),
        organizer_id=str(event.organizer_id),
        domain=getattr(event, "domain", "") or "",
        timezone=str(getattr(event, "timezone", "") or "UTC"),
        event_config=event.config or {},
        rooms=rooms or {},
        base_url=settings.SITE_URL,
    )


# -- the availability gate: the admin banner (world.bbb_available), room creation with a BBB
# module, RoomSerializer.validate_module_config. call_url and the chat hook check it themselves.
# Configuration only, as the original's was: an outage answers joins with bbb.failed instead.


def is_bbb_available(event=None, *, calls=False) -> bool:
    """Sync: whether the configuration gives the event BBB rooms (or, with calls=True, private
    calls): the event's config, then whether a server may serve it, whatever its health.
    Without an event, whether the global pool has a server (event and organizer "-"). When
    the service cannot be asked, the event's config alone answers, as in LiveBbb.availability:
    an outage must not show "deactivated by the admin"."""
    if event is not None and bbb_disabled_by_config(event.config):
        return False
    try:
        answer = get_sync_client().availability(
            event_id=str(event.pk) if event is not None else "-",
            organizer_id=str(event.organizer_id) if event is not None else "-",
        )
    except BbbError as err:
        logger.warning("eventyay-bbb availability unknown, reported as configured: %s", err)
        return True
    return answer.calls if calls else answer.rooms


async def is_bbb_available_async(event, *, calls=False) -> bool:
    """The same in async code (create_room, consumers): never blocks the loop."""
    answer = await get_live().availability(event_context(event))
    return answer["calls"] if calls else answer["rooms"]


# -- lifecycle hooks


def forget_user(user) -> None:
    """Call from User.soft_delete(), where the original ran ``self.bbb_invites.clear()``:
    ``transaction.on_commit(lambda: forget_user(self))``."""
    try:
        get_sync_client().forget_user(str(user.pk))
    except BbbError:
        logger.exception("eventyay-bbb could not forget user %s; their call invitations remain", user.pk)


def delete_event_meetings(event, end_meetings=True) -> None:
    """Call where an event's data is cleared or the event deleted (the original deleted
    ``event.bbb_calls.all()``): ends its running meetings and forgets its rooms and calls."""
    try:
        get_sync_client().delete_event(str(event.pk), end_meetings=end_meetings)
    except BbbError:
        logger.exception("eventyay-bbb could not delete the meetings of event %s", event.pk)
