"""The management API for the node's operator; for now, its authentication (``auth``)."""
