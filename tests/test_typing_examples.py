"""The examples that mypy checks in tests/typing_examples.py also hold at runtime."""

import typing_examples


def test_typing_examples_run(tmp_path):
    typing_examples.run_all(str(tmp_path))
