"""The executor process's start-up tuning."""

from __future__ import annotations

import gc

from services.executor.__main__ import GC_THRESHOLDS, tune_gc


def test_young_collections_are_rarer_than_the_default_and_every_generation_still_collects() -> None:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.set_threshold(*before)
    young, middle, old = GC_THRESHOLDS
    assert young > 700
    assert middle > 0 and old > 0  # 0 would switch that generation's collections off
    assert gc.isenabled()
