"""A plugin whose hook name is misspelt: refused rather than silently never called."""

from types import SimpleNamespace

from connector.plugins import hookimpl


@hookimpl
def bpc_node_strat() -> None:
    """Misspelt ``bpc_node_start``."""


plugin = SimpleNamespace(bpc_node_strat=bpc_node_strat)
