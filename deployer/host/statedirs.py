"""Where the deployer keeps its state on this machine, readable by its owner only.

App records hold API tokens, secrets hold values, worker logs hold whatever apps print and
the proxies' access logs who called what. So every directory under `<data dir>/deployer/` is
0700 and the files in it 0600, whatever the umask, and directories an older version left
open are closed when next used.
"""

import os
import stat
from pathlib import Path

from stagekit.dirs import data_dir

OWNER_ONLY_DIR = 0o700
OWNER_ONLY_FILE = 0o600


def private_dir(path: Path) -> Path:
    """`path`, created if needed (parents too) and made owner-only."""
    path.mkdir(mode=OWNER_ONLY_DIR, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != OWNER_ONLY_DIR:
        path.chmod(OWNER_ONLY_DIR)
    return path


def state_dir(*parts: str) -> Path:
    """`<data dir>/deployer/<parts...>`, every level from `deployer` down owner-only."""
    path = private_dir(data_dir() / "deployer")
    for part in parts:
        path = private_dir(path / part)
    return path


def private_file(path: Path) -> Path:
    """`path` as an owner-only file, created empty if missing. Processes that then open it to
    write (a worker's shell appending its output, nginx its logs) keep that mode."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, OWNER_ONLY_FILE)
    try:
        os.fchmod(descriptor, OWNER_ONLY_FILE)
    finally:
        os.close(descriptor)
    return path
