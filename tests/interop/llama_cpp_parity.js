// llama.cpp (node-llama-cpp's CPU build) evaluates a GGUF file shrink wrote and returns
// the logits of every position; they must equal shrink's own within 1e-3, and the
// perplexity of the window within 1e-4 relative. The context is larger than the window,
// flash attention is off and the KV cache is F32 (llama.cpp's defaults are less exact).
//   node llama_cpp_parity.js MODEL.gguf "ID ID ..." SHRINK_LOGITS.json
const fs = require('fs');
const path = require('path');
const { pathToFileURL } = require('url');

(async () => {
  const [gguf, idsText, oursFile] = process.argv.slice(2);
  const ids = idsText.trim().split(/\s+/).map(Number);
  const ours = JSON.parse(fs.readFileSync(oursFile, 'utf8'));
  // An ES module: import() ignores NODE_PATH, so the package is found there by hand.
  const pkg = path.join(process.env.NODE_PATH, 'node-llama-cpp');
  const main = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8'));
  const entry = typeof main.exports === 'object' ? (main.exports['.'].import || main.exports['.'].default || main.exports['.']) : main.main;
  const { getLlama } = await import(pathToFileURL(path.join(pkg, typeof entry === 'object' ? entry.default : entry)).href);
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
  const model = await llama.loadModel({ modelPath: gguf });
  const context = await model.createContext({ contextSize: 256, flashAttention: false,
    experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
  const sequence = context.getSequence();
  const results = await sequence.controlledEvaluate(ids.map((id) => [id, { generateNext: { logits: true } }]));
  const vocab = ours[0].length;
  let worst = 0, nllOurs = 0, nllTheirs = 0;
  const logSoftmax = (row, k) => {
    const top = Math.max(...row);
    return row[k] - top - Math.log(row.reduce((s, v) => s + Math.exp(v - top), 0));
  };
  for (let t = 0; t < ids.length; t++) {
    const map = results[t].next.logits;
    const theirs = new Array(vocab).fill(NaN);
    for (const [token, logit] of map) theirs[token] = logit;
    for (let v = 0; v < vocab; v++) worst = Math.max(worst, Math.abs(theirs[v] - ours[t][v]) / (1 + Math.abs(ours[t][v])));
    if (t + 1 < ids.length) {
      nllOurs -= logSoftmax(ours[t], ids[t + 1]);
      nllTheirs -= logSoftmax(theirs, ids[t + 1]);
    }
  }
  const pplOurs = Math.exp(nllOurs / (ids.length - 1)), pplTheirs = Math.exp(nllTheirs / (ids.length - 1));
  const relative = Math.abs(pplOurs - pplTheirs) / pplOurs;
  console.log(`${ids.length} positions x ${vocab} logits: worst relative difference ${worst.toExponential(2)}; ` +
              `perplexity shrink ${pplOurs.toFixed(6)}, llama.cpp ${pplTheirs.toFixed(6)} (relative ${relative.toExponential(2)})`);
  await context.dispose();
  await model.dispose();
  if (!(worst < 1e-3) || !(relative < 1e-4)) process.exit(1);
})().catch((e) => { console.error(e); process.exit(1); });
