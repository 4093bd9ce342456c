#!/usr/bin/env node
// The ONNX Runtime peer of `quantserve bench`: runs one ONNX model on ORT's
// CPU execution provider (npm onnxruntime-node) at a given batch size and
// intra-op thread count for S seconds, and prints the same JSON keys as
// `quantserve bench --json` (model, variant, batch, threads, runs,
// throughput_per_s, mean_ms, p50_ms, p99_ms, build_seconds). With
// --fmnist-accuracy it instead scores the model's top-1 accuracy on the
// Fashion-MNIST test split (Debian's dataset-fashion-mnist, pixels / 255).
//
//   node bench/ort/ort_bench.js --model FILE.onnx [--variant NAME] [--batch N]
//        [--threads N] [--seconds S] [--input-data FILE.npy] [--json]
//        [--fmnist-accuracy [--count N]]
//
// Session: intra_op_num_threads = --threads, inter_op 1, sequential
// execution, all graph optimizations. Inputs: floats uniform in [0, 1),
// integer inputs 0, the first (dynamic) dimension set to --batch; or, with
// --input-data, batches of the rows of a float32/float64 .npy taken in turn
// (as `quantserve bench --input-data` does). Only tensor outputs are fetched
// (a ZipMap's sequence of maps is not a tensor, and onnxruntime-node cannot
// return one).
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const ort = require('onnxruntime-node');

const USAGE = 'usage: ort_bench.js --model FILE.onnx [--variant NAME] [--batch N] [--threads N] ' +
  '[--seconds S] [--input-data FILE.npy] [--json] [--fmnist-accuracy [--count N] [--data-dir DIR]]';

function parseArgs(argv) {
  const a = { model: '', variant: 'fp32', batch: 1, threads: 1, seconds: 10, json: false, inputData: '',
    fmnistAccuracy: false, count: 0, dataDir: '/usr/share/datasets/fashion-mnist' };
  const numeric = { '--batch': 'batch', '--threads': 'threads', '--seconds': 'seconds', '--count': 'count' };
  for (let i = 0; i < argv.length; ++i) {
    const k = argv[i];
    if (k === '--json') a.json = true;
    else if (k === '--fmnist-accuracy') a.fmnistAccuracy = true;
    else if (k === '--model') a.model = argv[++i];
    else if (k === '--variant') a.variant = argv[++i];
    else if (k === '--input-data') a.inputData = argv[++i];
    else if (k === '--data-dir') a.dataDir = argv[++i];
    else if (k in numeric) {
      const v = Number(argv[++i]);
      if (!(v >= 0) || (k !== '--seconds' && !Number.isInteger(v))) throw new Error(`${k}: bad value`);
      a[numeric[k]] = v;
    } else throw new Error(`unknown argument '${k}'`);
  }
  if (!a.model) throw new Error('--model is required');
  if (a.batch < 1 || a.threads < 1) throw new Error('--batch and --threads must be >= 1');
  return a;
}

// Nearest rank as `quantserve bench` computes it.
function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function randomFeeds(session, batch) {
  let seed = 1;
  const uniform = () => {  // xorshift32
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
    return (seed >>> 0) / 4294967296;
  };
  const feeds = {};
  session.inputMetadata.forEach((meta, i) => {
    const dims = meta.shape.map((d, axis) => {
      if (typeof d === 'number' && d >= 0) return d;
      if (axis !== 0) throw new Error(`input '${meta.name}': dynamic dimension ${axis} besides the batch`);
      return batch;
    });
    const n = dims.reduce((x, y) => x * y, 1);
    const name = session.inputNames[i];
    if (meta.type === 'float32') {
      const data = new Float32Array(n);
      for (let j = 0; j < n; ++j) data[j] = uniform();
      feeds[name] = new ort.Tensor('float32', data, dims);
    } else if (meta.type === 'int64') {
      feeds[name] = new ort.Tensor('int64', new BigInt64Array(n), dims);
    } else if (meta.type === 'int32') {
      feeds[name] = new ort.Tensor('int32', new Int32Array(n), dims);
    } else {
      throw new Error(`input '${meta.name}': unsupported type ${meta.type}`);
    }
  });
  return feeds;
}

// A C-order float32 or float64 .npy (format 1.0-3.0) as { dims, data: Float32Array }.
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shape || /'fortran_order':\s*True/.test(header)) {
    throw new Error(`${file}: unsupported .npy header ${header.trim()}`);
  }
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const n = dims.reduce((x, y) => x * y, 1);
  const bytes = buf.subarray(start + headerLen);
  const data = new Float32Array(n);
  if (descr[1] === '<f4') {
    for (let i = 0; i < n; ++i) data[i] = bytes.readFloatLE(4 * i);
  } else if (descr[1] === '<f8') {
    for (let i = 0; i < n; ++i) data[i] = bytes.readDoubleLE(8 * i);
  } else {
    throw new Error(`${file}: dtype ${descr[1]} (float32 or float64 expected)`);
  }
  return { dims, data };
}

