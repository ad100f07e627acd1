"""What Linux says about a process, read from /proc: the one place the deployer asks whether
a pid still runs (the local proxy's nginx, an upgrade lock's holder, a process worker)."""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcStat:
    state: str
    pgrp: int
    start_ticks: int
    """When the process started, in clock ticks since boot: tells a reused pid apart."""


def proc_stat(pid: int) -> ProcStat | None:
    """Fields of /proc/<pid>/stat (see proc(5)); the command name may hold spaces and ')'."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    return ProcStat(state=fields[0], pgrp=int(fields[2]), start_ticks=int(fields[19]))


def running(pid: int) -> bool:
    """The process exists and is not a zombie."""
    stat = proc_stat(pid)
    return stat is not None and stat.state != "Z"
