"""Session fixtures: one emulated BBB fleet and one eventyay-bbb service for the whole run.

The service binary is ``$EVENTYAY_BBB_BIN`` (the Rust test suite sets it), else the repository's
``target/debug/eventyay-bbb``. Without one the tests that need it skip loudly (fail in CI).
"""
from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from helpers import Stack, binary, skip_or_fail


@pytest.fixture(scope="session")
def bin_path() -> str:
    found = binary()
    if found is None or not pathlib.Path(found).is_file():
        skip_or_fail("no eventyay-bbb binary: set EVENTYAY_BBB_BIN (or cargo build)")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def stack(bin_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(bin_path, tmp_path_factory.mktemp("stack"))
    try:
        yield running
    finally:
        running.stop()
