"""Git-style ignore rules: built-in excludes, nested .gitignore and .bakeryignore files.

Rules are evaluated the way git does: a deeper file overrides a shallower one, and within a
file the last matching pattern wins (negations included). Paths are always relative to the
src root, so directories *above* the root (say a `.worktrees` checkout) never match.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec
from pathspec.patterns.gitignore import GitIgnorePatternError
from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

IGNORE_FILES = (".gitignore", ".bakeryignore")
"""Read in every directory, in this order: .bakeryignore has the last word."""


def _pattern(line: str) -> GitIgnoreSpecPattern:
    """One line as git reads it: a pattern pathspec refuses (a lone `!` or `\\`, a trailing
    backslash) matches nothing in git, so it becomes a blank line instead of an error."""
    try:
        return GitIgnoreSpecPattern(line)
    except GitIgnorePatternError:
        return GitIgnoreSpecPattern("")


def _spec(lines: Sequence[str]) -> GitIgnoreSpec:
    return GitIgnoreSpec.from_lines(lines, _pattern)


@dataclass(frozen=True)
class _RuleFile:
    base: str  # directory the patterns are relative to ("" for the src root), '/'-terminated
    for_dirs: GitIgnoreSpec
    for_files: GitIgnoreSpec | None  # None when every pattern is directory-only
    origin: str  # for messages: "defaults" or a path relative to the src root

    @classmethod
    def parse(cls, base: str, lines: Sequence[str], origin: str) -> "_RuleFile":
        """Directory-only patterns (`build/`) never match a file in git: a file below an
        excluded directory is never reached, because the walk prunes the directory."""
        file_lines = [line for line in lines if not line.rstrip().endswith("/")]
        file_spec = _spec(file_lines)
        return cls(base, _spec(lines), file_spec if file_spec.patterns else None, origin)


@dataclass(frozen=True)
class IgnoreRules:
    """The rules in force in one directory: its ancestors' files, then its own."""

    files: tuple[_RuleFile, ...]

    @classmethod
    def defaults(cls, patterns: Sequence[str]) -> "IgnoreRules":
        return cls((_RuleFile.parse("", patterns, "built-in excludes " + " ".join(patterns)),))

    def entering(self, directory: Path, relative: str) -> "IgnoreRules":
        """Rules for `directory` (at `relative` below the root): adds its ignore files."""
        base = f"{relative}/" if relative else ""
        added = []
        for name in IGNORE_FILES:
            try:
                lines = (directory / name).read_text(encoding="utf-8", errors="replace")
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue
            added.append(_RuleFile.parse(base, lines.splitlines(), base + name))
        return IgnoreRules(self.files + tuple(added)) if added else self

    @property
    def rules_files(self) -> bool:
        """Whether any pattern in force can match a file (not only directories)."""
        return any(rule_file.for_files is not None for rule_file in self.files)

    def ignores(self, relative: str, is_dir: bool) -> bool:
        """Whether the path `relative` (to the src root) is excluded."""
        for rule_file in reversed(self.files):
            spec = rule_file.for_dirs if is_dir else rule_file.for_files
            if spec is None:
                continue
            local = relative[len(rule_file.base) :] + ("/" if is_dir else "")
            verdict = spec.check_file(local).include
            if verdict is not None:
                return verdict
        return False

    def describe(self) -> list[str]:
        """Where the rules came from, for an error that says what was applied."""
        return [rule_file.origin for rule_file in self.files]
