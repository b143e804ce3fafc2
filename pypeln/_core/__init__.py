"""Backend-neutral core: items, the stage graph, operators, injection, checks, errors."""
