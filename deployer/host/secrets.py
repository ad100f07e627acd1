"""The local runtimes' secrets store: named sets of environment variables, kept off the config.

A secret is one file `<data dir>/deployer/secrets/<name>.json` (mode 0600) of KEY: value
pairs; an app's `secrets=["name"]` puts every pair into each replica's environment, as a
Kubernetes Secret mounted with `envFrom` does in production. Apps keep only the names, so
config digests, records and logs never contain the values.
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from deployer.exceptions import AppConfigError
from deployer.host.statedirs import private_dir, state_dir
from deployer.model.names import is_env_name, is_secret_name
from stagekit.files import write_atomic


class SecretStore:
    """Named secrets on this machine."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = private_dir(root) if root else state_dir("secrets")

    def _path(self, name: str) -> Path:
        if not is_secret_name(name):
            raise AppConfigError(
                f"secret name {name!r} is invalid: use lowercase letters, digits, '-' and '.'"
            )
        return self.root / f"{name}.json"

    def put(self, name: str, values: Mapping[str, str]) -> None:
        """Create or replace secret `name`; keys must be environment variable names."""
        bad = [key for key in values if not is_env_name(key)]
        if bad:
            raise AppConfigError(
                f"secret {name!r}: keys must be environment variable names "
                f"(letters, digits, '_'; not starting with a digit): {', '.join(map(repr, bad))}"
            )
        write_atomic(self._path(name), json.dumps(dict(sorted(values.items()))).encode())

    def get(self, name: str) -> dict[str, str]:
        try:
            return json.loads(self._path(name).read_bytes())
        except FileNotFoundError:
            raise AppConfigError(
                f"secret {name!r} does not exist; create it with "
                f"`bakery secrets set {name} KEY=VALUE ...`"
            ) from None

    def names(self) -> list[str]:
        return sorted(path.stem for path in self.root.glob("*.json")) if self.root.is_dir() else []

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def environment(self, names: Sequence[str]) -> dict[str, str]:
        """Every named secret's pairs merged in order; all missing names reported at once."""
        missing = [name for name in names if not self._path(name).exists()]
        if missing:
            raise AppConfigError(
                f"secrets not found: {', '.join(map(repr, missing))}; create each with "
                "`bakery secrets set NAME KEY=VALUE ...`"
            )
        merged: dict[str, str] = {}
        for name in names:
            merged.update(self.get(name))
        return merged
