"""Conda: match specs solved by rattler for the target, conda-lock files in and out, and one
layer per conda package installed (never run) at the image's prefix.

Everything here imports rattler or conda-lock only inside the functions that need them: a
conda bake pays for them, nothing else does. `bakery.ecosystems.conda` plugs it into the bake.
"""
