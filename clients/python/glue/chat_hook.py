# eventyay: app/eventyay/base/services/chat.py -- in ChatService, where a call message is stored.
#
# The original made the call inside _store_event (a sync database function):
#     if content.get("type") == "call":
#         call = BBBCall.objects.create(...); call.invited_members.add(...)
#         content["body"]["id"] = str(call.id)
# Drop that branch and, in the async create_event, before ``await self._store_event(...)`` with
# the event id just taken from redis, add:
#
#     if content.get("type") == "call":
#         await attach_bbb_call(self.event, channel, event_id, content)
#
# The chat event id is the idempotency key: a message sent twice (a retried request) names
# one call. (create_event's retry after an IntegrityError takes a new id, hence a new call;
# the first one is never used and expires after EVENTYAY_BBB_CALL_MAX_AGE.)
from channels.db import database_sync_to_async

from eventyay.base.services.bbb import event_context, get_live
from eventyay.features.live.exceptions import ConsumerException
from eventyay_bbb.live import LiveError


@database_sync_to_async
def _member_ids(channel):
    # Everyone who is a member when the call message is sent, as the original invited them.
    return [str(user_id) for user_id in channel.members.values_list("user_id", flat=True)]


async def attach_bbb_call(event, channel, event_id, content):
    try:
        body = await get_live().create_call(event_context(event), await _member_ids(channel), event_id)
    except LiveError as err:  # bbb.unavailable or bbb.failed, as chat.send's error
        raise ConsumerException(err.code, err.message) from None
    content.setdefault("body", {})
    content["body"].update(body)  # {"type": "bbb", "id": call_id}
