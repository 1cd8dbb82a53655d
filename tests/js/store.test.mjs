// static/store.js: conversations kept in a Storage, and whatever is stored read back safely.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ConversationStore, MAX_CONVERSATIONS, exchangeFrom, titleFrom } from "../../static/store.js";

/** localStorage's interface over a Map; `full` makes every write throw, as a full storage does. */
function memoryStorage() {
  const map = new Map();
  return {
    map,
    full: false,
    getItem: (key) => (map.has(key) ? map.get(key) : null),
    setItem(key, value) {
      if (this.full) throw new DOMException("quota", "QuotaExceededError");
      map.set(key, String(value));
    },
    removeItem: (key) => map.delete(key),
  };
}

const exchange = (question, answer = "ok") => ({ question, answer, status: "done" });

test("conversations are saved, listed most recent first, loaded, renamed and deleted", () => {
  const store = new ConversationStore(memoryStorage());
  assert.ok(store.save("a", [exchange("About cats")], { now: 1 }));
  assert.ok(store.save("b", [exchange("About dogs")], { now: 2 }));
  assert.deepEqual(
    store.list().map((c) => [c.id, c.title]),
    [
      ["b", "About dogs"],
      ["a", "About cats"],
    ],
  );
  store.save("a", [exchange("About cats"), exchange("More")], { now: 3 });
  assert.equal(store.list()[0].id, "a");
  assert.equal(store.load("a").exchanges.length, 2);
  assert.equal(store.load("a").exchanges[1].question, "More");
  assert.ok(store.rename("a", "  Cats  "));
  assert.equal(store.load("a").title, "Cats");
  store.save("a", [exchange("About cats")], { now: 4, title: "ignored: a kept title wins" });
  assert.equal(store.load("a").title, "Cats");
  store.setCurrent("a");
  store.delete("a");
  assert.equal(store.load("a"), null);
  assert.equal(store.current(), null);
  assert.deepEqual(
    store.list().map((c) => c.id),
    ["b"],
  );
});

test("the oldest conversations are forgotten beyond the limit", () => {
  const storage = memoryStorage();
  const store = new ConversationStore(storage);
  for (let n = 0; n <= MAX_CONVERSATIONS; n++) store.save(`c${n}`, [exchange(`q${n}`)], { now: n });
  assert.equal(store.list().length, MAX_CONVERSATIONS);
  assert.equal(store.load("c0"), null);
  assert.equal(storage.map.has("llm-sse.conversation.c0"), false);
});

test("no storage, or a full one, fails quietly", () => {
  const none = new ConversationStore(null);
  assert.equal(none.save("a", [exchange("q")]), false);
  assert.deepEqual(none.list(), []);
  const storage = memoryStorage();
  storage.full = true;
  const full = new ConversationStore(storage);
  assert.equal(full.save("a", [exchange("q")]), false);
  assert.equal(full.load("a"), null);
});

test("whatever is in storage is read as plain strings or dropped", () => {
  assert.equal(exchangeFrom(null), null);
  assert.equal(exchangeFrom({ question: 5 }), null);
  assert.deepEqual(
    exchangeFrom({
      question: "q",
      answer: { toString: "<b>" },
      toolCalls: [{ name: "f", arguments: { a: 1 } }, { name: 7 }, null],
      status: "<script>",
    }),
    {
      question: "q",
      answer: "",
      thinking: "",
      toolCalls: [{ id: "", name: "f", arguments: "" }],
      model: "",
      status: "done",
      finishReason: "",
      stats: "",
      error: "",
    },
  );
  const storage = memoryStorage();
  storage.setItem("llm-sse.conversations", "not json");
  assert.deepEqual(new ConversationStore(storage).list(), []);
  storage.setItem("llm-sse.conversations", JSON.stringify([{ id: "x", title: "t" }, { id: 3 }, "y"]));
  storage.setItem("llm-sse.conversation.x", JSON.stringify({ exchanges: [exchange("q"), 42] }));
  const loaded = new ConversationStore(storage).load("x");
  assert.equal(loaded.exchanges.length, 1);
});

test("a title is the first line of the first question, cut at a word", () => {
  assert.equal(titleFrom("\n  What is SSE?\nMore"), "What is SSE?");
  assert.equal(titleFrom("   "), "New chat");
  const long = "Explain how server sent events work in a chat application with many concurrent users please";
  assert.equal(titleFrom(long), "Explain how server sent events work in a chat application…");
});
