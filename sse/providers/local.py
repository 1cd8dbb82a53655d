"""The ``local`` provider: the built-in model, in this process, so llm-sse runs with no model server.

The model is the bundled demo (SmolLM2-135M-Instruct) unless a GGUF file is
given (``LLM_SSE_LOCAL_MODEL``); ``sse.providers.llamacpp`` reads the file's
metadata first, so a wrong file is refused with a sentence, before loading.

The model (``sse.providers.llamacpp``) computes in one worker thread of its
own; this module is the event loop's side of it:

* **Loading happens once, at start-up** (``start``), in the worker thread.
  The bundled weights are ~100 MB and load in well under a second, so nothing is won
  by deferring; in exchange, a missing or broken file stops the service at
  start-up with a clear message instead of failing its first user, and the
  first answer does not pay for the load.  ``readiness`` (``/readyz``) says
  whether the model is loaded, how long that took, and how busy it is.
* **One generation at a time**: a llama.cpp context is not re-entrant.
  Requests that find the model busy wait, first come first served, in a
  queue of ``queue_size``; beyond it they get 503 ``model_busy`` with a
  ``Retry-After`` of the average generation time (a place frees up when the
  running generation ends).  Time spent waiting counts against the relay's
  first-token timeout, so no wait is unbounded.
* **Tokens reach the loop without blocking it**: the worker hands each event
  over with ``call_soon_threadsafe``; llama.cpp releases the GIL while it
  computes, so the loop keeps serving other requests and heartbeats.  Events
  that piled up while the stream was busy writing are merged
  (``events.coalesce``) into one frame.  The hand-over queue holds at most one generation's tokens, which
  ``num_predict`` and the context length bound.
* **Stop means stop**: when the relay closes the stream (client gone, timeout,
  shutdown), the generation's cancel flag is set and no further llama.cpp
  call begins; the slot is given to the next request only once the worker
  has really returned.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..chat import ChatRequest
from ..errors import ApiError, ModelNotFound, UpstreamError
from ..events import Done, Event, StreamError, coalesce
from .base import ModelInfo, Readiness, StartupError
from .llamacpp import (
    DEFAULT_MAX_TOKENS,
    DEMO_NOTE,
    MODEL_DETAILS,
    MODEL_NAME,
    REQUIREMENTS,
    RUNTIME,
    Generation,
    GgufError,
    GgufInfo,
    LlamaModel,
    Sampling,
    locate_weights,
    missing_requirements,
    read_gguf,
)

log = logging.getLogger("llm_sse.local")

# Retry-After before any generation has finished, in seconds.
_FIRST_RETRY_AFTER = 2.0
# How long ``close`` waits for a running generation to notice its cancel.
_CLOSE_WAIT = 30.0


def install_hint() -> str:
    """What to run to get the built-in model (for start-up errors)."""
    return (
        "install the built-in model: run 'make serve' in an llm-sse checkout, or "
        "CMAKE_ARGS=\"-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON\" pip install 'llm-sse[local]'"
    )


class ModelBusy(UpstreamError):
    """The model is generating and its queue is full."""

    status = 503
    code = "model_busy"
    fallback = True


class WaitQueue:
    """One holder at a time; at most ``limit`` waiters, served in arrival order."""

    def __init__(self, limit: int, model: str = MODEL_NAME) -> None:
        self.limit = limit
        self.model = model
        self.busy = False
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self, retry_after: float) -> None:
        """Take the slot, waiting in line if needed; ``ModelBusy`` if the line is full."""
        if not self.busy:
            self.busy = True
            self._idle.clear()
            return
        if len(self._waiters) >= self.limit:
            raise ModelBusy(
                f"{self.model} is answering another request and {len(self._waiters)} more are waiting; "
                "try again shortly",
                retry_after=retry_after,
            )
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # the slot was handed to us as we left: pass it on
            else:
                self._waiters.remove(turn)
            raise

    def release(self) -> None:
        """Hand the slot to the next waiter, or mark it free."""
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.busy = False
        self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()


class LocalProvider:
    """Streams from the built-in model, computed in this process."""

    def __init__(
        self,
        *,
        name: str = "local",
        queue_size: int = 4,
        threads: int = 0,
        max_predict: int = 4096,
        model_path: Path | None = None,
        max_ctx: int = 32_768,
        setting: str = "LLM_SSE_LOCAL_MODEL",
    ) -> None:
        self.name = name
        self.queue_size = queue_size
        self.threads = threads or default_threads()
        self.max_predict = max_predict
        self.model_path = model_path
        self.max_ctx = max_ctx
        self.setting = setting
        self.model_name = MODEL_NAME if model_path is None else model_path.stem
        self.info: GgufInfo | None = None
        self._model: LlamaModel | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._queue: WaitQueue | None = None
        self._state = "not loaded"
        self.running: Generation | None = None
        self.last: Generation | None = None
        self._average_s: float | None = None

    # -- life

    @property
    def demo(self) -> bool:
        """Whether this is the bundled demo model (not a GGUF file of the user's)."""
        return self.model_path is None

    @property
    def description(self) -> str:
        """The model, as a start-up line names it."""
        if self.demo:
            return f"the built-in demo model {MODEL_NAME} (tiny, often wrong)"
        return f"{self.model_name} on the built-in runtime ({self.setting})"

    async def start(self) -> None:
        if self._model is not None:
            return
        missing = missing_requirements(REQUIREMENTS if self.demo else RUNTIME)
        if missing:
            raise StartupError(f"the built-in model needs {', '.join(missing)}; {install_hint()}")
        if self.model_path is None:
            try:
                path = locate_weights()
            except FileNotFoundError as exc:
                raise StartupError(f"the built-in model's weights are not installed: {exc}; {install_hint()}") from None
        else:
            path = self.model_path
        try:
            info = self.info = await asyncio.to_thread(read_gguf, path)
        except GgufError as exc:
            raise StartupError(f"{self.setting}: {exc}" if not self.demo else f"the built-in model: {exc}") from None
        # The context the model was trained for, within the service's bound (memory grows with it).
        n_ctx = min(info.context_length or self.max_ctx, self.max_ctx)
        self._queue = WaitQueue(self.queue_size, self.model_name)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-sse-local")
        self._state = "loading"
        log.info(
            "loading model",
            extra={"model": self.model_name, "path": str(path), "size_mb": round(info.size_bytes / 1e6)},
        )
        try:
            self._model = await asyncio.get_running_loop().run_in_executor(
                self._executor,
                functools.partial(LlamaModel, path, threads=self.threads, n_ctx=n_ctx, name=self.model_name),
            )
        except Exception as exc:
            self._state = f"failed to load: {exc}"
            self._executor.shutdown(wait=False)
            self._executor = None
            raise StartupError(f"{self.model_name} could not be loaded: {exc}") from None
        self._state = "loaded"
        log.info(
            "built-in model loaded",
            extra={
                "model": self.model_name,
                "path": str(path),
                "load_s": round(self._model.load_s, 3),
                "threads": self.threads,
                "context": self._model.n_ctx,
                "queue": self.queue_size,
            },
        )

    async def close(self) -> None:
        if self.running is not None:
            self.running.stop()
        executor, model = self._executor, self._model
        self._executor = self._model = None
        self._state = "closed"
        if executor is None:
            return
        if model is not None:
            # The executor runs one job at a time: this runs once the current generation has returned.
            unload = asyncio.get_running_loop().run_in_executor(executor, model.close)
            try:
                async with asyncio.timeout(_CLOSE_WAIT):
                    await unload
            except TimeoutError:
                log.warning("the built-in model did not stop in time", extra={"waited_s": _CLOSE_WAIT})
        executor.shutdown(wait=False)

    # -- models and health

    async def models(self) -> list[ModelInfo]:
        """The one model; the bundled one says it is a demo (``demo``, ``note``) so the page can say so."""
        details: dict[str, object]
        if self.demo:
            details = {**MODEL_DETAILS, "demo": True, "note": DEMO_NOTE}
        else:
            details = {"file": self.model_path.name if self.model_path else None}
            if self.info is not None:
                facts = {
                    "family": self.info.architecture,
                    "parameter_size": self.info.size_label,
                    "quantization_level": self.info.quantization,
                }
                details.update((key, value) for key, value in facts.items() if value)
        if self._model is not None:
            details["context_length"] = self._model.n_ctx
        return [ModelInfo(self.model_name, self.name, details)]

    async def resolve_model(self, requested: str | None) -> str:
        if requested is None or requested.lower() == self.model_name.lower():
            return self.model_name
        raise ModelNotFound(f"model {requested!r} is not here; the built-in model is {self.model_name!r}")

    async def readiness(self) -> Readiness:
        model, queue = self._model, self._queue
        if model is None or queue is None:
            return Readiness(False, f"{self.model_name}: {self._state}")
        activity = f"generating, {queue.waiting} waiting (queue {self.queue_size})" if queue.busy else "idle"
        threads = f"{self.threads} thread{'s' if self.threads != 1 else ''}"
        loaded = f"loaded in {model.load_s:.2f} s ({threads}, context {model.n_ctx})"
        return Readiness(True, f"{self.model_name} {loaded}; {activity}")

    @property
    def waiting(self) -> int:
        """Requests waiting for the model."""
        return self._queue.waiting if self._queue is not None else 0

    async def wait_idle(self) -> None:
        """Wait until no generation runs or waits (the worker thread has returned)."""
        if self._queue is not None:
            await self._queue.wait_idle()

    # -- streaming

    def sampling_for(self, request: ChatRequest) -> Sampling:
        """The request's options in llama.cpp's terms, with the built-in model's defaults."""
        return Sampling.from_options(request.options, min(self.max_predict, DEFAULT_MAX_TOKENS))

    async def stream(self, request: ChatRequest, model: str) -> AsyncIterator[Event]:
        loaded, queue, executor = self._model, self._queue, self._executor
        if loaded is None or queue is None or executor is None:
            raise UpstreamError(f"the built-in model is not available ({self._state})", status=503)
        if request.think:
            log.debug("think ignored: the built-in model does not reason", extra={"model": self.model_name})
        sampling = self.sampling_for(request)
        messages = [{"role": m.role, "content": m.content} for m in request.as_messages()]
        await queue.acquire(retry_after=self._average_s or _FIRST_RETRY_AFTER)
        loop = asyncio.get_running_loop()
        generation = Generation()
        handover: asyncio.Queue[Event | BaseException] = asyncio.Queue()

        def emit(item: Event | BaseException) -> None:
            """Runs in the worker: queue ``item`` for the loop (never blocks)."""
            try:
                loop.call_soon_threadsafe(handover.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                generation.stop()

        try:
            worker = loop.run_in_executor(executor, _work, loaded, messages, sampling, generation, emit)
        except BaseException:
            queue.release()
            raise
        self.running = generation
        worker.add_done_callback(functools.partial(self._finished, generation, time.monotonic()))
        sent = False
        try:
            while True:
                items = [await handover.get()]
                while not handover.empty():
                    items.append(handover.get_nowait())
                events: list[Event] = []
                for item in items:
                    if isinstance(item, BaseException):
                        error = _api_error(item)
                        if not sent and not events:
                            raise error
                        events.append(StreamError(error.code, error.message))
                        break
                    events.append(item)
                for event in coalesce(events):
                    sent = True
                    yield event
                    if isinstance(event, (Done, StreamError)):
                        return
        finally:
            generation.stop()

    def _finished(self, generation: Generation, started: float, worker: asyncio.Future[None]) -> None:
        """On the loop, once the worker has returned: free the slot for the next request."""
        if not worker.cancelled() and worker.exception() is not None:
            log.error("the built-in model's worker failed", exc_info=worker.exception())
        if generation.phase in ("stop", "length"):
            took = time.monotonic() - started
            self._average_s = took if self._average_s is None else 0.8 * self._average_s + 0.2 * took
        self.running = None
        self.last = generation
        log.debug(
            "local generation",
            extra={
                "outcome": generation.phase,
                "prompt_tokens": generation.prompt_tokens,
                "cached_tokens": generation.cached_tokens,
                "completion_tokens": generation.completion_tokens,
                "prompt_s": round(generation.prompt_s, 3),
                "generation_s": round(generation.generation_s, 3),
            },
        )
        if self._queue is not None:
            self._queue.release()


def _work(
    model: LlamaModel,
    messages: Sequence[Mapping[str, str]],
    sampling: Sampling,
    generation: Generation,
    emit: Callable[[Event | BaseException], None],
) -> None:
    """The worker thread's job: one generation; every ending reaches the stream.

    A generation cancelled by its own stream has nobody left to tell; one
    cancelled by ``close`` (shutdown) still has a reader, which must not wait
    for a ``Done`` that will never come.
    """
    try:
        model.generate(messages, sampling, generation, emit)
    except BaseException as exc:
        generation.phase = "error"
        emit(exc)
    else:
        if generation.phase == "cancelled":
            emit(ApiError(f"{model.name} was stopped: the service is shutting down", status=503, code="shutdown"))


def _api_error(exc: BaseException) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    log.error("the built-in model failed", exc_info=exc)
    return UpstreamError(f"the built-in model failed: {exc}")


def default_threads() -> int:
    """All cores but one: that core stays free for the event loop and everything else.

    llama.cpp's threads meet at a barrier after every operation, so when one
    of them loses its core (to the event loop, the network, another program)
    the others wait, at every step.  On the 2-core development machine under
    load, 2 threads generated up to 4 times and read prompts up to 3 times
    slower than 1; idle, 1 thread was within 20 % of 2 for generating.
    """
    try:
        cores = len(os.sched_getaffinity(0))  # a container's limit, not the host's count
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)
