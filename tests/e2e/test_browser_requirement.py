"""TILFREDS_REQUIRE_BROWSER=1 turns every way a test in tests/e2e could skip into a failure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.e2e.conftest import chromium_or_skip, postgres_or_skip

E2E = Path(__file__).parent
SKIPPING = {"skip", "skipif", "importorskip", "xfail"}
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"


@pytest.fixture
def nothing_required(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("TILFREDS_REQUIRE_BROWSER", raising=False)
    monkeypatch.delenv("TILFREDS_REQUIRE_POSTGRES", raising=False)
    return monkeypatch


def test_missing_chromium_skips_unless_the_browser_is_required(
    nothing_required: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(pytest.skip.Exception):
        chromium_or_skip(str(tmp_path / "chromium"))
    nothing_required.setenv("TILFREDS_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="TILFREDS_REQUIRE_BROWSER=1 requires it"):
        chromium_or_skip(str(tmp_path / "chromium"))


@pytest.mark.parametrize("variable", ["TILFREDS_REQUIRE_BROWSER", "TILFREDS_REQUIRE_POSTGRES"])
def test_missing_postgres_skips_an_e2e_test_unless_required(
    nothing_required: pytest.MonkeyPatch, variable: str
) -> None:
    with pytest.raises(pytest.skip.Exception):
        postgres_or_skip(UNREACHABLE)
    nothing_required.setenv(variable, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{variable}=1 requires it"):
        postgres_or_skip(UNREACHABLE)


def test_e2e_tests_skip_only_through_the_one_checked_place() -> None:
    """A skip anywhere else in tests/e2e would escape TILFREDS_REQUIRE_BROWSER."""
    elsewhere = []
    for path in E2E.glob("*.py"):
        if path == Path(__file__):  # names pytest.skip.Exception to test the gate
            continue
        tree = ast.parse(path.read_text())
        allowed = {
            id(node)
            for fn in ast.walk(tree)
            if isinstance(fn, ast.FunctionDef) and fn.name == "skip_unless_required"
            for node in ast.walk(fn)
        }
        for node in ast.walk(tree):
            name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
            if name in SKIPPING and id(node) not in allowed:
                elsewhere.append(f"{path.name}:{node.lineno}")
    assert not elsewhere, elsewhere
