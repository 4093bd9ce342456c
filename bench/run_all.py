#!/usr/bin/python3
"""Every benchmark of docs/BENCHMARKS.md in one run on one machine (see bench/run_all.sh).

For each model: the engine (`quantserve bench`) against ONNX Runtime (bench/ort/ort_bench.js)
in fp32 and int8 (the QDQ file `quantserve export` writes), the oneDNN primitive ceiling
(dnnl_ceiling), accuracy on Fashion-MNIST where the model takes its images, gRPC throughput
with 32 concurrent batch-1 clients and dynamic batching against the in-process engine at the
batch size that forms, start-up time, and serving RSS. Prints JSON lines as it goes and writes
Markdown tables between the run_all markers of docs/BENCHMARKS.md.

Standard library only; needs a build (tools/build.sh) and `npm ci` in bench/ort.
"""
import argparse
import array
import datetime
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FMNIST = "/usr/share/datasets/fashion-mnist"
BEGIN = "<!-- run_all.sh: begin (generated; do not edit by hand) -->"
END = "<!-- run_all.sh: end -->"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def load():
    return "%.1f" % os.getloadavg()[0]


def run_json(cmd, env=None):
    log("$ " + " ".join(cmd))
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, env=env, text=True).stdout
    try:
        j = json.loads(out)  # one object, possibly pretty-printed
    except json.JSONDecodeError:
        j = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
    j["load"] = load()
    print(json.dumps(j), flush=True)
    return j


class Tools:
    def __init__(self, build):
        self.qs = os.path.join(build, "server", "quantserve")
        self.loadgen = os.path.join(build, "tools", "loadgen", "quantserve-loadgen")
        self.ceiling = os.path.join(build, "bench", "dnnl_ceiling")
        self.ort = os.path.join(ROOT, "bench", "ort", "ort_bench.js")
        for f in (self.qs, self.loadgen, self.ceiling):
            if not os.access(f, os.X_OK):
                sys.exit("run_all: %s is missing: build first (tools/build.sh)" % f)
        if not os.path.isdir(os.path.join(ROOT, "bench", "ort", "node_modules")):
            sys.exit("run_all: run `cd bench/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci` first")


def write_random_npy(path, shape, seed=7):
    """A float32 .npy of uniform [0, 1) values, written without numpy."""
    rng = random.Random(seed)
    n = 1
    for d in shape:
        n *= d
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % (
        ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else ""))
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
        array.array("f", (rng.random() for _ in range(n))).tofile(f)


def calib_inputs(path):
    """{input: file} of the <stem>_calib_<input>.npy files next to a multi-input model (what
    tools/zoo/bert_encoder.py writes), from ONNX Runtime's input names."""
    js = ("const ort=require('onnxruntime-node');ort.InferenceSession.create(process.argv[1])"
          ".then(s=>console.log(JSON.stringify(s.inputNames)))")
    out = subprocess.run(["node", "-e", js, path], check=True, stdout=subprocess.PIPE, text=True,
                         cwd=os.path.join(ROOT, "bench", "ort")).stdout
    stem = path[:-len(".onnx")] if path.endswith(".onnx") else path
    files = {n: "%s_calib_%s.npy" % (stem, n) for n in json.loads(out)}
    for f in files.values():
        if not os.path.exists(f):
            sys.exit("run_all: %s is missing (a ':calib' model needs <stem>_calib_<input>.npy)" % f)
    return files


# How the gRPC comparison's server is tuned, per model (docs/BENCHMARKS.md says why):
# the activation cache holds the buffers of every batch size dynamic batching forms (ResNet-18
# at 1..32 rows: ~480 MB; at the 256 MiB default, 30 % of its buffers missed the cache and
# were page-faulted in again); the tiny Fashion-MNIST CNN computes a batch in under a
# millisecond, so two single-threaded workers with a short queue delay beat one two-threaded
# worker waiting 2 ms; warm_up builds every batch size's plan before the load starts.
def serving_tuning(fmnist):
    if fmnist:
        return {"server": ["  intra_op_threads: 1", "  activation_cache_mb: 1024"],
                "batching": "{max_batch_size: 32, max_queue_delay_us: 200, workers: 2, "
                            "warm_up: true}"}
    return {"server": ["  intra_op_threads: 2", "  activation_cache_mb: 1024"],
            "batching": "{max_batch_size: 32, max_queue_delay_us: 2000, warm_up: true}"}


