"""A batch's outputs travel back from a worker elsewhere (a process, a Ray actor) in the
most compact form that fits, indexed by local positions; put back together with the
batch's real indices, as items (`decode_results`) or as columns (`decode_columns`), they
are the items the operator made: compared, by hypothesis, with the outputs indexed by
hand."""

from __future__ import annotations

from typing import Any, List, Tuple

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pypeln._core.columns import as_rows, index_list
from pypeln._core.wire import decode_columns, decode_results, encode_results, local_items

pytestmark = pytest.mark.timeout(120)

#: What an operator made of each input: None (dropped, as by `filter`), "one" (one output
#: with the input's index, as by `map`) or a number of outputs indexed under the input's
#: (as by `flat_map`, which may give one, or none).
per_input = st.lists(st.one_of(st.none(), st.just("one"), st.integers(0, 3)), max_size=30)
#: How the batch's real indices are held: a range of positions, a list of them, or index
#: tuples (items that came out of a `flat_map` upstream).
index_forms = st.sampled_from(["range", "ints", "tuples"])


def real_indices(form: str, n: int, first: int) -> Any:
    if form == "range":
        return range(first, first + n)
    if form == "ints":
        return [first + 2 * k for k in range(n)]
    return [(first + k, k % 3) for k in range(n)]


def outputs(plan: List[Any]) -> List[Tuple[Tuple[int, ...], Any]]:
    """The outputs of a batch of ``len(plan)`` local items, made as `plan` says."""
    out: List[Tuple[Tuple[int, ...], Any]] = []
    for (position,), value in local_items([f"x{k}" for k in range(len(plan))]):
        made = plan[position]
        if made == "one":
            out.append(((position,), value))
        elif made is not None:
            out.extend(((position, j), f"{value}.{j}") for j in range(made))
    return out


@settings(max_examples=300)  # microseconds each
@given(plan=per_input, form=index_forms, first=st.integers(0, 1000))
@example(plan=[1, 1, 1], form="range", first=0)  # a flat_map giving one output per input
@example(plan=[None, 2], form="ints", first=5)  # as many outputs as inputs, not one each
def test_outputs_come_back_with_their_real_indices(plan, form, first):
    n = len(plan)
    indices = real_indices(form, n, first)
    out = outputs(plan)
    real = index_list(indices)
    expected = [(real[i[0]] + i[1:], y) for i, y in out]
    kind, payload = encode_results(out, n)
    assert decode_results(indices, kind, payload) == expected
    columns = decode_columns(indices, kind, payload)
    if columns is not None:  # one index per output: it can travel on as columns
        assert as_rows(*columns) == expected
    else:  # outputs indexed under their input's index (a flat_map) need rows
        assert any(len(i) > 1 for i, _ in out)
