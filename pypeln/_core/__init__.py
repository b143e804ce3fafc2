"""Backend-neutral core: items, the stage graph, operators, injection, checks, errors,
and the contracts a backend provides (`contracts`)."""
