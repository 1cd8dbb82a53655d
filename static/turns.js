// One exchange on screen: the question, the answer as it streams, and what can be done with them.
//
// An Exchange owns its DOM and its data (what store.js keeps).  It never acts
// on the conversation itself: its buttons carry a `data-action`, and the page
// (app.js) decides what Copy, Edit, Regenerate, Continue and Retry do.
// Everything from the model -- answer, thinking, tool calls -- goes through
// the safe Markdown builder or into text nodes.

import { MarkdownView, renderMarkdown } from "./markdown.js";
import { describeDone, describeError, needsNewChat, withSeparators } from "./wording.js";

/** A user message longer than this is shown collapsed behind "Show more". */
const LONG_MESSAGE_CHARS = 1200;
const LONG_MESSAGE_LINES = 14;

export function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function actionButton(action, label, { aria, onlyLast = false, idle = true } = {}) {
  const button = make("button", "action", label);
  button.type = "button";
  button.dataset.action = action;
  if (aria) button.setAttribute("aria-label", aria);
  if (onlyLast) button.classList.add("only-last");
  if (idle) button.classList.add("needs-idle");
  return button;
}

/** A Markdown code fence around `text` that no run of backticks inside it can close. */
export function fenced(text, lang = "") {
  const longest = Math.max(0, ...(String(text).match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(Math.max(3, longest + 1));
  return `${fence}${lang}\n${text}\n${fence}`;
}

/** A tool call's arguments, indented if they are JSON (as the model wrote them if not). */
export function prettyArguments(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export class Exchange {
  /** @param {ReturnType<import("./store.js").exchangeFrom>} data a stored exchange, or just `{question}` */
  constructor(data) {
    this.question = data.question;
    this.text = data.answer ?? "";
    this.thinking = data.thinking ?? "";
    this.toolCalls = [...(data.toolCalls ?? [])];
    this.model = data.model ?? "";
    this.state = data.status ?? "streaming";
    this.finishReason = data.finishReason ?? "";
    this.statsText = data.stats ?? "";
    this.errorText = data.error ?? "";
    this.controller = null;
    this.meta = null;
    this.frame = 0;
    this.countdown = 0;
    this.buildQuestion();
    this.buildAnswer();
    if (this.state !== "streaming") this.restore();
  }

  /** What store.js keeps of it. */
  toJSON() {
    return {
      question: this.question,
      answer: this.text,
      thinking: this.thinking,
      toolCalls: this.toolCalls,
      model: this.model,
      status: this.state === "streaming" ? "stopped" : this.state,
      finishReason: this.finishReason,
      stats: this.statsText,
      error: this.errorText,
    };
  }

  get nodes() {
    return [this.userTurn, this.article];
  }

  /** Whether the model sees it again: an exchange joins the history once it has answer text. */
  get answered() {
    return Boolean(this.text);
  }

  // -- the question

  buildQuestion() {
    const user = make("article", "turn turn-user");
    user.append(make("h2", "visually-hidden", "You"));
    this.userText = make("div", "user-text", this.question);
    user.append(this.userText);
    const lines = this.question.split("\n").length;
    if (this.question.length > LONG_MESSAGE_CHARS || lines > LONG_MESSAGE_LINES) {
      user.classList.add("long", "collapsed");
      const more = make("button", "show-more", "Show more");
      more.type = "button";
      more.dataset.action = "toggle-long";
      more.setAttribute("aria-expanded", "false");
      user.append(more);
    }
    const actions = make("div", "turn-actions user-actions");
    actions.append(
      actionButton("copy-question", "Copy", { aria: "Copy your message", idle: false }),
      actionButton("edit", "Edit", { aria: "Edit your message and send it again" }),
    );
    user.append(actions);
    this.userTurn = user;
  }

  toggleLong() {
    const collapsed = this.userTurn.classList.toggle("collapsed");
    const button = this.userTurn.querySelector(".show-more");
    button.textContent = collapsed ? "Show more" : "Show less";
    button.setAttribute("aria-expanded", String(!collapsed));
  }

  /** Replace the question with an editor; resolves with the new text, or null when cancelled. */
  edit() {
    if (this.editor) return this.editor.promise;
    const form = make("form", "edit-form");
    const label = make("label", "visually-hidden", "Edit your message");
    const area = make("textarea", "edit-text");
    area.id = `edit-${Math.random().toString(36).slice(2)}`;
    label.htmlFor = area.id;
    area.value = this.question;
    area.rows = Math.min(12, this.question.split("\n").length + 1);
    const buttons = make("div", "edit-buttons");
    const cancel = make("button", "secondary", "Cancel");
    cancel.type = "button";
    const save = make("button", "", "Send");
    save.type = "submit";
    buttons.append(cancel, save);
    form.append(label, area, buttons);
    this.userTurn.classList.add("editing");
    this.userTurn.append(form);
    let resolve;
    const promise = new Promise((r) => {
      resolve = r;
    });
    const finish = (value) => {
      form.remove();
      this.userTurn.classList.remove("editing");
      this.editor = null;
      resolve(value);
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (area.value.trim()) finish(area.value);
    });
    cancel.addEventListener("click", () => finish(null));
    area.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        finish(null);
      } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    this.editor = { promise, cancel: () => finish(null) };
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
    return promise;
  }

  // -- the answer

  buildAnswer() {
    const answer = make("article", "turn turn-assistant");
    answer.append(make("h2", "visually-hidden", "Answer"));
    this.modelLine = make("p", "turn-model", this.model);
    this.modelLine.hidden = !this.model;
    this.thinkingBox = make("details", "thinking");
    this.thinkingBox.hidden = true;
    this.thinkingLabel = make("summary", "", "Thinking…");
    this.thinkingText = document.createTextNode("");
    const thinkingBody = make("div", "thinking-text");
    thinkingBody.append(this.thinkingText);
    this.thinkingBox.append(this.thinkingLabel, thinkingBody);
    this.body = make("div", "answer markdown");
    this.view = new MarkdownView(this.body);
    this.tools = make("div", "tool-calls");
    this.tools.hidden = true;
    this.status = make("p", "turn-status waiting", "Waiting for the model…");
    this.errorBox = make("div", "turn-error");
    this.errorBox.hidden = true;
    this.errorBox.setAttribute("role", "alert");
    this.errorMessage = make("p", "turn-error-text");
    this.errorActions = make("div", "turn-actions error-actions");
    this.errorBox.append(this.errorMessage, this.errorActions);
    this.stats = make("p", "turn-stats");
    this.stats.hidden = true;
    this.actions = make("div", "turn-actions answer-actions");
    this.actions.hidden = true;
    this.actions.append(
      actionButton("copy-answer", "Copy", { aria: "Copy the answer as Markdown", idle: false }),
      actionButton("regenerate", "Regenerate", { aria: "Regenerate the answer", onlyLast: true }),
    );
    this.continueButton = actionButton("continue", "Continue", {
      aria: "Continue the answer where it stopped",
      onlyLast: true,
    });
    this.continueButton.hidden = true;
    this.actions.append(this.continueButton);
    answer.append(this.modelLine, this.thinkingBox, this.body, this.tools, this.status, this.errorBox, this.stats, this.actions);
    this.article = answer;
  }

  /** Show a stored exchange as it ended. */
  restore() {
    if (this.thinking) {
      this.thinkingText.data = this.thinking;
      this.thinkingBox.hidden = false;
      this.thinkingLabel.textContent = "Thoughts";
    }
    renderMarkdownInto(this.view, this.text);
    for (const call of this.toolCalls) this.showToolCall(call);
    this.status.classList.remove("waiting");
    this.status.hidden = true;
    if (this.state === "stopped") this.showStopped();
    if (this.state === "failed") this.showError(this.errorText, { retry: true });
    this.showStats(this.statsText);
    this.showActions();
  }

  /** Ready for a (new) request: busy, and waiting for the first token. */
  start(controller) {
    this.controller = controller;
    this.meta = null;
    this.state = "streaming";
    this.stopCountdown();
    this.article.classList.remove("stopped", "failed", "reconnecting");
    this.article.setAttribute("aria-busy", "true");
    this.actions.hidden = true;
    this.errorBox.hidden = true;
    this.errorText = "";
    this.stats.hidden = true;
    this.statsText = "";
    this.status.textContent = "Waiting for the model…";
    this.status.classList.add("waiting");
    this.status.hidden = false;
  }

  onMeta(meta, keepScrolled) {
    this.meta = meta;
    if (meta?.model) {
      this.model = meta.model;
      keepScrolled(() => {
        this.modelLine.textContent = meta.model;
        this.modelLine.hidden = false;
      });
    }
  }

  onThinking(text, keepScrolled) {
    this.thinking += text;
    this.thinkingBox.hidden = false;
    keepScrolled(() => this.thinkingText.appendData(text));
  }

  onToken(text, keepScrolled) {
    this.text += text;
    if (!this.status.hidden) {
      this.status.hidden = true;
      this.status.classList.remove("waiting");
    }
    if (this.thinkingLabel.textContent === "Thinking…") this.thinkingLabel.textContent = "Thoughts";
    // Many tokens can arrive per frame; render once per frame.
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render(keepScrolled));
  }

  onToolCall(call, keepScrolled) {
    this.toolCalls.push(call);
    keepScrolled(() => {
      this.status.hidden = true;
      this.showToolCall(call);
    });
  }

  showToolCall(call) {
    const box = make("div", "tool-call");
    const head = make("p", "tool-call-head", "Asks to use the tool ");
    head.append(make("code", "", call.name));
    box.append(head);
    if (call.arguments) {
      const args = make("div", "tool-call-arguments markdown");
      renderMarkdown(args, fenced(prettyArguments(call.arguments), "json"));
      box.append(args);
    }
    this.tools.append(box);
    this.tools.hidden = false;
  }

  reconnecting(keepScrolled) {
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

  render(keepScrolled) {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    keepScrolled(() => this.view.update(this.text));
  }

  end(keepScrolled) {
    this.controller = null;
    this.article.classList.remove("reconnecting");
    this.render(keepScrolled);
    this.view.finish();
    this.article.setAttribute("aria-busy", "false");
    this.status.classList.remove("waiting");
    if (this.thinkingLabel.textContent === "Thinking…") this.thinkingLabel.textContent = "Thoughts";
  }

  done(result, keepScrolled) {
    this.end(keepScrolled);
    this.state = "done";
    this.finishReason = result.done?.finish_reason ?? "";
    const notes = [];
    if (this.finishReason === "length") notes.push("The answer reached its length limit.");
    if (this.finishReason === "tool_calls") notes.push("The model asked to use a tool; this page does not run tools.");
    if (!this.text && !this.toolCalls.length) notes.push("The model gave an empty answer.");
    keepScrolled(() => {
      this.status.hidden = true;
      this.showStats([describeDone(result.done), ...notes].filter(Boolean).join(" · "));
      this.showActions();
    });
  }

  stopped(keepScrolled) {
    this.end(keepScrolled);
    this.state = "stopped";
    keepScrolled(() => {
      this.showStopped();
      this.showActions();
    });
  }

  showStopped() {
    this.article.classList.add("stopped");
    this.status.textContent = this.text ? "Stopped." : "Stopped before the answer began.";
    this.status.hidden = false;
  }

  failed(error, keepScrolled) {
    this.end(keepScrolled);
    this.state = "failed";
    const countdown = error?.retryAfter != null && error.retryAfter > 0 && error.retryAfter <= 3600;
    this.errorText = describeError(error, { countdown });
    keepScrolled(() => {
      this.status.hidden = true;
      this.showError(this.errorText, { retry: true, retryAfter: countdown ? error.retryAfter : 0, newChat: needsNewChat(error) });
      this.showActions();
    });
  }

  showError(text, { retry = false, retryAfter = 0, newChat = false } = {}) {
    this.article.classList.add("failed");
    this.errorMessage.textContent = text;
    this.errorActions.replaceChildren();
    if (newChat) this.errorActions.append(actionButton("new-chat", "Start a new chat", { idle: false }));
    if (retry) {
      const button = actionButton("retry", "Retry", { onlyLast: true });
      this.errorActions.append(button);
      if (retryAfter) this.startCountdown(button, retryAfter);
    }
    this.errorBox.hidden = false;
  }

  /** A rate limit's wait, counted down on the Retry button; it can be pressed when it is over. */
  startCountdown(button, seconds) {
    let left = Math.ceil(seconds);
    const show = () => {
      button.disabled = left > 0;
      button.textContent = left > 0 ? `Retry in ${withSeparators(left)} s` : "Retry";
    };
    show();
    this.countdown = setInterval(() => {
      left -= 1;
      show();
      if (left <= 0) this.stopCountdown();
    }, 1000);
  }

  stopCountdown() {
    clearInterval(this.countdown);
    this.countdown = 0;
  }

  showStats(text) {
    this.statsText = text;
    this.stats.textContent = text;
    this.stats.hidden = !text;
  }

  showActions() {
    this.continueButton.hidden = this.finishReason !== "length" || this.state !== "done";
    this.actions.hidden = !this.text;
  }

  remove() {
    this.stopCountdown();
    this.editor?.cancel();
    if (this.frame) cancelAnimationFrame(this.frame);
    for (const node of this.nodes) node.remove();
  }
}

function renderMarkdownInto(view, text) {
  view.update(text);
  view.finish();
}

/** For stats kept with an answer: the count of characters with separators. */
export const characters = (n) => `${withSeparators(n)} ${n === 1 ? "character" : "characters"}`;
