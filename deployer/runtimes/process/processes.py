"""Worker processes: launched detached, observed through /proc, stopped as process groups.

A worker is `/bin/sh -c "<commands>"` under a tiny parent shell that writes the command's
exit code to a file when it ends, so any Python process (not only the one that launched it)
can tell a crash from a stop and report the code. The launcher starts a new session and
backgrounds that pair, so the worker is nobody's child here: it outlives the deploying
process, and every observer sees it the same way. A pid is trusted only with the start time
/proc showed at launch, so a recycled pid never passes for a worker.
"""

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from deployer.host.procfs import proc_stat

_LAUNCH = '( /bin/sh -c "$1"; echo $? >"$2" ) >>"$3" 2>&1 </dev/null & echo "$$ $!"'
"""$1 the commands, $2 the exit-code file, $3 the log; prints the group id and worker pid."""
_POLL = 0.05


@dataclass(frozen=True)
class Launched:
    """A started worker: `pid` of its parent shell, `pgid` of its group, and `start_ticks`,
    the pid's start time since boot (None if it had already ended when we looked)."""

    pid: int
    pgid: int
    start_ticks: int | None
    started_at: float


def launch(
    command: str, *, cwd: Path, env: Mapping[str, str], log: Path, exit_file: Path
) -> Launched:
    """Start `command` in a new session with stdout and stderr appended to `log`."""
    launcher = subprocess.run(
        ["/bin/sh", "-c", _LAUNCH, "bakery-worker", command, str(exit_file), str(log)],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
    )
    pgid, pid = map(int, launcher.stdout.split())
    return Launched(pid, pgid, start_ticks(pid), time.time())


def start_ticks(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot); None once it ended (zombies included)."""
    stat = proc_stat(pid)
    return None if stat is None or stat.state == "Z" else stat.start_ticks


def alive(pid: int, ticks: int | None) -> bool:
    """Whether the process launched as `pid` at `ticks` still runs."""
    return ticks is not None and start_ticks(pid) == ticks


def stop_groups(pgids: Sequence[int], grace: float) -> None:
    """SIGTERM each process group, SIGKILL what is left after `grace` seconds; returns
    once no process of the groups runs. Callers pass only groups of live workers: a live
    member keeps a group id from being reused by anyone else."""
    if not pgids:
        return
    _signal(pgids, signal.SIGTERM)
    if not _wait_gone(pgids, grace):
        _signal(pgids, signal.SIGKILL)
        _wait_gone(pgids, grace)


def _signal(pgids: Sequence[int], signum: int) -> None:
    for pgid in pgids:
        with suppress(ProcessLookupError):  # the whole group already ended
            os.killpg(pgid, signum)


def _wait_gone(pgids: Sequence[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _running_groups(pgids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
    return True


def _running_groups(pgids: Sequence[int]) -> set[int]:
    """Which of `pgids` still have a process that is not a zombie."""
    wanted = set(pgids)
    stats = (
        proc_stat(int(entry.name)) for entry in Path("/proc").iterdir() if entry.name.isdigit()
    )
    return {s.pgrp for s in stats if s is not None and s.pgrp in wanted and s.state != "Z"}