// The distinct batches of the file's rows, as `quantserve bench --input-data`
// builds them: batch k holds rows k*batch, k*batch+1, ... (cyclically), enough
// batches to use every row once, at most 64; runs take them in turn.
function npyFeeds(session, batch, file) {
  if (session.inputNames.length !== 1) throw new Error('--input-data needs a single-input model');
  const { dims, data } = readNpy(file);
  const rows = dims[0];
  const rowLen = data.length / rows;
  const count = Math.min(64, Math.max(1, Math.ceil(rows / batch)));
  const feeds = [];
  for (let k = 0; k < count; ++k) {
    const x = new Float32Array(batch * rowLen);
    for (let r = 0; r < batch; ++r) {
      const src = (k * batch + r) % rows;
      x.set(data.subarray(src * rowLen, (src + 1) * rowLen), r * rowLen);
    }
    feeds.push({ [session.inputNames[0]]: new ort.Tensor('float32', x, [batch, ...dims.slice(1)]) });
  }
  return feeds;
}

function readIdx(file) {
  const buf = zlib.gunzipSync(fs.readFileSync(file));
  const ndim = buf[3];
  const dims = [];
  for (let d = 0; d < ndim; ++d) dims.push(buf.readUInt32BE(4 + 4 * d));
  return { dims, data: buf.subarray(4 + 4 * ndim) };
}

async function fmnistAccuracy(session, a) {
  const images = readIdx(path.join(a.dataDir, 't10k-images-idx3-ubyte.gz'));
  const labels = readIdx(path.join(a.dataDir, 't10k-labels-idx1-ubyte.gz'));
  const total = a.count > 0 ? Math.min(a.count, images.dims[0]) : images.dims[0];
  const pixels = images.dims[1] * images.dims[2];
  const batch = Math.max(a.batch, 64);
  let correct = 0;
  for (let begin = 0; begin < total; begin += batch) {
    const rows = Math.min(batch, total - begin);
    const x = new Float32Array(rows * pixels);
    for (let j = 0; j < x.length; ++j) x[j] = images.data[begin * pixels + j] / 255;
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [rows, 1, images.dims[1], images.dims[2]]) });
    const logits = out[session.outputNames[0]].data;
    const classes = logits.length / rows;
    for (let r = 0; r < rows; ++r) {
      let best = 0;
      for (let c = 1; c < classes; ++c) if (logits[r * classes + c] > logits[r * classes + best]) best = c;
      if (best === labels.data[begin + r]) ++correct;
    }
  }
  return { accuracy: correct / total, eval_samples: total };
}

async function main() {
  let a;
  try {
    a = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`ort_bench: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(a.model, {
    executionProviders: ['cpu'], intraOpNumThreads: a.threads, interOpNumThreads: 1,
    executionMode: 'sequential', graphOptimizationLevel: 'all' });
  const buildSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const result = { model: a.model, variant: a.variant, inputs: a.inputData || 'random',
    batch: a.batch, threads: a.threads };
  if (a.fmnistAccuracy) {
    Object.assign(result, await fmnistAccuracy(session, a));
  } else {
    const feeds = a.inputData ? npyFeeds(session, a.batch, a.inputData) : [randomFeeds(session, a.batch)];
    const fetches = session.outputNames.filter((name, i) => session.outputMetadata[i].isTensor);
    let next = 0;
    const runOnce = () => session.run(feeds[next++ % feeds.length], fetches);
    const warmUntil = Date.now() + 500;
    for (let i = 0; i < 3 || Date.now() < warmUntil; ++i) await runOnce();
    const ms = [];
    const start = process.hrtime.bigint();
    const until = start + BigInt(Math.round(a.seconds * 1e9));
    while (process.hrtime.bigint() < until || ms.length < 3) {
      const s = process.hrtime.bigint();
      await runOnce();
      ms.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
    const wall = Number(process.hrtime.bigint() - start) / 1e9;
    const sorted = [...ms].sort((x, y) => x - y);
    Object.assign(result, {
      runs: ms.length, throughput_per_s: (ms.length * a.batch) / wall,
      mean_ms: ms.reduce((x, y) => x + y, 0) / ms.length,
      p50_ms: percentile(sorted, 50), p99_ms: percentile(sorted, 99) });
  }
  result.build_seconds = buildSeconds;
  result.runtime = `onnxruntime-node ${require('onnxruntime-node/package.json').version}`;
  if (a.json) {
    console.log(JSON.stringify(result));
  } else {
    for (const [k, v] of Object.entries(result)) console.log(`${k}: ${v}`);
  }
}

main().catch((e) => { console.error(`ort_bench: ${e.message}`); process.exit(1); });
