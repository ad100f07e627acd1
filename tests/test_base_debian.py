"""The mmdebstrap-built Debian base: a valid, reproducible rootfs layer that Docker can run."""

import contextlib
import gzip
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

from bakery.bake import bake_image
from bakery.base.debian import build_debian_base
from bakery.base.default import default_base_tag
from bakery.errors import ImageBakingException
from bakery.oci.cache import BlobCache
from bakery.oci.daemon import DaemonPublisher
from bakery.oci.layout import LayoutPublisher
from bakery.oci.model import OCI_CONFIG, OCI_LAYER_GZIP, Image
from tests.fixtures.docker_engine import DockerCli
from tests.fixtures.services import wait_until


def _members(image: Image) -> list[tarfile.TarInfo]:
    with tarfile.open(image.layers[0].path, "r:gz") as tar:
        return tar.getmembers()


def _installed_packages(image: Image) -> bytes:
    with tarfile.open(image.layers[0].path, "r:gz") as tar:
        return tar.extractfile("var/lib/dpkg/status").read()


def test_layer_holds_python_and_certificates(debian_base):
    by_name = {m.name: m for m in _members(debian_base)}
    assert by_name["usr/bin/python3"].issym()
    assert by_name["usr/bin/python3.11"].isfile()
    assert by_name["etc/ssl/certs/ca-certificates.crt"].isfile()
    assert by_name["etc/ssl/certs/ca-certificates.crt"].size > 100_000


# auditwheel's manylinux_2_17..2_41 `lib_whitelist` without the X11 and GL libraries
# (the README's base section says why those are left out)
MANYLINUX_SYSTEM_LIBRARIES = (
    "libatomic.so.1", "libgcc_s.so.1", "libstdc++.so.6", "libm.so.6", "libmvec.so.1",
    "libanl.so.1", "libdl.so.2", "librt.so.1", "libc.so.6", "libnsl.so.1", "libutil.so.1",
    "libpthread.so.0", "libresolv.so.2", "libexpat.so.1", "libz.so.1", "libglib-2.0.so.0",
    "libgobject-2.0.so.0", "libgthread-2.0.so.0",
)  # fmt: skip


def test_layer_holds_the_system_libraries_manylinux_wheels_may_link(debian_base):
    names = {m.name for m in _members(debian_base)}
    libraries = {f"usr/lib/x86_64-linux-gnu/{name}" for name in MANYLINUX_SYSTEM_LIBRARIES}
    assert sorted(libraries - names) == []


def test_layer_entries_are_normalised(debian_base):
    members = _members(debian_base)
    names = [m.name for m in members]
    assert names == sorted(names)
    assert [n for n in names if n == "dev" or n.startswith("dev/")] == ["dev"]
    assert not [m.name for m in members if m.ischr() or m.isblk() or m.isfifo()]
    assert {m.mtime for m in members} == {0}
    assert {(m.uname, m.gname) for m in members} == {("", "")}
    assert not {"etc/resolv.conf", "etc/hostname", "var/lib/apt/lists/InRelease"} & set(names)


def test_owners_and_special_modes_are_debians(debian_base):
    """Root owns everything but a few paths with Debian's fixed system ids; setuid, setgid
    and sticky bits survive, so no helper gains privileges it did not have."""
    by_name = {m.name: m for m in _members(debian_base)}
    others = {name: (m.uid, m.gid) for name, m in by_name.items() if (m.uid, m.gid) != (0, 0)}
    assert others["usr/sbin/unix_chkpwd"] == (0, 42)  # shadow
    assert others["var/mail"] == (0, 8)  # mail
    assert all(uid < 100 and gid < 100 for uid, gid in others.values())
    assert len(others) < 20
    assert by_name["usr/sbin/unix_chkpwd"].mode & stat.S_ISGID
    assert by_name["usr/bin/su"].mode & stat.S_ISUID
    assert by_name["tmp"].mode == 0o1777


def test_hard_links_point_at_earlier_entries(debian_base):
    seen: set[str] = set()
    links = {}
    for member in _members(debian_base):
        if member.islnk():
            assert member.linkname in seen
            links[member.name] = member.linkname
        seen.add(member.name)
    assert links["usr/bin/perl5.36.0"] == "usr/bin/perl"


