// The chat page: history, sending, streaming into the DOM, Stop, errors, models.
//
// The conversation lives here, in the page: each request sends the whole
// history as `messages`.  An exchange joins the history once it has an
// answer (finished, stopped or cut off with some text); one that failed
// before any text stays on screen with its error but is not sent again.
//
// Answers are resumable: if the connection breaks off mid-answer, sse.js
// picks the stream up again (the answer shows "Reconnecting…" meanwhile), and
// Stop cancels the stream on the server before it drops the connection.

import { MarkdownView } from "./markdown.js";
import { cancelStream, chat, errorFromResponse } from "./sse.js";
import { describeDone, describeError } from "./wording.js";

const MODEL_KEY = "llm-sse.model";
const API_KEY = "llm-sse.api-key";
const CHAT_URL = "api/chat";

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("composer"),
  prompt: $("prompt"),
  send: $("send"),
  stop: $("stop"),
  newChat: $("new-chat"),
  model: $("model"),
  modelStatus: $("model-status"),
  conversation: $("conversation"),
  turns: $("turns"),
  empty: $("empty"),
  keyForm: $("key-form"),
  keyReason: $("key-reason"),
  apiKey: $("api-key"),
};

/** @type {{role: string, content: string}[]} */
let history = [];
/** The exchange being streamed, or null when idle. */
let active = null;

// -- one exchange on screen

function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

class Exchange {
  constructor(question) {
    this.question = question;
    this.text = "";
    this.thinking = "";
    this.finished = false;
    this.controller = new AbortController();

    const user = make("article", "turn turn-user");
    user.append(make("h2", "visually-hidden", "You"), make("p", "user-text", question));

    const answer = make("article", "turn turn-assistant");
    answer.setAttribute("aria-busy", "true");
    answer.append(make("h2", "visually-hidden", "Answer"));
    this.modelLine = make("p", "turn-model");
    this.modelLine.hidden = true;
    this.thinkingBox = make("details", "thinking");
    this.thinkingBox.hidden = true;
    this.thinkingLabel = make("summary", "", "Thinking…");
    this.thinkingText = document.createTextNode("");
    const thinkingBody = make("div", "thinking-text");
    thinkingBody.append(this.thinkingText);
    this.thinkingBox.append(this.thinkingLabel, thinkingBody);
    this.body = make("div", "answer markdown");
    this.view = new MarkdownView(this.body);
    this.status = make("p", "turn-status", "Waiting for the model…");
    this.error = make("p", "turn-error");
    this.error.hidden = true;
    this.error.setAttribute("role", "alert");
    this.stats = make("p", "turn-stats");
    this.stats.hidden = true;
    answer.append(this.modelLine, this.thinkingBox, this.body, this.status, this.error, this.stats);
    this.article = answer;
    this.nodes = [user, answer];
    this.frame = 0;
    this.meta = null;
  }

  onMeta(meta) {
    this.meta = meta;
    if (meta?.model) {
      this.modelLine.textContent = meta.model;
      this.modelLine.hidden = false;
    }
  }

  onThinking(text) {
    this.thinkingBox.hidden = false;
    keepScrolled(() => this.thinkingText.appendData(text));
  }

  onToken(text) {
    this.text += text;
    if (!this.status.hidden) this.status.hidden = true;
    if (this.thinkingLabel.textContent === "Thinking…") this.thinkingLabel.textContent = "Thoughts";
    // Many tokens can arrive per frame; render once per frame.
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
  }

  reconnecting() {
    keepScrolled(() => {
      this.article.classList.add("reconnecting");
      this.status.textContent = "Reconnecting…";
      this.status.hidden = false;
    });
  }

  reconnected() {
    this.article.classList.remove("reconnecting");
    if (this.text) this.status.hidden = true;
    else this.status.textContent = "Waiting for the model…";
  }

