"""Server-side batching as TF Serving does it (``--enable_batching --batching_parameters_file``).

Requests for the same model version and signature that arrive within ``batch_timeout_micros`` of
each other are merged into one batch of at most ``max_batch_size`` rows, padded up to the next of
``allowed_batch_sizes`` (a few fixed shapes), run once on one of ``num_batch_threads`` threads, and
each request gets its own rows back. At most ``max_enqueued_batches`` full batches wait; beyond
that a request is refused with UNAVAILABLE, as TF Serving refuses it.

One difference on purpose: when a merged batch fails (one undecodable image among good ones), its
requests are run again one by one, so only the bad request fails; TF Serving fails them all.

The parameters file is TF Serving's BatchingParameters text format (serving/batching_parameters.txt).
That proto is not in the tensorflow-serving-api wheel, so its few scalar fields are parsed here.
"""
from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from typing import Annotated, Any, Callable, Dict, Hashable, List, Optional, Tuple, Union

import numpy as np
import pydantic
import pydantic.dataclasses

from schema.errors import ServingError
from serving.settings import one_line

Arrays = Dict[str, np.ndarray]


class BatchingError(ServingError):
    """A request the batcher refuses; `code_name` (also `code`) is the gRPC status code's name."""

    def __init__(self, code_name: str, message: str):
        super().__init__(message, code_name)
        self.code_name = code_name


AtLeastOne = Annotated[int, pydantic.Field(ge=1)]


@pydantic.dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's BatchingParameters, with TF Serving's defaults."""

    max_batch_size: AtLeastOne = 1000
    batch_timeout_micros: Annotated[int, pydantic.Field(ge=0)] = 0
    max_enqueued_batches: AtLeastOne = 100
    num_batch_threads: AtLeastOne = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    allowed_batch_sizes: Tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    @pydantic.model_validator(mode="after")
    def _sizes_end_at_the_maximum(self) -> BatchingParameters:
        sizes = list(self.allowed_batch_sizes)
        if sizes and (sizes != sorted(set(sizes)) or sizes[-1] != self.max_batch_size):
            # TF Serving refuses to start on the same condition
            raise ValueError(
                f"allowed_batch_sizes {sizes} must increase and end with max_batch_size ({self.max_batch_size})"
            )
        return self

    def padded_size(self, rows: int) -> int:
        """The allowed batch size a batch of `rows` rows is padded up to."""
        return next((s for s in self.allowed_batch_sizes if s >= rows), rows)


_SCALARS = {"max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"}
_FIELD = re.compile(r"(\w+)\s*(?::\s*(\w+)|\{\s*value\s*:\s*(\w+)\s*\})")


def parse_batching_parameters(text: str, source: str = "batching parameters") -> BatchingParameters:
    """BatchingParameters from TF Serving's text format (`max_batch_size { value: 64 }`, ...)."""
    text = re.sub(r"#[^\n]*", "", text)
    values: Dict[str, Any] = {}
    sizes: List[int] = []
    position = 0
    for match in _FIELD.finditer(text):
        if text[position:match.start()].strip():
            break
        position = match.end()
        name, value = match.group(1), match.group(2) or match.group(3)
        try:
            if name in _SCALARS:
                values[name] = int(value)
            elif name == "allowed_batch_sizes":
                sizes.append(int(value))
            elif name == "pad_variable_length_inputs":
                values[name] = {"true": True, "false": False}[value]
            else:
                raise ValueError(
                    f"{source}: unknown field {name!r}; BatchingParameters fields here are "
                    f"{', '.join(sorted(_SCALARS | {'allowed_batch_sizes', 'pad_variable_length_inputs'}))}"
                )
        except (KeyError, TypeError) as err:
            raise ValueError(f"{source}: {name} has the value {value!r}, which is not valid ({err})") from None
    if text[position:].strip():
        raise ValueError(f"{source}: cannot parse {text[position:].strip()[:60]!r} (expected `field {{ value: N }}`)")
    try:
        return BatchingParameters(allowed_batch_sizes=tuple(sizes), **values)
    except pydantic.ValidationError as err:
        raise ValueError(f"{source}: {one_line(err)}") from None


def read_batching_parameters(path: str) -> BatchingParameters:
    """The batching parameters in file `path`; ValueError when it cannot be read or parsed."""
    try:
        with open(path) as f:
            return parse_batching_parameters(f.read(), path)
    except OSError as err:
        raise ValueError(f"cannot read the batching parameters file {path!r}: {err.strerror}") from None


@dataclasses.dataclass
class _Task:
    inputs: Arrays
    rows: int
    enqueued: float
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    outputs: Optional[Arrays] = None
    error: Optional[BaseException] = None


@dataclasses.dataclass
class _Queue:
    run: Callable[[Arrays], Arrays]
    tasks: List[_Task] = dataclasses.field(default_factory=list)
    rows: int = 0


