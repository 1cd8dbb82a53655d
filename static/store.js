// Conversations kept in this browser (localStorage), so a reload or "New chat" loses nothing.
//
// One key lists the conversations (id, title, last change), one key per
// conversation holds its exchanges; a list of 200 answers is read only when
// that conversation is opened.  What is stored is what was shown: the
// question, the answer's Markdown source, thinking, tool calls, how it ended.
// Stored answers are model output and as untrusted after a reload as while
// they streamed: the page renders them with the same safe builder.
//
// Storage can be missing (disabled, private mode) or full: every call then
// fails quietly and the page still works for this visit.  No DOM here, so
// Node's test runner checks it (tests/js/).

const INDEX_KEY = "llm-sse.conversations";
const CONVERSATION_PREFIX = "llm-sse.conversation.";
const CURRENT_KEY = "llm-sse.current";
/** Beyond this many conversations, the oldest are forgotten. */
export const MAX_CONVERSATIONS = 200;
const TITLE_LENGTH = 60;

/** A title from a first question: its first line, cut at a word near 60 characters. */
export function titleFrom(question) {
  const line =
    String(question)
      .split("\n")
      .find((l) => l.trim())
      ?.trim()
      .replace(/\s+/g, " ") ?? "";
  if (line.length <= TITLE_LENGTH) return line || "New chat";
  const cut = line.slice(0, TITLE_LENGTH);
  const space = cut.lastIndexOf(" ");
  return `${(space > 30 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

export function newId(now = Date.now(), random = Math.random) {
  return `${now.toString(36)}-${Math.floor(random() * 36 ** 6).toString(36)}`;
}

const isString = (value) => typeof value === "string";

/** A stored exchange as the page can use it, whatever was in storage (null if it is not one). */
export function exchangeFrom(raw) {
  if (!raw || typeof raw !== "object" || !isString(raw.question)) return null;
  const calls = Array.isArray(raw.toolCalls) ? raw.toolCalls : [];
  return {
    question: raw.question,
    answer: isString(raw.answer) ? raw.answer : "",
    thinking: isString(raw.thinking) ? raw.thinking : "",
    toolCalls: calls
      .filter((c) => c && isString(c.name))
      .map((c) => ({ id: isString(c.id) ? c.id : "", name: c.name, arguments: isString(c.arguments) ? c.arguments : "" })),
    model: isString(raw.model) ? raw.model : "",
    status: ["done", "stopped", "failed"].includes(raw.status) ? raw.status : "done",
    finishReason: isString(raw.finishReason) ? raw.finishReason : "",
    stats: isString(raw.stats) ? raw.stats : "",
    error: isString(raw.error) ? raw.error : "",
  };
}

/** Conversations in a `Storage` (localStorage; a Map-backed one in tests). */
export class ConversationStore {
  constructor(storage) {
    this.storage = storage;
  }

  _read(key) {
    try {
      const text = this.storage?.getItem(key);
      return text ? JSON.parse(text) : null;
    } catch {
      return null; // unreadable or not ours: as if absent
    }
  }

  _write(key, value) {
    if (!this.storage) return false;
    try {
      this.storage.setItem(key, JSON.stringify(value));
      return true;
    } catch {
      return false; // disabled or full
    }
  }

  _remove(key) {
    try {
      this.storage?.removeItem(key);
    } catch {
      // Nothing to do.
    }
  }

  /** `[{id, title, updated}]`, the most recent first. */
  list() {
    const index = this._read(INDEX_KEY);
    if (!Array.isArray(index)) return [];
    return index
      .filter((c) => c && isString(c.id) && isString(c.title))
      .map((c) => ({ id: c.id, title: c.title, updated: Number(c.updated) || 0 }))
      .sort((a, b) => b.updated - a.updated);
  }

  /** `{id, title, exchanges}` or null. */
  load(id) {
    const entry = this.list().find((c) => c.id === id);
    const raw = this._read(CONVERSATION_PREFIX + id);
    if (!entry || !raw || !Array.isArray(raw.exchanges)) return null;
    return { id, title: entry.title, exchanges: raw.exchanges.map(exchangeFrom).filter(Boolean) };
  }

  /** Keep a conversation; it moves to the top of the list.  False if storage refused it. */
  save(id, exchanges, { title, now = Date.now() } = {}) {
    const list = this.list();
    const existing = list.find((c) => c.id === id);
    const entry = { id, title: existing?.title ?? title ?? titleFrom(exchanges[0]?.question ?? ""), updated: now };
    const kept = [entry, ...list.filter((c) => c.id !== id)];
    for (const old of kept.splice(MAX_CONVERSATIONS)) this._remove(CONVERSATION_PREFIX + old.id);
    const ok = this._write(CONVERSATION_PREFIX + id, { exchanges });
    return this._write(INDEX_KEY, kept) && ok;
  }

  rename(id, title) {
    const clean = String(title).trim().replace(/\s+/g, " ").slice(0, 200);
    if (!clean) return false;
    return this._write(
      INDEX_KEY,
      this.list().map((c) => (c.id === id ? { ...c, title: clean } : c)),
    );
  }

  delete(id) {
    this._remove(CONVERSATION_PREFIX + id);
    this._write(
      INDEX_KEY,
      this.list().filter((c) => c.id !== id),
    );
    if (this.current() === id) this.setCurrent(null);
  }

  /** The conversation open when the page was last left, so a reload shows it again. */
  current() {
    try {
      return this.storage?.getItem(CURRENT_KEY) ?? null;
    } catch {
      return null;
    }
  }

  setCurrent(id) {
    try {
      if (id) this.storage?.setItem(CURRENT_KEY, id);
      else this.storage?.removeItem(CURRENT_KEY);
    } catch {
      // Not remembered.
    }
  }
}
