"""Start-up: how long a `bakery` command takes when there is nothing to do.

Run: uv run python -m bench.startup [--runs 15]

Whole-process wall times (median and best of `--runs`), each side in the same run:
  python -c pass           the interpreter alone: the floor every Python CLI pays
  uv --help                the peer: a native CLI of the same ecosystem
  python -c 'import typer' the CLI framework alone
  bakery --help
  import bakery.bake       what `bake_image` costs a caller before it does anything
  bakery bake (re-bake)    an identical re-bake from the CLI: the image exists, nothing to do

plus `python -X importtime -c 'import bakery.bake'`'s ten slowest imports. The re-bake uses
its own cache and data dirs under bench/.work/startup, baked once on the embedded default
base before timing. Targets (issue: startup) are shown beside the figures.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bakery.lock import uv_binary
from bench.results import table, update_section

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(__file__).with_name(".work") / "startup"
REQUIREMENTS = ROOT / "examples" / "hello-app" / "requirements.txt"
BAKERY = str(Path(sys.executable).with_name("bakery"))


def _environment() -> dict[str, str]:
    return os.environ | {
        "BAKERY_CACHE_DIR": str(WORK / "cache"),
        "BAKERY_DATA_DIR": str(WORK / "data"),
    }


def _time(command: list[str], runs: int) -> list[float]:
    """Wall seconds of each of `runs` runs (after one untimed run that warms the page cache)."""
    environment = _environment()
    subprocess.run(command, check=True, capture_output=True, env=environment)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=environment)
        times.append(time.perf_counter() - start)
    return times


def _slowest_imports(module: str, count: int = 10) -> list[tuple[str, int]]:
    """(module, cumulative µs) of `module` and of the slowest modules it imports directly."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        check=True,
        capture_output=True,
        text=True,
        env=_environment(),
    )
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cumulative, name = line.removeprefix("import time:").split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2  # two spaces per level
        if name.strip() == module or depth == 1:
            rows.append((name.strip(), int(cumulative)))
    return sorted(rows, key=lambda row: -row[1])[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    rebake = [BAKERY, "bake", "-r", str(REQUIREMENTS)]
    print("baking once on the embedded default base (builds it the first time)", flush=True)
    subprocess.run(rebake, check=True, env=_environment())
    python = sys.executable
    cases = [
        ("python -c pass", [python, "-c", "pass"], None),
        ("uv --help (peer)", [uv_binary(), "--help"], None),
        ("python -c 'import typer'", [python, "-c", "import typer"], None),
        ("bakery --help", [BAKERY, "--help"], 0.250),
        ("python -c 'import bakery.bake'", [python, "-c", "import bakery.bake"], None),
        ("bakery bake -r … (identical re-bake)", rebake, 0.350),
    ]
    floor = None
    rows = []
    for name, command, target in cases:
        times = _time(command, args.runs)
        median = statistics.median(times)
        floor = floor or median
        print(f"{name}: median {median * 1000:.0f} ms", flush=True)
        rows.append(
            [
                name,
                f"{median * 1000:.0f} ms",
                f"{min(times) * 1000:.0f} ms",
                f"{median / floor:.1f}x",
                f"≤ {target * 1000:.0f} ms" if target else "",
            ]
        )
    imports = _slowest_imports("bakery.bake")
    own = next(cumulative for name, cumulative in imports if name == "bakery.bake")
    import_rows = [[name, f"{cumulative / 1000:.1f} ms"] for name, cumulative in imports]
    body = (
        f"Whole-process wall time, median and best of {args.runs} runs after one warm-up, "
        "every row in the same run; `x python` = median / `python -c pass`. The re-bake finds "
        "its image in the local OCI layout (embedded default base, nothing configured). "
        "Reproduce: `uv run python -m bench.startup`.\n\n"
        + table(["command", "median", "best", "x python", "target"], rows)
        + f"\n\n`python -X importtime -c 'import bakery.bake'`: {own / 1000:.1f} ms in all "
        "(target ≤ 100 ms); slowest imports:\n\n" + table(["module", "cumulative"], import_rows)
    )
    update_section("startup", body)


if __name__ == "__main__":
    main()
