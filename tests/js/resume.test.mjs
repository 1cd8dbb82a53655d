// chat() with `resumable: true`, and cancelStream(), against a real HTTP server on
// loopback that cuts the connection mid-answer and serves GET /api/streams/{id}
// the way llm-sse does: frames after Last-Event-ID, with their ids.
import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import { ChatError, backoffDelay, cancelStream, chat, streamUrl } from "../../static/sse.js";
import { counter, errorAnswer, startServer, startStream } from "./server.mjs";

let server;
let handler;
/** Frames (meta and tokens) the client has taken in this test: the gate before a cut. */
let taken;

before(async () => {
  server = await startServer((...args) => handler(...args));
});

after(() => server.close());

beforeEach(() => {
  server.requests = [];
  handler = (req, res) => res.end();
  taken = counter();
});

const TOKEN = "t0k3n-of-the-stream";
const META = { id: "s1", model: "m", provider: "ollama", resume: { token: TOKEN, url: "/api/streams/s1" } };
const DONE = { finish_reason: "stop", usage: {}, timing: {}, skipped_lines: 0 };
const WORDS = ["Once", " upon", " a", " time", " there", " was", " a", " stream", "."];
// The whole stream as the server keeps it: meta, one frame per word, done.
const FRAMES = [
  ["meta", META],
  ...WORDS.map((text) => ["token", { text }]),
  ["done", DONE],
];
const frame = (index) => {
  const [event, data] = FRAMES[index - 1];
  return `event: ${event}\ndata: ${JSON.stringify(data)}\nid: ${index}\n\n`;
};
const frames = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => frame(from + i)).join("");

/**
 * Write frames `from`..`to`, wait until the client has taken them, then cut
 * the TCP connection without ending the response.
 */
async function writeThenCut(res, from, to) {
  startStream(res);
  res.write(frames(from, to));
  await taken.reached(to);
  res.socket.destroy();
}

/** chat()'s options for this server; every meta and token taken opens the gate a step. */
const options = (more = {}) => ({
  url: `${server.base}/api/chat`,
  reconnectDelay: () => 0,
  ...more,
  onMeta: (meta) => {
    more.onMeta?.(meta);
    taken.add();
  },
  onToken: (text) => {
    more.onToken?.(text);
    taken.add();
  },
});
const ASK = { messages: [{ role: "user", content: "A story?" }], resumable: true };

test("a cut connection is resumed after the last frame: nothing missing, nothing twice", async () => {
  handler = async (req, res) => {
    if (req.method === "POST") return writeThenCut(res, 1, 4);
    startStream(res);
    res.end(frames(Number(req.headers["last-event-id"]) + 1, FRAMES.length));
  };
  const tokens = [];
  const events = [];
  const result = await chat(
    ASK,
    options({
      onToken: (text) => tokens.push(text),
      onMeta: () => events.push("meta"),
      onReconnecting: ({ attempt, error }) => events.push(`reconnecting ${attempt} ${error.code}`),
      onReconnected: () => events.push("reconnected"),
    }),
  );
  assert.equal(result.text, WORDS.join(""));
  assert.deepEqual(tokens, WORDS);
  assert.deepEqual(result.done, DONE);
  assert.deepEqual(events, ["meta", "reconnecting 1 network_error", "reconnected"]);
  const [post, resume] = server.requests;
  assert.equal(post.method, "POST");
  assert.equal(JSON.parse(post.body).resumable, true);
  assert.equal(resume.method, "GET");
  assert.equal(resume.url, "/api/streams/s1");
  assert.equal(resume.headers["last-event-id"], "4");
  assert.equal(resume.headers["x-resume-token"], TOKEN);
});

test("frames the server sends again are skipped by their id", async () => {
  handler = async (req, res) => {
    if (req.method === "POST") return writeThenCut(res, 1, 5);
    startStream(res);
    res.end(frames(1, FRAMES.length)); // a careless server: everything from the start
  };
  const tokens = [];
  const result = await chat(ASK, options({ onToken: (text) => tokens.push(text) }));
  assert.deepEqual(tokens, WORDS);
  assert.equal(result.text, WORDS.join(""));
});

test("a stream that ends without its terminal frame is resumed too", async () => {
  handler = async (req, res) => {
    startStream(res);
    if (req.method === "POST") res.end(frames(1, 3)); // a server restarting behind a proxy
    else res.end(frames(Number(req.headers["last-event-id"]) + 1, FRAMES.length));
  };
  const result = await chat(ASK, options());
  assert.equal(result.text, WORDS.join(""));
});

