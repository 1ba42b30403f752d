# eventyay: app/eventyay/features/live/modules/bbb.py -- the websocket's bbb.* actions. The
# checks and replies live in eventyay_bbb.live (tested against the real service); this module
# only says who the user is, which room they mean and what they may do there.
from eventyay.base.services.bbb import event_context, get_live
from eventyay.base.services.chat import get_channel
from eventyay.base.services.event import get_room
from eventyay.core.permissions import Permission
from eventyay.features.live.decorators import command
from eventyay.features.live.exceptions import ConsumerException
from eventyay.features.live.modules.base import BaseModule
from eventyay_bbb.live import LiveRoom

# The permissions the service reads: join, moderate (any of the three moderating ones), and
# list recordings. Any other permission is ignored there.
_PERMISSIONS = (
    Permission.ROOM_BBB_JOIN,
    Permission.ROOM_BBB_MODERATE,
    Permission.ROOM_UPDATE,
    Permission.EVENT_UPDATE,
    Permission.ROOM_BBB_RECORDINGS,
)


class BBBModule(BaseModule):
    prefix = "bbb"

    @command("room_url")
    async def room_url(self, body):
        await self._answer("bbb.room_url", body, await self._rooms(body))

    @command("call_url")
    async def call_url(self, body):
        await self._answer("bbb.call_url", body, {})

    @command("recordings")
    async def recordings(self, body):
        await self._answer("bbb.recordings", body, await self._rooms(body))

    async def _answer(self, action, body, rooms):
        ctx = event_context(self.consumer.event, self.consumer.user, rooms)
        status, _, data = await get_live().handle([action, None, body], ctx)
        if status != "success":
            raise ConsumerException(data["code"], data["message"])
        await self.consumer.send_success(data)

    async def _rooms(self, body):
        """The room the request names (by ``room``, or by a ``channel`` of a room), with the
        user's permissions in it; {} when there is none, which LiveBbb answers room.unknown."""
        body = body if isinstance(body, dict) else {}
        event = self.consumer.event
        room, key = None, body.get("room")
        try:
            if isinstance(key, str):
                room = await get_room(event=event, id=key)
            elif isinstance(body.get("channel"), str):
                channel = await get_channel(event=event, pk=body["channel"])
                room, key = (channel.room, body["channel"]) if channel else (None, None)
        except Exception:  # a malformed id is an unknown room
            room = None
        if room is None:
            return {}
        config = next(
            (m.get("config") or {} for m in room.module_config or [] if m.get("type") == "call.bigbluebutton"),
            None,
        )
        allowed = set()
        for permission in _PERMISSIONS:
            if await event.has_permission_async(user=self.consumer.user, permission=permission, room=room):
                allowed.add(permission.value)
        # LiveBbb looks the room up by the id the browser sent ("room"), so key it by that.
        body.setdefault("room", key)
        return {key: LiveRoom(name=room.name or "", module_config=config, permissions=frozenset(allowed))}