def merge(tasks: List[_Task], padded: int) -> Arrays:
    """The tasks' inputs concatenated along the batch axis, padded with copies of the first row."""
    merged = {}
    for key in tasks[0].inputs:
        parts = [t.inputs[key] for t in tasks]
        rows = sum(len(p) for p in parts)
        if padded > rows:
            parts.append(np.repeat(parts[0][:1], padded - rows, axis=0))
        merged[key] = np.concatenate(parts, axis=0)
    return merged


def split(outputs: Arrays, tasks: List[_Task]) -> List[Arrays]:
    """Each task's rows of the batch's outputs (padding rows dropped)."""
    result, start = [], 0
    for task in tasks:
        result.append({key: value[start:start + task.rows] for key, value in outputs.items()})
        start += task.rows
    return result


class Batcher:
    """Merges concurrent requests with the same key (model, version, signature) into batches.

    `queued(seconds)` is told how long each request waited in the queue (the queuing latency).
    """

    def __init__(self, params: BatchingParameters, queued: Optional[Callable[[float], None]] = None):
        self.params = params
        self._queued = queued
        self._queues: Dict[Hashable, _Queue] = {}
        self._ready = threading.Condition()
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._loop, name=f"batch-{i}", daemon=True)
            for i in range(params.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def run(self, key: Hashable, run: Callable[[Arrays], Arrays], inputs: Arrays) -> Arrays:
        """Run `inputs` (arrays with the same number of rows) as part of a batch; blocks until done."""
        rows = {len(v) for v in inputs.values()}
        if len(rows) != 1:
            raise BatchingError(
                "INVALID_ARGUMENT", f"batching needs every input to have the same number of rows, got {sorted(rows)}"
            )
        task = _Task(inputs, rows.pop(), time.monotonic())
        if task.rows > self.params.max_batch_size:
            raise BatchingError(  # TF Serving's wording (large batch splitting off)
                "INVALID_ARGUMENT",
                f"Task size {task.rows} is larger than maximum input batch size {self.params.max_batch_size}: "
                "send smaller requests",
            )
        if task.rows == 0:
            return run(inputs)  # let the signature say what is wrong with an empty request
        with self._ready:
            queue = self._queues.setdefault(key, _Queue(run))
            if queue.rows + task.rows > self.params.max_batch_size * self.params.max_enqueued_batches:
                raise BatchingError(
                    "UNAVAILABLE", "The batch scheduling queue to which this task was submitted is full"
                )
            queue.run = run
            queue.tasks.append(task)
            queue.rows += task.rows
            self._ready.notify()
        task.done.wait()
        if task.error is not None:
            raise task.error
        assert task.outputs is not None, "a task is done with outputs or an error"
        return task.outputs

    def _take(self) -> Union[Tuple[_Queue, List[_Task]], Tuple[None, Optional[float]]]:
        """The queue due now and its tasks, or (None, how long to wait) (queue, its tasks to run now).

        Under the lock; or (None, the seconds to wait: None for until notified) when no queue is due.
        """
        timeout = self.params.batch_timeout_micros / 1e6
        now, soonest = time.monotonic(), None
        for queue in self._queues.values():
            if not queue.tasks:
                continue
            due = queue.tasks[0].enqueued + timeout
            if queue.rows >= self.params.max_batch_size or due <= now:
                taken, rows = [], 0
                while queue.tasks and rows + queue.tasks[0].rows <= self.params.max_batch_size:
                    task = queue.tasks.pop(0)
                    taken.append(task)
                    rows += task.rows
                    if self._queued is not None:
                        self._queued(now - task.enqueued)
                queue.rows -= rows
                return queue, taken
            soonest = due if soonest is None else min(soonest, due)
        return None, (None if soonest is None else max(0.0, soonest - now))

    def _loop(self) -> None:
        while True:
            with self._ready:
                while True:
                    if self._stopped:
                        return
                    taken = self._take()
                    if taken[0] is not None:
                        queue, tasks = taken
                        break
                    self._ready.wait(taken[1])
            self._process(queue.run, tasks)

    def _process(self, run: Callable[[Arrays], Arrays], tasks: List[_Task]) -> None:
        try:
            rows = sum(t.rows for t in tasks)
            outputs = run(merge(tasks, self.params.padded_size(rows)))
            for task, own in zip(tasks, split(outputs, tasks)):
                task.outputs = own
        except Exception as err:  # handed to the waiting requests
            if len(tasks) == 1:
                tasks[0].error = err
            else:  # one bad request must not fail the others: run each on its own
                for task in tasks:
                    try:
                        task.outputs = run(task.inputs)
                    except Exception as own:
                        task.error = own
        for task in tasks:
            task.done.set()

    def stop(self) -> None:
        """Stop batching and wake every waiting thread."""
        with self._ready:
            self._stopped = True
            self._ready.notify_all()
