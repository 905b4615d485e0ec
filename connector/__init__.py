"""The battery passport connector node: CLI now; the aiohttp node, Dataspace Protocol and
data plane grow here. It wires the ``credentials``, ``policies`` and ``vocab`` libraries."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("battery-passport-connector")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
