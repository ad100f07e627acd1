"""Small helpers every stage shares: where local state lives, and progress reporting.

The packager and the bakery know nothing of each other; both depend on this instead.
"""
