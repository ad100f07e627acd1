"""A Bakery server in its own process on loopback, for the benchmarks that call one."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

_SERVE = """
import sys, threading
from pathlib import Path
from frontends.service.server import ServerSettings, start
running = start(ServerSettings(port=0, state_dir=Path(sys.argv[1]), max_builds=2))
print(running.port, flush=True)
threading.Event().wait()
"""


class ServerProcess:
    """`start()` in a child process with its state (and whatever `env` points there) in an
    emptied `scratch` directory; `url` is what `service=` takes."""

    def __init__(self, scratch: Path, env: dict[str, str]) -> None:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        self.process = subprocess.Popen(
            [sys.executable, "-c", _SERVE, str(scratch / "state")],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.url = f"grpc://127.0.0.1:{self.port}"

    def builds(self) -> int:
        """Bakes this server built (not hits, not joined), from its Stats RPC."""
        import grpc

        from stagekit.api.bakery.v1 import bakery_pb2, bakery_pb2_grpc

        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            stats = bakery_pb2_grpc.AdminStub(channel).Stats(bakery_pb2.StatsRequest(), timeout=10)
        return stats.bakes_by_outcome.get("built", 0)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()
