"""A copy of a stage (pickle, `copy.copy`, `copy.deepcopy`) runs like the original."""

from __future__ import annotations

import copy
import pickle

import pytest
from conftest import BACKEND_NAMES, within

import pypeln as pl

pytestmark = pytest.mark.timeout(60)


def pickled(stage):
    return pickle.loads(pickle.dumps(stage))


COPIES = {"copy": copy.copy, "deepcopy": copy.deepcopy, "pickle": pickled}


def double(x):
    return 2 * x


def is_even(x):
    return x % 2 == 0


def tens(x):
    return [x, x + 10]


def pipeline(name):
    module = getattr(pl, name)
    return (
        range(10)
        | module.map(double, workers=2)
        | module.filter(is_even)
        | module.flat_map(tens)
        | module.ordered()
    )


@pytest.mark.parametrize("how", sorted(COPIES))
@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_a_copied_stage_runs_like_the_original(name, how):
    original = pipeline(name)
    expected = within(30, list, original)
    copied = COPIES[how](original)
    assert within(30, list, copied) == expected
    assert within(30, list, copied) == expected  # a copy runs again, like the original


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_a_copied_backend_is_the_module_one(name):
    stage = pipeline(name)
    for how in COPIES.values():
        assert how(stage).backend is stage.backend


@pytest.mark.parametrize("how", sorted(COPIES))
def test_a_copied_pipeline_of_mixed_backends_runs_like_the_original(how):
    names = [n for n in BACKEND_NAMES if n != "ray"] + ["sync"]
    stage = range(20)
    for i, name in enumerate(names):
        stage = stage | getattr(pl, name).map(double if i % 2 else abs, workers=2)
    stage = stage | pl.sync.ordered()
    expected = within(30, list, stage)
    assert within(30, list, COPIES[how](stage)) == expected
    concat = pl.sync.concat([pipeline("sync"), pipeline("thread")])
    assert within(30, sorted, COPIES[how](concat)) == within(30, sorted, concat)