  render() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    keepScrolled(() => this.view.update(this.text));
  }

  end() {
    this.finished = true;
    this.article.classList.remove("reconnecting");
    this.render();
    this.article.setAttribute("aria-busy", "false");
    if (this.thinkingLabel.textContent === "Thinking…") this.thinkingLabel.textContent = "Thoughts";
  }

  done(result) {
    this.end();
    keepScrolled(() => {
      this.status.hidden = true;
      const notes = [];
      if (result.done?.finish_reason === "length") notes.push("The answer reached its length limit.");
      if (!this.text) notes.push("The model gave an empty answer.");
      this.stats.textContent = [describeDone(result.done), ...notes].filter(Boolean).join(" · ");
      this.stats.hidden = !this.stats.textContent;
    });
  }

  stopped() {
    this.end();
    keepScrolled(() => {
      this.article.classList.add("stopped");
      this.status.textContent = this.text ? "Stopped." : "Stopped before the answer began.";
      this.status.hidden = false;
    });
  }

  failed(error) {
    this.end();
    keepScrolled(() => {
      this.status.hidden = true;
      this.article.classList.add("failed");
      this.error.textContent = describeError(error);
      this.error.hidden = false;
    });
  }
}

// -- scrolling: follow the answer unless the reader scrolled up

function keepScrolled(change) {
  const box = ui.conversation;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
  change();
  if (atBottom) box.scrollTop = box.scrollHeight;
}

// -- sending and stopping

function setBusy(busy) {
  ui.send.disabled = busy;
  ui.stop.hidden = !busy;
  ui.form.setAttribute("aria-busy", String(busy));
}

async function send(question) {
  const exchange = new Exchange(question);
  active = exchange;
  setBusy(true);
  keepScrolled(() => ui.turns.append(...exchange.nodes));
  ui.empty.hidden = true;

  const messages = [...history, { role: "user", content: question }];
  const body = { messages, resumable: true };
  if (ui.model.value) body.model = ui.model.value;
  try {
    const result = await chat(body, {
      url: CHAT_URL,
      headers: authHeaders(),
      signal: exchange.controller.signal,
      onMeta: (meta) => exchange.onMeta(meta),
      onThinking: (text) => exchange.onThinking(text),
      onToken: (text) => exchange.onToken(text),
      onReconnecting: () => exchange.reconnecting(),
      onReconnected: () => exchange.reconnected(),
    });
    if (exchange.finished) return;
    exchange.done(result);
    remember(exchange);
  } catch (error) {
    if (exchange.finished) return; // already stopped by the user
    if (error?.name === "AbortError") {
      exchange.stopped();
    } else {
      exchange.failed(error);
      if (isUnauthorized(error)) askForKey();
      if (!exchange.text && !ui.prompt.value) {
        // Nothing came back: give the question back so trying again is one key.
        ui.prompt.value = question;
      }
    }
    remember(exchange);
  } finally {
    if (active === exchange) {
      active = null;
      setBusy(false);
    }
  }
}

/** An exchange with answer text becomes part of the conversation the model sees. */
function remember(exchange) {
  if (exchange.text && !exchange.remembered) {
    exchange.remembered = true;
    history.push({ role: "user", content: exchange.question }, { role: "assistant", content: exchange.text });
  }
}

/** Stop the answer being streamed; the partial answer stays, and sending works at once. */
function stop() {
  const exchange = active;
  if (!exchange) return;
  // A resumable stream outlives its connection: cancel it on the server first
  // (the model stops at once), then drop the connection. Not awaited: Stop is instant.
  if (exchange.meta?.resume?.token) {
    cancelStream(exchange.meta, { url: CHAT_URL, headers: authHeaders() }).catch(() => {});
  }
  exchange.controller.abort();
  exchange.stopped();
  remember(exchange);
  active = null;
  setBusy(false);
  ui.prompt.focus();
}

function submit() {
  const question = ui.prompt.value;
  if (active || !question.trim()) return;
  ui.prompt.value = "";
  send(question);
}

