"""The built-in model's plumbing that needs no model: stop sequences, the wait queue, options, lookup."""

from __future__ import annotations

import asyncio

import pytest

from sse.chat import ChatRequest
from sse.errors import ApiError
from sse.providers.llamacpp import (
    Generation,
    Sampling,
    StopScanner,
    missing_requirements,
)
from sse.providers.local import LocalProvider, ModelBusy, WaitQueue


def scan(stops: list[str], pieces: list[str]) -> tuple[str, bool]:
    scanner = StopScanner(stops)
    out = []
    for piece in pieces:
        text, stopped = scanner.feed(piece)
        out.append(text)
        if stopped:
            return "".join(out), True
    return "".join(out) + scanner.flush(), False


def test_stop_sequence_split_across_tokens_is_cut_before_it() -> None:
    assert scan(["END"], ["The answer", " is 4", "E", "N", "D and more"]) == ("The answer is 4", True)


def test_text_that_only_looks_like_a_stop_start_is_released() -> None:
    scanner = StopScanner(["<stop>"])
    assert scanner.feed("a <st") == ("a ", False)
    assert scanner.feed("ove") == ("<stove", False)


def test_held_back_text_is_flushed_at_the_end() -> None:
    assert scan(["\n\n"], ["one", "\n"]) == ("one\n", False)


def test_earliest_of_several_stop_sequences_wins() -> None:
    assert scan(["world", "lo"], ["hello world"]) == ("hel", True)


def test_no_stop_sequences_pass_text_through() -> None:
    assert scan([], ["a", "b"]) == ("ab", False)


def test_options_map_to_sampling_and_num_predict_defaults_to_the_limit() -> None:
    sampling = Sampling.from_options(
        {"num_predict": 7, "temperature": 0.0, "top_k": 5, "seed": 3, "stop": ["x", "y"]}, default_max_tokens=99
    )
    assert (sampling.max_tokens, sampling.temperature, sampling.top_k, sampling.seed) == (7, 0.0, 5, 3)
    assert sampling.stop == ("x", "y")
    assert sampling.top_p == 0.9  # the documented default
    assert Sampling.from_options({}, default_max_tokens=99).max_tokens == 99


def test_the_built_in_model_decodes_greedily_and_briefly_unless_asked_otherwise() -> None:
    # Sampled, the 135M model drifts into runs of emoji that only the length
    # limit ends; greedy it does not, and a default answer stays short.
    provider = LocalProvider(max_predict=4096)
    default = provider.sampling_for(ChatRequest(prompt="x"))
    assert (default.temperature, default.max_tokens) == (0.0, 512)  # greedy, 512 tokens, as documented
    asked = provider.sampling_for(ChatRequest(prompt="x", options={"temperature": 0.7, "num_predict": 2000}))
    assert (asked.temperature, asked.max_tokens) == (0.7, 2000)
    assert LocalProvider(max_predict=100).sampling_for(ChatRequest(prompt="x")).max_tokens == 100


def test_generation_stop_records_how_far_the_worker_was() -> None:
    generation = Generation()
    assert generation.begin_call("prompt")
    assert generation.begin_call("step")
    generation.stop()
    assert not generation.begin_call("step")
    assert (generation.steps, generation.steps_at_cancel, generation.prompt_chunks_at_cancel) == (1, 1, 1)


def test_missing_requirements_names_the_pip_packages() -> None:
    assert missing_requirements({"json": "json", "no_such_module_for_llm_sse": "no-such-package"}) == [
        "no-such-package"
    ]


async def test_wait_queue_serves_in_order_and_refuses_beyond_its_limit() -> None:
    queue = WaitQueue(limit=2)
    await queue.acquire(retry_after=1)
    order: list[str] = []

    async def wait(name: str) -> None:
        await queue.acquire(retry_after=1)
        order.append(name)

    first, second = asyncio.create_task(wait("first")), asyncio.create_task(wait("second"))
    await asyncio.sleep(0)  # one loop turn: both tasks run up to their wait
    assert queue.waiting == 2
    with pytest.raises(ModelBusy) as refused:
        await queue.acquire(retry_after=7.2)
    assert (refused.value.status, refused.value.code) == (503, "model_busy")
    assert isinstance(refused.value, ApiError)
    assert refused.value.headers() == {"Retry-After": "8"}
    queue.release()
    await first
    assert order == ["first"]
    queue.release()
    await second
    assert order == ["first", "second"]
    queue.release()
    assert not queue.busy
    await asyncio.wait_for(queue.wait_idle(), 1)


async def test_a_waiter_that_leaves_does_not_hold_the_queue() -> None:
    queue = WaitQueue(limit=1)
    await queue.acquire(retry_after=1)
    leaver = asyncio.create_task(queue.acquire(retry_after=1))
    await asyncio.sleep(0)
    assert queue.waiting == 1
    leaver.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaver
    assert queue.waiting == 0
    queue.release()
    assert not queue.busy


async def test_slot_handed_to_a_waiter_that_is_cancelled_passes_to_the_next() -> None:
    queue = WaitQueue(limit=2)
    await queue.acquire(retry_after=1)
    leaver = asyncio.create_task(queue.acquire(retry_after=1))
    stayer = asyncio.create_task(queue.acquire(retry_after=1))
    await asyncio.sleep(0)
    assert queue.waiting == 2
    queue.release()  # hands the slot to the leaver...
    leaver.cancel()  # ...which leaves before it runs
    with pytest.raises(asyncio.CancelledError):
        await leaver
    await asyncio.wait_for(stayer, 1)
    assert queue.busy
    assert queue.waiting == 0
