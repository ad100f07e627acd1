"""The committed gRPC stubs are what the .proto files in proto/ generate today."""

from pathlib import Path

from stagekit.api.generate import PACKAGE, ROOT, generate

REGENERATE = "run `uv run python -m stagekit.api.generate` and commit"


def test_committed_stubs_are_current(tmp_path: Path):
    fresh = generate(tmp_path)
    assert fresh, "no .proto files found under proto/"
    for path in fresh:
        relative = path.relative_to(tmp_path)
        committed = ROOT / relative
        assert committed.exists(), (
            f"{relative} is not committed: run `uv run python -m stagekit.api.generate`"
        )
        assert committed.read_bytes() == path.read_bytes(), (
            f"{relative} is stale: run `uv run python -m stagekit.api.generate` and commit"
        )
    committed = {p.relative_to(ROOT) for p in (ROOT / PACKAGE).rglob("*_pb2*.py*")}
    assert committed == {p.relative_to(tmp_path) for p in fresh}


def test_the_stubs_load_and_name_the_services():
    from stagekit.api.bakery.v1 import bakery_pb2, bakery_pb2_grpc

    services = bakery_pb2.DESCRIPTOR.services_by_name
    assert {"Bakery", "Admin"} <= set(services)
    assert hasattr(bakery_pb2_grpc, "BakeryServicer")
