// The event-stream reader of static/eventstream.js against every vector of
// tests/fixtures/sse_parser_vectors.json, fed as bytes in every split the
// vector allows: whole, one byte at a time, and its own chunks.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { EventStreamParser, EventTooLargeError, readEvents } from "../../static/eventstream.js";

const VECTORS = JSON.parse(readFileSync(new URL("../fixtures/sse_parser_vectors.json", import.meta.url), "utf8"));
const encoder = new TextEncoder();

const fromHex = (hex) => Uint8Array.from(hex.match(/../g) ?? [], (byte) => Number.parseInt(byte, 16));

/** A byte stream that hands out `chunks` one read at a time and records a cancel. */
function streamOf(chunks) {
  const queue = [...chunks];
  const stream = new ReadableStream({
    pull(controller) {
      if (queue.length) controller.enqueue(queue.shift());
      else controller.close();
    },
    cancel(reason) {
      stream.cancelledWith = reason ?? "cancelled";
    },
  });
  return stream;
}

function splits(vector) {
  const bytes = vector.input_hex ? fromHex(vector.input_hex) : encoder.encode(vector.input);
  const result = { whole: [bytes], "byte by byte": Array.from(bytes, (b) => Uint8Array.of(b)) };
  if (vector.chunks) result["its chunks"] = vector.chunks.map((chunk) => encoder.encode(chunk));
  if (vector.chunks_hex) result["its byte chunks"] = vector.chunks_hex.map(fromHex);
  return result;
}

test("the fixture holds all 86 vectors", () => {
  assert.equal(VECTORS.length, 86);
  assert.equal(new Set(VECTORS.map((v) => v.name)).size, 86);
});

for (const vector of VECTORS) {
  test(`vector ${vector.name}`, async (t) => {
    const expected = vector.expected_events.map((e) => ({ type: e.type, data: e.data, id: e.lastEventId }));
    for (const [how, chunks] of Object.entries(splits(vector))) {
      await t.test(how, async () => {
        const parser = new EventStreamParser();
        const events = [];
        for await (const event of readEvents(streamOf(chunks), { parser })) events.push(event);
        assert.deepEqual(events, expected);
        assert.equal(parser.retry, vector.expected_retry);
        assert.equal(parser.lastEventId, vector.expected_last_event_id);
      });
    }
  });
}

test("every split point of every vector gives the same events", () => {
  // Two chunks, cut at each byte: covers every CR|LF and mid-character split.
  for (const vector of VECTORS) {
    const bytes = vector.input_hex ? fromHex(vector.input_hex) : encoder.encode(vector.input);
    const expected = vector.expected_events.map((e) => ({ type: e.type, data: e.data, id: e.lastEventId }));
    for (let cut = 0; cut <= bytes.length; cut++) {
      const parser = new EventStreamParser();
      const events = [...parser.feed(bytes.subarray(0, cut)), ...parser.feed(bytes.subarray(cut)), ...parser.close()];
      assert.deepEqual(events, expected, `${vector.name} cut at byte ${cut}`);
      assert.equal(parser.lastEventId, vector.expected_last_event_id, `${vector.name} cut at byte ${cut}`);
    }
  }
});

test("events are yielded as their chunk arrives, not at the end of the stream", async () => {
  let release;
  const gate = new Promise((resolve) => {
    release = resolve;
  });
  const stream = new ReadableStream({
    async start(controller) {
      controller.enqueue(encoder.encode("event: token\ndata: one\n\n"));
      await gate;
      controller.enqueue(encoder.encode("data: two\n\n"));
      controller.close();
    },
  });
  const iterator = readEvents(stream);
  const first = await iterator.next();
  assert.deepEqual(first.value, { type: "token", data: "one", id: "" });
  release();
  const second = await iterator.next();
  assert.deepEqual(second.value, { type: "message", data: "two", id: "" });
  assert.equal((await iterator.next()).done, true);
});

test("aborting the signal stops the read at once and cancels the stream", async () => {
  const controller = new AbortController();
  const source = new ReadableStream({
    start(c) {
      c.enqueue(encoder.encode("data: first\n\n"));
      // ...and then nothing more, ever.
    },
    cancel(reason) {
      source.cancelledWith = reason;
    },
  });
  const seen = [];
  await assert.rejects(
    (async () => {
      for await (const event of readEvents(source, { signal: controller.signal })) {
        seen.push(event.data);
        controller.abort();
      }
    })(),
    { name: "AbortError" },
  );
  assert.deepEqual(seen, ["first"]);
  assert.equal(source.cancelledWith.name, "AbortError");
});

test("an already aborted signal reads nothing and cancels the stream", async () => {
  const source = streamOf([encoder.encode("data: x\n\n")]);
  await assert.rejects(readEvents(source, { signal: AbortSignal.abort() }).next(), { name: "AbortError" });
  assert.equal(source.cancelledWith.name, "AbortError");
});

test("leaving the loop early cancels the stream", async () => {
  const source = streamOf([encoder.encode("data: 1\n\ndata: 2\n\n"), encoder.encode("data: 3\n\n")]);
  for await (const event of readEvents(source)) {
    assert.equal(event.data, "1");
    break;
  }
  assert.ok(source.cancelledWith, "the source was cancelled");
});

test("a Response and an async iterable of chunks are read too", async () => {
  const body = "event: token\ndata: {\"text\":\"h\u00e9\"}\nid: 3\n\n";
  const fromResponse = [];
  for await (const event of readEvents(new Response(body))) fromResponse.push(event);
  assert.deepEqual(fromResponse, [{ type: "token", data: '{"text":"h\u00e9"}', id: "3" }]);

  async function* pieces() {
    const bytes = encoder.encode(body);
    for (const b of bytes) yield Uint8Array.of(b);
  }
  const fromIterable = [];
  for await (const event of readEvents(pieces())) fromIterable.push(event);
  assert.deepEqual(fromIterable, fromResponse);
});

test("a line longer than maxSize is refused, not buffered without end", async () => {
  const parser = new EventStreamParser({ maxSize: 16 });
  assert.deepEqual(parser.feed(encoder.encode("data: 0123456789\n\n")), [{ type: "message", data: "0123456789", id: "" }]);
  assert.throws(() => parser.feed(encoder.encode("data: 0123456789abcdef")), EventTooLargeError);

  // ...also when the line arrives in small pieces.
  const slow = new EventStreamParser({ maxSize: 16 });
  assert.throws(() => {
    for (const b of encoder.encode("data: 0123456789abcdef")) slow.feed(Uint8Array.of(b));
  }, EventTooLargeError);
});

test("event data longer than maxSize over many lines is refused", () => {
  const parser = new EventStreamParser({ maxSize: 16 });
  assert.throws(() => parser.feed(encoder.encode("data: 01234\ndata: 56789\ndata: abcde\n")), EventTooLargeError);
});

test("U+2028 and U+0085 inside data are not line ends", async () => {
  const parser = new EventStreamParser();
  const events = [...parser.feed(encoder.encode("data: a\u2028b\u0085c\u2029d\n\n")), ...parser.close()];
  assert.deepEqual(events, [{ type: "message", data: "a\u2028b\u0085c\u2029d", id: "" }]);
});
