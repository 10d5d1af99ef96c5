"""One version: ``fastpool.__version__`` (the only place it is written), the installed
package's metadata (pyproject.toml reads it from there) and ``python -m fastpool --version``."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys

import fastpool


def test_version_is_the_metadata_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]\d+|rc\d+)?", fastpool.__version__)
    assert importlib.metadata.version("fastpool") == fastpool.__version__


def test_python_m_fastpool_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fastpool", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert out == f"fastpool {fastpool.__version__}\n"
