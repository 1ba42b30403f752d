"""Django management command for the eventyay backend: writes what its Python BBB module knows
as the JSON export `eventyay-bbb import` takes over (format documented in the README).

Copy it to `<app>/management/commands/export_bbb.py`, then:

    python manage.py export_bbb > bbb-export.json
    eventyay-bbb import bbb-export.json

Model and field names follow eventyay's `base/models/bbb.py` (BBBServer, BBBCall); adjust the
imports if your tree differs. The file holds BBB shared secrets: keep it as secret as they are.
"""
import json
import sys

from django.core.management.base import BaseCommand

from eventyay.base.models.bbb import BBBCall, BBBServer


def _ids(related):
    return [str(obj.pk) for obj in related.all()]


class Command(BaseCommand):
    help = "Export BBB servers, room meetings and private calls for eventyay-bbb import"

    def handle(self, *args, **options):
        servers = []
        for server in BBBServer.objects.all():
            events = _ids(server.events) if hasattr(server, "events") else []
            legacy = getattr(server, "event_exclusive_id", None)
            if legacy and str(legacy) not in events:
                events.append(str(legacy))
            servers.append({
                "id": str(server.pk),
                "url": server.url,
                "secret": server.secret,
                # The Python module signed with SHA-1 before it moved to SHA-256.
                "checksum": getattr(server, "checksum", "sha256") or "sha256",
                "active": server.active,
                "rooms_only": server.rooms_only,
                "events": events,
                "organizers": _ids(server.organizers) if hasattr(server, "organizers") else [],
                "disable_ssl": bool(getattr(server, "disable_ssl", False)),
            })
        rooms, calls = [], []
        for call in BBBCall.objects.select_related("room", "event", "server"):
            common = {
                "event_id": str(call.event_id),
                "organizer_id": str(call.event.organizer_id),
                "server_id": str(call.server_id),
                "meeting_id": call.meeting_id,
                "attendee_pw": call.attendee_pw,
                "moderator_pw": call.moderator_pw,
            }
            if call.room_id:
                rooms.append({
                    **common,
                    "room_id": str(call.room_id),
                    "voice_bridge": call.voice_bridge or "",
                    "guest_policy": call.guest_policy or "",
                })
            else:
                calls.append({
                    **common,
                    "call_id": str(call.pk),
                    "invitees": _ids(call.invited_members),
                })
        json.dump({"version": 1, "servers": servers, "rooms": rooms, "calls": calls}, sys.stdout, indent=1)
        sys.stdout.write("\n")
