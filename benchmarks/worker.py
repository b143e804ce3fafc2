"""Runs one benchmark row in a fresh interpreter and prints its timings as JSON.

Usage (normally only from run.py)::

    python worker.py '{"case": "pl_map", "n": 1000, "params": {...}, "check": "inc",
                       "repeat": 3, "budget": 10.0, "result_file": "/some/file.json"}'

It writes one JSON object to ``result_file`` as soon as the row is done (before the
interpreter starts shutting down, so a row whose threads or processes keep the interpreter
alive still reports its timings). ``status`` is one of ``ok`` (``times``: seconds of each
repetition; ``measures``: for cases that measure more than time, the numbers of each
repetition), ``n/a`` (``reason``: the measured thing does not exist in this interpreter) or
``error`` (``reason``: what went wrong, ``traceback``). After reporting, it stops what the
row's cases started for the whole interpreter (a local Ray: see ``cases.teardown``).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, Dict


def _run(spec: Dict[str, Any]) -> Dict[str, Any]:
    import cases

    case = getattr(cases, spec["case"])
    n = int(spec["n"])
    params = dict(spec.get("params") or {})
    repeat = max(1, int(spec.get("repeat", 1)))
    budget = float(spec.get("budget", 0) or 0)
    times = []
    measures = []
    for _ in range(repeat):
        try:
            elapsed, out, *more = case(n, **params)
        except cases.NotAvailable as error:
            return {"status": "n/a", "reason": str(error)}
        except NotImplementedError as error:
            return {"status": "n/a", "reason": f"not implemented: {error}".rstrip(": ")}
        problem = cases.verify(spec["check"], n, out)
        del out
        if problem is not None:
            return {"status": "error", "reason": f"wrong result: {problem}"}
        times.append(elapsed)
        if more:
            measures.append(more[0])
        # Slow rows stop repeating once they have used their share of the run's time.
        if budget and sum(times) >= budget:
            break
    result: Dict[str, Any] = {"status": "ok", "times": times}
    if measures:
        result["measures"] = measures
    pypeln = sys.modules.get("pypeln")
    if pypeln is not None:
        result["pypeln_version"] = str(getattr(pypeln, "__version__", "?"))
    return result


def _teardown() -> None:
    """Stop what the cases started for the whole interpreter; a failure here is not the row's."""
    teardown = getattr(sys.modules.get("cases"), "teardown", None)
    if teardown is None:
        return
    try:
        teardown()
    except Exception:  # noqa: BLE001 - the harness kills whatever is left over
        traceback.print_exc()


def main() -> int:
    spec = json.loads(sys.argv[1])
    try:
        result = _run(spec)
    except BaseException as error:  # noqa: BLE001 - any failure becomes a reported row
        if isinstance(error, KeyboardInterrupt):
            raise
        last = traceback.format_exception_only(type(error), error)[-1].strip()
        result = {"status": "error", "reason": last, "traceback": traceback.format_exc()}
    sys.stdout.flush()
    sys.stderr.flush()
    partial = spec["result_file"] + ".part"
    with open(partial, "w", encoding="utf-8") as file:
        json.dump(result, file)
    os.replace(partial, spec["result_file"])  # the harness never sees half a file
    _teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
