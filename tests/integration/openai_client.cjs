// Calls a provider through the official OpenAI client (npm `openai`), as the plan in argv[2]
// says, and prints what came back as JSON: proof that a server speaks the real wire protocol.
//   {"baseURL", "apiKey", "calls": [{"kind": "create" | "stream" | "embeddings" | "models", "request": {...}}]}
const path = require('path');
const OpenAI = require(path.join(process.env.NPM_PREFIX, 'node_modules', 'openai'));

async function main() {
  const plan = JSON.parse(process.argv[2]);
  const client = new OpenAI({ apiKey: plan.apiKey, baseURL: plan.baseURL, maxRetries: 0, timeout: 10000 });
  const results = [];
  for (const call of plan.calls) {
    try {
      if (call.kind === 'embeddings') {
        const answer = await client.embeddings.create(call.request);
        results.push({ ok: true, vectors: answer.data.map((d) => Array.from(d.embedding)), usage: answer.usage });
      } else if (call.kind === 'models') {
        const page = await client.models.list();
        results.push({ ok: true, models: page.data.map((m) => m.id) });
      } else if (call.kind === 'stream') {
        const stream = await client.chat.completions.create({ ...call.request, stream: true });
        const deltas = [];
        let usage = null;
        let finish = null;
        for await (const chunk of stream) {
          if (chunk.usage) usage = chunk.usage;
          for (const choice of chunk.choices) {
            if (choice.delta && choice.delta.content) deltas.push(choice.delta.content);
            if (choice.finish_reason) finish = choice.finish_reason;
          }
        }
        results.push({ ok: true, deltas, usage, finish });
      } else {
        const completion = await client.chat.completions.create(call.request);
        results.push({ ok: true, content: completion.choices[0].message.content, usage: completion.usage,
                       finish: completion.choices[0].finish_reason });
      }
    } catch (error) {
      results.push({ ok: false, status: error.status || null, name: error.constructor.name,
                     message: String(error.message) });
    }
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((error) => { console.error(error); process.exit(1); });
