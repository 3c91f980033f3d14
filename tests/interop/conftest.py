"""Fixtures for driving the official CLI (tests/interop/reference.py) beside ours."""

from __future__ import annotations

from typing import Callable

import pytest

from tests.interop.reference import RefResult, ReferenceUnavailable, reference_cli, run_reference


@pytest.fixture(scope="session")
def reference_path() -> str:
    try:
        return str(reference_cli())
    except ReferenceUnavailable as exc:  # the interop claim cannot be checked: say so, loudly
        pytest.fail(f"official CLI unavailable: {exc}", pytrace=False)


@pytest.fixture
def ref(reference_path: str) -> Callable[..., RefResult]:
    """ref("tier", "set", "prototype") -> RefResult: the official CLI on the current env."""

    def invoke(*args: str, input: str | None = None, cwd=None, timeout: float = 120) -> RefResult:
        return run_reference(list(args), input=input, cwd=cwd, timeout=timeout)

    return invoke
