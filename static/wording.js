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

/** What to tell the user about a failed chat, in plain words. */
export function describeError(error) {
  if (!(error instanceof ChatError)) {
    return `Something went wrong in this page: ${error?.message ?? error}`;
  }
  if (error.code === "network_error") {
    return error.phase === "request"
      ? "Could not reach the server. Check the connection and try again."
      : "The connection to the server broke off; the answer above is incomplete.";
  }
  const retry = retryPhrase(error.retryAfter);
  if (error.phase === "stream") {
    return `The answer stopped early: ${sentence(error.message)} ${retry}`.trim();
  }
  // Statuses whose messages can be terse get a plain-words lead.
  const lead = { 401: "Not signed in:", 403: "Not allowed:", 429: "Rate limited:" }[error.status];
  // With a retry time the page says exactly when; the server's own vaguer
  // "...; try again shortly" would only repeat it.
  const message = sentence(retry ? withoutRetryAdvice(error.message) : error.message);
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
