"""Resolution with the real uv against real PyPI, for the target platform and Python."""

import subprocess
import sys
from pathlib import Path

import pytest

from bakery.errors import ImageBakingException
from bakery.lock import Lock, lock
from bakery.spec import make_spec

DIGEST = "sha256:" + "a" * 64
SIX_HASH = "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"


def lock_pypi(pypi: dict[str, str], **target: str) -> Lock:
    return lock(make_spec(pypi=pypi, base_image_digest=DIGEST, **target))


def test_platform_decides_the_wheel() -> None:
    amd64 = lock_pypi({"markupsafe": "==3.0.2"})
    arm64 = lock_pypi({"markupsafe": "==3.0.2"}, platform="linux/arm64")
    (amd64_wheel,) = amd64.packages
    (arm64_wheel,) = arm64.packages
    assert "cp311-cp311" in amd64_wheel.filename
    assert "x86_64" in amd64_wheel.filename
    assert "aarch64" in arm64_wheel.filename
    assert amd64_wheel.sha256 != arm64_wheel.sha256
    assert amd64.digest != arm64.digest


def test_python_decides_the_wheel() -> None:
    (wheel,) = lock_pypi({"markupsafe": "==3.0.2"}, python="3.12").packages
    assert "cp312-cp312" in wheel.filename


def test_lock_is_sorted_complete_and_round_trips() -> None:
    locked = lock_pypi({"flask": ">=3,<4", "requests": "", "six": "1.17.0"})
    names = [p.name for p in locked.packages]
    assert names == sorted(names)
    assert {"flask", "werkzeug", "jinja2", "markupsafe", "requests", "idna", "six"} <= set(names)
    six = next(p for p in locked.packages if p.name == "six")
    assert (six.version, six.sha256, six.filename) == (
        "1.17.0",
        SIX_HASH,
        "six-1.17.0-py2.py3-none-any.whl",
    )
    assert six.url.startswith("https://") and six.url.endswith(six.filename)
    assert all(p.filename.endswith(".whl") and p.size for p in locked.packages)
    assert Lock.from_json(locked.to_json()) == locked
    assert Lock.from_json(locked.to_json()).digest == locked.digest
    assert lock_pypi({"six": "1.17.0", "requests": "", "flask": ">=3,<4"}) == locked


def test_unknown_package_is_named() -> None:
    with pytest.raises(ImageBakingException, match="bakery-no-such-package-xyz") as caught:
        lock_pypi({"bakery-no-such-package-xyz": ""})
    assert "not found" in str(caught.value)
    assert "we can conclude" in str(caught.value)


def test_sdist_only_package_is_refused_by_name() -> None:
    # docopt 0.6.2 is published as a source distribution only.
    with pytest.raises(ImageBakingException, match=r"No wheel for linux/amd64.*: docopt"):
        lock_pypi({"docopt": ""})


def test_conflict_keeps_uvs_explanation() -> None:
    with pytest.raises(ImageBakingException) as caught:
        lock_pypi({"flask": "==3.1.0", "werkzeug": "<2"})
    message = str(caught.value)
    assert message.startswith("Could not resolve the requirements for linux/amd64")
    assert "Because flask" in message
    assert "we can conclude that your requirements are unsatisfiable" in message
    assert "hint" not in message
    assert caught.value.details and "error:" in caught.value.details


def test_hashes_from_requirements_file_are_enforced(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text(f"six==1.17.0 --hash=sha256:{SIX_HASH}\n")
    assert lock(make_spec(requirements_file=good, base_image_digest=DIGEST)).packages[0].name
    bad = tmp_path / "bad.txt"
    bad.write_text(f"six==1.17.0 --hash=sha256:{'0' * 64}\n")
    with pytest.raises(ImageBakingException, match=r"matches none of the --hash values.*six"):
        lock(make_spec(requirements_file=bad, base_image_digest=DIGEST))


def test_markers_that_exclude_every_requirement_are_refused() -> None:
    with pytest.raises(ImageBakingException, match="No requirement applies to linux/arm64"):
        lock_pypi({"six": "; platform_machine == 'x86_64'"}, platform="linux/arm64")


def test_a_direct_wheel_link_locks_exactly_that_wheel() -> None:
    url = (
        "https://files.pythonhosted.org/packages/d9/5a/e7c31adbe875f2abbb91bd84cf2dc52d792b5a01"
        "506781dbcf25c91daf11/six-1.16.0-py2.py3-none-any.whl"
    )
    (six,) = lock_pypi({"six": f"@ {url}"}).packages
    assert (six.version, six.url, six.filename) == ("1.16.0", url, url.rpartition("/")[2])
    assert six.sha256 == "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"


def test_bakes_starting_together_all_find_uv():
    """A server starts several builds at once; each looks uv up on its first lock. In a
    fresh interpreter (sysconfig not read yet) eight threads do it at the same moment."""
    probe = """
import threading
from bakery.lock import uv_binary
barrier = threading.Barrier(8)
errors = []
def find():
    barrier.wait()
    try:
        uv_binary()
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=find) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(errors)
"""
    root = Path(__file__).resolve().parent.parent
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=root
    )
    assert found.stdout.strip() == "[]"
