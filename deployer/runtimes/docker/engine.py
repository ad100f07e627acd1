"""The Docker Engine through the `docker` CLI.

The CLI rather than the Engine API: it already knows DOCKER_HOST, contexts and TLS, and
`docker run` pulls a missing image itself, so this slice needs no client code of its own.
Every failure to reach the engine becomes `BackendUnhealthyException`; a command the engine
answers with an error becomes `DockerError`, carrying the engine's own message.
"""

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from deployer.exceptions import BackendUnhealthyException, DeployerException

BACKEND = "docker"
_UNREACHABLE = (
    "Cannot connect to the Docker daemon",
    "error during connect",
    "Is the docker daemon running",
)


def _sortable(stamp: str) -> str:
    """RFC 3339 with nanoseconds, made sortable as text: docker trims trailing zeros."""
    seconds, _, fraction = stamp.rstrip("Z").partition(".")
    return f"{seconds}.{fraction.ljust(9, '0')}"


class DockerError(DeployerException):
    """The engine answered a command with an error; `stderr` is what it said."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        self.args_ = list(args)
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"docker {' '.join(args[:2])} failed ({returncode}): {stderr.strip()}")


class DockerEngine:
    """A handful of docker CLI calls, each returning parsed output."""

    def __init__(self, binary: str | None = None, timeout: float = 600) -> None:
        found = binary or shutil.which("docker")
        if found is None:
            raise BackendUnhealthyException(BACKEND, "no docker CLI on PATH (install docker.io)")
        self.binary = found
        self.timeout = timeout

    def run_cli(self, *args: str, ok: Sequence[int] = (0,)) -> subprocess.CompletedProcess[str]:
        """Run `docker ARGS`; unreachable engine → BackendUnhealthyException."""
        try:
            result = subprocess.run(
                [self.binary, *args], capture_output=True, text=True, timeout=self.timeout
            )
        except subprocess.TimeoutExpired:
            raise BackendUnhealthyException(
                BACKEND, f"docker {args[0]} did not answer within {self.timeout}s"
            ) from None
        except OSError as error:
            raise BackendUnhealthyException(BACKEND, f"cannot run {self.binary}: {error}") from None
        if result.returncode not in ok:
            if any(marker in result.stderr for marker in _UNREACHABLE):
                raise BackendUnhealthyException(BACKEND, result.stderr.strip())
            raise DockerError(args, result.returncode, result.stderr)
        return result

    def ping(self) -> None:
        """Fail fast, before any work, when no engine answers."""
        self.run_cli("version", "--format", "{{.Server.Version}}")

    def run(
        self,
        image: str,
        command: Sequence[str],
        *,
        name: str,
        labels: Mapping[str, str],
        env: Mapping[str, str],
        mounts: Sequence[str] = (),
        workdir: str | None = None,
        publish: Sequence[str] = (),
        restart: str = "no",
        limits: Sequence[str] = (),
    ) -> str:
        """`docker run -d`; returns the container id. `limits` are resource flags such as
        `--cpus=0.5`."""
        args = ["run", "-d", "--name", name, "--restart", restart, *limits]
        for key, value in labels.items():
            args += ["--label", f"{key}={value}"]
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        for mount in mounts:
            args += ["--mount", mount]
        for port in publish:
            args += ["--publish", port]
        if workdir:
            args += ["--workdir", workdir]
        args += [image, *command]
        return self.run_cli(*args).stdout.strip()

    def list_ids(self, labels: Mapping[str, str]) -> list[str]:
        """Ids of all containers (running or not) carrying every label."""
        args = ["ps", "-a", "-q", "--no-trunc"]
        for key, value in labels.items():
            args += ["--filter", f"label={key}={value}"]
        return self.run_cli(*args).stdout.split()

    def inspect(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """`docker inspect` of the ids that still exist (removed ones are skipped)."""
        if not ids:
            return []
        result = self.run_cli("inspect", "--type", "container", *ids, ok=(0, 1))
        return json.loads(result.stdout or "[]")

    def logs(self, container_id: str) -> list[str]:
        """stdout and stderr of a container, merged by the engine's timestamps.

        `docker logs` returns the two streams on two pipes; each line's timestamp is when the
        engine read it, so lines of one stream keep their order while lines written to both
        streams within microseconds may swap. A gone container has no logs.
        """
        result = self.run_cli("logs", "--timestamps", container_id, ok=(0, 1))
        if result.returncode != 0:
            return []
        stamped = [
            line.partition(" ")
            for line in (result.stdout.splitlines() + result.stderr.splitlines())
        ]
        return [text for stamp, _, text in sorted(stamped, key=lambda item: _sortable(item[0]))]

    def remove(self, ids: Sequence[str]) -> None:
        """Force-remove containers; already-gone ones are fine."""
        if ids:
            self.run_cli("rm", "-f", "-v", *ids, ok=(0, 1))
