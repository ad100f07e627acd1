"""Deploying apps, whatever the runtime: the reference API and the bookkeeping behind it.

`app` (`AppDeployer`, `DeployedApp`: claim, register, start, wait for `readiness`, expose,
retire older versions) and `plan` (`depends_on`: `graph`'s waves in parallel); `records`
and `upgrades` keep each app's record and its upgrade lock across processes; `lifecycle` is
the `app_deploy` run; `spec_deploy` packages, bakes and plans a spec file.
"""
