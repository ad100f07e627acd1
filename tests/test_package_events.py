"""package_code reports through typed events: what a service streams and the CLI draws."""

import os
from pathlib import Path

import pytest

from packager import CodePackagingException, package_code
from packager.members import CHUNK
from stagekit.errors import ErrorKind
from stagekit.progress import Event, LogLine, Progress

pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture
def tree(tmp_path) -> Path:
    """Small files (hashed and spooled in batches) and one over a chunk (hashed alone)."""
    root = tmp_path / "src"
    for index in range(300):
        path = root / f"pkg{index % 7}" / f"mod{index}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"value = {index}\n" * 500)
    (root / "big.txt").write_bytes(os.urandom(CHUNK + 12345))
    return root


def test_packaging_a_tree_yields_log_lines_and_byte_progress_per_stage(tree, tmp_path):
    events: list[Event] = []
    package = package_code([str(tree)], store=str(tmp_path / "store"), events=events.append)

    lines = [event.message for event in events if isinstance(event, LogLine)]
    assert lines[0].startswith("Found 301 files")
    assert lines[-1] == f"Packaged 301 files as {package.key}"
    total = sum(path.stat().st_size for path in tree.rglob("*") if path.is_file())
    for stage in ("hash", "tar"):
        steps = [event for event in events if isinstance(event, Progress) and event.stage == stage]
        assert steps, f"no {stage} progress"
        assert {(step.unit, step.total) for step in steps} == {("bytes", total)}
        done = [step.done for step in steps]
        assert done == sorted(done) and all(0 < value <= total for value in done)
        assert done[-1] == total


def test_a_file_changed_while_it_is_packaged_is_a_conflict(tree, tmp_path):
    """The large file is rewritten (same size) once it has been hashed: the tarball stage
    reads other bytes than were hashed and refuses, asking for another run."""
    big = tree / "big.txt"
    hashed = os.path.getsize(big)

    def rewrite_after_the_big_file_is_hashed(event: Event) -> None:
        if isinstance(event, Progress) and event.stage == "hash" and event.done == event.total:
            big.write_bytes(os.urandom(hashed))

    with pytest.raises(
        CodePackagingException, match="changed while it was being packaged"
    ) as raised:
        package_code(
            [str(tree)], store=str(tmp_path / "store"), events=rewrite_after_the_big_file_is_hashed
        )
    assert raised.value.kind is ErrorKind.CONFLICT
    assert not (tmp_path / "store").exists()
    assert package_code([str(tree)], store=str(tmp_path / "store")).key
