#!/bin/sh
# Configures and builds quantserve into ./build (Release with debug info).
#   tools/build.sh [extra cmake args...]
# Uses ccache when it is installed (developer machines; CI clones start cold,
# so it is not installed by install_deps.sh).
set -eu
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
launcher=""
if command -v ccache >/dev/null 2>&1; then
  launcher="-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache"
  # Worktrees under one parent share cache entries (paths hashed relative).
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(cd .. && pwd)}"
  export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
fi
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $launcher "$@"
cmake --build "$BUILD_DIR" --parallel "$(nproc)"