test("a busy server is tried again after a backoff; each try is announced", async () => {
  let gets = 0;
  handler = async (req, res) => {
    if (req.method === "POST") return writeThenCut(res, 1, 3);
    gets += 1;
    if (gets < 3) return errorAnswer(res, 503, { code: "shutting_down", message: "restarting" });
    startStream(res);
    res.end(frames(Number(req.headers["last-event-id"]) + 1, FRAMES.length));
  };
  const attempts = [];
  const result = await chat(
    ASK,
    options({
      reconnectDelay: (attempt) => attempt,
      onReconnecting: ({ attempt, delay, error }) => attempts.push([attempt, delay, error.code]),
    }),
  );
  assert.equal(result.text, WORDS.join(""));
  assert.deepEqual(attempts, [
    [1, 1, "network_error"],
    [2, 2, "shutting_down"],
    [3, 3, "shutting_down"],
  ]);
});

test("a stream the server no longer has ends the answer with its error at once", async () => {
  handler = async (req, res) => {
    if (req.method === "POST") return writeThenCut(res, 1, 3);
    errorAnswer(res, 410, { code: "frames_expired", message: "frames 2 to 5 are no longer kept" });
  };
  const tokens = [];
  const error = await chat(ASK, options({ onToken: (text) => tokens.push(text) })).catch((e) => e);
  assert.ok(error instanceof ChatError);
  assert.equal(error.code, "frames_expired");
  assert.equal(error.status, 410);
  assert.equal(error.phase, "stream");
  assert.deepEqual(tokens, WORDS.slice(0, 2));
  assert.equal(server.requests.length, 2);
});

test("after maxReconnects failures in a row the last error is thrown", async () => {
  handler = async (req, res) => {
    if (req.method === "POST") return writeThenCut(res, 1, 3);
    errorAnswer(res, 502, { code: "service_unavailable", message: "down" });
  };
  const error = await chat(ASK, options({ maxReconnects: 3 })).catch((e) => e);
  assert.equal(error.code, "service_unavailable");
  assert.equal(server.requests.length, 4);
});

test("an error frame is an answer, not a broken connection: no resume", async () => {
  handler = async (req, res) => {
    startStream(res);
    res.end(frames(1, 3) + `event: error\ndata: {"code":"cancelled","message":"the stream was cancelled"}\nid: 4\n\n`);
  };
  const error = await chat(ASK, options()).catch((e) => e);
  assert.equal(error.code, "cancelled");
  assert.equal(server.requests.length, 1);
});

test("without resumable, a cut connection is a network error as before", async () => {
  handler = async (req, res) => writeThenCut(res, 1, 3);
  const error = await chat({ ...ASK, resumable: false }, options()).catch((e) => e);
  assert.equal(error.code, "network_error");
  assert.equal(server.requests.length, 1);
});

test("Stop during the backoff rejects with AbortError at once", { timeout: 10_000 }, async () => {
  handler = async (req, res) => writeThenCut(res, 1, 3);
  const controller = new AbortController();
  const answer = chat(
    ASK,
    options({
      signal: controller.signal,
      reconnectDelay: () => 60_000,
      onReconnecting: () => controller.abort(),
    }),
  );
  await assert.rejects(answer, { name: "AbortError" });
  assert.equal(server.requests.length, 1);
});

test("cancelStream posts to the stream's cancel endpoint with its token", async () => {
  handler = (req, res) => {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ id: "s1", status: "cancelled" }));
  };
  const answer = await cancelStream(META, { url: `${server.base}/api/chat` });
  assert.deepEqual(answer, { id: "s1", status: "cancelled" });
  const [request] = server.requests;
  assert.equal(request.method, "POST");
  assert.equal(request.url, "/api/streams/s1/cancel");
  assert.equal(request.headers["x-resume-token"], TOKEN);
});

test("a stream's URL is resolved against the chat URL's origin", () => {
  assert.equal(streamUrl(META, "http://chat.example.com/app/api/chat"), "http://chat.example.com/api/streams/s1");
});

test("the backoff doubles from 250 ms to at most 8 s, jittered down by up to half", () => {
  assert.equal(backoffDelay(1, () => 0), 250);
  assert.equal(backoffDelay(2, () => 0), 500);
  assert.equal(backoffDelay(3, () => 1), 500);
  assert.equal(backoffDelay(10, () => 0), 8000);
  assert.equal(backoffDelay(30, () => 1), 4000);
});
