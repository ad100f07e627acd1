"""Walk one src root and select the files a package holds.

Symlinks: a link whose target lies inside the src root is followed (directories are walked,
files are packaged as regular files at the link's path) with cycle detection; a link whose
target lies outside the root is refused, because silently packaging e.g. a home directory
file is worse than asking the user to copy it in. Broken links, sockets, FIFOs and devices
are skipped with a warning.
"""

import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from packager.errors import CodePackagingException
from packager.ignore import IgnoreRules
from stagekit.cancel import CancelToken
from stagekit.errors import ErrorKind


class SourceFile(NamedTuple):
    """One file selected for the package, with the stat fields the stat cache keys on.

    A NamedTuple rather than a dataclass: a walk builds tens of thousands of them."""

    relative: str  # '/'-separated path inside the package
    path: str  # absolute path to read (a link's target for followed links)
    size: int
    executable: bool
    mtime_ns: int
    ctime_ns: int
    inode: int


@dataclass
class WalkReport:
    """What a walk found besides files: for messages when nothing matched."""

    ignore_files: set[str] = field(default_factory=set)
    skipped: int = 0


def walk_root(
    root: Path,
    suffixes: Sequence[str],
    excludes: Sequence[str],
    warn: Callable[[str], None],
    report: WalkReport,
    cancel: CancelToken,
) -> Iterator[SourceFile]:
    """Yield the selected files under `root` in no particular order, checking `cancel`
    before each directory."""
    real_root = root.resolve()
    suffix_tuple = tuple(suffixes)
    rules = IgnoreRules.defaults(excludes)
    report.ignore_files.update(rules.describe())
    # Stack of (directory path, relative path, rules, ancestor (dev, inode) chain).
    root_stat = real_root.stat()
    stack = [(real_root, "", rules, frozenset({(root_stat.st_dev, root_stat.st_ino)}))]
    while stack:
        cancel.check()
        directory, relative, rules, ancestors = stack.pop()
        rules = rules.entering(directory, relative)
        files_ruled = rules.rules_files
        report.ignore_files.update(rules.describe())
        try:
            entries = list(os.scandir(directory))
        except OSError as error:
            raise CodePackagingException(
                f"cannot read directory {directory}: {error}", kind=ErrorKind.INTERNAL
            ) from error
        for entry in entries:
            # d_type is free: a plain file with the wrong suffix needs no stat at all.
            if not entry.name.endswith(suffix_tuple) and entry.is_file(follow_symlinks=False):
                report.skipped += 1
                continue
            child_relative = f"{relative}/{entry.name}" if relative else entry.name
            try:
                st = os.stat(entry.path)  # follows links
            except FileNotFoundError:
                shown = root / child_relative
                warn(f"skipping broken symlink {shown} -> {os.readlink(entry.path)}")
                continue
            except OSError as error:
                warn(f"skipping {root / child_relative}: {error}")
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if not is_dir and not stat.S_ISREG(st.st_mode):
                warn(f"skipping {root / child_relative}: not a regular file or directory")
                continue
            if (not is_dir and not entry.name.endswith(suffix_tuple)) or (
                (is_dir or files_ruled) and rules.ignores(child_relative, is_dir)
            ):
                report.skipped += 1
                continue
            target = entry.path
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if not Path(target).is_relative_to(real_root):
                    raise CodePackagingException(
                        f"{root / child_relative} is a symlink to {target}, outside the src "
                        f"root {root}; copy the file into the tree or add the link to .bakeryignore"
                    )
            if is_dir:
                identity = (st.st_dev, st.st_ino)
                if identity in ancestors:
                    warn(f"skipping {root / child_relative}: symlink cycle back to {target}")
                    continue
                stack.append((Path(target), child_relative, rules, ancestors | {identity}))
                continue
            yield SourceFile(
                child_relative,
                target,
                st.st_size,
                bool(st.st_mode & stat.S_IXUSR),
                st.st_mtime_ns,
                st.st_ctime_ns,
                st.st_ino,
            )
