"""Generate the gRPC stubs under stagekit/api from the .proto files in proto/, in one step.

Run: uv run python -m stagekit.api.generate   (grpcio-tools is a dev dependency)

protoc sees proto/ as `stagekit/api/`, so the generated modules import each other as
`stagekit.api.bakery.v1...` and need no rewriting. tests/test_api_stubs.py generates again
into a temp dir and fails when the committed stubs differ.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto"
PACKAGE = "stagekit/api"


def generate(out: Path) -> list[Path]:
    """Write the stubs of every .proto under proto/ below `out`; returns the files written."""
    from grpc_tools import protoc  # dev dependency: only generating needs it

    sources = sorted(path.relative_to(PROTO) for path in PROTO.rglob("*.proto"))
    arguments = [
        "grpc_tools.protoc",
        f"-I{PACKAGE}={PROTO}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *(f"{PACKAGE}/{source}" for source in sources),
    ]
    if protoc.main(arguments) != 0:
        raise SystemExit("protoc failed; see its message above")
    written = sorted(
        path
        for pattern in ("*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py")
        for path in (out / PACKAGE).rglob(pattern)
    )
    for directory in {path.parent for path in written}:
        while directory != out / PACKAGE:
            (directory / "__init__.py").touch()
            directory = directory.parent
    return written


if __name__ == "__main__":
    for path in generate(ROOT):
        print(path.relative_to(ROOT))
    sys.exit(0)
