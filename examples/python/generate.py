"""Generates the Python stubs of eventyay-bbb from ../../proto into ./gen.

Run it after a change of the proto files; the eventyay backend vendors the result (or runs this
in its build). The output is not committed here, so it can never drift from proto/.
"""
import pathlib
import sys

from grpc_tools import protoc

HERE = pathlib.Path(__file__).resolve().parent
PROTO = HERE.parent.parent / "proto"
OUT = HERE / "gen"


def main() -> int:
    OUT.mkdir(exist_ok=True)
    # protoc's bundled well-known types (google/protobuf/timestamp.proto) come with grpc_tools.
    well_known = pathlib.Path(protoc.__file__).parent / "_proto"
    code = protoc.main([
        "protoc",
        f"-I{PROTO}",
        f"-I{well_known}",
        f"--python_out={OUT}",
        f"--pyi_out={OUT}",
        f"--grpc_python_out={OUT}",
        str(PROTO / "eventyay/bbb/v1/bbb.proto"),
    ])
    if code != 0:
        return code
    # With ./gen on sys.path the stubs import as eventyay.bbb.v1.bbb_pb2(_grpc).
    for pkg in ["eventyay", "eventyay/bbb", "eventyay/bbb/v1"]:
        (OUT / pkg / "__init__.py").touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
