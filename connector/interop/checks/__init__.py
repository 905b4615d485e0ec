"""The suite, in run order: one module per group; importing this registers every check."""
# ruff: noqa: I001 - the import order is the suite order

from connector.interop.checks import (  # noqa: F401 - registration by import, in suite order
    metadata,
    catalog,
    negotiation_provider,
    negotiation_consumer,
    transfer_provider,
    transfer_consumer,
    interop,
)
