// chat() of static/sse.js against a real HTTP server on loopback that answers
// the way llm-sse does: frames written as they are produced, JSON errors with
// their status before the stream, `event: error` after it.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import { after, before, beforeEach, test } from "node:test";

import { ChatError, chat, errorFromResponse, parseRetryAfter } from "../../static/sse.js";
import { errorAnswer, frame, startServer, startStream } from "./server.mjs";

let server;
let handler;

before(async () => {
  server = await startServer((...args) => handler(...args));
});

after(() => server.close());

beforeEach(() => {
  server.requests = [];
  handler = (req, res) => res.end();
});

const META = { id: "s1", model: "llama3.2:latest", provider: "ollama" };
const DONE = {
  finish_reason: "stop",
  usage: { prompt_tokens: 26, completion_tokens: 3 },
  timing: { ttft_ms: 12.5, total_ms: 80.1, tokens_per_s: 40.2 },
  skipped_lines: 0,
};



const url = () => `${server.base}/api/chat`;

test("frames become callbacks and a result; the request is JSON", async () => {
  handler = async (req, res) => {
    startStream(res);
    const body = Buffer.from(
      ": ping\n\n" +
        frame("meta", META, 1) +
        frame("thinking", { text: "Hmm" }, 2) +
        frame("token", { text: "22 °C, " }, 3) +
        frame("future_frame", { anything: true }, 4) +
        frame("token", { text: "sunny ☀️" }, 5) +
        frame("done", DONE, 6),
    );
    // One byte per write: every split, including inside UTF-8 characters.
    for (const byte of body) {
      res.write(Buffer.of(byte));
      await new Promise((resolve) => setImmediate(resolve));
    }
    res.end();
  };
  const calls = [];
  const result = await chat(
    { messages: [{ role: "user", content: "Weather?" }], model: "llama3.2" },
    {
      url: url(),
      onMeta: (meta) => calls.push(["meta", meta.model]),
      onThinking: (text) => calls.push(["thinking", text]),
      onToken: (text) => calls.push(["token", text]),
    },
  );
  assert.deepEqual(calls, [
    ["meta", "llama3.2:latest"],
    ["thinking", "Hmm"],
    ["token", "22 °C, "],
    ["token", "sunny ☀️"],
  ]);
  assert.deepEqual(result, { meta: META, text: "22 °C, sunny ☀️", thinking: "Hmm", toolCalls: [], done: DONE });
  const [request] = server.requests;
  assert.equal(request.method, "POST");
  assert.equal(request.url, "/api/chat");
  assert.match(request.headers["content-type"], /^application\/json/);
  assert.equal(request.headers.accept, "text/event-stream");
  assert.deepEqual(JSON.parse(request.body), { messages: [{ role: "user", content: "Weather?" }], model: "llama3.2" });
});

test("a token reaches onToken while the server is still sending", { timeout: 10_000 }, async () => {
  let tokenSeen;
  const seen = new Promise((resolve) => {
    tokenSeen = resolve;
  });
  handler = async (req, res) => {
    startStream(res);
    res.write(frame("meta", META, 1) + frame("token", { text: "first" }, 2));
    await seen; // done is written only after the client saw the token
    res.end(frame("done", DONE, 3));
  };
  const result = await chat({ prompt: "hi" }, { url: url(), onToken: (text) => tokenSeen(text) });
  assert.equal(result.text, "first");
});

test("an error frame after tokens throws the server's code and message", async () => {
  handler = (req, res) => {
    startStream(res);
    res.write(frame("meta", META, 1) + frame("token", { text: "partial" }, 2));
    res.end(frame("error", { code: "upstream_error", message: "model runner crashed" }, 3));
  };
  const tokens = [];
  const error = await chat({ prompt: "hi" }, { url: url(), onToken: (t) => tokens.push(t) }).catch((e) => e);
  assert.ok(error instanceof ChatError);
  assert.equal(error.code, "upstream_error");
  assert.equal(error.message, "model runner crashed");
  assert.equal(error.phase, "stream");
  assert.equal(error.status, null);
  assert.deepEqual(tokens, ["partial"]);
});

