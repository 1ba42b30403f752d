"""The real service and its BBB emulator, run as processes for the tests (127.0.0.1 only)."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pathlib
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from eventyay_bbb import AsyncBbbClient
from eventyay_bbb.live import LiveBbb, LiveContext, LiveRoom

T = TypeVar("T")

PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[1]
REPO = PACKAGE_DIR.parents[1]

JOIN = "room:bbb.join"
MODERATE = "room:bbb.moderate"
RECORDINGS = "room:bbb.recordings"


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def skip_or_fail(why: str) -> None:
    """Outside CI a missing tool skips, loudly; in CI it is a failure."""
    if in_ci():
        pytest.fail(f"{why} (CI=true: this must run)")
    sys.stderr.write(f"\n*** SKIPPED: {why} ***\n")
    pytest.skip(why)


def binary() -> str | None:
    given = os.environ.get("EVENTYAY_BBB_BIN")
    if given:
        return given
    built = REPO / "target" / "debug" / "eventyay-bbb"
    return str(built) if built.is_file() else None


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Process:
    """A child process whose output lines are collected by threads (so no pipe fills up)."""

    def __init__(self, args: list[str], env: Mapping[str, str] | None = None) -> None:
        self.args = args
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.popen = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(env or {})},
        )
        for stream in (self.popen.stdout, self.popen.stderr):
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or self.popen.poll() is not None:
                    output = "\n".join(self.lines[-40:])
                    raise RuntimeError(f"{self.args[:2]} never printed {pattern!r}:\n{output}")
                self._cond.wait(min(left, 0.2))

    def matching(self, pattern: str) -> list[str]:
        regex = re.compile(pattern)
        with self._cond:
            return [line for line in self.lines if regex.search(line)]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


@dataclass(frozen=True)
class SimServer:
    id: str
    base: str  # http://127.0.0.1:PORT
    secret: str
    organizer: str
    rooms_only: bool = False


# The fleet: every organizer gets servers of its own, so that faults and latency set by one
# test never reach another.
FLEET = (
    ("main-1", "org", False),
    ("main-2", "org", False),
    ("ro-1", "org-ro", True),  # rooms only: no private calls for org-ro's events
    ("down-1", "org-down", False),  # switched to failing by the tests that need BBB down
    ("slow-1", "org-slow", False),  # made slow by the concurrency test
    ("slow-2", "org-slow", False),
)


class Stack:
    """``eventyay-bbb sim`` with one emulated server per FLEET entry, and ``eventyay-bbb serve``
    placing meetings on them."""

    def __init__(self, bin_path: str, workdir: pathlib.Path) -> None:
        self.token = secrets.token_hex(24)
        sim_secrets = [secrets.token_hex(20) for _ in FLEET]
        self.sim = Process([bin_path, "sim", "--secret", ",".join(sim_secrets), "--publish-delay", "0s"])
        self.serve: Process | None = None
        try:
            bases = []
            for n in range(1, len(FLEET) + 1):
                match = self.sim.wait_for(rf"^sim {n}/{len(FLEET)}: BBB API at (http://127\.0\.0\.1:\d+)/")
                bases.append(match.group(1))
            self.servers = {
                sid: SimServer(sid, base, secret, organizer, rooms_only)
                for (sid, organizer, rooms_only), base, secret in zip(FLEET, bases, sim_secrets)
            }
            self.servers_file = servers_file = workdir / "servers.toml"
            servers_file.write_text(
                "".join(
                    f'[[servers]]\nid = "{s.id}"\nurl = "{s.base}/bigbluebutton/"\n'
                    f'secret = "{s.secret}"\nrooms_only = {str(s.rooms_only).lower()}\n'
                    f'organizers = ["{s.organizer}"]\n\n'
                    for s in self.servers.values()
                )
            )
            self.token_file = workdir / "token"
            self.token_file.write_text(self.token + "\n")
            self.serve = Process(
                [bin_path, "serve"],
                env={
                    "EVENTYAY_BBB_LISTEN": "127.0.0.1:0",
                    "EVENTYAY_BBB_DATABASE_URL": f"sqlite://{workdir}/bbb.sqlite?mode=rwc",
                    "EVENTYAY_BBB_API_TOKEN": self.token,
                    "EVENTYAY_BBB_SERVERS_FILE": str(servers_file),
                    "EVENTYAY_BBB_POLL_INTERVAL": "500ms",
                    # Every join asks BBB, so a meeting ended a moment ago is made again and a
                    # failing server is noticed by the very next join.
                    "EVENTYAY_BBB_ENSURE_TTL": "0ms",
                    "EVENTYAY_BBB_LOG_FORMAT": "json",
                    "RUST_LOG": "info,opentelemetry_sdk=off",
                },
            )
            match = self.serve.wait_for(r'"message":"serving gRPC".*?"addr":"([0-9.]+:\d+)"')
            self.target = match.group(1)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.serve is not None:
            self.serve.stop()
        self.sim.stop()

    # -- the emulator's control surface ----------------------------------------------------

    def control(self, server_id: str, path: str, **params: Any) -> str:
        query = urllib.parse.urlencode(params)
        url = f"{self.servers[server_id].base}/_sim/{path}?{query}"
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5) as r:
            return r.read().decode()

    def end_meeting(self, server_id: str, meeting_id: str) -> None:
        assert self.control(server_id, "end", meetingID=meeting_id).strip() == "ok"

    def bbb_api(self, server_id: str, call: str, **params: Any) -> str:
        """A signed BBB API call, as the service would make it (checksum sha256)."""
        server = self.servers[server_id]
        query = urllib.parse.urlencode(params)
        checksum = hashlib.sha256(f"{call}{query}{server.secret}".encode()).hexdigest()
        url = f"{server.base}/bigbluebutton/api/{call}?{query}&checksum={checksum}"
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()

    def wait_healthy(self, server_id: str, timeout: float = 10.0) -> None:
        """After a fault is cleared: waits until the service trusts the server again (its last
        health change in the log says healthy). Availability cannot tell: it is configuration
        only."""
        time.sleep(0.3)  # failures in flight when the fault was cleared are counted by now
        deadline = time.monotonic() + timeout
        pattern = rf'"message":"server (health changed|is unhealthy|is misconfigured)[^"]*".*"server":"{server_id}"'
        while time.monotonic() < deadline:
            assert self.serve is not None
            changes = self.serve.matching(pattern)
            if not changes or '"health":"healthy"' in changes[-1]:
                return
            time.sleep(0.1)
        raise AssertionError(f"{server_id} never became healthy again")

    def log_lines(self, pattern: str) -> list[dict[str, Any]]:
        assert self.serve is not None
        return [json.loads(line) for line in self.serve.matching(pattern) if line.startswith("{")]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def open_join_url(url: str) -> tuple[int, str]:
    """What the browser does with a join URL: one GET. Returns (status, Location)."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=5) as response:
            return response.status, response.headers.get("Location", "")
    except urllib.error.HTTPError as answer:
        return answer.code, answer.headers.get("Location", "")


