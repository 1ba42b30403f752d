#!/usr/bin/env python3
"""Regenerates the gRPC code of ``eventyay_bbb`` from the contract in ``../../proto``.

    python clients/python/generate.py              # rewrites src/eventyay_bbb/_proto/
    python clients/python/generate.py --out DIR    # writes the same files into DIR instead

It needs the grpcio-tools version pinned in ``requirements-dev.txt`` (another version writes
different code, and the test that compares the checked-in files would fail for that reason
alone). protoc names the modules after the proto's path, ``eventyay/bbb/v1/``, which would make
them a top-level package ``eventyay`` -- the name of the backend's own package. So the output is
rewritten to live inside ``eventyay_bbb._proto``: the gRPC module imports its messages
relatively, and the messages' module name is ``eventyay_bbb._proto.bbb_pb2``. The descriptors
keep the proto file's real name (``eventyay/bbb/v1/bbb.proto``), as the server reflects it.
"""
from __future__ import annotations

import argparse
import pathlib
import re
import shutil
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
PROTO_ROOT = HERE.parent.parent / "proto"
PROTO_FILE = "eventyay/bbb/v1/bbb.proto"
DEFAULT_OUT = HERE / "src" / "eventyay_bbb" / "_proto"
REQUIREMENTS = HERE / "requirements-dev.txt"

# The files this script owns in the output directory (``__init__.py`` there is hand-written).
GENERATED = ("bbb_pb2.py", "bbb_pb2.pyi", "bbb_pb2_grpc.py")

NOTE = "# Rewritten by clients/python/generate.py to live inside eventyay_bbb._proto.\n"

# (file, pattern, replacement): every pattern must match at least once, so that a change in
# protoc's output stops this script instead of leaving an ``eventyay`` import behind.
REWRITES = (
    (
        "bbb_pb2.py",
        r"'eventyay\.bbb\.v1\.bbb_pb2'",
        "'eventyay_bbb._proto.bbb_pb2'",
    ),
    (
        "bbb_pb2_grpc.py",
        r"^from eventyay\.bbb\.v1 import bbb_pb2 as (\w+)$",
        r"from . import bbb_pb2 as \1",
    ),
)


class GenerateError(Exception):
    pass


def pinned_tools_version() -> str:
    for line in REQUIREMENTS.read_text().splitlines():
        match = re.match(r"\s*grpcio-tools\s*==\s*([^\s#;]+)", line)
        if match:
            return match.group(1)
    raise GenerateError(f"{REQUIREMENTS} pins no grpcio-tools version")


def installed_tools_version() -> str:
    try:
        from importlib.metadata import version

        return version("grpcio-tools")
    except Exception as err:  # not installed, or installed without metadata
        raise GenerateError(
            f"grpcio-tools is not installed ({err}); pip install -r {REQUIREMENTS}"
        ) from None


def generate(out: pathlib.Path) -> list[pathlib.Path]:
    """Writes the generated files into ``out``; returns their paths."""
    pinned, installed = pinned_tools_version(), installed_tools_version()
    if pinned != installed:
        raise GenerateError(
            f"grpcio-tools {installed} is installed, {REQUIREMENTS.name} pins {pinned}: "
            f"pip install -r {REQUIREMENTS}"
        )
    from grpc_tools import protoc

    # protoc's own well-known types (google/protobuf/timestamp.proto) ship with grpc_tools.
    well_known = pathlib.Path(protoc.__file__).resolve().parent / "_proto"
    with tempfile.TemporaryDirectory() as scratch:
        code = protoc.main(
            [
                "protoc",
                f"-I{PROTO_ROOT}",
                f"-I{well_known}",
                f"--python_out={scratch}",
                f"--pyi_out={scratch}",
                f"--grpc_python_out={scratch}",
                str(PROTO_ROOT / PROTO_FILE),
            ]
        )
        if code != 0:
            raise GenerateError(f"protoc failed with exit code {code}")
        produced = pathlib.Path(scratch) / pathlib.Path(PROTO_FILE).parent
        texts = {name: (produced / name).read_text() for name in GENERATED}

    for name, pattern, replacement in REWRITES:
        texts[name], count = re.subn(pattern, replacement, texts[name], flags=re.MULTILINE)
        if count == 0:
            raise GenerateError(f"{name}: protoc's output no longer contains {pattern!r}")
    for name, text in texts.items():
        leftover = re.search(r"^\s*(from|import) eventyay\b.*$", text, flags=re.MULTILINE)
        if leftover:
            raise GenerateError(f"{name} still imports the top-level package: {leftover.group(0)}")

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in GENERATED:
        path = out / name
        path.write_text(NOTE + texts[name])
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    try:
        for path in generate(args.out):
            print(f"wrote {path}")
    except GenerateError as err:
        print(f"generate.py: {err}", file=sys.stderr)
        return 1
    # A stale cache next to freshly written sources is harmless, but confusing when debugging.
    shutil.rmtree(args.out / "__pycache__", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
