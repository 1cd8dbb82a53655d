// The chat page: conversations, sending, Stop, actions on messages, models, the access key.
//
// The conversation lives in the page: each request sends the exchanges that
// have an answer as `messages`.  One that failed before any text stays on
// screen with its error (and a Retry that replaces it) but is not sent again.
// Conversations are kept in this browser (store.js) and listed in the sidebar.
//
// Answers are resumable: if the connection breaks off mid-answer, sse.js
// picks the stream up again (the answer shows "Reconnecting…" meanwhile), and
// Stop cancels the stream on the server before it drops the connection.

import { cancelStream, chat, errorFromResponse } from "./sse.js";
import { ConversationStore, newId, titleFrom } from "./store.js";
import { Exchange, characters, make } from "./turns.js";
import { withSeparators } from "./wording.js";

const MODEL_KEY = "llm-sse.model";
const API_KEY = "llm-sse.api-key";
const CHAT_URL = "api/chat";
/** Within this many pixels of the bottom, the conversation follows a growing answer. */
const FOLLOW_SLACK = 48;
/** The live character count shows from this share of the server's limit on. */
const COUNT_FROM = 0.5;

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("composer"),
  prompt: $("prompt"),
  send: $("send"),
  stop: $("stop"),
  newline: $("newline"),
  count: $("count"),
  newChat: $("new-chat"),
  model: $("model"),
  modelStatus: $("model-status"),
  conversation: $("conversation"),
  turns: $("turns"),
  empty: $("empty"),
  demoNote: $("demo-note"),
  suggestions: $("suggestions"),
  jump: $("jump"),
  keyForm: $("key-form"),
  keyReason: $("key-reason"),
  apiKey: $("api-key"),
  sidebar: $("sidebar"),
  sidebarToggle: $("sidebar-toggle"),
  chats: $("chats"),
  noChats: $("no-chats"),
};

const storage = (() => {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // storage disabled: the page still works for this visit
  }
})();
const store = new ConversationStore(storage);

/** The open conversation: its id in the store (null until its first question) and its exchanges. */
let conversation = { id: null, title: "", exchanges: [] };
/** The exchange being streamed, or null when idle. */
let active = null;
/** The server's limit on one message, in characters, when it says (from /openapi.json). */
let messageLimit = null;
/** The models the server listed. */
let models = [];
/** Exchanges by their DOM, for the action buttons. */
const byNode = new WeakMap();

// -- scrolling: follow the answer unless the reader scrolled up

function atBottom() {
  const box = ui.conversation;
  return box.scrollHeight - box.scrollTop - box.clientHeight < FOLLOW_SLACK;
}

function keepScrolled(change) {
  const follow = atBottom();
  change();
  if (follow) ui.conversation.scrollTop = ui.conversation.scrollHeight;
}

function scrollToLatest() {
  ui.conversation.scrollTop = ui.conversation.scrollHeight;
  showJump();
}

/** "Jump to latest" appears while the reader is scrolled up from the end. */
function showJump() {
  const away = !atBottom() && ui.turns.childElementCount > 0;
  if (ui.jump.hidden === away) ui.jump.hidden = !away;
}

// -- sending and stopping

function setBusy(busy) {
  ui.send.hidden = busy;
  ui.stop.hidden = !busy;
  document.body.classList.toggle("busy", busy);
  ui.form.setAttribute("aria-busy", String(busy));
  updateCount();
}

/** The conversation as the model sees it: the exchanges with answer text, up to `upTo` (exclusive). */
function historyBefore(upTo = conversation.exchanges.length) {
  return conversation.exchanges
    .slice(0, upTo)
    .filter((e) => e.answered)
    .flatMap((e) => [
      { role: "user", content: e.question },
      { role: "assistant", content: e.text },
    ]);
}

function focusPrompt() {
  const here = document.activeElement;
  if (!here || here === document.body || ui.form.contains(here) || here.closest?.(".turn, #empty")) ui.prompt.focus();
}

/**
 * Ask: a new exchange at the end, or (with `continuing`) more of the last answer.
 * Continuing sends the conversation with the unfinished answer last, which
 * model servers take as the start of the answer to go on from.
 */
