// The official openai SDK (package.json pins it) against a running rampartd's HTTP door.
// Usage: node client_test.mjs serve BASE_URL MODEL API_KEY   (anonymous and keyed streams, a wrong key)
//        node client_test.mjs shed BASE_URL MODEL              (an anonymous request is shed: 429, Retry-After)
// Prints one JSON line of what it saw; exits 1 with a reason on the first thing that is not as expected.
import OpenAI from "openai";

const [mode, baseURL, model, apiKey] = process.argv.slice(2);

function fail(why) {
  console.error(`client_test: ${why}`);
  process.exit(1);
}

// The SDK needs some key; an empty Authorization header would be refused, so anonymous clients send none.
function client(key) {
  return new OpenAI({
    baseURL,
    apiKey: key ?? "unused",
    maxRetries: 0,
    timeout: 60000,
    defaultHeaders: key ? {} : { Authorization: null },
  });
}

const messages = [{ role: "user", content: "Write one short sentence about castles." }];

async function streamed(c, extra = {}) {
  const stream = await c.chat.completions.create({
    model, messages, max_tokens: 12, temperature: 0, stream: true,
    stream_options: { include_usage: true }, ...extra,
  });
  let text = "";
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      text += choice.delta?.content ?? "";
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  return { text, finish, usage, chunks };
}

async function serve() {
  const anonymous = client(null);
  const models = await anonymous.models.list();
  const ids = models.data.map((m) => m.id);
  if (!ids.includes(model)) fail(`models.list() gave ${JSON.stringify(ids)}, not ${model}`);

  const s = await streamed(anonymous);
  if (s.finish !== "length") fail(`anonymous stream ended with ${s.finish}`);
  if (!s.usage || s.usage.completion_tokens !== 12) fail(`usage was ${JSON.stringify(s.usage)}`);
  if (s.chunks < 3) fail(`only ${s.chunks} chunks`);

  const whole = await anonymous.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0 });
  const wholeText = whole.choices[0].message.content;
  if (wholeText !== s.text) fail(`streamed ${JSON.stringify(s.text)} but whole ${JSON.stringify(wholeText)}`);

  const keyed = await streamed(client(apiKey));
  if (keyed.text !== s.text) fail(`the tenant's greedy text ${JSON.stringify(keyed.text)} differs`);

  const completion = await anonymous.completions.create({ model, prompt: "Castles are", max_tokens: 5, temperature: 0 });
  if (completion.usage.completion_tokens !== 5) fail(`completion usage ${JSON.stringify(completion.usage)}`);

  let wrongStatus = null;
  try {
    await streamed(client(apiKey.slice(0, -1) + (apiKey.endsWith("A") ? "B" : "A")));
  } catch (e) {
    wrongStatus = e.status;
  }
  if (wrongStatus !== 401) fail(`a wrong key got ${wrongStatus}, not 401`);

  let unsupported = null;
  try {
    await anonymous.chat.completions.create({ model, messages, max_tokens: 2, logit_bias: { "1": 5 } });
  } catch (e) {
    unsupported = { status: e.status, param: e.param ?? e.error?.param };
  }
  if (!unsupported || unsupported.status !== 400 || unsupported.param !== "logit_bias") {
    fail(`logit_bias was answered ${JSON.stringify(unsupported)}`);
  }
  console.log(JSON.stringify({ text: s.text, chunks: s.chunks, usage: s.usage, completion: completion.choices[0].text }));
}

async function shed() {
  try {
    await streamed(client(null));
  } catch (e) {
    const retry = e.headers?.get ? e.headers.get("retry-after") : e.headers?.["retry-after"];
    if (e.status !== 429) fail(`an anonymous request at red got ${e.status}, not 429`);
    if (!retry || Number(retry) < 1) fail(`the 429 had Retry-After ${retry}`);
    console.log(JSON.stringify({ status: e.status, retry_after: Number(retry), code: e.code ?? e.error?.code }));
    return;
  }
  fail("an anonymous request at red was served");
}

if (mode === "serve") await serve();
else if (mode === "shed") await shed();
else fail(`unknown mode ${mode}`);
