"""Command-line values more than one command takes."""

from collections.abc import Sequence

import typer


def key_values(texts: Sequence[str], param_hint: str) -> list[tuple[str, str]]:
    """`KEY=VALUE` texts as (key, value) pairs; one without '=' or a key is a usage error."""
    pairs = []
    for text in texts:
        key, equals, value = text.partition("=")
        if not equals or not key:
            raise typer.BadParameter(f"{text!r} is not KEY=VALUE", param_hint=param_hint)
        pairs.append((key, value))
    return pairs


def duration(text: str, param_hint: str | None = None) -> int:
    """`7d`, `12h`, `30m`, `90s`, `2w` or plain seconds, in seconds; else a usage error."""
    from stagekit.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=param_hint) from None