async function send(question, { continuing = null } = {}) {
  const exchange = continuing ?? new Exchange({ question });
  const controller = new AbortController();
  active = exchange;
  setBusy(true);
  let messages;
  if (continuing) {
    const index = conversation.exchanges.indexOf(exchange);
    messages = [...historyBefore(index), { role: "user", content: exchange.question }, { role: "assistant", content: exchange.text }];
  } else {
    messages = [...historyBefore(), { role: "user", content: question }];
    conversation.exchanges.push(exchange);
    for (const node of exchange.nodes) byNode.set(node, exchange);
    ui.turns.append(...exchange.nodes);
    ui.empty.hidden = true;
  }
  exchange.start(controller);
  if (!continuing) scrollToLatest(); // the new question is in view, and the answer followed
  saveConversation();

  const body = { messages, resumable: true };
  if (ui.model.value) body.model = ui.model.value;
  try {
    const result = await chat(body, {
      url: CHAT_URL,
      headers: authHeaders(),
      signal: controller.signal,
      onMeta: (meta) => exchange.onMeta(meta, keepScrolled),
      onThinking: (text) => exchange.onThinking(text, keepScrolled),
      onToken: (text) => exchange.onToken(text, keepScrolled),
      onToolCall: (call) => exchange.onToolCall(call, keepScrolled),
      onReconnecting: () => exchange.reconnecting(keepScrolled),
      onReconnected: () => exchange.reconnected(),
    });
    if (active !== exchange) return;
    exchange.done(result, keepScrolled);
  } catch (error) {
    if (active !== exchange) return; // stopped by the user, or the conversation was left
    if (error?.name === "AbortError") exchange.stopped(keepScrolled);
    else {
      exchange.failed(error, keepScrolled);
      if (isUnauthorized(error)) askForKey();
    }
  }
  active = null;
  setBusy(false);
  saveConversation();
  showJump();
  focusPrompt();
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
  active = null;
  exchange.controller?.abort();
  exchange.stopped(keepScrolled);
  setBusy(false);
  saveConversation();
  ui.prompt.focus();
}

function submit() {
  const question = ui.prompt.value;
  if (active || !question.trim() || tooLong(question)) return;
  ui.prompt.value = "";
  updateCount();
  ui.prompt.focus();
  send(question);
}

/** Remove exchange `index` and every one after it (an edit or a retry goes on from there). */
function truncateFrom(index) {
  for (const exchange of conversation.exchanges.splice(index)) exchange.remove();
  ui.empty.hidden = conversation.exchanges.length > 0;
}

// -- actions on messages

async function onAction(button) {
  const action = button.dataset.action;
  const exchange = byNode.get(button.closest(".turn"));
  if (!exchange) return;
  const index = conversation.exchanges.indexOf(exchange);
  const last = index === conversation.exchanges.length - 1;
  switch (action) {
    case "copy-answer":
      flash(button, await copyText(exchange.text));
      break;
    case "copy-question":
      flash(button, await copyText(exchange.question));
      break;
    case "toggle-long":
      exchange.toggleLong();
      break;
    case "edit": {
      if (active) return;
      const text = await exchange.edit();
      if (text === null || active) {
        button.focus();
        return;
      }
      truncateFrom(index);
      send(text);
      break;
    }
    case "regenerate":
    case "retry":
      if (active || !last) return;
      truncateFrom(index);
      ui.prompt.focus();
      send(exchange.question);
      break;
    case "continue":
      if (active || !last) return;
      ui.prompt.focus();
      send(exchange.question, { continuing: exchange });
      break;
    case "new-chat":
      newChat();
      break;
    default:
  }
}

function flash(button, ok) {
  const label = button.textContent;
  button.textContent = ok ? "Copied" : "Copy failed";
  setTimeout(() => {
    button.textContent = label;
  }, 2000);
}

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

async function onCopyCode(button) {
  const code = button.closest(".code-block")?.querySelector("code");
  if (!code) return;
  // The code as written, without the line end that closes a code block.
  const ok = await copyText(code.textContent.replace(/\n$/, ""));
  button.textContent = ok ? "Copied" : "Copy failed";
  setTimeout(() => {
    button.textContent = "Copy";
  }, 2000);
}

// -- conversations

function saveConversation() {
  const exchanges = conversation.exchanges.map((e) => e.toJSON());
  if (!exchanges.length) return;
  if (!conversation.id) {
    conversation.id = newId();
    conversation.title = titleFrom(exchanges[0].question);
  }
  store.save(conversation.id, exchanges, { title: conversation.title });
  store.setCurrent(conversation.id);
  renderChats();
}

