"""TILFREDS_REQUIRE_BROWSER=1 turns every way a browser test could be skipped into a failure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.e2e.test_demo_in_browser import chromium_or_skip

E2E = Path(__file__).parent
SKIPPING = {"skip", "skipif", "importorskip", "xfail"}


def test_missing_chromium_fails_when_the_browser_is_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TILFREDS_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="Chromium is required"):
        chromium_or_skip(str(tmp_path / "chromium"))


def test_missing_chromium_skips_when_the_browser_is_not_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TILFREDS_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception):
        chromium_or_skip(str(tmp_path / "chromium"))


def test_browser_tests_skip_only_through_the_one_checked_place() -> None:
    """A skip anywhere else in tests/e2e would escape TILFREDS_REQUIRE_BROWSER."""
    elsewhere = []
    for path in E2E.glob("*.py"):
        tree = ast.parse(path.read_text())
        allowed = {
            id(node)
            for fn in ast.walk(tree)
            if isinstance(fn, ast.FunctionDef) and fn.name == "chromium_or_skip"
            for node in ast.walk(fn)
        }
        for node in ast.walk(tree):
            name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
            if name in SKIPPING and id(node) not in allowed and path != Path(__file__):
                elsewhere.append(f"{path.name}:{node.lineno}")
    assert not elsewhere, elsewhere
