#!/bin/sh
# Latency cost of live drift monitoring, measured on loopback: the bundled
# config (11 variants of fmnist_cnn) served with drift off, shadow at 5 % and
# 100 %, and mirror at 5 %; batch-1 requests to w8a8 from quantserve-client.
# Prints one JSON line per run and a Markdown table for docs/BENCHMARKS.md.
#
#   bench/drift_overhead.sh [COUNT] [CONCURRENCY]     (default 20000, 4)
#
# Needs a build (tools/build.sh). Each run starts its own server (~20 s of
# start-up quantization), so the whole script takes a few minutes.
set -eu
cd "$(dirname "$0")/.."
count="${1:-20000}"
concurrency="${2:-4}"
bin=build/server/quantserve
client=build/tools/client/quantserve-client
port=18500
results=$(mktemp)
trap 'rm -f "$results"' EXIT

run() {  # label, then --set overrides
  label="$1"; shift
  log=$(mktemp)
  "$bin" serve --config config/quantserve.yaml --grpc-port "$port" --metrics-port 0 "$@" \
    >"$log" 2>&1 &
  pid=$!
  until "$bin" probe --address "127.0.0.1:$port" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 1
  done
  # Warm-up (plans, thread pools), then the measured run.
  "$client" --address "127.0.0.1:$port" --model fmnist_cnn --variant w8a8 --fashion-mnist \
    --count 2000 --batch 1 --concurrency "$concurrency" --json >/dev/null
  json=$("$client" --address "127.0.0.1:$port" --model fmnist_cnn --variant w8a8 \
    --fashion-mnist --count "$count" --batch 1 --concurrency "$concurrency" --json)
  dropped=$(curl -s "http://127.0.0.1:$(sed -n 's/.*metrics.*:\([0-9][0-9]*\)\/metrics.*/\1/p' "$log" | head -1)/metrics" 2>/dev/null \
    | awk '/^quantserve_drift_dropped_total/ {s += $2} END {print s + 0}')
  kill -TERM "$pid"; wait "$pid" || true
  rm -f "$log"
  echo "$label $json dropped=$dropped"
  echo "$label|$json|$dropped" >>"$results"
}

run "off"            --set models.fmnist_cnn.drift.sample_rate=0
run "shadow 5%"      --set models.fmnist_cnn.drift.sample_rate=0.05 --set models.fmnist_cnn.drift.mode=shadow
run "shadow 100%"    --set models.fmnist_cnn.drift.sample_rate=1 --set models.fmnist_cnn.drift.mode=shadow
run "mirror 5%"      --set models.fmnist_cnn.drift.sample_rate=0.05 --set models.fmnist_cnn.drift.mode=mirror
run "off (again)"    --set models.fmnist_cnn.drift.sample_rate=0

echo
echo "| drift | p50 ms | p99 ms | requests/s | p50 vs off | dropped samples |"
echo "|---|---|---|---|---|---|"
/usr/bin/python3 - "$results" <<'PY'
import json, sys
rows = [line.rstrip("\n").split("|") for line in open(sys.argv[1])]
base = json.loads(rows[0][1])["p50_ms"]
for label, js, dropped in rows:
    j = json.loads(js)
    print(f"| {label} | {j['p50_ms']:.3f} | {j['p99_ms']:.3f} | {j['throughput_per_s']:.0f} | "
          f"{j['p50_ms'] / base:.3f}x | {dropped} |")
PY
