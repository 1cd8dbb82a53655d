// An event-stream parser: the HTML standard's rules for reading `text/event-stream`.
//
// No dependencies; runs in browsers and in Node >= 18 (ReadableStream,
// TextDecoder).  EventSource cannot POST a body or be aborted per request, so
// a chat page reads the fetch body itself, and that reader has to be exact: a
// network read can end anywhere, including inside a multi-byte UTF-8
// character, inside the byte-order mark, or between the CR and the LF of a
// line end.
//
// The parsing rules are the HTML standard's ("Server-sent events", interpreting
// an event stream); tests/js/ runs them against tests/fixtures/sse_parser_vectors.json.
// The chat protocol on top of it (frames, errors, resume) is static/sse.js.
//
//   for await (const event of readEvents(response.body, { signal })) { ... }

/** A line or an event's data grew past the parser's limit. */
export class EventTooLargeError extends Error {
  constructor(message) {
    super(message);
    this.name = "EventTooLargeError";
  }
}

const DEFAULT_MAX_SIZE = 8 * 1024 * 1024;
const LF = 10;
const CR = 13;

/**
 * Incremental event-stream parser: feed it bytes, take the events it completes.
 *
 * `lastEventId` and `retry` are kept across events (what a reconnecting
 * client would need); `close()` ends the stream and discards an event that
 * never got its blank line.
 */
export class EventStreamParser {
  /** @param {{maxSize?: number}} [options] largest line or event data, in characters */
  constructor({ maxSize = DEFAULT_MAX_SIZE } = {}) {
    this.maxSize = maxSize;
    /** The last event ID, as a reconnect would send it. */
    this.lastEventId = "";
    /** The reconnection time in ms, or null if the stream never set a valid one. */
    this.retry = null;
    // The decoder strips one BOM at the start of the stream (even split across
    // reads), replaces invalid bytes with U+FFFD, and keeps an incomplete
    // character until its next bytes arrive.
    this._decoder = new TextDecoder("utf-8");
    this._pending = []; // pieces of the current, unterminated line
    this._pendingSize = 0;
    this._skipLF = false; // the previous text ended with CR: a leading LF belongs to it
    this._data = [];
    this._dataSize = 0;
    this._type = "";
    this._idBuffer = "";
  }

  /**
   * Parse a chunk of bytes.
   * @param {Uint8Array} bytes
   * @returns {{type: string, data: string, id: string}[]} the events it completed
   */
  feed(bytes) {
    return this._text(this._decoder.decode(bytes, { stream: true }));
  }

  /** End of stream: flush the decoder; an event without its blank line is dropped. */
  close() {
    const events = this._text(this._decoder.decode());
    this._pending = [];
    this._pendingSize = 0;
    this._data = [];
    this._dataSize = 0;
    this._type = "";
    return events;
  }

  _text(text) {
    const events = [];
    let start = 0;
    if (this._skipLF && text.length) {
      this._skipLF = false;
      if (text.charCodeAt(0) === LF) start = 1;
    }
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== LF && c !== CR) continue;
      let line = text.slice(start, i);
      if (this._pending.length) {
        this._pending.push(line);
        line = this._pending.join("");
        this._pending = [];
        this._pendingSize = 0;
      }
      this._line(line, events);
      if (c === CR) {
        if (i + 1 === text.length) this._skipLF = true;
        else if (text.charCodeAt(i + 1) === LF) i++;
      }
      start = i + 1;
    }
    if (start < text.length) {
      const rest = text.slice(start);
      this._pending.push(rest);
      this._pendingSize += rest.length;
      if (this._pendingSize > this.maxSize) {
        throw new EventTooLargeError(`event-stream line longer than ${this.maxSize} characters`);
      }
    }
    return events;
  }

  _line(line, events) {
    if (line === "") {
      this._dispatch(events);
      return;
    }
    if (line.charCodeAt(0) === 58 /* : */) return; // a comment
    const colon = line.indexOf(":");
    let name = line;
    let value = "";
    if (colon !== -1) {
      name = line.slice(0, colon);
      value = line.slice(line.charCodeAt(colon + 1) === 32 /* space */ ? colon + 2 : colon + 1);
    }
    switch (name) {
      case "data":
        this._data.push(value);
        this._dataSize += value.length + 1;
        if (this._dataSize > this.maxSize) {
          throw new EventTooLargeError(`event data longer than ${this.maxSize} characters`);
        }
        break;
      case "event":
        this._type = value;
        break;
      case "id":
        if (!value.includes("\0")) this._idBuffer = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) this.retry = Number.parseInt(value, 10);
        break;
      default:
      // Unknown fields are ignored.
    }
  }

  _dispatch(events) {
    this.lastEventId = this._idBuffer;
    if (this._data.length) {
      events.push({ type: this._type || "message", data: this._data.join("\n"), id: this.lastEventId });
    }
    this._data = [];
    this._dataSize = 0;
    this._type = "";
  }
}

/** The reason an aborted signal gives, or a standard AbortError. */
export function abortReason(signal) {
  return signal.reason ?? new DOMException("The operation was aborted.", "AbortError");
}

/**
 * Read the events of a stream as they arrive.
 *
 * `source` is a `ReadableStream<Uint8Array>`, a `Response` (its body is
 * read), or any async iterable of byte chunks.  Aborting `signal` cancels the
 * read at once and throws the signal's reason; leaving the loop early cancels
 * the stream too, which closes a fetch's connection.  Pass your own `parser`
 * to read its `lastEventId` and `retry` afterwards.
 *
 * @param {ReadableStream<Uint8Array> | Response | AsyncIterable<Uint8Array>} source
 * @param {{signal?: AbortSignal, parser?: EventStreamParser, maxSize?: number}} [options]
 * @returns {AsyncGenerator<{type: string, data: string, id: string}>}
 */
export async function* readEvents(source, { signal, parser, maxSize } = {}) {
  const events = parser ?? new EventStreamParser({ maxSize });
  const stream = source && typeof source.getReader !== "function" && "body" in source ? source.body : source;
  if (stream == null) throw new TypeError("readEvents: the response has no body");
  if (signal?.aborted) {
    await stream.cancel?.(abortReason(signal)).catch(() => {});
    throw abortReason(signal);
  }
  const reader = typeof stream.getReader === "function" ? stream.getReader() : iteratorReader(stream);
  const onAbort = () => {
    reader.cancel(abortReason(signal)).catch(() => {});
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      signal?.throwIfAborted();
      if (done) break;
      for (const event of events.feed(value)) yield event;
    }
    finished = true;
    for (const event of events.close()) yield event;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock?.();
  }
}

/** A reader's read/cancel over an async iterable (e.g. a Node stream). */
function iteratorReader(iterable) {
  const iterator = iterable[Symbol.asyncIterator]();
  return {
    read: () => iterator.next(),
    cancel: async () => {
      await iterator.return?.();
    },
  };
}
