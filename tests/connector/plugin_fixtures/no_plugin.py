"""A plugin module that forgot its ``plugin`` object."""

from connector.plugins import hookimpl


@hookimpl
def bpc_node_stop() -> None:
    """Would stop something."""
