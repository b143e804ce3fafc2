from __future__ import annotations

import pytest


@pytest.mark.timeout(30)
def test_map_filter(backend):
    stage = range(100) | backend.map(lambda x: x * 2, workers=3)
    out = stage | backend.filter(lambda x: x % 3 == 0)
    assert sorted(out) == [x * 2 for x in range(100) if (x * 2) % 3 == 0]