def config_yaml(name, path, fmnist, calib_npy, variants, evaluate=False, serving=None):
    tuning = serving or {"server": ["  intra_op_threads: 2"],
                         "batching": "{max_batch_size: 32, max_queue_delay_us: 2000}"}
    lines = ["server:", "  grpc_address: 127.0.0.1:0", "  metrics_address: 127.0.0.1:0"]
    lines += tuning["server"]
    lines += ["models:", "  - name: " + name, "    path: " + path,
              "    default_variant: " + variants[-1]]
    lines.append("    batching: " + tuning["batching"])
    if fmnist and evaluate:
        lines.append("    evaluation: {format: idx, inputs: %s/t10k-images-idx3-ubyte.gz, "
                     "labels: %s/t10k-labels-idx1-ubyte.gz}" % (FMNIST, FMNIST))
    if fmnist:
        lines.append("    calibration: {format: idx, inputs: %s/train-images-idx3-ubyte.gz, "
                     "limit: 1000}" % FMNIST)
    elif calib_npy is None:
        pass  # nothing to calibrate (fp32 only)
    elif isinstance(calib_npy, dict):
        lines.append("    calibration: {format: npy, inputs: {%s}}" % ", ".join(
            "%s: %s" % kv for kv in sorted(calib_npy.items())))
    else:
        lines.append("    calibration: {format: npy, inputs: %s, scale: 1.0}" % calib_npy)
    lines.append("    variants:")
    for v in variants:
        lines.append("      - name: " + v)
        if v == "w8a8":
            lines.append("        weights: {method: linear, bits: 8, symmetric: true, "
                         "per_channel: true}")
            lines.append("        activations: {bits: 8, calibration: minmax}")
    return "\n".join(lines) + "\n"


class Server:
    """`quantserve serve` on free ports, ready when `quantserve probe` says so."""

    def __init__(self, tools, config, tmp):
        self.tools = tools
        self.log_path = os.path.join(tmp, "serve.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([tools.qs, "serve", "--config", config],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.grpc = self.metrics = None
        deadline = time.time() + 600
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit("run_all: server exited:\n" + open(self.log_path).read())
            text = open(self.log_path).read()
            g = re.search(r"gRPC listening on \S*:(\d+)", text)
            m = re.search(r"Prometheus metrics on http://\S*:(\d+)/metrics", text)
            if g and m:
                self.grpc, self.metrics = g.group(1), m.group(1)
                if subprocess.run([tools.qs, "probe", "--address", "127.0.0.1:" + self.grpc],
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL).returncode == 0:
                    return
            time.sleep(0.5)
        sys.exit("run_all: server not ready after 600 s")

    def address(self):
        return "127.0.0.1:" + self.grpc

    def batch_size(self, model, variant):
        """(sum, count) of the quantserve_batch_size histogram of one variant."""
        text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % self.metrics).read().decode()
        out = []
        for suffix in ("_sum", "_count"):
            pat = r'^quantserve_batch_size%s\{[^}]*model="%s"[^}]*variant="%s"[^}]*\} (\S+)' % (
                suffix, re.escape(model), re.escape(variant))
            m = re.search(pat, text, re.M)
            out.append(float(m.group(1)) if m else 0.0)
        return out

    def rss_mb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        return 0.0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def grpc_floor(tools, a, tmp):
    """The same server and load as fmnist_cnn's gRPC row on models/fmnist_noop.onnx (same
    input and output, no computation): what a call costs this machine without the model."""
    noop = os.path.join(ROOT, "models", "fmnist_noop.onnx")
    cfg = os.path.join(tmp, "fmnist_noop_serve.yaml")
    with open(cfg, "w") as f:
        f.write(config_yaml("fmnist_noop", noop, False, None, ["fp32"],
                            serving=serving_tuning(True)))
    server = Server(tools, cfg, tmp)
    try:
        common = [tools.loadgen, "--address", server.address(), "--model", "fmnist_noop",
                  "--concurrency", "32"]
        subprocess.run(common + ["--requests", "500", "--json"], check=True,
                       stdout=subprocess.DEVNULL)
        return run_json(common + ["--duration-s", str(2 * a.seconds), "--json"])
    finally:
        server.stop()


