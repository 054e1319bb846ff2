"""What holds without running anything: the types (mypy, ``core`` strictly) and the layers (import-linter), each as
``pyproject.toml`` configures it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=290)


@pytest.mark.timeout(300)
def test_mypy_finds_no_error():
    done = run(sys.executable, "-m", "mypy", "--no-error-summary")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(300)
def test_each_layer_imports_only_those_below_it():
    done = run(str(BIN / "lint-imports"), "--no-cache")
    assert done.returncode == 0, done.stdout + done.stderr
