// One loopback HTTP server for the JS client tests, answering the way llm-sse
// does: frames written as they are produced, JSON errors before the stream.
//
//   let handler;                                    // each test sets its own
//   const server = await startServer((...args) => handler(...args));  // in before()
//   server.requests                                 // what arrived, in order
//   await server.close();                           // in after()
import { once } from "node:events";
import { createServer } from "node:http";

/** Start a server on 127.0.0.1 that passes each request, body read, to `handler`. */
export async function startServer(handler) {
  const state = {
    base: "",
    /** @type {{method: string, url: string, headers: object, body: string, closed: Promise<unknown>}[]} */
    requests: [],
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const record = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() };
    record.closed = once(res, "close");
    state.requests.push(record);
    await handler(req, res, record);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  state.base = `http://127.0.0.1:${server.address().port}`;
  return state;
}

/** One event-stream frame as llm-sse writes it. */
export const frame = (event, data, id) => `event: ${event}\ndata: ${JSON.stringify(data)}\nid: ${id}\n\n`;

/** Send the headers of an event stream at once. */
export function startStream(res) {
  res.writeHead(200, { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache" });
  res.flushHeaders();
}

/** A JSON error answer before the stream, in llm-sse's shape. */
export function errorAnswer(res, status, error, headers = {}) {
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", ...headers });
  res.end(JSON.stringify({ error }));
}

/**
 * A promise that resolves once `count()` reaches a target: a test's gate.
 *
 *   const seen = counter();  seen.add();  await seen.reached(3);
 */
export function counter() {
  let value = 0;
  const waiters = [];
  return {
    get value() {
      return value;
    },
    add() {
      value += 1;
      for (const waiter of waiters.filter((w) => value >= w.target)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    },
    reached(target) {
      if (value >= target) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ target, resolve }));
    },
  };
}
