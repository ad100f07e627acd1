"""Front-ends over the stages: the `bakery` CLI (and, next, the service).

Imports only go down: a front-end imports `bakery`, `packager` and `deployer`; no stage imports
anything here.
"""
