// What the page tells the user about errors and timings, in plain words.
// No DOM here, so Node's test runner checks the wording (tests/js/).

import { ChatError } from "./sse.js";

/** "the model failed" -> "The model failed." */
export function sentence(text) {
  const trimmed = String(text).trim();
  if (!trimmed) return "";
  const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

/** "Try again in 7 seconds." from a Retry-After in seconds. */
export function retryPhrase(seconds) {
  if (seconds == null) return "";
  if (seconds <= 1) return "Try again in a second.";
  if (seconds < 60) return `Try again in ${Math.ceil(seconds)} seconds.`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 60) return minutes === 1 ? "Try again in a minute." : `Try again in ${minutes} minutes.`;
  const hours = Math.round(minutes / 60);
  return hours === 1 ? "Try again in about an hour." : `Try again in about ${hours} hours.`;
}

/** "the limit is 32000" -> "the limit is 32,000": counts of four digits or more get separators. */
export function withSeparators(text) {
  return String(text).replace(/(?<![\w.:,/-])\d{4,}(?![\w.:,/-])/g, (digits) => Number(digits).toLocaleString("en-US"));
}

const MESSAGE_FIELD = /^messages\[(\d+)\]\.content$/;
const SIZE = /has (\d+) characters; the limit is (\d+)/;

/** Field paths are for programs: "messages[0].content must ..." -> "a message must ...". */
function withoutFieldPaths(text) {
  return String(text)
    .replace(/'?messages\[\d+\]\.content'?/g, "a message")
    .replace(/'?messages\[\d+\]\.role'?/g, "a message's role")
    .replace(/'?messages\[\d+\]'?/g, "a message");
}

/**
 * True when the conversation itself has outgrown what the server or the
 * model takes: only a new chat goes on from there.
 */
export function needsNewChat(error) {
  if (!(error instanceof ChatError)) return false;
  if (error.code === "input_too_long") return !MESSAGE_FIELD.test(error.field ?? "") && error.field !== "prompt";
  return /context (length|window|size)|maximum context|too many tokens/i.test(error.message ?? "");
}

/** A message that is too long, or a conversation that outgrew its limits, in plain words. */
function describeTooLong(error) {
  const size = SIZE.exec(error.message ?? "");
  if (size && (MESSAGE_FIELD.test(error.field ?? "") || error.field === "prompt")) {
    const [, have, limit] = size.map(Number);
    return `A message is too long: ${withSeparators(have)} characters, and the limit is ${withSeparators(limit)}. Shorten it or split it.`;
  }
  const entries = /has (\d+) entries; the limit is (\d+)/.exec(error.message ?? "");
  if (error.field === "messages" && entries) {
    const [, have, limit] = entries.map(Number);
    return `This conversation has ${withSeparators(have)} messages, and the server takes at most ${withSeparators(limit)}. Start a new chat to go on.`;
  }
  return `This conversation no longer fits the model's memory (${withSeparators(error.message)}). Start a new chat to go on.`;
}

/**
 * What to tell the user about a failed chat, in plain words.  With
 * `countdown`, the retry time is left out (the page counts it down itself).
 */
export function describeError(error, { countdown = false } = {}) {
  if (!(error instanceof ChatError)) {
    return `Something went wrong in this page: ${error?.message ?? error}`;
  }
  if (error.code === "input_too_long") return describeTooLong(error);
  if (error.code === "network_error") {
    return error.phase === "request"
      ? "Could not reach the server. Check the connection and try again."
      : "The connection to the server broke off; the answer above is incomplete.";
  }
  const retry = countdown ? "" : retryPhrase(error.retryAfter);
  const said = withSeparators(withoutFieldPaths(error.message));
  if (error.phase === "stream") {
    return `The answer stopped early: ${sentence(said)} ${retry}`.trim();
  }
  // Statuses whose messages can be terse get a plain-words lead (a 429's
  // message says what happened already: no "Rate limited: Too many requests").
  const lead = { 401: "Not signed in:", 403: "Not allowed:" }[error.status];
  // With a retry time the page says exactly when; the server's own vaguer
  // "...; try again shortly" would only repeat it.
  const message = sentence(error.retryAfter != null ? withoutRetryAdvice(said) : said);
  return [lead ? `${lead} ${message}` : message, retry].filter(Boolean).join(" ");
}

/** "the server is busy; try again shortly" -> "the server is busy" */
export function withoutRetryAdvice(text) {
  const trimmed = String(text).replace(/;\s*try again\b[^;.]*$/i, "").trim();
  return trimmed || String(text);
}

export function formatMs(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** "First token after 183 ms · 48.3 tokens/s · 112 tokens" from a done frame. */
export function describeDone(done) {
  const parts = [];
  const timing = done?.timing ?? {};
  if (typeof timing.ttft_ms === "number") parts.push(`First token after ${formatMs(timing.ttft_ms)}`);
  if (typeof timing.tokens_per_s === "number") parts.push(`${timing.tokens_per_s.toFixed(1)} tokens/s`);
  const tokens = done?.usage?.completion_tokens;
  if (typeof tokens === "number") parts.push(`${tokens} ${tokens === 1 ? "token" : "tokens"}`);
  return parts.join(" · ");
}
