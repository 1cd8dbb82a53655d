// The Vercel AI SDK's chat (the logic behind React's `useChat`) against llm-sse's
// /api/ui-chat, unmodified: `AbstractChat` + `DefaultChatTransport` from `ai`, with
// the plain state holder a framework binding would provide.  One scenario per run:
//
//   node ui_chat.mjs API_URL SCENARIO [MODEL] [API_KEY]
//
// Prints one JSON object on stdout: the chat's messages, status and error.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.LLM_SSE_CLIENTS_DIR, "package.json"));
const { AbstractChat, DefaultChatTransport, lastAssistantMessageIsCompleteWithToolCalls } = require("ai");

const [api, scenario, model = "llama3.2:latest", apiKey = ""] = process.argv.slice(2);

class State {
  constructor() {
    this.status = "ready";
    this.error = undefined;
    this.messages = [];
    this.onChange = () => {};
  }
  pushMessage(message) {
    this.messages = this.messages.concat(message);
    this.onChange();
  }
  popMessage() {
    this.messages = this.messages.slice(0, -1);
  }
  replaceMessage(index, message) {
    this.messages = [...this.messages.slice(0, index), this.snapshot(message), ...this.messages.slice(index + 1)];
    this.onChange();
  }
  snapshot(thing) {
    return structuredClone(thing);
  }
}

class NodeChat extends AbstractChat {
  constructor(init) {
    const state = new State();
    super({ ...init, state });
    this.state = state;
  }
}

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};
const requests = [];
const transport = new DefaultChatTransport({
  api,
  headers: apiKey ? { Authorization: `Bearer ${apiKey}` } : {},
  body: scenario === "tools" ? { model, tools: [weather] } : scenario === "bad-model" ? { model: "" } : { model },
  fetch: async (url, init) => {
    requests.push({ url: String(url), method: init?.method ?? "GET", body: init?.body ? JSON.parse(init.body) : null });
    return fetch(url, init);
  },
});

const chat = new NodeChat({
  id: "chat-0123456789",
  transport,
  sendAutomaticallyWhen: scenario === "tools" ? lastAssistantMessageIsCompleteWithToolCalls : undefined,
  onToolCall: ({ toolCall }) => {
    // The client runs the tool and hands the result back; the chat then asks again.
    chat.addToolOutput({
      tool: toolCall.toolName,
      toolCallId: toolCall.toolCallId,
      output: { temperature: 22, city: toolCall.input.city },
    });
  },
});

if (scenario === "stop") {
  chat.state.onChange = () => {
    const last = chat.state.messages.at(-1);
    if (last?.role === "assistant" && last.parts.some((p) => p.type === "text" && p.text)) chat.stop();
  };
}

if (scenario === "resume") {
  await chat.resumeStream();
} else {
  await chat.sendMessage({ text: scenario === "tools" ? "Weather in Paris?" : "Say hello" });
}
// A follow-up request (after a tool result) runs on its own; wait for the chat to settle.
for (let i = 0; i < 500 && (chat.status === "submitted" || chat.status === "streaming"); i++) {
  await new Promise((resolve) => setTimeout(resolve, 10));
}
console.log(
  JSON.stringify({
    status: chat.status,
    error: chat.error ? chat.error.message : null,
    messages: chat.messages,
    requests,
  }),
);
