// Top-1 accuracy of an ONNX model in ONNX Runtime (onnxruntime-node) on the Fashion-MNIST
// test set, fed exactly what shrink feeds: row-major 28x28 pixels / 255.
//   node ort_accuracy.js MODEL.onnx [SHAPE] [IDX_DIR]   ->  {"accuracy": ..., "samples": ...}
// SHAPE is the model's input per sample, e.g. 784 (default) or 1,28,28 for a CNN.
const fs = require('fs');
const zlib = require('zlib');
const path = require('path');
const ort = require('onnxruntime-node');

function idx(file) {
  const raw = fs.readFileSync(fs.existsSync(file) ? file : file + '.gz');
  return raw[0] === 0x1f && raw[1] === 0x8b ? zlib.gunzipSync(raw) : raw;
}

async function main() {
  const [model, shape = '784', dir = '/usr/share/datasets/fashion-mnist'] = process.argv.slice(2);
  const dims = shape.split(',').map(Number);
  const images = idx(path.join(dir, 't10k-images-idx3-ubyte'));
  const labels = idx(path.join(dir, 't10k-labels-idx1-ubyte'));
  const count = images.readUInt32BE(4), features = images.readUInt32BE(8) * images.readUInt32BE(12);
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 2 });
  const input = session.inputNames[0], output = session.outputNames[0];
  let correct = 0;
  for (let start = 0; start < count; start += 1000) {
    const rows = Math.min(1000, count - start);
    const x = new Float32Array(rows * features);
    for (let i = 0; i < rows * features; ++i) x[i] = images[16 + start * features + i] / 255;
    const result = await session.run({ [input]: new ort.Tensor('float32', x, [rows, ...dims]) });
    const y = result[output].data, classes = y.length / rows;
    for (let r = 0; r < rows; ++r) {
      let best = 0;
      for (let c = 1; c < classes; ++c) if (y[r * classes + c] > y[r * classes + best]) best = c;
      if (best === labels[8 + start + r]) ++correct;
    }
  }
  console.log(JSON.stringify({ accuracy: correct / count, samples: count }));
}

main().catch((e) => { console.error(e.message); process.exit(1); });
