"""An environment.yml (`name`, `channels`, `dependencies` with its `pip:` section) as the
conda part of a bake: its dependencies are match specs in conda's `name=version` spelling,
its channels are used unless the call names channels, its `pip:` entries are PyPI
requirements layered on top. `name` and `prefix` are ignored: the env is the image's.
"""

from collections.abc import Sequence
from pathlib import Path

from bakery.conda.specs import CondaSource
from bakery.errors import ImageBakingException, quoted, shorten


def read_environment(path: Path, channels: Sequence[str] | None) -> CondaSource:
    """The conda specs, channels and pip requirements of the environment.yml at `path`."""
    import yaml

    from bakery.conda.channels import configured_channels
    from bakery.spec import _read_text

    shown = shorten(str(path))
    try:
        data = yaml.safe_load(_read_text(path, "environment file"))
    except yaml.YAMLError as exc:
        reason = shorten(str(exc).splitlines()[0], 200)
        raise ImageBakingException(f"{shown} is not valid YAML: {reason}.") from None
    if not isinstance(data, dict):
        raise ImageBakingException(f"{shown} is not an environment.yml (a YAML mapping).")
    dependencies = data.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise ImageBakingException(f"{shown}: dependencies must be a list.")
    specs: list[str] = []
    pip: list[str] = []
    for entry in dependencies:
        if isinstance(entry, str):
            specs.append(entry)
        elif isinstance(entry, dict) and set(entry) == {"pip"} and isinstance(entry["pip"], list):
            for requirement in entry["pip"]:
                if not isinstance(requirement, str) or requirement.lstrip().startswith("-"):
                    raise ImageBakingException(
                        f"{shown}: pip entry {quoted(requirement)} is not a requirement (pip "
                        "options such as -r or -e are not supported here)."
                    )
                pip.append(_pip_requirement(requirement))
        else:
            raise ImageBakingException(
                f"{shown}: dependency {quoted(entry)} is neither a match spec nor a pip: list."
            )
    listed = data.get("channels")
    if listed is not None and (
        not isinstance(listed, list) or not all(isinstance(c, str) for c in listed)
    ):
        raise ImageBakingException(f"{shown}: channels must be a list of channel names or URLs.")
    chosen = configured_channels(channels if channels is not None else listed)
    if not specs:
        raise ImageBakingException(f"{shown} lists no conda dependencies; add python at least.")
    chosen = tuple(c for c in chosen if c != "nodefaults")
    return CondaSource(tuple(specs), chosen, None, tuple(pip))


def _pip_requirement(text: str) -> str:
    """A pip: entry as a normalized PEP 508 requirement."""
    from bakery.spec import _normalize

    return _normalize(text, f"pip requirement {quoted(text)} of the environment file")