def measure_model(tools, name, path, kind, a, tmp):
    """Every measurement of one model; returns a dict of results. `kind`: "fmnist" (takes
    Fashion-MNIST images: accuracy measured), "calib" (calibrates on its own
    <stem>_calib_<input>.npy files) or "" (one float input: random calibration samples)."""
    fmnist = kind == "fmnist"
    r = {"name": name, "path": path, "fmnist": fmnist, "speed": [], "load_start": load()}
    calib = os.path.join(tmp, name + "_calib.npy")
    if kind == "calib":
        calib = calib_inputs(path)
    elif not fmnist:
        write_random_npy(calib, [a.export_calibration_samples] + sample_shape(path))
    cfg = os.path.join(tmp, name + ".yaml")
    with open(cfg, "w") as f:
        f.write(config_yaml(name, path, fmnist, calib, ["fp32", "w8a8"]))

    if fmnist:
        # Only `report` evaluates (10 000 images per variant); the other configs skip it.
        eval_cfg = os.path.join(tmp, name + "_eval.yaml")
        with open(eval_cfg, "w") as f:
            f.write(config_yaml(name, path, fmnist, calib, ["fp32", "w8a8"], evaluate=True))
        rep = run_json([tools.qs, "report", "--config", eval_cfg, "--json"])
        for v in rep["models"][0]["variants"]:
            r["engine_acc_" + v["name"]] = v["accuracy"]
    qdq = os.path.join(tmp, name + "_w8a8_qdq.onnx")
    log("$ quantserve export %s w8a8" % name)
    subprocess.run([tools.qs, "export", "--config", cfg, "--model", name, "--variant", "w8a8",
                    "--out", qdq], check=True, stdout=subprocess.DEVNULL)
    if fmnist:
        for label, f in (("fp32", path), ("int8", qdq)):
            j = run_json(["node", tools.ort, "--model", f, "--fmnist-accuracy", "--json"])
            r["ort_acc_" + label] = j["accuracy"]

    for batch in a.batches:
        for threads in a.threads:
            row = {"batch": batch, "threads": threads, "load": load()}
            common = ["--batch", str(batch), "--threads", str(threads), "--seconds", str(a.seconds),
                      "--json"]
            row["engine_fp32"] = run_json([tools.qs, "bench", "--model", path, "--preset", "fp32"]
                                          + common)
            row["engine_w8a8"] = run_json([tools.qs, "bench", "--model", path, "--config", cfg,
                                           "--variant", "w8a8"] + common)
            row["ort_fp32"] = run_json(["node", tools.ort, "--model", path, "--variant", "fp32"]
                                       + common)
            row["ort_int8"] = run_json(["node", tools.ort, "--model", qdq, "--variant", "qdq_int8"]
                                       + common)
            row["ceiling"] = run_json([tools.ceiling, "--model", path, "--batch", str(batch),
                                       "--threads", str(threads), "--seconds-per-layer",
                                       str(a.ceiling_seconds), "--json"])
            r["speed"].append(row)

    # gRPC: 32 concurrent batch-1 clients, dynamic batching, against the engine at the batch
    # size that forms.
    serve_cfg = os.path.join(tmp, name + "_serve.yaml")
    with open(serve_cfg, "w") as f:
        f.write(config_yaml(name, path, fmnist, calib, ["fp32", "w8a8"],
                            serving=serving_tuning(fmnist)))
    server = Server(tools, serve_cfg, tmp)
    try:
        addr = server.address()
        subprocess.run([tools.loadgen, "--address", addr, "--model", name, "--variant", "w8a8",
                        "--concurrency", "32", "--requests", "500", "--json"], check=True,
                       stdout=subprocess.DEVNULL)
        s0, c0 = server.batch_size(name, "w8a8")
        lg = run_json([tools.loadgen, "--address", addr, "--model", name, "--variant", "w8a8",
                       "--concurrency", "32", "--duration-s", str(2 * a.seconds), "--json"])
        s1, c1 = server.batch_size(name, "w8a8")
    finally:
        server.stop()
    formed = (s1 - s0) / (c1 - c0) if c1 > c0 else 0.0
    eng = run_json([tools.qs, "bench", "--model", path, "--config", cfg, "--variant", "w8a8",
                    "--batch", str(max(1, round(formed))), "--threads", "2", "--seconds",
                    str(a.seconds), "--json"])
    r["server"] = {"loadgen": lg, "formed_batch": formed, "engine": eng}
    if fmnist:
        r["server"]["floor"] = grpc_floor(tools, a, tmp)

    # Start-up: a w8a8 build with minmax calibration on `calibration_samples` random samples
    # (a multi-input model: on its own calibration files, through the config).
    calibration = (["--config", cfg, "--variant", "w8a8"] if kind == "calib" else
                   ["--preset", "w8a8", "--calibration-data", "random"])
    r["startup"] = run_json([tools.qs, "bench", "--model", path] + calibration +
                            ["--calibration-samples", str(a.calibration_samples), "--batch", "1",
                             "--seconds", "0.1", "--json"])

    # RSS of serving one variant alone (drift off: no fp32 reference kept for it).
    r["rss"] = {}
    for variant in ("fp32", "w8a8"):
        one = os.path.join(tmp, "%s_%s_only.yaml" % (name, variant))
        with open(one, "w") as f:
            f.write(config_yaml(name, path, fmnist, calib, [variant]))
        server = Server(tools, one, tmp)
        try:
            subprocess.run([tools.loadgen, "--address", server.address(), "--model", name,
                            "--concurrency", "32", "--requests", "200", "--json"], check=True,
                           stdout=subprocess.DEVNULL)
            r["rss"][variant] = server.rss_mb()
        finally:
            server.stop()
    r["load_end"] = load()
    return r


