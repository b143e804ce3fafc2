"""Checked with mypy --strict (tests/test_typing.py), never run: each backend provides
the core's contracts (`pypeln._core.contracts`), as typed."""

from __future__ import annotations

from typing import Tuple, Type

from pypeln import process, sync, task, thread
from pypeln._core import contracts
from pypeln._core.element import Item
from pypeln._core.execution import Execution

# -- the backends' hooks -----------------------------------------------------------------

sync_backend: contracts.Backend = sync.BACKEND
thread_backend: contracts.Backend = thread.BACKEND
process_backend: contracts.SourceReadingBackend = process.BACKEND
task_backend: contracts.ConnectingBackend = task.BACKEND
core_run: Type[contracts.Run] = Execution


# -- the three parts of each backend with workers ----------------------------------------

BlockingParts = Tuple[
    contracts.Worker, contracts.Supervisor, contracts.Runner, contracts.BlockingIterableQueue[Item]
]


def thread_parts(
    worker: thread.Worker, supervisor: thread.Supervisor, queue: thread.IterableQueue[Item]
) -> BlockingParts:
    return worker, supervisor, supervisor, queue


def process_parts(
    worker: process.Worker, supervisor: process.Supervisor, queue: process.IterableQueue[Item]
) -> BlockingParts:
    return worker, supervisor, supervisor, queue


def task_parts(
    worker: task.Worker, supervisor: task.Supervisor, queue: task.IterableQueue[Item]
) -> Tuple[contracts.Worker, contracts.Supervisor, contracts.AsyncIterableQueue[Item]]:
    return worker, supervisor, queue