def test_bytecode_does_not_depend_on_mtimes(debian_base):
    """mtimes are all 0, so .pyc files must be hash-checked, not timestamp-checked."""
    flags = set()
    with tarfile.open(debian_base.layers[0].path, "r:gz") as tar:
        for member in tar:
            if member.name.endswith(".pyc"):
                flags.add(int.from_bytes(tar.extractfile(member).read(8)[4:8], "little"))
    assert flags == {0b11}  # hash-based, checked against the source


def test_config_has_labels_and_no_timestamps(debian_base):
    layer = debian_base.layers[0]
    config = json.loads(debian_base.config.path.read_bytes())
    assert config["config"]["Labels"] == {
        "org.bakery.base.suite": "bookworm",
        "org.bakery.python": "3.11",
        "org.bakery.python.executable": "/usr/bin/python3.11",
    }
    assert config["config"]["Cmd"] == ["python3"]
    assert "LANG=C.UTF-8" in config["config"]["Env"]
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert "created" not in config
    assert [sorted(entry) for entry in config["history"]] == [["comment", "created_by"]]
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer.diff_id]}
    raw = gzip.decompress(layer.path.read_bytes())
    assert layer.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert (debian_base.config.media_type, layer.media_type) == (OCI_CONFIG, OCI_LAYER_GZIP)


def test_rebuild_gives_the_same_digest(debian_base, tmp_path):
    """Same packages -> same bytes. The cached base may predate a Debian point release, so
    the digests may differ only if the installed package list differs too."""
    fresh = build_debian_base(BlobCache(tmp_path / "cache"))
    same_packages = _installed_packages(fresh) == _installed_packages(debian_base)
    assert fresh.digest == debian_base.digest or not same_packages


def test_runs_in_docker(debian_base, docker_engine: DockerCli, tmp_path):
    repository = "bakery-test/base-debian"
    tag = uuid.uuid4().hex[:12]
    image_id = DaemonPublisher(repository, state_dir=tmp_path).publish(debian_base, tag)
    try:
        script = (
            "import ssl, sys; print(sys.version.split()[0]);"
            "print(ssl.create_default_context().cert_store_stats()['x509_ca'])"
        )
        result = docker_engine.run("run", "--rm", image_id, "python3", "-c", script)
        version, certificates = result.stdout.decode().split()
        assert version.startswith("3.11.")
        assert int(certificates) > 100
    finally:
        docker_engine.run("rmi", f"{repository}:{tag}")


def test_unknown_suite_is_reported(tmp_path):
    with pytest.raises(ImageBakingException, match="mmdebstrap failed") as failure:
        build_debian_base(BlobCache(tmp_path), suite="no-such-suite")
    assert failure.value.details


def test_unreachable_mirror_is_reported(tmp_path):
    with pytest.raises(ImageBakingException, match="mirror is unreachable"):
        build_debian_base(BlobCache(tmp_path), mirror="http://127.0.0.1:9/debian")


def test_unsupported_platform_is_reported(tmp_path):
    with pytest.raises(ImageBakingException, match="linux/arm64"):
        build_debian_base(BlobCache(tmp_path), platform="windows/amd64")


@pytest.fixture
def default_base_bake_env(tmp_path, monkeypatch, debian_base):
    """Nothing configured, so `bake_image` uses the embedded default base: the one the
    fixture built (with the same `build_debian_base` call), already in the local layout."""
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BAKERY_IMAGE_LAYOUT", str(tmp_path / "layout"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("BAKERY_BASE_IMAGE", raising=False)
    monkeypatch.delenv("BAKERY_REGISTRY", raising=False)
    LayoutPublisher(tmp_path / "layout").publish(debian_base, default_base_tag("linux/amd64"))


def test_manylinux_wheels_run_on_the_default_base(default_base_bake_env, docker_engine):
    """numpy, pandas and scikit-learn (C++ and Fortran extensions, bundled OpenBLAS) find
    every system library their manylinux wheels expect: libstdc++ first of all."""
    baked = bake_image(pypi={"numpy": "", "pandas": "", "scikit-learn": ""}, target="daemon")
    script = (
        "import numpy as np, pandas as pd\n"
        "from sklearn.linear_model import LinearRegression\n"
        "x = np.arange(10.0).reshape(-1, 1)\n"
        "frame = pd.DataFrame({'x': x.ravel(), 'y': 3 * x.ravel() + 2})\n"
        "model = LinearRegression().fit(frame[['x']], frame['y'])\n"
        "print(round(model.coef_[0], 6), round(model.intercept_, 6), frame['y'].sum())\n"
    )
    try:
        ran = docker_engine.run("run", "--rm", baked.image, baked.python_path, "-c", script)
        assert ran.stdout.decode().split() == ["3.0", "2.0", "155.0"]
    finally:
        docker_engine.run("rmi", baked.image)


