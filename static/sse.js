// llm-sse's chat client: POST /api/chat, its frames, its errors, and resumable streams.
//
// No dependencies beyond the event-stream parser beside it (static/eventstream.js);
// runs in browsers and in Node >= 18 (fetch, ReadableStream, TextDecoder).
//
//   const result = await chat({ messages }, { signal, onToken, onThinking });
//   const result = await chat({ messages, resumable: true }, { signal, onToken, onReconnecting });
//
// The parser's names are exported here too, so one import serves both:
//   for await (const event of readEvents(response.body, { signal })) { ... }

import { EventTooLargeError, abortReason, readEvents } from "./eventstream.js";

export { EventStreamParser, EventTooLargeError, readEvents } from "./eventstream.js";

// -- the chat protocol of POST /api/chat

/**
 * A chat that failed, with what the server said.
 *
 * - `code`: the server's error code (`upstream_rate_limited`, `model_not_found`, ...),
 *   or one of this client's: `network_error`, `http_error` (a non-JSON error
 *   answer, e.g. from a proxy), `bad_response`, `incomplete_stream`, `stream_too_large`;
 * - `status`: the HTTP status of an error answered before the stream
 *   started, null for a failure during the stream;
 * - `phase`: `"request"` (no answer yet) or `"stream"` (after the stream started:
 *   some text may already have arrived);
 * - `retryAfter`: seconds to wait before trying again, when the server said so;
 * - `field`: the request field at fault, for `invalid_request`.
 */
export class ChatError extends Error {
  constructor({ code, message, status = null, phase = "request", retryAfter = null, field = null, cause }) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "ChatError";
    this.code = code;
    this.status = status;
    this.phase = phase;
    this.retryAfter = retryAfter;
    this.field = field;
  }
}

/** Seconds from a Retry-After value: delay-seconds or an HTTP date. */
export function parseRetryAfter(value, now = Date.now()) {
  if (value == null || value === "") return null;
  const text = String(value).trim();
  if (/^[0-9]+$/.test(text)) return Number.parseInt(text, 10);
  const when = Date.parse(text);
  if (Number.isNaN(when)) return null;
  return Math.max(0, Math.ceil((when - now) / 1000));
}

const ERROR_BODY_LIMIT = 64 * 1024;

/** At most `limit` characters of a body: an error page can be anything. */
async function readLimited(response, limit) {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    while (text.length < limit) {
      const { done, value } = await reader.read();
      if (done) return text + decoder.decode();
      text += decoder.decode(value, { stream: true });
    }
    return text.slice(0, limit);
  } finally {
    reader.cancel().catch(() => {});
  }
}

/**
 * The `ChatError` of a non-2xx answer: the server's JSON error (code, message,
 * field, retry time) or, for anything else (a proxy's error page), the status.
 * Reads at most 64 KiB of the body.
 */
export async function errorFromResponse(response) {
  let text = "";
  try {
    text = await readLimited(response, ERROR_BODY_LIMIT);
  } catch {
    // The body broke off: the status alone has to do.
  }
  let error = null;
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === "object" && body.error !== null && typeof body.error.message === "string") {
      error = body.error;
    }
  } catch {
    // Not JSON: a proxy's error page, say.
  }
  const retryAfter = parseRetryAfter(response.headers.get("Retry-After")) ?? parseRetryAfter(error?.retry_after);
  if (error) {
    return new ChatError({
      code: typeof error.code === "string" ? error.code : "http_error",
      message: error.message,
      status: response.status,
      retryAfter,
      field: typeof error.field === "string" ? error.field : null,
    });
  }
  const reason = response.statusText ? ` ${response.statusText}` : "";
  return new ChatError({
    code: "http_error",
    message: `the server answered HTTP ${response.status}${reason}`,
    status: response.status,
    retryAfter,
  });
}

function isAbort(error, signal) {
  return signal?.aborted || error?.name === "AbortError";
}

/**
 * Read an answer of POST /api/chat that has already arrived as `response`.
 *
 * Calls `onMeta(meta)`, `onToken(text)`, `onThinking(text)` and
 * `onToolCall({id, name, arguments})` as frames arrive and resolves with
 * `{meta, text, thinking, toolCalls, done}` once the `done` frame came (`done`
 * is its data: finish_reason, usage, timing; `finish_reason` is "tool_calls"
 * when the model asked for tools).  A tool call's `arguments` is the JSON text
 * the model wrote; the client runs the tool and sends the result back.  A non-2xx
 * answer, an `error` frame, a dropped connection or a stream that ends
 * without its terminal frame rejects with a `ChatError`; an abort rejects
 * with the signal's reason (an `AbortError`), so Stop is never mistaken for
 * a failure.
 */
