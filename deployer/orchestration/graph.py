"""Deploy order for apps with `depends_on`: dependencies first, independent apps together.

Waves rather than one flat order, because apps in one wave do not depend on each other and
can be deployed in parallel (as Flyte does); within a wave names are sorted, so a plan is
the same on every run.
"""

from collections.abc import Iterable, Mapping

from deployer.exceptions import AppConfigError


def deploy_order(apps: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Waves of app names: every app's dependencies are in earlier waves.

    Raises `AppConfigError` for a dependency that is not among `apps`, or for a cycle,
    naming it as `a -> b -> a`.
    """
    deps = {name: sorted(set(needs)) for name, needs in apps.items()}
    for name, needs in sorted(deps.items()):
        unknown = [need for need in needs if need not in deps]
        if unknown:
            raise AppConfigError(
                f"app {name!r} depends on {', '.join(map(repr, unknown))}, which is not among "
                f"the apps being deployed ({', '.join(sorted(deps))}); add it or drop it "
                "from depends_on"
            )
    waves: list[list[str]] = []
    placed: set[str] = set()
    while len(placed) < len(deps):
        wave = sorted(name for name in deps if name not in placed and placed.issuperset(deps[name]))
        if not wave:
            cycle = _find_cycle({name: deps[name] for name in deps if name not in placed})
            raise AppConfigError(
                f"depends_on has a cycle: {' -> '.join(cycle)}; an app cannot (indirectly) "
                "depend on itself, so remove one of these dependencies"
            )
        waves.append(wave)
        placed.update(wave)
    return waves


def _find_cycle(deps: Mapping[str, list[str]]) -> list[str]:
    """A cycle among apps none of which could be placed: each has an unplaced dependency."""
    path: list[str] = []
    node = min(deps)
    while node not in path:
        path.append(node)
        node = next(need for need in deps[node] if need in deps)
    return [*path[path.index(node) :], node]