def enters(url: str) -> bool:
    """Whether the join URL lets the browser into the BBB client."""
    status, location = open_join_url(url)
    return status == 302 and "/html5client/join" in location


def query(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True))


def bbb_room(name: str = "Room", permissions: frozenset[str] = frozenset({JOIN}), **config: Any) -> LiveRoom:
    return LiveRoom(name=name, module_config=dict(config), permissions=permissions)


def context(
    *,
    event_id: str,
    organizer_id: str = "org",
    user_id: str = "u-ada",
    display_name: str | None = "Ada Lovelace",
    rooms: Mapping[str, LiveRoom] | None = None,
    **more: Any,
) -> LiveContext:
    return LiveContext(
        user_id=user_id,
        display_name=display_name,
        avatar_url=more.pop("avatar_url", ""),
        event_id=event_id,
        organizer_id=organizer_id,
        domain=more.pop("domain", "events.example.org"),
        timezone=more.pop("timezone", "Europe/Berlin"),
        event_config=more.pop("event_config", {}),
        rooms=rooms or {},
        **more,
    )


def run_live(stack: Stack, scenario: Callable[[LiveBbb], Awaitable[T]], **client: Any) -> T:
    """Runs ``scenario(live)`` in a fresh event loop with a LiveBbb on the stack's service."""

    async def main() -> T:
        target = client.pop("target", stack.target)
        token = client.pop("token", stack.token)
        async with AsyncBbbClient(target, token=token, insecure=True, **client) as bbb:
            return await scenario(LiveBbb(bbb))

    return asyncio.run(main())


def server_of(stack: Stack, url: str) -> str:
    """The id of the emulated server a join URL points at."""
    [server] = [s.id for s in stack.servers.values() if url.startswith(s.base + "/")]
    return server


def meeting_info(stack: Stack, join_url: str) -> dict[str, str]:
    """getMeetingInfo of the join URL's meeting, as BBB reports it (top-level fields)."""
    import xml.etree.ElementTree as ET

    text = stack.bbb_api(server_of(stack, join_url), "getMeetingInfo", meetingID=query(join_url)["meetingID"])
    root = ET.fromstring(text)
    return {child.tag: (child.text or "") for child in root}


def reply_error(reply: list[Any]) -> str:
    """The code of an error reply (and a check that it is one a browser knows)."""
    from eventyay_bbb.live import BROWSER_CODES

    assert reply[0] == "error", reply
    assert set(reply[2]) == {"code", "message"}, reply
    assert reply[2]["code"] in BROWSER_CODES, reply
    assert isinstance(reply[2]["message"], str) and reply[2]["message"], reply
    return reply[2]["code"]
