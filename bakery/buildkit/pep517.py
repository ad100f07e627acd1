"""The build frontend that runs inside BuildKit (stdlib only, never imported by Bakery):
unpack the build requirements' wheels, unpack the sdist, call its backend's build_wheel.

Run as `python3 /ctx/pep517.py`; /ctx holds build.json ({"sdist", "backend",
"backend_path"}), sdist/<file> and wheels/*.whl; the wheel is written to /out.
"""

import importlib
import json
import os
import site
import sys
import tarfile
import zipfile

CONTEXT = "/ctx"
OUTPUT = "/out"
WORK = "/tmp/bakery-build"


def main() -> None:
    with open(os.path.join(CONTEXT, "build.json")) as file:
        config = json.load(file)
    requirements = os.path.join(WORK, "requirements")
    wheels = os.path.join(CONTEXT, "wheels")
    for name in sorted(os.listdir(wheels)):
        with zipfile.ZipFile(os.path.join(wheels, name)) as wheel:
            wheel.extractall(requirements)
    site.addsitedir(requirements)  # processes the .pth files setuptools ships
    os.environ["PYTHONPATH"] = requirements  # for what the backend runs in a subprocess

    sdist = os.path.join(CONTEXT, "sdist", config["sdist"])
    source = os.path.join(WORK, "source")
    if sdist.endswith(".zip"):
        with zipfile.ZipFile(sdist) as archive:
            archive.extractall(source)
    else:
        with tarfile.open(sdist) as archive:
            # The data filter where this Python has it (3.11.4+); the build is sandboxed anyway.
            if hasattr(tarfile, "data_filter"):
                archive.extractall(source, filter="data")
            else:
                archive.extractall(source)
    (top,) = os.listdir(source)
    tree = os.path.join(source, top)
    os.chdir(tree)
    for path in reversed(config["backend_path"]):
        sys.path.insert(0, os.path.join(tree, path))
    module, _, attribute = config["backend"].partition(":")
    backend = importlib.import_module(module)
    for part in filter(None, attribute.split(".")):
        backend = getattr(backend, part)
    print(f"Building a wheel of {config['sdist']} with {config['backend']}", flush=True)
    built = backend.build_wheel(OUTPUT)
    print(f"Built {built}", flush=True)


if __name__ == "__main__":
    main()
