"""The client over TLS against the real ``serve``: trusting the service's CA by ``ca_file=``.

The certificates come from ``$EVENTYAY_BBB_TEST_TLS_DIR`` (``ca.pem``, ``tls.crt``,
``tls.key``, and ``other-ca.pem`` from a CA that signed nothing here), made afresh for each run
by the Rust test suite that runs this one (tests/it/python_package.rs).
"""
from __future__ import annotations

import os
import pathlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from eventyay_bbb import BbbClient, BbbError

from helpers import JOIN, MODERATE, Process, Stack, enters, skip_or_fail, unique


@dataclass(frozen=True)
class TlsService:
    target: str
    ca_file: pathlib.Path


@pytest.fixture(scope="module")
def tls_service(stack: Stack, bin_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsService]:
    given = os.environ.get("EVENTYAY_BBB_TEST_TLS_DIR")
    if not given:
        skip_or_fail("no test certificates: set EVENTYAY_BBB_TEST_TLS_DIR (cargo test does)")
    assert given is not None
    certs = pathlib.Path(given)
    workdir = tmp_path_factory.mktemp("tls")
    serve = Process(
        [bin_path, "serve"],
        env={
            "EVENTYAY_BBB_LISTEN": "127.0.0.1:0",
            "EVENTYAY_BBB_DATABASE_URL": f"sqlite://{workdir}/bbb.sqlite?mode=rwc",
            "EVENTYAY_BBB_API_TOKEN": stack.token,
            "EVENTYAY_BBB_SERVERS_FILE": str(stack.servers_file),
            "EVENTYAY_BBB_TLS_CERT": str(certs / "tls.crt"),
            "EVENTYAY_BBB_TLS_KEY": str(certs / "tls.key"),
            "EVENTYAY_BBB_LOG_FORMAT": "json",
            "RUST_LOG": "info,opentelemetry_sdk=off",
        },
    )
    try:
        match = serve.wait_for(r'"message":"serving gRPC".*?"addr":"([0-9.]+:\d+)"')
        yield TlsService(match.group(1), certs / "ca.pem")
    finally:
        serve.stop()


def test_a_client_given_the_ca_file_joins_over_tls(stack: Stack, tls_service: TlsService) -> None:
    with BbbClient(tls_service.target, token=stack.token, ca_file=tls_service.ca_file) as client:
        answer = client.room_url(
            event_id=unique("ev-tls"),
            organizer_id="org",
            room_id="stage",
            room_name="Stage",
            user={"id": "u-tls", "display_name": "Ada Lovelace"},
            permissions=[JOIN, MODERATE],
        )
    assert answer.moderator
    assert enters(answer.url)


def test_a_plaintext_client_is_refused_at_once(stack: Stack, tls_service: TlsService) -> None:
    started = time.monotonic()
    with BbbClient(tls_service.target, token=stack.token, insecure=True) as client:
        with pytest.raises(BbbError) as refused:
            client.availability(event_id="ev", organizer_id="org", timeout=10)
    # The handshake fails and the connection closes: UNAVAILABLE (retries included) well
    # before the 10 s deadline, which a hang would run into.
    assert refused.value.status_code.name == "UNAVAILABLE", refused.value
    assert time.monotonic() - started < 5


def test_a_client_that_does_not_trust_the_ca_is_refused(stack: Stack, tls_service: TlsService) -> None:
    other_ca = tls_service.ca_file.with_name("other-ca.pem")
    with BbbClient(tls_service.target, token=stack.token, ca_file=other_ca) as client:
        with pytest.raises(BbbError) as refused:
            client.availability(event_id="ev", organizer_id="org", timeout=10)
    assert refused.value.status_code.name == "UNAVAILABLE", refused.value