test("a JSON error before the stream throws its status, code, message and Retry-After", async () => {
  handler = (req, res) =>
    errorAnswer(
      res,
      429,
      { code: "upstream_rate_limited", message: "slow down", retry_after: 7 },
      { "Retry-After": "7" },
    );
  const error = await chat({ prompt: "hi" }, { url: url() }).catch((e) => e);
  assert.ok(error instanceof ChatError);
  assert.deepEqual(
    { code: error.code, message: error.message, status: error.status, retryAfter: error.retryAfter, phase: error.phase },
    { code: "upstream_rate_limited", message: "slow down", status: 429, retryAfter: 7, phase: "request" },
  );
});

test("an invalid request names its field", async () => {
  handler = (req, res) =>
    errorAnswer(res, 400, { code: "invalid_request", message: "temperature must be at most 2", field: "options" });
  const error = await chat({ prompt: "hi" }, { url: url() }).catch((e) => e);
  assert.equal(error.code, "invalid_request");
  assert.equal(error.field, "options");
  assert.equal(error.retryAfter, null);
});

test("Retry-After as an HTTP date becomes seconds", async () => {
  const when = new Date(Date.now() + 120_000).toUTCString();
  handler = (req, res) =>
    errorAnswer(res, 503, { code: "shutting_down", message: "the server is restarting" }, { "Retry-After": when });
  const error = await chat({ prompt: "hi" }, { url: url() }).catch((e) => e);
  assert.equal(error.status, 503);
  assert.ok(error.retryAfter > 100 && error.retryAfter <= 120, `retryAfter ${error.retryAfter}`);
  assert.equal(parseRetryAfter("nonsense"), null);
  assert.equal(parseRetryAfter("0"), 0);
});

test("a non-JSON error page (a proxy's) still throws, with the status", async () => {
  handler = (req, res) => {
    res.writeHead(502, { "Content-Type": "text/html" });
    res.end("<html><body><h1>502 Bad Gateway</h1></body></html>");
  };
  const error = await chat({ prompt: "hi" }, { url: url() }).catch((e) => e);
  assert.ok(error instanceof ChatError);
  assert.equal(error.code, "http_error");
  assert.equal(error.status, 502);
  assert.match(error.message, /HTTP 502/);
});

test("a huge error page is read only up to a limit", { timeout: 10_000 }, async () => {
  const total = 64 * 1024 * 1024;
  let reportSent;
  const sentBytes = new Promise((resolve) => {
    reportSent = resolve;
  });
  handler = async (req, res, record) => {
    res.writeHead(502, { "Content-Type": "text/html" });
    const chunk = Buffer.alloc(64 * 1024, "x");
    let sent = 0;
    while (sent < total && !res.destroyed) {
      sent += chunk.length;
      if (!res.write(chunk)) await Promise.race([once(res, "drain"), record.closed]);
    }
    res.end();
    reportSent(sent);
  };
  const error = await chat({ prompt: "hi" }, { url: url() }).catch((e) => e);
  assert.equal(error.code, "http_error");
  assert.equal(error.status, 502);
  // The client hung up long before the server had written its 64 MiB.
  assert.ok((await sentBytes) < total / 2, "the client read the whole error page");
});

test("a 200 that is not an event stream is refused", async () => {
  handler = (req, res) => {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end("{}");
  };
  const error = await chat({ prompt: "hi" }, { url: url() }).catch((e) => e);
  assert.equal(error.code, "bad_response");
});

test("a stream that ends without done or error is reported, not taken as complete", async () => {
  handler = (req, res) => {
    startStream(res);
    res.end(frame("meta", META, 1) + frame("token", { text: "half an ans" }, 2));
  };
  const error = await chat({ prompt: "hi" }, { url: url() }).catch((e) => e);
  assert.ok(error instanceof ChatError);
  assert.equal(error.code, "incomplete_stream");
  assert.equal(error.phase, "stream");
});

