"""The browser tests find the OS's Chromium, or say in one sentence why they skip."""

from __future__ import annotations

import pytest

from tests.helpers import browser


def test_a_named_chromium_that_is_not_there_gives_one_clear_reason(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.setenv("CHROMIUM_PATH", str(tmp_path / "no-chromium"))
    assert browser.chromium_path() is None
    reason = browser.skip_reason()
    assert reason is not None and "apt-get install chromium" in reason


def test_a_named_executable_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CHROMIUM_PATH", str(fake))
    assert browser.chromium_path() == str(fake)