export async function readChat(response, options = {}) {
  const state = newState();
  await readInto(response, state, options);
  return resultOf(state);
}

function newState() {
  return { meta: null, text: "", thinking: "", toolCalls: [], done: null, lastId: 0 };
}

function resultOf(state) {
  return { meta: state.meta, text: state.text, thinking: state.thinking, toolCalls: state.toolCalls, done: state.done };
}

/** A `tool_call` frame's data as `{id, name, arguments}`, all strings, or null if it is not one. */
function toolCallOf(data) {
  if (typeof data.name !== "string" || !data.name) return null;
  const args = data.arguments;
  return {
    id: typeof data.id === "string" ? data.id : "",
    name: data.name,
    arguments: typeof args === "string" ? args : args === undefined ? "" : JSON.stringify(args),
  };
}

/**
 * Read frames of `response` into `state` until `done` (then return) or a failure (then throw).
 *
 * `state.lastId` is the id of the last frame taken; a `meta`, `token` or
 * `thinking` frame whose id is not above it is one we already have (a resume
 * replays from the id it asked for, so this is only a second safety) and is
 * skipped, so no text is ever shown twice.
 */
async function readInto(response, state, { signal, onMeta, onToken, onThinking, onToolCall, maxSize } = {}) {
  if (!response.ok) throw await errorFromResponse(response);
  const type = response.headers.get("Content-Type") ?? "";
  if (!type.toLowerCase().startsWith("text/event-stream")) {
    response.body?.cancel().catch(() => {});
    throw new ChatError({
      code: "bad_response",
      message: `the server answered ${type || "without a content type"} instead of an event stream`,
      status: response.status,
    });
  }
  try {
    for await (const event of readEvents(response.body, { signal, maxSize })) {
      const id = /^[0-9]+$/.test(event.id) ? Number.parseInt(event.id, 10) : null;
      const content =
        event.type === "token" || event.type === "thinking" || event.type === "meta" || event.type === "tool_call";
      if (content && id !== null && id <= state.lastId) continue;
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        throw new ChatError({ code: "bad_response", message: `a ${event.type} frame is not JSON`, phase: "stream" });
      }
      if (data === null || typeof data !== "object") data = {};
      const text = typeof data.text === "string" ? data.text : "";
      if (id !== null && id > state.lastId) state.lastId = id;
      switch (event.type) {
        case "token":
          state.text += text;
          onToken?.(text);
          break;
        case "thinking":
          state.thinking += text;
          onThinking?.(text);
          break;
        case "meta":
          state.meta = data;
          onMeta?.(data);
          break;
        case "tool_call": {
          const call = toolCallOf(data);
          if (!call) throw new ChatError({ code: "bad_response", message: "a tool_call frame has no name", phase: "stream" });
          state.toolCalls.push(call);
          onToolCall?.(call);
          break;
        }
        case "done":
          state.done = data;
          return; // leaving the loop closes the connection
        case "error":
          throw new ChatError({
            code: typeof data.code === "string" ? data.code : "upstream_error",
            message: typeof data.message === "string" ? data.message : "the answer failed",
            phase: "stream",
          });
        default:
        // Frames this client does not know are ignored (newer servers may add some).
      }
    }
  } catch (error) {
    if (isAbort(error, signal)) throw signal?.aborted ? abortReason(signal) : error;
    if (error instanceof ChatError) throw error;
    if (error instanceof EventTooLargeError) {
      throw new ChatError({ code: "stream_too_large", message: error.message, phase: "stream", cause: error });
    }
    throw new ChatError({
      code: "network_error",
      message: "the connection to the server broke off during the answer",
      phase: "stream",
      cause: error,
    });
  }
  throw new ChatError({
    code: "incomplete_stream",
    message: "the answer ended before the server finished it",
    phase: "stream",
  });
}

/**
 * Send a chat request and read its answer: `POST url` with `body` as JSON.
 *
 * `body` is the request of the API (`{messages, model, options, think}` or
 * `{prompt, ...}`).  Options: `url` (default `/api/chat`, resolved against
 * the page), `fetch` (default the global one), `headers` (sent with every
 * request, resumes included: e.g. an API key's `Authorization`), `signal`,
 * and the callbacks of `readChat`.  Resolves with `{meta, text, thinking, toolCalls, done}`.
 *
 * With `body.resumable` true, a connection that breaks off mid-answer is
 * resumed: after a backoff the client asks `GET /api/streams/{id}` for the
 * frames after the last one it took, and goes on as if nothing happened --
 * no text is lost or shown twice.  `onReconnecting({attempt, delay, error})`
 * is called before each try and `onReconnected()` once the stream is back;
 * after `maxReconnects` failed tries in a row (default 8, about half a
 * minute) the last error is thrown.  An answer the server no longer has
 * (404, 410) ends it at once.
 */
