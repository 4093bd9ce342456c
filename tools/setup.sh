#!/bin/sh
# The two Quick-start commands of the README, on a fresh Debian 12 machine:
#   tools/setup.sh serve   install what is missing, build, serve the bundled
#                          model with config/quantserve.yaml
#   tools/setup.sh test    install what is missing, build, run every test,
#                          then the ASan+UBSan tree's tests and a 30 s run
#                          of each fuzzer (tools/sanitize.sh ci; about half
#                          of the time; QS_SANITIZERS=0 skips that stage)
# Extra arguments after `serve` go to `quantserve serve` (e.g. --grpc-port 0).
set -eu
cd "$(dirname "$0")/.."
mode="${1:-}"
[ $# -gt 0 ] && shift
case "$mode" in
  serve)
    tools/install_deps.sh
    tools/build.sh
    exec build/server/quantserve serve --config config/quantserve.yaml "$@"
    ;;
  test)
    tools/install_deps.sh
    tools/build.sh
    (cd "${BUILD_DIR:-build}" && ctest --output-on-failure --timeout 600 -j "$(nproc)")
    if [ "${QS_SANITIZERS:-1}" != 0 ]; then
      exec tools/sanitize.sh ci
    fi
    ;;
  *)
    echo "usage: $0 serve [quantserve serve flags] | test" >&2
    exit 2
    ;;
esac
