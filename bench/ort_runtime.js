// ONNX Runtime (onnxruntime-node) on the same model: mean time per batch at batch 1 and
// 256, best of 5 repetitions, 2 intra-op threads.
//   node ort_runtime.js MODEL.onnx [SHAPE]   (SHAPE: the input per sample, e.g. 784 or 1,28,28)
const ort = require('onnxruntime-node');

async function main() {
  const session = await ort.InferenceSession.create(process.argv[2], { intraOpNumThreads: 2, interOpNumThreads: 1 });
  const input = session.inputNames[0];
  const dims = (process.argv[3] || '784').split(',').map(Number);
  const features = dims.reduce((a, b) => a * b, 1);
  for (const batch of [1, 256]) {
    const x = new Float32Array(batch * features).map((_, i) => (i % 255) / 255);
    const feeds = { [input]: new ort.Tensor('float32', x, [batch, ...dims]) };
    const t = process.hrtime.bigint();
    await session.run(feeds);
    const once = Math.max(Number(process.hrtime.bigint() - t) / 1e9, 1e-7);
    const iters = Math.round(Math.min(20000, Math.max(10, 0.3 / once)));  // about 0.3 s per repetition
    for (let i = 0; i < iters / 10; ++i) await session.run(feeds);
    let best = Infinity;
    for (let rep = 0; rep < 5; ++rep) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < iters; ++i) await session.run(feeds);
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9 / iters);
    }
    console.log(JSON.stringify({ engine: 'onnxruntime', batch, us_per_batch: +(best * 1e6).toFixed(2), samples_per_s: Math.round(batch / best) }));
  }
}
main().catch((e) => { console.error(e.message); process.exit(1); });