export async function chat(body, options = {}) {
  const { url = "/api/chat", fetch: fetchImpl = globalThis.fetch, headers = {}, signal } = options;
  let response;
  try {
    response = await fetchImpl(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream", ...headers },
      body: JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (isAbort(error, signal)) throw signal?.aborted ? abortReason(signal) : error;
    throw new ChatError({ code: "network_error", message: "could not reach the server", cause: error });
  }
  if (!body?.resumable) return readChat(response, options);
  return followResumable(response, options);
}

// -- resumable streams

/** Failures after which a resumable answer is picked up again rather than given up. */
const RESUMABLE_CODES = new Set(["network_error", "incomplete_stream"]);
/** Statuses of a resume request worth another try (the server or a proxy in between is busy or restarting). */
const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/**
 * Milliseconds to wait before reconnection attempt `attempt` (1, 2, ...):
 * 250 ms doubling up to 8 s, each with up to half taken off at random so
 * clients cut off together do not come back together.
 */
export function backoffDelay(attempt, random = Math.random) {
  const full = Math.min(250 * 2 ** (attempt - 1), 8000);
  return Math.round(full * (1 - random() / 2));
}

/** The URL of a resumable stream's endpoints, from its `meta` and the chat URL it came from. */
export function streamUrl(meta, chatUrl = "/api/chat") {
  const base = new URL(chatUrl, globalThis.location?.href);
  return new URL(meta.resume.url, base).href;
}

/**
 * Stop a resumable stream for good: `POST {stream}/cancel` with its token
 * (and `headers`, e.g. the API key's `Authorization`).
 *
 * Aborting the fetch alone does not stop a resumable stream (the server keeps
 * it going for a reconnect), so Stop calls this first.  Sent with `keepalive`
 * so it goes out even if the page is closing.  Resolves with the server's
 * answer (`{id, status}`) or rejects with a `ChatError`.
 */
export async function cancelStream(
  meta,
  { url = "/api/chat", fetch: fetchImpl = globalThis.fetch, headers = {} } = {},
) {
  let response;
  try {
    response = await fetchImpl(`${streamUrl(meta, url)}/cancel`, {
      method: "POST",
      headers: { ...headers, "X-Resume-Token": meta.resume.token, Accept: "application/json" },
      keepalive: true,
    });
  } catch (error) {
    throw new ChatError({ code: "network_error", message: "could not reach the server", cause: error });
  }
  if (!response.ok) throw await errorFromResponse(response);
  return response.json();
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

async function followResumable(response, options) {
  const { url = "/api/chat", fetch: fetchImpl = globalThis.fetch, headers = {}, signal, maxReconnects = 8 } = options;
  const delay = options.reconnectDelay ?? backoffDelay;
  const state = newState();
  let source = response;
  let failures = 0;
  for (;;) {
    const before = state.lastId;
    try {
      await readInto(source, state, options);
      return resultOf(state);
    } catch (error) {
      if (!(error instanceof ChatError) || !RESUMABLE_CODES.has(error.code) || !state.meta?.resume?.token) {
        throw error;
      }
      if (state.lastId > before) failures = 0; // it was making progress: start the backoff over
      source = await reconnect(state, error);
    }
  }

  async function reconnect(state, lastError) {
    for (;;) {
      failures += 1;
      if (failures > maxReconnects) throw lastError;
      const wait = delay(failures);
      options.onReconnecting?.({ attempt: failures, delay: wait, error: lastError });
      await sleep(wait, signal);
      let answer;
      try {
        answer = await fetchImpl(streamUrl(state.meta, url), {
          headers: {
            ...headers,
            Accept: "text/event-stream",
            "X-Resume-Token": state.meta.resume.token,
            "Last-Event-ID": String(state.lastId),
          },
          cache: "no-store",
          signal,
        });
      } catch (error) {
        if (isAbort(error, signal)) throw signal?.aborted ? abortReason(signal) : error;
        lastError = new ChatError({
          code: "network_error",
          message: "could not reach the server",
          phase: "stream",
          cause: error,
        });
        continue;
      }
      if (answer.ok && answer.status !== 204) {
        options.onReconnected?.();
        return answer;
      }
      // 204: the server has nothing after our last frame, yet we never got the end.
      const error =
        answer.status === 204
          ? new ChatError({ code: "incomplete_stream", message: "the answer ended before the server finished it" })
          : await errorFromResponse(answer);
      error.phase = "stream";
      if (answer.status === 204 || !RETRY_STATUSES.has(answer.status)) throw error;
      lastError = error;
    }
  }
}
