"""How the package installs and imports: no top-level ``eventyay``, typed, importable next to
the backend's own ``eventyay`` package, and generated code that matches ``proto/``."""
from __future__ import annotations

import filecmp
import importlib.util
import os
import pathlib
import re
import subprocess
import sys
import textwrap
from importlib import metadata

import eventyay_bbb

from helpers import PACKAGE_DIR, REPO, skip_or_fail

GENERATED = ("bbb_pb2.py", "bbb_pb2.pyi", "bbb_pb2_grpc.py")


def test_the_distribution_has_no_top_level_eventyay_and_is_typed() -> None:
    files = [str(f) for f in metadata.files("eventyay-bbb") or ()]
    top_level = {f.split("/", 1)[0] for f in files if "/" in f and ".dist-info" not in f}
    assert top_level == {"eventyay_bbb"}, top_level
    assert "eventyay_bbb/py.typed" in files
    assert "eventyay_bbb/_proto/bbb_pb2.pyi" in files
    requires = metadata.requires("eventyay-bbb") or []
    names = {r.split(">")[0].split("<")[0].split("=")[0].strip() for r in requires}
    assert {"grpcio", "grpcio-status", "protobuf"} <= names, requires


def test_it_imports_while_the_backends_eventyay_package_is_loaded(tmp_path: pathlib.Path) -> None:
    backend = tmp_path / "eventyay"
    (backend / "base" / "services").mkdir(parents=True)
    (backend / "__init__.py").write_text("WHO = 'the backend'\n")
    (backend / "base" / "__init__.py").write_text("")
    (backend / "base" / "services" / "__init__.py").write_text("")
    (backend / "base" / "services" / "bbb.py").write_text("def is_bbb_available():\n    return 'backend'\n")
    script = textwrap.dedent(
        """
        import sys
        first, = sys.argv[1:]
        if first == "backend":
            import eventyay.base.services.bbb
        import eventyay_bbb
        from eventyay_bbb import live, pb
        from eventyay_bbb._proto import bbb_pb2_grpc
        import eventyay
        import eventyay.base.services.bbb as backend_bbb

        assert eventyay.WHO == "the backend", eventyay.__file__
        assert backend_bbb.is_bbb_available() == "backend"
        assert pb.User(id="u", display_name="Ada").display_name == "Ada"
        assert pb.RoomUrlRequest.__module__ == "eventyay_bbb._proto.bbb_pb2"
        assert bbb_pb2_grpc.BbbServiceStub
        assert live.LiveBbb and eventyay_bbb.AsyncBbbClient
        stray = sorted(m for m in sys.modules if m.split(".")[0] == "eventyay" and
                       not getattr(sys.modules[m], "__file__", "").startswith(sys.path[0]))
        assert not stray, stray
        print("ok")
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path[1:]])}
    for first in ("backend", "package"):
        done = subprocess.run(
            [sys.executable, "-c", script, first], env=env, capture_output=True, text=True, cwd=tmp_path
        )
        assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def _generate_module():
    spec = importlib.util.spec_from_file_location("eventyay_bbb_generate", PACKAGE_DIR / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checked_in_generated_code_matches_the_proto(tmp_path: pathlib.Path) -> None:
    if importlib.util.find_spec("grpc_tools") is None:
        skip_or_fail("grpc_tools (grpcio-tools) is missing: cannot check the generated code against proto/")
    generate = _generate_module()
    try:
        generate.generate(tmp_path)
    except generate.GenerateError as err:
        skip_or_fail(f"cannot regenerate: {err}")
    checked_in = PACKAGE_DIR / "src" / "eventyay_bbb" / "_proto"
    stale = [name for name in GENERATED if not filecmp.cmp(tmp_path / name, checked_in / name, shallow=False)]
    assert not stale, (
        f"{stale} in {checked_in} are stale against {REPO / 'proto'}: run `python clients/python/generate.py`"
    )
    installed = pathlib.Path(eventyay_bbb.__file__).parent / "_proto"
    for name in GENERATED:
        assert (installed / name).read_bytes() == (checked_in / name).read_bytes(), f"installed {name} differs"


def test_generated_code_never_imports_a_top_level_eventyay() -> None:
    installed = pathlib.Path(eventyay_bbb.__file__).parent / "_proto"
    for name in GENERATED:
        for line in (installed / name).read_text().splitlines():
            stripped = line.strip()
            assert not stripped.startswith(("import eventyay", "from eventyay ", "from eventyay.")), (name, line)


def test_the_version_checks_of_the_generated_code_fit_the_declared_ranges() -> None:
    """The floors in pyproject.toml are the versions the generated code asks for at import."""
    installed = pathlib.Path(eventyay_bbb.__file__).parent / "_proto"
    pb2 = (installed / "bbb_pb2.py").read_text()
    grpc_module = (installed / "bbb_pb2_grpc.py").read_text()
    gencode = re.search(r"Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),", pb2)
    grpc_version = re.search(r"GRPC_GENERATED_VERSION = '([\d.]+)'", grpc_module)
    assert gencode and grpc_version
    floors = {}
    for requirement in metadata.requires("eventyay-bbb") or []:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()
        floors[name] = [s.strip()[2:] for s in requirement[len(name):].split(",") if s.strip().startswith(">=")]
    assert floors["protobuf"] == [".".join(gencode.groups())], floors
    assert floors["grpcio"] == [grpc_version.group(1)], floors
    assert floors["grpcio-status"] == [grpc_version.group(1)], floors


def test_the_glue_for_eventyay_compiles_and_is_no_package() -> None:
    glue = PACKAGE_DIR / "glue"
    files = sorted(glue.glob("*.py"))
    assert {f.name for f in files} >= {"settings.py", "services_bbb.py", "live_modules_bbb.py", "chat_hook.py"}
    assert not (glue / "__init__.py").exists() and not (glue / "eventyay").exists()
    for path in files:
        compile(path.read_text(), str(path), "exec")
