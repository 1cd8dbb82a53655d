// The chat page's streaming cost: a 20 KB answer arriving in 40-character
// pieces, rendered by static/markdown.js after every piece (the page renders
// at most once per animation frame, so this is its worst case).
//
//   node bench/page_render.mjs            parse and build into a small DOM (tests/js/dom.mjs)
//   .venv/bin/python bench/page_render.py in Chromium, real DOM, with and without layout
//
// Prints the cost per update (median, 95th percentile, max, mean) in ms.

/** A typical long answer: headings, prose with emphasis and links, lists, code, a table. */
export function sampleAnswer(size = 20_000) {
  const section = (n) => `## Part ${n}: streaming without buffering

Server-Sent Events keep **one HTTP response open** and write \`event:\` and \`data:\` lines as tokens
arrive. A proxy that *buffers* breaks this, so [nginx](https://nginx.org/en/docs/) needs
\`proxy_buffering off\` and the app must flush after every frame.

Things to check, in order:

1. The upstream is read as bytes arrive, not after the answer.
2. Every frame is flushed: no \`Content-Length\`, no compression buffer.
3. Stop closes the upstream, so the model stops *too*.
   - with Ollama, closing the connection cancels the generation;
   - with an OpenAI-compatible server, the same holds.

\`\`\`python
async def relay(request):
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    async for token in upstream(request):
        await response.write(f"event: token\\ndata: {json.dumps({'text': token})}\\n\\n".encode())
    return response  # part ${n}
\`\`\`

| Setting | Value | Why |
|---|---|---|
| \`proxy_buffering\` | off | frames leave at once |
| \`proxy_read_timeout\` | 1h | long answers |
| \`gzip\` | off | no compression buffer |

> A blank line ends an event; a comment line (\`: ping\`) keeps the connection alive.

`;
  let text = "";
  for (let n = 1; text.length < size; n++) text += section(n);
  return text.slice(0, size);
}

export function pieces(text, size = 40) {
  const out = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

function summary(times) {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const round = (ms) => Math.round(ms * 1000) / 1000;
  return {
    updates: times.length,
    median_ms: round(at(0.5)),
    p95_ms: round(at(0.95)),
    max_ms: round(sorted[sorted.length - 1]),
    mean_ms: round(times.reduce((a, b) => a + b, 0) / times.length),
  };
}

/**
 * Stream the sample into a MarkdownView in `container`; `settle(container)`
 * runs after each update inside the timing (e.g. a forced layout).
 */
export function bench({ MarkdownView, container, now, settle = () => {}, size = 20_000, piece = 40 }) {
  const view = new MarkdownView(container);
  const times = [];
  let text = "";
  for (const part of pieces(sampleAnswer(size), piece)) {
    text += part;
    const started = now();
    view.update(text);
    settle(container);
    times.push(now() - started);
  }
  const started = now();
  view.finish?.();
  return { ...summary(times), finish_ms: Math.round((now() - started) * 1000) / 1000, chars: text.length };
}

if (globalThis.process?.argv && import.meta.url === `file://${globalThis.process.argv[1]}`) {
  const { MarkdownView } = await import("../static/markdown.js");
  const { createDocument } = await import("../tests/js/dom.mjs");
  const { performance } = await import("node:perf_hooks");
  const runs = [];
  for (let run = 0; run < 7; run++) {
    const container = createDocument().createElement("div");
    runs.push(bench({ MarkdownView, container, now: () => performance.now() }));
  }
  runs.sort((a, b) => a.mean_ms - b.mean_ms);
  console.log(JSON.stringify({ where: `node ${process.version}, tests/js/dom.mjs`, median_run: runs[3] }, null, 2));
}
