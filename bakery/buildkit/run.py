"""One build in BuildKit, start to end: session up, solve with progress, result on the host.

The result comes back through the session's FileSend as a tar (BuildKit's `tar` exporter)
and is unpacked into a host directory with tarfile's `data` filter: no absolute paths, no
links out, no devices, so what a build made cannot write outside that directory.
"""

import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import grpc

from bakery.buildkit.client import BuildKit
from bakery.buildkit.llb import Graph, Output
from bakery.buildkit.status import StatusTracker
from stagekit.cancel import CancelToken
from stagekit.progress import Reporter

CONTEXT = "context"
"""The `local://` name the build context is served as."""


def export(
    client: BuildKit,
    make_graph: Callable[[str], tuple[Graph, Output]],
    *,
    context: Path | None,
    destination: Path,
    reporter: Reporter,
    cancel: CancelToken,
    what: str,
    hint: str = "",
) -> None:
    """Solve the graph `make_graph(session id)` returns (the build context `context`, if
    any, served as `local://context`) and unpack its result into `destination`."""
    with tempfile.TemporaryDirectory(prefix="bakery-export-") as scratch:
        tar = Path(scratch) / "result.tar"
        session = client.session({CONTEXT: context} if context else {}, output=tar)
        try:
            graph, result = make_graph(session.id)
            tracker = StatusTracker(reporter, what)
            try:
                client.solve(
                    graph.definition(result),
                    session=session,
                    exporter="tar",
                    on_status=tracker.update,
                    cancel=cancel,
                )
            except grpc.RpcError as error:
                raise tracker.failure(error.details() or str(error), hint) from None
        finally:
            session.close()
        destination.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tar) as archive:
            archive.extractall(destination, filter="data")
