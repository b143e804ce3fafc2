"""The mutation score of the last `./dev mutate` run, per module: ``./dev mutate score``.

Reads mutmut's results (``mutants/**/*.py.meta``). A mutant is *caught* when a test failed
(killed) or ran past its time bound (timeout: a planted bug that hangs); *survived* and
*no tests* (no selected test reaches the function) count against the score. Mutants listed
in ``.ci/equivalent-mutants.txt`` (mutants that change no behaviour, each with its reason)
are left out, as are those not checked yet.

    score = caught / (caught + survived + no tests)
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, Optional, Set

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parent.parent
CAUGHT = {"killed", "timeout", "caught by type check", "segfault"}
MISSED = {"survived", "no tests", "suspicious"}


def equivalent() -> Set[str]:
    path = ROOT / ".ci" / "equivalent-mutants.txt"
    names = set()
    for line in path.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.add(name)
    return names


def main() -> int:
    excluded = equivalent()
    by_module: Dict[str, Counter[str]] = {}
    for meta in sorted((ROOT / "mutants").glob("**/*.py.meta")):
        module = meta.relative_to(ROOT / "mutants").as_posix()[: -len(".meta")]
        counts = by_module.setdefault(module, Counter())
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            status = "equivalent" if name in excluded else status_by_exit_code[code]
            counts[status] += 1
    if not by_module:
        print("no results: run ./dev mutate first", file=sys.stderr)
        return 1
    print(f"{'module':40} {'score':>6} {'caught':>7} {'missed':>7} {'equiv':>6} {'unrun':>6}")
    total: Counter[str] = Counter()
    for module, counts in by_module.items():
        total.update(counts)
        print(row(module, counts))
    print(row("all", total))
    sampled = ROOT / "mutants" / "sample.txt"
    if sampled.exists():
        print(estimate(sampled, excluded))
    return 0


def estimate(sampled: Path, excluded: Set[str]) -> str:
    """The whole core's score from `./dev mutate sample`: exact over the mutants judged
    before the sample was drawn, estimated for the rest from the sample (95% interval;
    members of the sample not checked yet count as missed)."""
    # (a mutant listed as equivalent since the draw leaves both)
    population = set(sampled.with_name("sample-population.txt").read_text().split()) - excluded
    sample = [name for name in sampled.read_text().split() if name not in excluded]
    codes: Dict[str, Optional[int]] = {}
    for meta in (ROOT / "mutants" / "pypeln" / "_core").glob("**/*.py.meta"):
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    status = {name: status_by_exit_code[code] for name, code in codes.items()}
    judged = Counter(status[n] for n in status if n not in population and n not in excluded)
    caught_before = sum(judged[s] for s in CAUGHT)
    missed_before = sum(judged[s] for s in MISSED)
    caught = sum(1 for n in sample if status.get(n) in CAUGHT)
    pending = sum(1 for n in sample if status.get(n) == "not checked")
    n, size = len(sample), len(population)
    if not n:
        return "sample: empty (./dev mutate sample N draws one)"
    p = caught / n
    # Wilson's interval (sound when all or none of the sample was caught, unlike p +- z*se),
    # narrowed by the finite population correction
    z = 1.96
    fpc = math.sqrt((size - n) / (size - 1)) if size > 1 else 0.0
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) * fpc
    total = caught_before + missed_before + size
    low = (caught_before + size * max(0.0, centre - half)) / total
    high = (caught_before + size * min(1.0, centre + half)) / total
    mid = (caught_before + size * p) / total
    return (
        f"sample: {caught} caught of {n} drawn from the {size} not judged before "
        f"({pending} not checked yet, counted as missed)\n"
        f"whole core (pypeln/_core), estimated: {100 * mid:.1f}% "
        f"(95% interval {100 * low:.1f}% to {100 * high:.1f}%) over {total} mutants; "
        f"exact over the {caught_before + missed_before} judged before: "
        f"{100 * caught_before / max(1, caught_before + missed_before):.1f}%"
    )


def row(name: str, counts: Counter[str]) -> str:
    caught = sum(counts[s] for s in CAUGHT)
    missed = sum(counts[s] for s in MISSED)
    checked = caught + missed
    score = f"{100 * caught / checked:5.1f}%" if checked else "    -"
    return (
        f"{name:40} {score:>6} {caught:7} {missed:7} {counts['equivalent']:6} "
        f"{counts['not checked']:6}"
    )


if __name__ == "__main__":
    sys.exit(main())
