"""The smoke checklist, end to end against `eventyay-bbb dev` through the Python client:
moderator join, attendee join, record and end, recording listed, and the typed errors.

    python smoke.py path/to/eventyay-bbb
"""
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from eventyay_bbb_client import BbbClient, BbbError, bbb_pb2


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def open_join_url(url: str) -> str:
    """What a browser does: one GET. A working join URL redirects into the BBB client."""
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(url, timeout=5)
    except urllib.error.HTTPError as redirect:
        if redirect.code == 302:
            return redirect.headers["Location"]
        raise
    raise AssertionError("join URL did not redirect")


def check(label: str, ok: bool, detail: str = "") -> None:
    print(f"[{'ok' if ok else 'FAIL'}] {label}{': ' + detail if detail and not ok else ''}", flush=True)
    if not ok:
        raise SystemExit(1)


def main(binary: str) -> int:
    dev = subprocess.Popen([binary, "dev", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        addr, token, sims = None, None, {}
        deadline = time.monotonic() + 30
        while token is None and time.monotonic() < deadline:
            line = dev.stdout.readline()
            if m := re.search(r"gRPC on ([0-9.:]+),", line):
                addr = m.group(1)
            if m := re.match(r"\s+(sim-\d+): (http://\S+)/bigbluebutton/api/", line):
                sims[m.group(1)] = m.group(2)
            if m := re.search(r"API token \(dev only\): (\S+)", line):
                token = m.group(1)
        check("dev started", bool(addr and token and sims))

        client = BbbClient(addr, token, timeout=5)
        room = dict(event_id="1", organizer_id="1", room_id="smoke", room_name="Smoke test", domain="events.example.org")
        settings = bbb_pb2.RoomSettings(record=True)

        moderator = client.room_url(
            **room, user=bbb_pb2.User(id="mod", display_name="Moderator"),
            permissions=["room:bbb.join", "room:bbb.moderate"], settings=settings,
        )
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(moderator.url).query)
        check("moderator join URL", moderator.moderator and params["role"] == ["MODERATOR"])
        check("moderator enters", "/html5client/join" in open_join_url(moderator.url))

        attendee = client.room_url(
            **room, user=bbb_pb2.User(id="att", display_name="Attendee"),
            permissions=["room:bbb.join"], settings=settings,
        )
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(attendee.url).query)
        check("attendee join URL", not attendee.moderator and params["role"] == ["VIEWER"])
        check("same meeting", attendee.meeting_id == moderator.meeting_id)
        check("attendee enters", "/html5client/join" in open_join_url(attendee.url))

        # Recorded meeting ends (the emulator's control surface stands for the moderator).
        end = urllib.request.Request(
            f"{sims[moderator.server_id]}/_sim/end?meetingID={urllib.parse.quote(moderator.meeting_id)}", method="POST"
        )
        check("meeting ended", urllib.request.urlopen(end, timeout=5).status == 200)

        listed = client.list_recordings(event_id="1", room_id="smoke", permissions=["room:bbb.recordings"])
        check("recording listed", len(listed.results) == 1 and listed.results[0].url != "", str(listed))
        check("recording published", listed.results[0].state == "published", listed.results[0].state)

        try:
            client.list_recordings(event_id="1", room_id="smoke", permissions=["room:bbb.join"])
            check("recordings need room:bbb.recordings", False)
        except BbbError as err:
            check("recordings need room:bbb.recordings", err.reason == "protocol.denied", str(err))

        try:
            client.room_url(**room, user=bbb_pb2.User(id="x", display_name=" "), permissions=["room:bbb.join"])
            check("missing profile is typed", False)
        except BbbError as err:
            check("missing profile is typed", err.reason == "bbb.join.missing_profile"
                  and err.error_code == "ERROR_CODE_MISSING_PROFILE", str(err))

        call_id = client.create_call(event_id="1", organizer_id="1", member_ids=["mod", "att"])
        call = client.call_url(event_id="1", call_id=call_id, user=bbb_pb2.User(id="att", display_name="Attendee"))
        check("call member enters", "/html5client/join" in open_join_url(call.url))
        started = time.monotonic()
        try:
            client.call_url(event_id="1", call_id=call_id, user=bbb_pb2.User(id="stranger", display_name="S"))
            check("outsiders get bbb.failed", False)
        except BbbError as err:
            check("outsiders get bbb.failed", err.reason == "bbb.failed", str(err))
        check("within the deadline, retries included", time.monotonic() - started < 5.5)
        client.close()
        print("smoke checklist passed")
        return 0
    finally:
        dev.terminate()
        dev.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
