// llama.cpp's side of `cocoon-worker bench`, through the prebuilt binaries of the npm package
// `node-llama-cpp` (installed by scripts/bench-reference into a cache dir, never vendored).
// `cocoon-worker bench` embeds this file, writes it into that dir as cocoon-bench.mjs, runs it
// with `node`, passes one JSON object in $COCOON_BENCH_INPUT and reads one JSON line back: the measurements `bench::bench_engine`
// makes on our engine, on the same GGUF, prompt token ids, decode length, batch sizes and threads.
//
// input:  {"dir": install dir, "model": path, "tokens": [ids], "decode": n, "batches": [1, 8, 32],
//          "threads": t, "gpu": false, "repeats": 3}
// output: {"version", "backend", "prefill_tok_s", "decode_tok_s": [[batch, tok/s]], "rss_load_bytes"}
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";

const cfg = JSON.parse(process.env.COCOON_BENCH_INPUT);
const pkgDir = path.join(cfg.dir, "node_modules", "node-llama-cpp");
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(path.join(pkgDir, "dist", "index.js")));
const rss = () => {
  // VmRSS of this process: what loading the model made resident (weights mapped and touched).
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
};
const now = () => Number(process.hrtime.bigint()) / 1e9;

const llama = await getLlama({
  gpu: cfg.gpu ? "auto" : false,
  build: "never",
  skipDownload: true,
  logLevel: LlamaLogLevel.error,
  maxThreads: cfg.threads,
});
const before = rss();
const model = await llama.loadModel({ modelPath: cfg.model, gpuLayers: cfg.gpu ? "max" : 0 });
const perSeq = cfg.tokens.length + cfg.decode + 8;

async function context(sequences) {
  return model.createContext({
    contextSize: perSeq * sequences,
    sequences,
    threads: cfg.threads,
    batchSize: Math.max(512, cfg.tokens.length),
  });
}

// Prefill at batch 1: the first (warm-up) run is not timed, then the median of `repeats` runs,
// as on our side.
let ctx = await context(1);
const seq = ctx.getSequence();
await seq.evaluateWithoutGeneratingNewTokens(cfg.tokens);
const rssLoad = rss() - before;
const runs = [];
for (let i = 0; i < (cfg.repeats ?? 3); i++) {
  await seq.clearHistory();
  const t = now();
  await seq.evaluateWithoutGeneratingNewTokens(cfg.tokens);
  runs.push(cfg.tokens.length / (now() - t));
}
runs.sort((a, b) => a - b);
const prefill = runs[Math.floor(runs.length / 2)];
await ctx.dispose();

// Decode: `b` sequences generate together (llama.cpp batches them into one decode call); the rate
// counts tokens after the last sequence got its first token until the last token, as ours does.
const decode = [];
for (const b of cfg.batches) {
  ctx = await context(b);
  const seqs = [];
  for (let i = 0; i < b; i++) {
    const s = ctx.getSequence();
    seqs.push((async () => {
      const times = [];
      for await (const _tok of s.evaluate(cfg.tokens, { temperature: 0 })) {
        times.push(now());
        if (times.length >= cfg.decode) break;
      }
      return times;
    })());
  }
  const stamps = await Promise.all(seqs);
  const start = Math.max(...stamps.map((s) => s[0]));
  const end = Math.max(...stamps.map((s) => s[s.length - 1]));
  const n = stamps.flat().filter((x) => x > start).length;
  decode.push([b, n / (end - start)]);
  await ctx.dispose();
}

console.log(JSON.stringify({
  version: `node-llama-cpp ${pkg.version}`,
  backend: cfg.gpu ? String(llama.gpu) : "cpu",
  prefill_tok_s: prefill,
  decode_tok_s: decode,
  rss_load_bytes: rssLoad,
}));
await model.dispose();
await llama.dispose();
