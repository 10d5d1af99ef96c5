"""Every Python sample in README.md and docs/*.md runs, as written (tests/doc_samples.py says
how: a page's samples in order, in one session, in an empty directory; build-dependent ones on
their build)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
from conftest import GREENLET_UNUSABLE
from doc_samples import ROOT, pages, run_page, samples, this_build

RUNNER = pathlib.Path(__file__).with_name("doc_samples.py")


@pytest.mark.parametrize("path", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_page_samples_run(path: pathlib.Path, tmp_path: pathlib.Path) -> None:
    if path.name == "sqlalchemy.md" and GREENLET_UNUSABLE:
        pytest.skip(GREENLET_UNUSABLE)  # its asyncio sample runs on greenlet (conftest.py)
    expected = [s for s in samples(path) if s.build in (None, this_build())]
    done = subprocess.run(
        [sys.executable, "-X", "dev", str(RUNNER), str(path), this_build()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == str(len(expected)), done.stdout


def test_build_dependent_samples_exist_for_each_build() -> None:
    builds = {s.build for p in pages() for s in samples(p)}
    assert {"bundled-sqlite", "system-sqlite"} <= builds


def test_a_failing_sample_fails(tmp_path: pathlib.Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    page = tmp_path / "page.md"
    page.write_text("```python\nx = 1\n```\n\n```python\n>>> x + 1\n3\n```\n")
    with pytest.raises(AssertionError, match="doctest failed"):
        run_page(page, this_build())
    page.write_text("```python\nimport fastpool\nfastpool.Pool(\n```\n")
    with pytest.raises(SyntaxError):
        run_page(page, this_build())
