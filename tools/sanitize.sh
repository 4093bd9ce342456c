#!/bin/sh
# Sanitizer builds and fuzzing (docs/RELIABILITY.md). Needs clang and
# libclang-rt-14-dev (tools/install_deps.sh). Build trees live beside ./build:
#
#   tools/sanitize.sh asan           clang ASan+UBSan tree (build-asan, which
#                                    also holds the fuzzers), every ctest in it
#                                    but two slow ones (ASAN_CTEST_EXCLUDE)
#   tools/sanitize.sh fuzz [SECONDS] each fuzz target for SECONDS (default 60)
#                                    on a copy of its corpus; fails on a crash
#                                    and prints how to reproduce it
#   tools/sanitize.sh tsan           clang TSan tree (build-tsan) of only the
#                                    concurrency tests, and runs them
#   tools/sanitize.sh ci [SECONDS]   asan, then fuzz SECONDS (default 30)
#                                    with FUZZ_SEED=1: what `tools/setup.sh
#                                    test` (CI) runs
#
# FUZZ_SEED fixes libFuzzer's seed. `fuzz` leaves it random (exploration:
# run it for minutes, turn what it finds into regression tests); `ci` fixes
# it so a CI run replays a known mutation sequence and fails on regressions,
# not on whatever a fresh random walk happens to reach first.
#
# JOBS (default: nproc, at most 2) sets build and ctest parallelism;
# ASAN_BUILD_DIR / TSAN_BUILD_DIR move the trees.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ASAN_DIR="${ASAN_BUILD_DIR:-build-asan}"
TSAN_DIR="${TSAN_BUILD_DIR:-build-tsan}"
JOBS="${JOBS:-$(nproc)}"
[ "$JOBS" -gt 2 ] && JOBS=2
FUZZ_TARGETS="fuzz_onnx_import fuzz_config fuzz_predict fuzz_model_infer"
# The concurrency tests: the batcher, drift shadowing/mirroring, the drift
# monitor's replay thread, graceful shutdown (serving gate + registry),
# callback calls cancelled or expiring while queued (metrics_test).
TSAN_TESTS="batching/batcher_test monitoring/drift_monitor_test
  monitoring/drift_server_test server/shutdown_test metrics/metrics_test"

# Sanitizer runtime options. halt_on_error: the first report fails the test.
# abort_on_error: an ASan report ends the process with SIGABRT (a core and
# a clear failure for ctest) instead of exit code 1.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$ROOT/tools/sanitizers/lsan.supp:print_suppressions=0}"

now() { date +%s; }
elapsed() { echo "$(( $(now) - $1 ))s"; }

# Release with line tables only: sanitizer reports keep file:line stacks, and
# the tree builds faster than with full debug info (CI builds it cold).
configure_asan() {
  CC=clang CXX=clang++ cmake -S . -B "$ASAN_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only -DNDEBUG" \
    -DQUANTSERVE_SANITIZE=address,undefined -DQUANTSERVE_FUZZ=ON >/dev/null
}

# Every ctest of the ASan+UBSan tree except those that only measure, or only
# repeat at full size what other tests check under ASan too
# (docs/RELIABILITY.md has the timings); under ASan each would take minutes
# of the CI budget:
#  - FmnistQuantTest: the acceptance run that builds every quantized variant
#    of the bundled model (300-1000 optimizer iterations each) and evaluates
#    each on the 10000 test images; over its 600 s timeout under ASan. Its
#    code paths run under ASan in the quant, qdq_export and server tests.
#  - QdqExportFmnistTest.*: quantize, export and evaluate on the 10000 test
#    images (230 s each under ASan); QdqExportTest checks the export itself.
#  - WeightOptimizerTest.TimingLargestLayer: prints how long the optimizer
#    takes on the largest layer (no assertion on time); the optimizer itself
#    is checked under ASan by the other WeightOptimizerTest cases.
#  - soak_60s: its pass criteria are RSS growth and latency, which ASan's
#    quarantine and slowdown distort; the release build runs it.
#  - MallocArenasTest.ManyLiveThreadsShareTheCappedArenas: ASan replaces
#    glibc's malloc, so there are no arenas to cap (its limit reads 0).
# ASAN_CTEST_EXCLUDE='' runs them too.
ASAN_CTEST_EXCLUDE="${ASAN_CTEST_EXCLUDE-^(FmnistQuantTest|QdqExportFmnistTest\..*|WeightOptimizerTest\.TimingLargestLayer|soak_60s|MallocArenasTest\.(ManyLiveThreadsShareTheCappedArenas|ReturnFreedMemoryShrinksTheResidentSet))\$}"
run_asan() {
  t0=$(now)
  configure_asan
  cmake --build "$ASAN_DIR" --parallel "$JOBS"
  echo "sanitize asan: build took $(elapsed "$t0")"
  t1=$(now)
  exclude=""
  [ -n "$ASAN_CTEST_EXCLUDE" ] && exclude="-E $ASAN_CTEST_EXCLUDE"
  # shellcheck disable=SC2086
  (cd "$ASAN_DIR" && ctest --output-on-failure --timeout 1500 -j "$JOBS" \
     $exclude ${CTEST_ARGS:-})
  echo "sanitize asan: ctest took $(elapsed "$t1") (total $(elapsed "$t0"))"
}

