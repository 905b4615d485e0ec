"""A plugin module that cannot be imported (its dependency is missing)."""

import bpc_dependency_that_is_not_installed  # noqa: F401

plugin = object()