/** Leave the open conversation (stopping its answer; it is kept) and show `next`. */
function show(next) {
  stop();
  for (const exchange of conversation.exchanges) exchange.remove();
  conversation = next;
  for (const exchange of conversation.exchanges) {
    for (const node of exchange.nodes) byNode.set(node, exchange);
    ui.turns.append(...exchange.nodes);
  }
  ui.empty.hidden = conversation.exchanges.length > 0;
  store.setCurrent(conversation.id);
  renderChats();
  scrollToLatest();
}

function newChat() {
  show({ id: null, title: "", exchanges: [] });
  closeSidebarOnPhones();
  ui.prompt.focus();
}

function openChat(id) {
  const stored = store.load(id);
  if (!stored) {
    renderChats();
    return;
  }
  show({ id, title: stored.title, exchanges: stored.exchanges.map((data) => new Exchange(data)) });
  closeSidebarOnPhones();
  ui.prompt.focus();
}

function renderChats() {
  const chats = store.list();
  ui.noChats.hidden = chats.length > 0;
  ui.chats.replaceChildren(
    ...chats.map((entry) => {
      const item = make("li", "chat");
      item.dataset.id = entry.id;
      const open = make("button", "chat-open", entry.title);
      open.type = "button";
      open.dataset.chat = "open";
      if (entry.id === conversation.id) open.setAttribute("aria-current", "true");
      const rename = make("button", "chat-tool", "Rename");
      rename.type = "button";
      rename.dataset.chat = "rename";
      rename.setAttribute("aria-label", `Rename “${entry.title}”`);
      const remove = make("button", "chat-tool", "Delete");
      remove.type = "button";
      remove.dataset.chat = "delete";
      remove.setAttribute("aria-label", `Delete “${entry.title}”`);
      item.append(open, rename, remove);
      return item;
    }),
  );
}

function onChatButton(button) {
  const item = button.closest("li.chat");
  const id = item?.dataset.id;
  if (!id) return;
  switch (button.dataset.chat) {
    case "open":
      openChat(id);
      break;
    case "rename":
      renameInPlace(item, id);
      break;
    case "delete":
      confirmDelete(item, id);
      break;
    case "confirm-delete":
      store.delete(id);
      if (id === conversation.id) newChat();
      else renderChats();
      ui.sidebar.querySelector(".chat-open")?.focus();
      break;
    case "cancel":
      renderChats();
      ui.chats.querySelector(`li[data-id="${CSS.escape(id)}"] .chat-open`)?.focus();
      break;
    default:
  }
}

function renameInPlace(item, id) {
  const title = store.list().find((c) => c.id === id)?.title ?? "";
  const form = make("form", "chat-rename");
  const input = make("input");
  input.value = title;
  input.setAttribute("aria-label", "New name of the conversation");
  input.maxLength = 200;
  form.append(input);
  item.replaceChildren(form);
  const finish = (save) => {
    if (save && input.value.trim()) {
      store.rename(id, input.value);
      if (id === conversation.id) conversation.title = input.value.trim();
    }
    renderChats();
    ui.chats.querySelector(`li[data-id="${CSS.escape(id)}"] .chat-open`)?.focus();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    finish(true);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      finish(false);
    }
  });
  input.addEventListener("blur", () => {
    if (form.isConnected) finish(true);
  });
  input.focus();
  input.select();
}

function confirmDelete(item, id) {
  const title = store.list().find((c) => c.id === id)?.title ?? "";
  const question = make("span", "chat-confirm", `Delete “${title}”?`);
  const yes = make("button", "chat-tool danger", "Delete");
  yes.type = "button";
  yes.dataset.chat = "confirm-delete";
  const no = make("button", "chat-tool", "Cancel");
  no.type = "button";
  no.dataset.chat = "cancel";
  item.replaceChildren(question, yes, no);
  no.focus();
}

// -- the sidebar: beside the conversation on wide screens, over it on phones

const phone = globalThis.matchMedia?.("(max-width: 48rem)");

function setSidebar(open) {
  document.body.classList.toggle("sidebar-open", open);
  ui.sidebarToggle.setAttribute("aria-expanded", String(open));
}

function closeSidebarOnPhones() {
  if (phone?.matches) setSidebar(false);
}

// -- the message box: its size, the count against the server's limit, new lines on phones

const tooLong = (text) => messageLimit !== null && text.length > messageLimit;

