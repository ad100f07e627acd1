"""What Linux says about a process, read from /proc: the one place the deployer asks whether
a pid still runs (the local proxy's nginx, an upgrade lock's holder, a process worker), and
where TCP ports listen (a process worker must listen on loopback only)."""

import ipaddress
import struct
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_LISTEN = "0A"


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


def tcp_listeners() -> dict[int, set[IPAddress]]:
    """Every listening TCP socket of this network namespace, as port → the addresses it
    listens on (/proc/net/tcp and tcp6, see proc(5))."""
    found: dict[int, set[IPAddress]] = defaultdict(set)
    for table in ("tcp", "tcp6"):
        try:
            rows = Path("/proc/net", table).read_text().splitlines()[1:]
        except OSError:  # no IPv6 on this machine
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == _LISTEN:
                address, _, port = fields[1].partition(":")
                found[int(port, 16)].add(_address(address))
    return dict(found)


def is_loopback(address: IPAddress) -> bool:
    """127.0.0.0/8, ::1, or an IPv6 socket's IPv4-mapped loopback (::ffff:127.0.0.1)."""
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _address(hexadecimal: str) -> IPAddress:
    """The kernel prints each 32-bit word of the address in host byte order."""
    words = [int(hexadecimal[i : i + 8], 16) for i in range(0, len(hexadecimal), 8)]
    return ipaddress.ip_address(struct.pack(f"={len(words)}I", *words))