function newChat() {
  stop();
  history = [];
  ui.turns.replaceChildren();
  ui.empty.hidden = false;
  ui.prompt.focus();
}

// -- models

function stored(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null; // storage disabled: the page still works for this visit
  }
}

function store(key, value) {
  try {
    if (value) localStorage.setItem(key, value);
    else localStorage.removeItem(key);
  } catch {
    // Not remembered; nothing else depends on it.
  }
}

const storedModel = () => stored(MODEL_KEY);
const storeModel = (name) => store(MODEL_KEY, name);

// -- the access key (when the server requires API keys)

/** The key typed in this visit, or the one kept from an earlier visit. */
let apiKey = stored(API_KEY);

/** Headers for every API call: the key's `Authorization`, when there is a key. */
function authHeaders() {
  return apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
}

/** The server refused the request for want of a (valid) key: ask for one. */
function askForKey() {
  ui.keyReason.textContent = apiKey
    ? "The server did not accept this access key. Enter another."
    : "This chat needs an access key.";
  ui.keyForm.hidden = false;
  ui.apiKey.value = "";
  ui.apiKey.focus();
}

function useKey(key) {
  apiKey = key.trim() || null;
  store(API_KEY, apiKey);
  ui.keyForm.hidden = true;
  loadModels();
  ui.prompt.focus();
}

const isUnauthorized = (error) => error?.status === 401 && error?.code === "unauthorized";

function showModelStatus(text) {
  ui.modelStatus.textContent = text;
  ui.modelStatus.hidden = !text;
}

async function loadModels() {
  let listing;
  try {
    const response = await fetch("api/models", {
      headers: { Accept: "application/json", ...authHeaders() },
      cache: "no-store",
    });
    if (!response.ok) {
      const error = await errorFromResponse(response);
      if (isUnauthorized(error)) {
        showModelStatus("");
        askForKey();
        return;
      }
      showModelStatus(`Could not list the models (${error.message}); the server's default model answers.`);
      return;
    }
    listing = await response.json().catch(() => null);
  } catch {
    showModelStatus("Could not reach the server to list the models.");
    return;
  }
  const models = Array.isArray(listing?.models) ? listing.models : [];
  const providers = new Set(models.map((m) => m.provider));
  const options = models.map((m) => {
    const label = providers.size > 1 ? `${m.name} (${m.provider})` : m.name;
    const option = make("option", "", label);
    option.value = m.name;
    return option;
  });
  const fallback = make("option", "", "Server default");
  fallback.value = "";
  ui.model.replaceChildren(...(options.length ? options : [fallback]));
  const names = models.map((m) => m.name);
  const wanted = storedModel();
  ui.model.value = names.includes(wanted) ? wanted : names.includes(listing.default) ? listing.default : names[0] ?? "";
  const problems = (listing.errors ?? []).map((e) => `${e.provider}: ${e.message}`);
  showModelStatus(problems.length ? `Some models could not be listed (${problems.join("; ")}).` : "");
}

// -- copying code

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API (plain http on another host): select and copy.
    const area = make("textarea", "visually-hidden");
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

async function onCopy(button) {
  const code = button.closest(".code-block")?.querySelector("code");
  if (!code) return;
  const ok = await copyText(code.textContent);
  button.textContent = ok ? "Copied" : "Copy failed";
  setTimeout(() => {
    button.textContent = "Copy";
  }, 2000);
}

// -- wiring

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
});

ui.prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    submit();
  }
});

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && active) {
    event.preventDefault();
    stop();
  }
});

ui.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  useKey(ui.apiKey.value);
});

ui.stop.addEventListener("click", stop);
ui.newChat.addEventListener("click", newChat);
ui.model.addEventListener("change", () => storeModel(ui.model.value));
ui.turns.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (button) onCopy(button);
});

setBusy(false);
loadModels();
ui.prompt.focus();
