// A fake OpenAI upstream for the benchmark: the same answers for every target, as cheap as possible,
// so the figures measure the gateway in front of it. Node's own http module, no dependencies.
//   node bench/fake-upstream.mjs --port 22001 [--delay-ms 20 [--delay-model gpt-4o]]
// The delay (before the first byte) applies to every model, or only to --delay-model when given, so
// one upstream serves a fast and a 20 ms variant. POST /v1/chat/completions answers a chat completion (JSON) or, with "stream": true, 50 chunks
// (--chunks) written back to back. A model whose name starts with "slow" streams one chunk a second
// for 30 minutes: the memory phase keeps such streams open. GET /v1/models lists one model.
import http from "node:http";

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) =>
  a.startsWith("--") ? [...pairs, [a.slice(2), all[i + 1]]] : pairs, []));
const port = Number(args.port ?? 22001);
const delayMs = Number(args["delay-ms"] ?? 0);
const delayModel = args["delay-model"];
const chunks = Number(args.chunks ?? 50);

const created = Math.floor(Date.now() / 1000);
const usage = { prompt_tokens: 12, completion_tokens: chunks, total_tokens: 12 + chunks };
const completion = (model) => JSON.stringify({
  id: "chatcmpl-bench", object: "chat.completion", created, model,
  choices: [{ index: 0, message: { role: "assistant", content: "word ".repeat(chunks).trim() }, finish_reason: "stop" }],
  usage,
});
const chunk = (model, delta, finish) => `data: ${JSON.stringify({
  id: "chatcmpl-bench", object: "chat.completion.chunk", created, model,
  choices: [{ index: 0, delta, finish_reason: finish }],
})}\n\n`;
const usageChunk = (model) => `data: ${JSON.stringify({
  id: "chatcmpl-bench", object: "chat.completion.chunk", created, model, choices: [], usage,
})}\n\n`;
const models = JSON.stringify({ object: "list", data: [{ id: "gpt-4o-mini", object: "model", created, owned_by: "bench" }] });
let served = 0;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function chat(req, res, body) {
  let request;
  try { request = JSON.parse(body); } catch { res.writeHead(400).end(); return; }
  const model = request.model ?? "gpt-4o-mini";
  if (delayMs > 0 && (!delayModel || model === delayModel)) await sleep(delayMs);
  served++;
  if (!request.stream) {
    res.writeHead(200, { "content-type": "application/json" }).end(completion(model));
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  res.write(chunk(model, { role: "assistant", content: "" }, null));
  if (model.startsWith("slow")) {
    for (let i = 0; i < 1800 && !res.destroyed; i++) {
      res.write(chunk(model, { content: "word " }, null));
      await sleep(1000);
    }
  } else {
    let text = "";
    for (let i = 0; i < chunks; i++) text += chunk(model, { content: "word " }, null);
    res.write(text);
  }
  res.write(chunk(model, {}, "stop"));
  if (request.stream_options?.include_usage) res.write(usageChunk(model));
  res.end("data: [DONE]\n\n");
}

http.createServer((req, res) => {
  if (req.method === "GET" && req.url.startsWith("/v1/models")) {
    res.writeHead(200, { "content-type": "application/json" }).end(models);
    return;
  }
  if (req.method === "GET" && req.url === "/served") {
    res.writeHead(200, { "content-type": "text/plain" }).end(String(served));
    return;
  }
  if (req.method === "POST" && req.url.startsWith("/v1/chat/completions")) {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d) => { body += d; });
    req.on("end", () => { chat(req, res, body).catch(() => res.destroy()); });
    return;
  }
  res.writeHead(404).end();
}).listen(port, "127.0.0.1", () => console.log(`fake upstream on 127.0.0.1:${port}, ${delayMs} ms before answering ${delayModel ?? "every model"}`));