def sample_shape(path):
    """The model's first input shape without the batch, read by ONNX Runtime."""
    js = ("const ort=require('onnxruntime-node');ort.InferenceSession.create(process.argv[1])"
          ".then(s=>console.log(JSON.stringify(s.inputMetadata[0].shape)))")
    out = subprocess.run(["node", "-e", js, path], check=True, stdout=subprocess.PIPE, text=True,
                         cwd=os.path.join(ROOT, "bench", "ort")).stdout
    return [int(d) for d in json.loads(out)[1:]]


def p50_rate(j):
    """Samples/s at the median latency: robust to the stalls a shared machine adds (a
    preempted run inflates the mean, not the median)."""
    return 1000.0 * j["batch"] / j["p50_ms"] if j["p50_ms"] > 0 else 0.0


def ratio(a, b):
    return a / b if b else 0.0


def mark(ok):
    return "met" if ok else "**missed**"


def markdown(results, a, started):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True).stdout.strip()
    out = [BEGIN, "", "### Engine vs ONNX Runtime vs the oneDNN ceiling", "",
           "`bench/run_all.sh %s` — %s, commit %s, %d s per measurement. Load average (1 min) "
           "at each row in the last column: the machine was %s." % (
               " ".join(a.models), started, commit, a.seconds,
               "shared with other builds (noisy)" if any(  # its own threads count 1-2
                   float(row["load"]) > 2.5 for r in results for row in r["speed"])
               else "otherwise idle"),
           "",
           "Throughput in samples/s at the median run time (batch / p50; the mean-based "
           "`throughput_per_s` is in the JSON lines the script prints — on a loaded machine "
           "a few preempted runs dominate it). *ceiling* = oneDNN u8×s8 / fp32 primitive time "
           "over the model's conv and inner-product shapes (bench/dnnl_ceiling).", "",
           "| model | batch | threads | engine fp32 | ORT fp32 | ratio | engine w8a8 | ORT int8 "
           "(QDQ) | ratio | engine w8a8/fp32 | ceiling int8/fp32 | load |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    targets = []
    for r in results:
        for row in r["speed"]:
            ef, ew = p50_rate(row["engine_fp32"]), p50_rate(row["engine_w8a8"])
            of, oi = p50_rate(row["ort_fp32"]), p50_rate(row["ort_int8"])
            out.append("| %s | %d | %d | %.0f | %.0f | %.2fx | %.0f | %.0f | %.2fx | %.2fx | %.2fx "
                       "| %s |" % (r["name"], row["batch"], row["threads"], ef, of, ratio(ef, of),
                                   ew, oi, ratio(ew, oi), ratio(ew, ef), row["ceiling"]["ratio"],
                                   row["load"]))
            need = 1.5 if "resnet" in r["name"] else 1.2
            for label, x in (("fp32", ratio(ef, of)), ("w8a8 vs ORT int8", ratio(ew, oi))):
                targets.append("%s batch %d, %d thread(s), engine %s ≥ %.1f× ORT: %.2f× — %s" % (
                    r["name"], row["batch"], row["threads"], label, need, x, mark(x >= need)))
            if "resnet" in r["name"] and row["batch"] >= 16:
                x = ratio(ew, ef)
                targets.append("%s batch %d, %d thread(s), engine w8a8 ≥ 1.8× engine fp32: "
                               "%.2f× (ceiling %.2f×) — %s" % (r["name"], row["batch"],
                                                               row["threads"], x,
                                                               row["ceiling"]["ratio"],
                                                               mark(x >= 1.8)))
    if any(r["fmnist"] for r in results):
        out += ["", "### Accuracy on Fashion-MNIST (10 000 test images)", "",
                "| model | ORT fp32 | ORT QDQ int8 | engine fp32 | engine w8a8 |", "|---|---|---|---|---|"]
        for r in results:
            if r["fmnist"]:
                out.append("| %s | %.2f %% | %.2f %% | %.2f %% | %.2f %% |" % (
                    r["name"], 100 * r["ort_acc_fp32"], 100 * r["ort_acc_int8"],
                    100 * r["engine_acc_fp32"], 100 * r["engine_acc_w8a8"]))
    out += ["", "### gRPC server vs in-process engine", "",
            "`quantserve-loadgen --concurrency 32 --batch 1` (closed loop, w8a8, %d s) against "
            "`quantserve serve` (dynamic batching, max 32 rows, `warm_up: true`; "
            "`activation_cache_mb: 1024`; "
            "fmnist_cnn: 200 µs queue delay, 2 workers of 1 intra-op thread; the others: 2 ms "
            "queue delay, 1 worker of 2 intra-op threads — `serving_tuning` in "
            "`bench/run_all.py`), then `quantserve bench --threads 2` at the mean batch size the "
            "server formed (from `quantserve_batch_size`; engine samples/s at its median run "
            "time, so the ratio is conservative). Client and server share the cores." %
            (2 * a.seconds), "",
            "| model | formed batch | gRPC samples/s | p50 ms | p99 ms | engine samples/s at that "
            "batch | gRPC / engine | target | load |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        s = r["server"]
        lg, eng = s["loadgen"], s["engine"]
        x = ratio(lg["throughput_per_s"], p50_rate(eng))
        need = 0.9 if "resnet" in r["name"] else 0.5
        out.append("| %s | %.1f | %.0f | %.2f | %.2f | %.0f | %.2fx | ≥ %.1fx: %s | %s |" % (
            r["name"], s["formed_batch"], lg["throughput_per_s"], lg["p50_ms"], lg["p99_ms"],
            p50_rate(eng), x, need, mark(x >= need), lg["load"]))
        targets.append("%s gRPC ≥ %.1f× engine at the formed batch: %.2f× — %s" % (
            r["name"], need, x, mark(x >= need)))
    for r in results:
        floor = r["server"].get("floor")
        if floor:
            goal = 0.5 * p50_rate(r["server"]["engine"])
            out += ["", "**The floor of a call.** The same server and load on "
                    "`models/fmnist_noop.onnx` (%s's input and output, no computation; "
                    "`tools/zoo/noop_model.py`): %.0f calls/s, p50 %.2f ms, p99 %.2f ms (load %s). "
                    "%s's 0.5× target asks for %.0f samples/s, %.2f× what the server and client "
                    "reach on these cores when the model takes no time at all." % (
                        r["name"], floor["throughput_per_s"], floor["p50_ms"], floor["p99_ms"],
                        floor["load"], r["name"], goal, ratio(goal, floor["throughput_per_s"]))]
    out += ["", "### Start-up and memory", "",
            "Build = import, minmax calibration on %d random samples, quantization, compilation "
            "(`quantserve bench --preset w8a8 --calibration-data random`). RSS = VmRSS of "
            "`quantserve serve` with that variant alone (drift off), after 200 requests." %
            a.calibration_samples, "",
            "| model | w8a8 build s | RSS fp32 alone MB | RSS w8a8 alone MB | saved MB | w8a8 "
            "weight bytes |", "|---|---|---|---|---|---|"]
    for r in results:
        st, rss = r["startup"], r["rss"]
        out.append("| %s | %.2f | %.1f | %.1f | %.1f | %d |" % (
            r["name"], st["build_seconds"], rss["fp32"], rss["w8a8"], rss["fp32"] - rss["w8a8"],
            st["weight_bytes"]))
        if "resnet" in r["name"]:
            targets.append("%s w8a8 build ≤ 20 s: %.2f s — %s" % (
                r["name"], st["build_seconds"], mark(st["build_seconds"] <= 20)))
            saved = rss["fp32"] - rss["w8a8"]
            targets.append("%s w8a8 RSS ≥ 30 MB below fp32: %.1f MB — %s" % (
                r["name"], saved, mark(saved >= 30)))
    out += ["", "### Targets (computed from the tables above)", ""]
    out += ["- " + t for t in targets]
    out += ["", END]
    return "\n".join(out)


def splice(doc, section, begin=BEGIN, end=END):
    """Replaces the text between `begin` and `end` in `doc` (appends it when absent)."""
    text = open(doc).read()
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(doc, "w") as f:
        f.write(text)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="*",
                   help="NAME=FILE.onnx[:fmnist|:calib]: ':fmnist' takes Fashion-MNIST images, "
                   "':calib' calibrates on the <stem>_calib_<input>.npy files next to it (any "
                   "inputs), none = one float input calibrated on random samples (default: the "
                   "bundled fmnist_cnn, plus build/zoo/resnet18.onnx, mobilenet_v2.onnx and "
                   "build/models/bert/bert_encoder.onnx if generated)")
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--batches", default="1,16")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--ceiling-seconds", type=float, default=0.2)
    p.add_argument("--calibration-samples", type=int, default=256,
                   help="random samples of the start-up measurement")
    p.add_argument("--export-calibration-samples", type=int, default=32,
                   help="random calibration samples of non-Fashion-MNIST models' w8a8 variant")
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    p.add_argument("--doc", default=os.path.join(ROOT, "docs", "BENCHMARKS.md"),
                   help="Markdown file whose run_all section is replaced ('-': print only)")
    a = p.parse_args()
    if not a.models:
        a.models = ["fmnist_cnn=models/fmnist_cnn.onnx:fmnist"]
        for zoo in ("resnet18", "mobilenet_v2"):  # tools/zoo/generate_zoo.py --out build/zoo
            f = os.path.join(ROOT, "build", "zoo", zoo + ".onnx")
            if os.path.exists(f):
                a.models.append("%s=%s" % (zoo, f))
        bert = os.path.join(ROOT, "build", "models", "bert", "bert_encoder.onnx")
        if os.path.exists(bert):  # the bert_encoder_model ctest fixture
            a.models.append("bert_encoder=%s:calib" % bert)
    a.batches = [int(x) for x in a.batches.split(",")]
    a.threads = [int(x) for x in a.threads.split(",")]
    tools = Tools(a.build_dir)
    started = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
    tmp = tempfile.mkdtemp(prefix="qs_run_all_")
    results = []
    try:
        for spec in a.models:
            name, rest = spec.split("=", 1)
            kind = ""
            for k in ("fmnist", "calib"):
                if rest.endswith(":" + k):
                    kind, rest = k, rest[:-len(k) - 1]
            results.append(measure_model(tools, name, os.path.abspath(rest), kind, a, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    section = markdown(results, a, started)
    print(section)
    if a.doc != "-":
        splice(a.doc, section)
        log("run_all: wrote %s" % a.doc)


if __name__ == "__main__":
    main()
