"""Run a root build tool so that nothing it mounts or starts outlives it, on any exit path.

mmdebstrap's root mode mounts /proc, /sys and /dev/pts in its chroot and bind-mounts the
host's /dev/shm there; it unmounts them only if it gets to run its own cleanup. Killed (by a
caller's exception, Ctrl-C or a timeout), it used to leave them mounted, and an `rm -rf` of its
tree then deleted the host's /dev/shm files. So the tool runs under `unshare`, in a mount
namespace of its own with private propagation (its mounts never exist in ours) and in a PID
namespace whose init is the tool (killing the init makes the kernel kill every process the
tool started, even those that left its process group). Its scratch directory is removed only
once all of them are gone, and never through a mount point. Should this process itself die
(SIGKILL, an unhandled SIGTERM), the tool dies with it; only its scratch directory, with
nothing mounted in it, stays in $TMPDIR.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from bakery.errors import ImageBakingException

_CONTAIN = [
    *("setpriv", "--pdeathsig", "KILL"),  # if this process dies, unshare and the init die too
    *("unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child"),
]
_MOUNTINFO = Path("/proc/self/mountinfo")
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")  # mountinfo writes " " as \040, "\" as \134, ...


def run_contained(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `command` in its own mount and PID namespaces; its stdout and stderr, merged, are
    the result's stdout. If anything interrupts the wait (an exception in this thread, e.g.
    KeyboardInterrupt), every process of the command is dead before the exception goes on."""
    for tool in ("setpriv", "unshare"):
        if shutil.which(tool) is None:
            raise ImageBakingException(
                f"{tool} is not installed: `apt-get install util-linux` (Debian/Ubuntu)"
            )
    with subprocess.Popen(
        _CONTAIN + command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        encoding="utf-8",
        errors="replace",  # a package's odd output must not fail the build
        start_new_session=True,  # Ctrl-C in a terminal reaches us only, and we kill it all
    ) as process:
        try:
            output, _ = process.communicate()
        except BaseException:
            _kill(process)
            raise
    return subprocess.CompletedProcess(command, process.returncode, output)


def _kill(process: subprocess.Popen[str]) -> None:
    """SIGKILL the namespace's init, so the kernel kills the rest of it, and wait for `unshare`,
    which returns only once the init has exited, i.e. after every process in the namespace.
    Before `unshare` has forked there is no init: then `unshare` itself goes, and --kill-child
    takes a child forked meanwhile with it."""
    init = _children(process.pid)
    for pid in init:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if not init:
        process.kill()
    process.wait()


def _children(pid: int) -> list[int]:
    try:
        return [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    except OSError:  # it has exited
        return []


@contextmanager
def scratch_directory(prefix: str) -> Iterator[Path]:
    """A fresh directory in $TMPDIR, removed afterwards by `remove_tree` on every path."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        remove_tree(path)


def remove_tree(path: Path) -> None:
    """Delete `path`, refusing while anything is mounted under it: deleting through a bind
    mount would delete the files of the host directory it shows."""
    mounted = mounts_under(path)
    if mounted:
        raise ImageBakingException(
            f"{path} still has {', '.join(mounted)} mounted, so it was not deleted; unmount "
            f"them (`umount --recursive --lazy MOUNTPOINT`), then delete {path}"
        )
    shutil.rmtree(path)


def mounts_under(path: Path) -> list[str]:
    """The mount points below `path` in this process's mount namespace."""
    inside = f"{path.resolve()}/"
    points = [line.split()[4] for line in _MOUNTINFO.read_text().splitlines()]
    decoded = (_OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), point) for point in points)
    return [point for point in decoded if point.startswith(inside)]