test("a connection dropped mid-answer is a network error during the stream", async () => {
  handler = (req, res) => {
    startStream(res);
    res.write(frame("meta", META, 1) + frame("token", { text: "half" }, 2), () => res.socket.destroy());
  };
  const error = await chat({ prompt: "hi" }, { url: url() }).catch((e) => e);
  assert.ok(error instanceof ChatError);
  assert.equal(error.code, "network_error");
  assert.equal(error.phase, "stream");
});

test("an unreachable server is a network error before the stream", async () => {
  const closed = createServer();
  closed.listen(0, "127.0.0.1");
  await once(closed, "listening");
  const { port } = closed.address();
  closed.close();
  await once(closed, "close");
  const error = await chat({ prompt: "hi" }, { url: `http://127.0.0.1:${port}/api/chat` }).catch((e) => e);
  assert.ok(error instanceof ChatError);
  assert.equal(error.code, "network_error");
  assert.equal(error.phase, "request");
});

test("aborting mid-answer rejects with AbortError and closes the connection", { timeout: 10_000 }, async () => {
  handler = (req, res) => {
    startStream(res);
    res.write(frame("meta", META, 1) + frame("token", { text: "so far" }, 2));
    // ...then silence, as while a model thinks.
  };
  const controller = new AbortController();
  const tokens = [];
  const answer = chat(
    { prompt: "hi" },
    {
      url: url(),
      signal: controller.signal,
      onToken: (text) => {
        tokens.push(text);
        controller.abort();
      },
    },
  );
  await assert.rejects(answer, (error) => error.name === "AbortError" && !(error instanceof ChatError));
  assert.deepEqual(tokens, ["so far"]);
  await server.requests[0].closed; // the server saw the connection close
});

test("aborting before the answer starts rejects with AbortError and closes the connection", async () => {
  let arrived;
  const requestArrived = new Promise((resolve) => {
    arrived = resolve;
  });
  handler = () => arrived(); // never answers
  const controller = new AbortController();
  const answer = chat({ prompt: "hi" }, { url: url(), signal: controller.signal });
  await requestArrived;
  controller.abort();
  await assert.rejects(answer, { name: "AbortError" });
  await server.requests[0].closed;
});

test("a tool_call frame becomes a callback and a result; done says tool_calls", async () => {
  const call = { id: "call_0", name: "get_weather", arguments: '{"city":"Paris"}' };
  handler = (req, res) => {
    startStream(res);
    res.end(
      frame("meta", META, 1) +
        frame("tool_call", call, 2) +
        frame("done", { ...DONE, finish_reason: "tool_calls" }, 3),
    );
  };
  const calls = [];
  const result = await chat({ prompt: "Weather in Paris?" }, { url: url(), onToolCall: (c) => calls.push(c) });
  assert.deepEqual(calls, [call]);
  assert.deepEqual(result.toolCalls, [call]);
  assert.equal(result.text, "");
  assert.equal(result.done.finish_reason, "tool_calls");
});

test("a tool_call frame without a name is a bad response", async () => {
  handler = (req, res) => {
    startStream(res);
    res.end(frame("meta", META, 1) + frame("tool_call", { id: "call_0", arguments: "{}" }, 2));
  };
  const error = await chat({ prompt: "hi" }, { url: url() }).catch((e) => e);
  assert.equal(error.code, "bad_response");
  assert.equal(error.phase, "stream");
});

test("errorFromResponse reads the server's JSON error, or falls back to the status", async () => {
  const json = new Response(JSON.stringify({ error: { code: "invalid_request", message: "bad", field: "model" } }), {
    status: 400,
    headers: { "Content-Type": "application/json", "Retry-After": "3" },
  });
  const error = await errorFromResponse(json);
  assert.ok(error instanceof ChatError);
  assert.deepEqual(
    [error.code, error.message, error.status, error.field, error.retryAfter],
    ["invalid_request", "bad", 400, "model", 3],
  );
  const page = await errorFromResponse(new Response("<h1>oops</h1>", { status: 502, statusText: "Bad Gateway" }));
  assert.deepEqual([page.code, page.message, page.status], ["http_error", "the server answered HTTP 502 Bad Gateway", 502]);
});
