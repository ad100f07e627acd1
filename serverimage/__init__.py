"""The Bakery server's container image (the top-level `Dockerfile`), built on a machine whose
containers cannot reach PyPI: `wheelhouse.py` makes the build context on the host (bakery's
wheel and every locked runtime dependency, verified), `base.py` loads the `FROM` base (the
bakery's own Debian + python3 base) into the engine, `build.py` runs the build and names the
image by what went into it. Run `uv run python -m serverimage`.

A tool of this repository, not part of the bakery wheel.
"""