function updateCount() {
  const length = ui.prompt.value.length;
  const over = tooLong(ui.prompt.value);
  const show = messageLimit !== null && length >= messageLimit * COUNT_FROM;
  ui.count.hidden = !show;
  if (show) {
    ui.count.textContent = over
      ? `${characters(length)}: the limit is ${withSeparators(messageLimit)}`
      : `${withSeparators(length)} / ${withSeparators(messageLimit)}`;
  }
  ui.count.classList.toggle("over", over);
  ui.send.disabled = !ui.prompt.value.trim() || over;
  ui.prompt.setAttribute("aria-invalid", String(over));
}

function insertNewline() {
  const area = ui.prompt;
  area.focus();
  area.setRangeText("\n", area.selectionStart, area.selectionEnd, "end");
  updateCount();
}

async function loadLimits() {
  try {
    const response = await fetch("openapi.json", { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!response.ok) return;
    const document_ = await response.json();
    const limit = document_?.components?.schemas?.Message?.properties?.content?.maxLength;
    if (Number.isInteger(limit) && limit > 0) {
      messageLimit = limit;
      updateCount();
    }
  } catch {
    // No limit known: the server still says so if a message is too long.
  }
}

// -- models

function stored(key) {
  try {
    return storage?.getItem(key) ?? null;
  } catch {
    return null;
  }
}

function store_(key, value) {
  try {
    if (value) storage?.setItem(key, value);
    else storage?.removeItem(key);
  } catch {
    // Not remembered; nothing else depends on it.
  }
}

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
  store_(API_KEY, apiKey);
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
  models = Array.isArray(listing?.models) ? listing.models : [];
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
  const wanted = stored(MODEL_KEY);
  ui.model.value = names.includes(wanted) ? wanted : names.includes(listing.default) ? listing.default : names[0] ?? "";
  showDemoNote();
  const problems = (listing.errors ?? []).map((e) => `${e.provider}: ${e.message}`);
  showModelStatus(problems.length ? `Some models could not be listed (${problems.join("; ")}).` : "");
}

/** On the built-in model, one line says what it is: a tiny demo whose answers are unreliable. */
function showDemoNote() {
  const chosen = models.find((m) => m.name === ui.model.value);
  ui.demoNote.hidden = chosen?.provider !== "local";
  if (chosen?.provider === "local") {
    ui.demoNote.textContent = `${chosen.name} is a tiny built-in demo model: its answers are often wrong. Connect Ollama or an OpenAI-compatible server for real ones.`;
  }
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
ui.prompt.addEventListener("input", updateCount);

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || event.defaultPrevented) return;
  if (active) {
    event.preventDefault();
    stop();
  } else if (phone?.matches && document.body.classList.contains("sidebar-open")) {
    setSidebar(false);
    ui.sidebarToggle.focus();
  }
});

ui.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  useKey(ui.apiKey.value);
});

ui.stop.addEventListener("click", stop);
ui.newline.addEventListener("click", insertNewline);
ui.newChat.addEventListener("click", newChat);
ui.jump.addEventListener("click", () => {
  scrollToLatest();
  ui.prompt.focus();
});
ui.conversation.addEventListener("scroll", showJump, { passive: true });
ui.model.addEventListener("change", () => {
  store_(MODEL_KEY, ui.model.value);
  showDemoNote();
});
ui.sidebarToggle.addEventListener("click", () => setSidebar(!document.body.classList.contains("sidebar-open")));
// On phones the list lies over the conversation: a tap beside it closes it.
document.querySelector(".main").addEventListener("click", (event) => {
  if (phone?.matches && document.body.classList.contains("sidebar-open") && !event.target.closest("#sidebar-toggle")) {
    setSidebar(false);
  }
});
ui.sidebar.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-chat]");
  if (button) onChatButton(button);
});
ui.turns.addEventListener("click", (event) => {
  const copy = event.target.closest("button.copy");
  if (copy) {
    onCopyCode(copy);
    return;
  }
  const action = event.target.closest("button[data-action]");
  if (action) onAction(action);
});
ui.suggestions.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button || active) return;
  ui.prompt.focus();
  send(button.textContent);
});
// Leaving mid-answer keeps what has arrived.
addEventListener("pagehide", () => {
  if (active) saveConversation();
});

setSidebar(!phone?.matches);
setBusy(false);
const current = store.current();
if (current && store.load(current)) openChat(current);
else renderChats();
loadModels();
loadLimits();
ui.prompt.focus();
