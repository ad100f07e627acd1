"""Build graphs in BuildKit's LLB, made in Python: image and local sources, exec steps.

An op is named by the sha256 of its serialized bytes, and an edge by that digest and an
output index, so the graph is built bottom-up: each method adds an op and returns the
`Output` later ops take as input. Serialization is deterministic (sorted maps), so the same
graph gives the same digests in every run.
"""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from stagekit.api.buildkit import llb_pb2

SCRATCH = None
"""An empty mount: what an exec writes there is that mount's output."""


@dataclass(frozen=True)
class Output:
    """Output `index` of the op whose digest is `digest`."""

    digest: str
    index: int = 0


@dataclass(frozen=True)
class Mount:
    """`source` (an Output, or SCRATCH) mounted at `dest`; `output` when the exec's changes to
    it are kept as a result."""

    dest: str
    source: Output | None
    readonly: bool = False
    output: bool = False
    selector: str = ""


@dataclass
class Graph:
    """The ops of one build for `platform` ("linux/amd64"), in the order they were added."""

    platform: str
    ops: dict[str, bytes] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def _platform(self) -> llb_pb2.Platform:
        os_name, architecture, *variant = self.platform.split("/")
        return llb_pb2.Platform(OS=os_name, Architecture=architecture, Variant="".join(variant))

    def _add(self, op: llb_pb2.Op, name: str) -> str:
        data = op.SerializeToString(deterministic=True)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.ops.setdefault(digest, data)
        self.names[digest] = name
        return digest

    def image(self, reference: str) -> Output:
        """The root filesystem of image `reference` (`host/repo@sha256:...`)."""
        source = llb_pb2.SourceOp(identifier=f"docker-image://{reference}")
        op = llb_pb2.Op(source=source, platform=self._platform())
        return Output(self._add(op, f"base {reference}"))

    def local(self, name: str, session_id: str) -> Output:
        """The directory the build's session serves as `name` (FileSync)."""
        attrs = {"local.session": session_id, "local.sharedkeyhint": name}
        op = llb_pb2.Op(source=llb_pb2.SourceOp(identifier=f"local://{name}", attrs=attrs))
        return Output(self._add(op, f"context {name}"))

    def exec(
        self,
        args: Sequence[str],
        *,
        mounts: Sequence[Mount],
        env: Mapping[str, str],
        name: str,
        network: Literal["sandbox", "none"] = "none",
        cwd: str = "/",
    ) -> dict[str, Output]:
        """Run `args` in a container of `mounts` (the one at `/` is the root filesystem);
        returns the Output of each mount marked `output` and of the root, by its `dest`."""
        inputs: list[llb_pb2.Input] = []
        positions: dict[Output, int] = {}
        pb_mounts: list[llb_pb2.Mount] = []
        outputs: dict[str, int] = {}
        for mount in mounts:
            index = -1
            if mount.source is not None:
                if mount.source not in positions:
                    positions[mount.source] = len(inputs)
                    inputs.append(
                        llb_pb2.Input(digest=mount.source.digest, index=mount.source.index)
                    )
                index = positions[mount.source]
            output = -1
            if mount.output or mount.dest == "/":  # BuildKit mounts a root without one read-only
                output = outputs[mount.dest] = len(outputs)
            pb_mounts.append(
                llb_pb2.Mount(
                    input=index,
                    dest=mount.dest,
                    output=output,
                    readonly=mount.readonly,
                    selector=mount.selector,
                )
            )
        meta = llb_pb2.Meta(
            args=list(args), env=[f"{k}={v}" for k, v in sorted(env.items())], cwd=cwd
        )
        exec_op = llb_pb2.ExecOp(
            meta=meta,
            mounts=pb_mounts,
            network=llb_pb2.NONE if network == "none" else llb_pb2.UNSET,
        )
        digest = self._add(llb_pb2.Op(inputs=inputs, exec=exec_op, platform=self._platform()), name)
        return {dest: Output(digest, index) for dest, index in outputs.items()}

    def definition(self, result: Output) -> llb_pb2.Definition:
        """The graph as BuildKit takes it: every op, then the op naming `result`."""
        terminal = llb_pb2.Op(inputs=[llb_pb2.Input(digest=result.digest, index=result.index)])
        metadata = {
            digest: llb_pb2.OpMetadata(description={"llb.customname": name})
            for digest, name in self.names.items()
        }
        ops = [*self.ops.values(), terminal.SerializeToString(deterministic=True)]
        return llb_pb2.Definition(metadata=metadata, **{"def": ops})  # `def` is a keyword
