"""examples/litestream_replica.py run for real: the litestream binary, a replica host process
reading through the Litestream VFS, and a restore."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from litestream_env import litestream_binary, require_vfs

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "litestream_replica.py"


@pytest.mark.timeout(300)
def test_litestream_example_runs(tmp_path):
    litestream_binary()  # fails (or, on a platform without a build, skips) with the reason
    require_vfs()
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("primary: 3 rows written")
    assert "[3, 'the primary']" in lines[1] and "'write': 'a ReplicaPool is read-only'" in lines[1]
    assert lines[2] == "restored after losing the primary: 3 rows, integrity_check ok"