class _Interrupted(BaseException):
    """Stands for Ctrl-C or a caller's timeout: like KeyboardInterrupt, not an Exception."""


def _mounts_under(directory: Path) -> list[str]:
    inside = f"{directory}/"
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [point for point in points if point.startswith(inside)]


def _chrooted_under(directory: Path) -> list[int]:
    """Processes whose root directory is inside `directory` (a build's chroot)."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if os.readlink(proc / "root").startswith(f"{directory}/"):
                pids.append(int(proc.name))
    return pids


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """`tmp_path` as TMPDIR; whatever a failed test leaked there is unmounted afterwards, so
    pytest's later removal of old temp dirs can never reach into a bind-mounted host dir."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # gettempdir() caches
    yield tmp_path
    for point in reversed(_mounts_under(tmp_path)):
        subprocess.run(["umount", "--lazy", point], check=False)


def test_interrupted_build_leaves_no_mount_process_or_tree(scratch):
    """Interrupt the build while packages are configured inside its chroot (so /proc, /sys,
    /dev/pts and the bind-mounted /dev/shm are up): nothing stays mounted, running or on
    disk, and the host's /dev/shm keeps its files."""
    sentinel = Path("/dev/shm") / f"bakery-test-{uuid.uuid4().hex}"
    sentinel.write_text("keep me")
    building = threading.Event()
    done = threading.Event()

    def interrupt(signum, frame):
        if building.is_set():
            raise _Interrupted

    def watch() -> None:  # interrupt the main thread once the chroot is in use
        while not done.is_set():
            if _chrooted_under(scratch):
                signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
                return
            done.wait(0.05)

    previous = signal.signal(signal.SIGUSR1, interrupt)
    watcher = threading.Thread(target=watch)
    try:
        building.set()
        watcher.start()
        with pytest.raises(_Interrupted):
            build_debian_base(BlobCache(scratch / "cache"))
    finally:
        building.clear()
        done.set()
        watcher.join()
        signal.signal(signal.SIGUSR1, previous)
        survived = sentinel.exists()
        sentinel.unlink(missing_ok=True)
    assert _mounts_under(scratch) == []
    assert _chrooted_under(scratch) == []
    assert list((scratch / "tmp").iterdir()) == []
    assert list((scratch / "cache" / "tmp").iterdir()) == []
    assert survived


def _running_in(directory: Path) -> list[int]:
    """Processes with their root or working directory inside `directory`, or naming it in
    their command line: a build's mmdebstrap, apt, dpkg and maintainer scripts."""
    pids = set(_chrooted_under(directory))
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if str(directory) in (proc / "cmdline").read_text(errors="replace"):
                pids.add(int(proc.name))
    return sorted(pids)


def test_killed_caller_takes_its_build_with_it(scratch):
    """SIGKILL the process running a build mid-way: the build dies with it rather than run on
    unattended and write a base nobody collects; nothing of it stays mounted."""
    code = (
        "import sys; from pathlib import Path; from bakery.oci.cache import BlobCache;"
        "from bakery.base.debian import build_debian_base;"
        "build_debian_base(BlobCache(Path(sys.argv[1])))"
    )
    caller = subprocess.Popen([sys.executable, "-c", code, str(scratch / "cache")])
    try:
        wait_until(lambda: bool(_chrooted_under(scratch)), "the build's chroot", timeout=600)
    finally:
        caller.kill()
        caller.wait()
    wait_until(lambda: not _running_in(scratch), "the build's processes to end", timeout=600)
    assert _mounts_under(scratch) == []
    tarballs = [path for path in scratch.rglob("*.tar") if path.stat().st_size]
    assert tarballs == []  # mmdebstrap creates its (empty) target first, fills it last
