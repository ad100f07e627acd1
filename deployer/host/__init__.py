"""What the deployer keeps and runs on this machine, under the docker and process runtimes.

`proxy` (one nginx per app: the public URL, balancing, API auth) with `auth` (the API token
and its htpasswd line; the Kubernetes ingress checks the same), `secrets` (the local secrets
store), `statedirs` (owner-only state directories) and `procfs` (whether a pid runs, which
ports listen).
"""
