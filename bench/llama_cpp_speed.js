// llama.cpp's prefill and decode speed on the same GGUF file and token ids as bench_lm:
// a prompt of PROMPT tokens in one pass, then DECODE tokens one at a time, each the most
// likely next token. Best of 3 runs after a warm-up.
//   node llama_cpp_speed.js MODEL.gguf PROMPT DECODE THREADS   (NODE_PATH: node-llama-cpp)
const fs = require('fs');
const path = require('path');
const { pathToFileURL } = require('url');

(async () => {
  const [gguf, promptText, decodeText, threadsText] = process.argv.slice(2);
  const prompt = Number(promptText), decode = Number(decodeText), threads = Number(threadsText);
  const pkg = path.join(process.env.NODE_PATH, 'node-llama-cpp');
  const { getLlama } = await import(pathToFileURL(path.join(pkg, 'dist/index.js')).href);
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
  const model = await llama.loadModel({ modelPath: gguf });
  const context = await model.createContext({ contextSize: prompt + decode + 16, batchSize: prompt, threads, flashAttention: false });
  const vocab = model.tokens.vocabSize ?? model.fileInfo.metadata.llama.vocab_size;
  const ids = Array.from({ length: prompt }, (_, i) => (i * 7919) % vocab);
  let bestPrefill = Infinity, bestDecode = Infinity;
  const sequence = context.getSequence();
  for (let run = 0; run < 4; run++) {
    await sequence.clearHistory();
    const t0 = performance.now();
    const out = await sequence.controlledEvaluate(ids.map((id, i) => (i + 1 < ids.length ? id : [id, { generateNext: { token: true, options: { temperature: 0 } } }])));
    const t1 = performance.now();
    let next = out[out.length - 1].next.token;
    for (let i = 0; i < decode; i++) {
      const step = await sequence.controlledEvaluate([[next, { generateNext: { token: true, options: { temperature: 0 } } }]]);
      next = step[0].next.token;
    }
    const t2 = performance.now();
    if (run === 0) continue;
    bestPrefill = Math.min(bestPrefill, (t1 - t0) / 1000);
    bestDecode = Math.min(bestDecode, (t2 - t1) / 1000);
  }
  console.log(`llama.cpp: prefill ${prompt} tokens ${(prompt / bestPrefill).toFixed(1)} tokens/s, decode ${decode} tokens ${(decode / bestDecode).toFixed(1)} tokens/s (${threads} threads)`);
  await context.dispose();
  await model.dispose();
})().catch((e) => { console.error(e); process.exit(1); });
