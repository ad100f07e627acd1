"""Deploying apps, whatever the runtime: the reference API and the bookkeeping behind it.

`app` (`AppDeployer`) hands an app alone to `deploy` (`deploy_one`: claim, register, start,
wait for `readiness`, expose, retire older versions) and an app with `depends_on` to `plan`,
which runs `deploy_one` for each app of `graph`'s waves; both return `deployed` apps
(`DeployedApp`). `records` and `upgrades` keep each app's record and its upgrade lock across
processes; `lifecycle` is the `app_deploy` run; `spec_deploy` packages, bakes and plans a
spec file.
"""
