// Runs an ONNX model in ONNX Runtime (onnxruntime-node) on the inputs shrink_forward wrote
// and compares with shrink's outputs: the largest |ort - shrink| / (1 + |ort|).
//   node ort_compare.js MODEL.onnx DIR   ->  {"rows": R, "outputs": N, "max_difference": d}
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

function floats(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
}

async function main() {
  const [model, dir] = process.argv.slice(2);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));
  const x = floats(path.join(dir, 'input.f32'));
  const want = floats(path.join(dir, 'output.f32'));
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  const result = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [meta.rows, ...meta.input_shape]) });
  const y = result[session.outputNames[0]].data;
  if (y.length !== want.length) throw new Error(`ONNX Runtime gave ${y.length} outputs, shrink ${want.length}`);
  let worst = 0;
  for (let i = 0; i < y.length; ++i) worst = Math.max(worst, Math.abs(y[i] - want[i]) / (1 + Math.abs(y[i])));
  console.log(JSON.stringify({ rows: meta.rows, outputs: y.length, max_difference: worst }));
}

main().catch((e) => { console.error(e.message); process.exit(1); });