run_fuzz() {
  seconds="${1:-60}"
  t0=$(now)
  configure_asan
  # shellcheck disable=SC2086
  cmake --build "$ASAN_DIR" --parallel "$JOBS" --target $FUZZ_TARGETS
  work="$ROOT/$ASAN_DIR/fuzz-run"
  rm -rf "$work"
  mkdir -p "$work"
  failed=""
  for target in $FUZZ_TARGETS; do
    bin="$ROOT/$ASAN_DIR/tests/fuzz/$target"
    corpus="$work/corpus/$target"
    mkdir -p "$corpus" "$work/artifacts/$target"
    cp "$ROOT/tests/fuzz/corpus/$target/"* "$corpus/"
    dict=""
    seed=""
    [ -n "${FUZZ_SEED:-}" ] && seed="-seed=$FUZZ_SEED"
    [ -f "$ROOT/tests/fuzz/$target.dict" ] && dict="-dict=$ROOT/tests/fuzz/$target.dict"
    log="$work/$target.log"
    echo "sanitize fuzz: $target for ${seconds}s (log: $log)"
    # -rss_limit_mb: the request fuzzers hold a loaded server (oneDNN,
    # gRPC) under ASan. -timeout: one input may take at most 30 s.
    # shellcheck disable=SC2086
    if "$bin" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 \
         -print_final_stats=1 $dict $seed \
         -artifact_prefix="$work/artifacts/$target/" "$corpus" >"$log" 2>&1; then
      grep -E "^(stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)" \
        "$log" | tr '\n' ' '
      echo
    else
      failed="$failed $target"
      tail -n 60 "$log"
      for a in "$work/artifacts/$target/"*; do
        [ -e "$a" ] || continue
        echo "sanitize fuzz: $target FAILED on $a; reproduce with:"
        echo "  $bin $a"
        echo "then fix, add a regression test, and copy the input into tests/fuzz/corpus/$target/"
      done
    fi
  done
  echo "sanitize fuzz: took $(elapsed "$t0")"
  if [ -n "$failed" ]; then
    echo "sanitize fuzz: FAILED:$failed" >&2
    return 1
  fi
}

run_tsan() {
  t0=$(now)
  CC=clang CXX=clang++ cmake -S . -B "$TSAN_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQUANTSERVE_SANITIZE=thread >/dev/null
  targets="quantserve"  # shutdown_test runs the real binary
  for t in $TSAN_TESTS; do targets="$targets $(basename "$t")"; done
  # shellcheck disable=SC2086
  cmake --build "$TSAN_DIR" --parallel "$JOBS" --target $targets
  echo "sanitize tsan: build took $(elapsed "$t0")"
  # Each suppression is justified in the file.
  export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/tools/sanitizers/tsan.supp}"
  failed=""
  for t in $TSAN_TESTS; do
    t1=$(now)
    log="$ROOT/$TSAN_DIR/$(basename "$t").log"
    # A failure without a TSan report is retried once: under TSan's 5-15x
    # slowdown, a timing assumption can fail on a loaded machine (seen:
    # ShutdownTest.ServeFinishesCallInFlightOnSigterm, whose request must
    # reach its handler within ~150 ms). A TSan report is never retried.
    if ! "$TSAN_DIR/tests/$t" >"$log" 2>&1; then
      cat "$log"
      if grep -q "WARNING: ThreadSanitizer" "$log" || ! "$TSAN_DIR/tests/$t" >"$log" 2>&1; then
        cat "$log"
        failed="$failed $t"
      else
        echo "sanitize tsan: $t passed on the retry (no TSan report the first time)"
      fi
    fi
    grep -E "^\[  (PASSED|FAILED) " "$log" || true
    echo "sanitize tsan: $t took $(elapsed "$t1")"
  done
  echo "sanitize tsan: took $(elapsed "$t0")"
  if [ -n "$failed" ]; then
    echo "sanitize tsan: FAILED:$failed" >&2
    return 1
  fi
}

mode="${1:-}"
[ $# -gt 0 ] && shift
case "$mode" in
  asan) run_asan ;;
  fuzz) run_fuzz "$@" ;;
  tsan) run_tsan ;;
  ci)
    ci_t0=$(now)
    run_asan
    FUZZ_SEED="${FUZZ_SEED:-1}" run_fuzz "${1:-30}"
    echo "sanitize ci: took $(elapsed "$ci_t0")"
    ;;
  *)
    echo "usage: $0 asan | fuzz [SECONDS] | tsan | ci [SECONDS]" >&2
    exit 2
    ;;
esac
