"""Check a random sample of the core's mutants not judged yet: ``./dev mutate sample [N]``.

Judging every mutant of `pypeln/_core` takes days on two cores: a mutant that survives runs
every selected test that reaches its function, up to twenty minutes for the functions every
pipeline goes through. A uniform random sample of the mutants not judged yet (N, 300 by
default; ``SEED`` in the environment picks another), checked in full, gives the score of the
whole core within a known margin: ``./dev mutate score`` adds that estimate.

The population (the core's mutants not checked yet and not listed as equivalent) is
written to ``mutants/sample-population.txt`` and the sample to ``mutants/sample.txt``; the
sample is then checked with ``mutmut run`` (named mutants are checked again even if judged).
"""

from __future__ import annotations

import json
import os
import random
import sys
from typing import List

from mutation_score import ROOT, equivalent
from mutmut.stats import status_by_exit_code

#: the mutants a sample is drawn from; those that survived are judged (check them again by
#: name after adding a test: ``./dev mutate NAME``)
UNJUDGED = {"not checked", "check was interrupted by user"}


def population() -> List[str]:
    excluded = equivalent()
    names = []
    for meta in sorted((ROOT / "mutants" / "pypeln" / "_core").glob("**/*.py.meta")):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if name not in excluded and status_by_exit_code[code] in UNJUDGED:
                names.append(name)
    return names


def main() -> int:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    names = population()
    if not names:
        print("no mutant of the core is left to judge: ./dev mutate score", file=sys.stderr)
        return 1
    sample = random.Random(int(os.environ.get("SEED", "0"))).sample(names, min(size, len(names)))
    (ROOT / "mutants" / "sample-population.txt").write_text("\n".join(names) + "\n")
    (ROOT / "mutants" / "sample.txt").write_text("\n".join(sample) + "\n")
    print(f"{len(sample)} of the {len(names)} mutants of the core not judged yet", flush=True)
    jobs = os.environ.get("MUTATE_JOBS", "2")
    os.execvp("mutmut", ["mutmut", "run", "--max-children", jobs, *sample])
    return 0


if __name__ == "__main__":
    sys.exit(main())
