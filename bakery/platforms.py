"""The target platforms a bake can be for: one source for their names and defaults."""

PLATFORMS = ("linux/amd64", "linux/arm64")
DEFAULT_PLATFORM = "linux/amd64"
ARCHITECTURES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
"""Platform -> the machine name wheels, uv and python-build-standalone use."""
CONDA_SUBDIRS = {"linux/amd64": "linux-64", "linux/arm64": "linux-aarch64"}
"""Platform -> the conda subdir its packages live in."""
