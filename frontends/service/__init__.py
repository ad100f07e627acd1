"""`bakery serve`: the stages behind a gRPC API (proto/bakery/v1), for remote callers.

`server.py` assembles the gRPC server: the Bakery service (bakes in `bakes.py`, code
packages in `packages.py`), the Admin service (`admin.py`), standard health checking and
reflection, and the token check (`auth.py`) every call passes. Imports only go down: the
service uses the stages; no stage imports it.
"""
