"""Bakery's wire API: Python stubs generated from `proto/` (see `generate.py`).

They live here, below the stages, because both sides speak them: the service (a front-end)
and the remote clients `bake_image` and `package_code` use when `BAKERY_URL` is set.
"""
