"""Every module imports on its own, and the libraries never import the node."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import connector
import credentials
import policies
import vocab

PACKAGES = (connector, credentials, policies, vocab)
# With the package's name as prefix, so a sub-package is walked as itself (without it,
# walk_packages imports ``ops`` top-level and finds ``tests/connector/ops`` instead).
MODULES = sorted(
    info.name
    for package in PACKAGES
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    if not info.name.endswith(".__main__")
)


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_in_a_fresh_interpreter(module: str) -> None:
    run = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr


SUBPACKAGES = sorted(
    info.name
    for package in PACKAGES
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    if info.ispkg
)


@pytest.mark.parametrize("subpackage", SUBPACKAGES)
def test_every_module_of_a_subpackage_imports(subpackage: str) -> None:
    """Modules below the top level (``connector.dsp.*``, ``connector.plugins.hub.*``…): one
    fresh interpreter per subpackage imports each of its modules (one per module would cost a
    second each)."""
    code = (
        "import importlib, pkgutil\n"
        f"package = importlib.import_module({subpackage!r})\n"
        "for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "    if not info.name.endswith('__main__'):\n"
        "        importlib.import_module(info.name)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("library", ["credentials", "policies", "vocab"])
def test_libraries_do_not_import_the_connector(library: str) -> None:
    code = (
        "import sys, pkgutil, importlib\n"
        f"import {library} as lib\n"
        "for info in pkgutil.walk_packages(lib.__path__, lib.__name__ + '.'):\n"
        "    importlib.import_module(info.name)\n"
        "bad = sorted(m for m in sys.modules if m == 'connector' or m.startswith('connector.'))\n"
        "assert not bad, bad\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
