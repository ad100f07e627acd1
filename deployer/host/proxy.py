"""The public URL of a locally run app: one nginx per app on 127.0.0.1, fronting its replicas.

A real proxy rather than one of ours: nginx balances across the serving version's workers,
retries the next one on a connection error, and for API auth checks HTTP basic credentials
against an htpasswd line (`deployer.host.auth`), answering 401 without them. Each app gets its own
nginx (prefix `<data dir>/deployer/proxy/<runtime>/<app>/`, owner-only with its logs: they
name every caller) and keeps its port across versions, so an upgrade is a config reload:
in-flight requests finish on the old workers.
nginx daemonizes, so the URL outlives the Python process that deployed the app.
"""

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from deployer.exceptions import BackendUnhealthyException
from deployer.host.auth import htpasswd_line
from deployer.host.procfs import running
from deployer.host.statedirs import private_dir, private_file, state_dir
from deployer.orchestration.records import AppRecord
from stagekit.files import write_atomic

_RELOAD_TIMEOUT = 10.0
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
_LOGS = ("access.log", "error.log")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def render_config(prefix: Path, port: int, upstreams: Sequence[str], app: str, auth: bool) -> str:
    """nginx.conf for one app; no upstreams (scaled to zero, nothing ready) → 503."""
    temp = "\n".join(f"  {kind}_temp_path {prefix / 'tmp' / kind};" for kind in _TEMP_PATHS)
    user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    if upstreams:
        servers = "".join(
            f"    server {address} max_fails=1 fail_timeout=2s;\n" for address in upstreams
        )
        upstream = f"  upstream app {{\n{servers}  }}\n"
        serve = (
            "      proxy_pass http://app;\n"
            "      proxy_http_version 1.1;\n"
            "      proxy_set_header Host $http_host;\n"
            "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
            "      proxy_set_header Upgrade $http_upgrade;\n"
            '      proxy_set_header Connection "";\n'
            "      proxy_next_upstream error timeout http_502 http_503;\n"
        )
    else:
        upstream = ""
        serve = f'      return 503 "app {app} has no running workers; deploy it again\\n";\n'
    check = (
        f'      auth_basic "bakery app {app}";\n      auth_basic_user_file {prefix / "htpasswd"};\n'
        if auth
        else ""
    )
    return (
        f"{user}daemon on;\n"
        "worker_processes 1;\n"
        f"pid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"  access_log {prefix / 'access.log'};\n"
        f"{temp}\n"
        f"{upstream}"
        "  server {\n"
        f"    listen 127.0.0.1:{port};\n"
        "    location / {\n"
        f"{check}{serve}"
        "    }\n"
        "  }\n"
        "}\n"
    )


class LocalProxy:
    """Starts, reconfigures and stops the nginx of each app of one local runtime."""

    def __init__(self, runtime: str, root: Path | None = None) -> None:
        self.root = private_dir(root) if root else state_dir("proxy", runtime)
        found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
        self.binary = found

    def _prefix(self, name: str) -> Path:
        return self.root / name

    def url(self, record: AppRecord) -> str | None:
        if record.public_port is None or self._master(record.name) is None:
            return None
        return f"http://127.0.0.1:{record.public_port}"

    def expose(self, record: AppRecord, upstreams: Sequence[str]) -> None:
        """Point the app's URL at `upstreams` (host:port), starting nginx if needed.

        `record.public_port` must be set (the caller allocates it once per app). Returns
        once nginx answers with the new configuration.
        """
        if self.binary is None:
            raise BackendUnhealthyException(
                "nginx", "the local runtimes front apps with nginx: apt-get install nginx-light"
            )
        assert record.public_port is not None
        prefix = private_dir(self._prefix(record.name))
        for kind in _TEMP_PATHS:
            private_dir(prefix / "tmp" / kind)
        for log in _LOGS:
            private_file(prefix / log)  # nginx appends to them and keeps the mode
        auth = record.api_token is not None
        if record.api_token is not None:
            write_atomic(prefix / "htpasswd", htpasswd_line(record.api_token, record.id).encode())
            (prefix / "htpasswd").chmod(0o600)
        config = render_config(prefix, record.public_port, upstreams, record.name, auth)
        write_atomic(prefix / "nginx.conf", config.encode())
        master = self._master(record.name)
        if master is None:
            self._nginx(prefix)
        else:
            self._reload(master)

    def stop(self, record: AppRecord) -> None:
        """Stop the app's nginx (fast shutdown) and forget its files."""
        master = self._master(record.name)
        if master is not None:
            os.kill(master, signal.SIGTERM)
            deadline = time.monotonic() + _RELOAD_TIMEOUT
            while running(master) and time.monotonic() < deadline:
                time.sleep(0.02)
        shutil.rmtree(self._prefix(record.name), ignore_errors=True)

    def _nginx(self, prefix: Path) -> None:
        assert self.binary is not None
        result = subprocess.run(
            [self.binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise BackendUnhealthyException("nginx", result.stderr.strip())

    def _master(self, name: str) -> int | None:
        """The app's nginx master pid, if it runs."""
        try:
            pid = int((self._prefix(name) / "nginx.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if running(pid) else None

    @staticmethod
    def _reload(master: int) -> None:
        """SIGHUP, then wait until a new worker runs and the old ones have exited: until
        then an old worker may still accept a connection and answer with the old config."""
        before = _children(master)
        os.kill(master, signal.SIGHUP)
        deadline = time.monotonic() + _RELOAD_TIMEOUT
        while time.monotonic() < deadline:
            now = _children(master)
            if now - before and not now & before:
                return
            time.sleep(0.01)
        if not _children(master) - before:
            raise BackendUnhealthyException("nginx", f"nginx {master} did not reload its config")


def _children(pid: int) -> set[int]:
    try:
        return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()
