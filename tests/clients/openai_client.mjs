// OpenAI's JavaScript SDK against llm-sse's /v1, unmodified: one scenario per run.
//
//   node openai_client.mjs BASE_URL SCENARIO [MODEL] [API_KEY]
//
// Prints one JSON object on stdout: what the SDK saw.  The SDK comes from the
// pinned cache that `make clients` fills (LLM_SSE_CLIENTS_DIR).
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.LLM_SSE_CLIENTS_DIR, "package.json"));
const { OpenAI } = require("openai");

const [baseURL, scenario, model = "llama3.2:latest", apiKey = "unused"] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30_000 });
const ask = [{ role: "user", content: "Say hello" }];
const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

function failure(error) {
  return {
    error: error.constructor.name,
    status: error.status ?? null,
    message: error.message,
    code: error.code ?? null,
    type: error.type ?? null,
    param: error.param ?? null,
  };
}

async function run() {
  if (scenario === "stream") {
    const stream = await client.chat.completions.create({
      model,
      messages: ask,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
    const finish = chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean);
    return { text, finish, usage: chunks.at(-1).usage, id: chunks[0].id, model: chunks[0].model };
  }
  if (scenario === "complete") {
    const completion = await client.chat.completions.create({ model, messages: ask, max_tokens: 50 });
    return completion;
  }
  if (scenario === "models") {
    const page = await client.models.list();
    return { ids: page.data.map((m) => m.id), objects: [...new Set(page.data.map((m) => m.object))] };
  }
  if (scenario === "tools") {
    // The round trip: the model asks, this client runs the tool, the model answers.
    const messages = [{ role: "user", content: "Weather in Paris?" }];
    const runner = client.chat.completions.stream({ model, messages, tools: [weather] });
    const first = await runner.finalChatCompletion();
    const asked = first.choices[0].message;
    messages.push(asked);
    for (const call of asked.tool_calls) {
      const args = JSON.parse(call.function.arguments);
      messages.push({ role: "tool", tool_call_id: call.id, content: `22°C and sunny in ${args.city}` });
    }
    const second = await client.chat.completions.create({ model, messages, tools: [weather], stream: true });
    let text = "";
    for await (const chunk of second) text += chunk.choices[0]?.delta?.content ?? "";
    return { finish: first.choices[0].finish_reason, calls: asked.tool_calls, answer: text };
  }
  if (scenario === "abort") {
    // Stop: abort the request after the first piece of text.
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model, messages: ask, stream: true },
      { signal: controller.signal },
    );
    let text = "";
    try {
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? "";
        if (text) controller.abort();
      }
    } catch (error) {
      // Some versions end the iteration quietly on abort, others throw: both are a Stop.
      if (!controller.signal.aborted) throw error;
    }
    return { text, aborted: controller.signal.aborted };
  }
  if (scenario === "stream-error") {
    const stream = await client.chat.completions.create({ model, messages: ask, stream: true });
    let text = "";
    try {
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    } catch (error) {
      return { text, ...failure(error) };
    }
    return { text, error: null };
  }
  if (scenario === "bad-request") {
    return await client.chat.completions.create({ model, messages: ask, temperature: 5 });
  }
  throw new Error(`unknown scenario ${scenario}`);
}

try {
  console.log(JSON.stringify(await run()));
} catch (error) {
  console.log(JSON.stringify(failure(error)));
}
