#!/bin/sh
# Installs every Debian bookworm package quantserve needs to build, test and run.
# Idempotent: packages already present are skipped, so re-running is cheap.
#
#   tools/install_deps.sh            build + run + test dependencies
#   tools/install_deps.sh --build    only what building without tests needs
#                                    (the Docker build stage)
#   tools/install_deps.sh --train    also python3-torch & co., to regenerate models/
#   tools/install_deps.sh --runtime  only the shared libraries the binary needs
#                                    (the Docker runtime stage)
set -eu

BUILD_PKGS="build-essential cmake ninja-build pkg-config
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libdnnl-dev opencl-headers ocl-icd-opencl-dev prometheus-cpp-dev libyaml-cpp-dev libgtest-dev libgmock-dev
  libonnx-dev libabsl-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev
  libspdlog-dev libfmt-dev zlib1g-dev openssl"
DATA_PKGS="dataset-fashion-mnist libonnx-testdata"
# Tests only: promtool and a real Prometheus (drift series read back through
# its API), python3-yaml for tools/check_deploy.py.
# clang builds for tools/sanitize.sh (ASan/UBSan/TSan, libFuzzer): the
# sanitizer and fuzzer runtimes, omp.h for clang (it links GCC's libgomp, see
# CMakeLists.txt), and llvm-symbolizer for readable sanitizer stacks.
# torch/torchvision/onnx: ctest fixtures generate the model zoo's big models
# (tools/zoo/generate_zoo.py) and the BERT encoder (tools/zoo/bert_encoder.py)
# in the build tree instead of committing them (docs/MODELS.md).
TEST_PKGS="prometheus python3-yaml clang libclang-rt-14-dev libomp-dev llvm
  python3-torch python3-torchvision python3-onnx python3-numpy"
TRAIN_PKGS="python3-torch python3-torchvision python3-onnx python3-numpy python3-sklearn"
RUNTIME_PKGS="libdnnl2 ocl-icd-libopencl1 libgomp1 libgrpc++1.51 libprotobuf32
  libyaml-cpp0.7 libonnx1 libabsl20220623 libprometheus-cpp-core1.0
  libprometheus-cpp-pull1.0 libspdlog1.1 libfmt9 zlib1g dataset-fashion-mnist"

case "${1:-}" in
  "") want="$BUILD_PKGS $DATA_PKGS $TEST_PKGS" ;;
  --build) want="$BUILD_PKGS $DATA_PKGS" ;;
  --train) want="$BUILD_PKGS $DATA_PKGS $TEST_PKGS $TRAIN_PKGS" ;;
  --runtime) want="$RUNTIME_PKGS" ;;
  *) echo "usage: $0 [--build|--train|--runtime]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  echo "install_deps: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "install_deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing

# Debian's prometheus package starts a system service on :9090, the port
# quantserve's metrics use by default; the tests run their own instance on a
# free port, so a service this script caused to be installed is stopped.
case " $missing " in
  *" prometheus "*)
    if [ -d /run/systemd/system ]; then
      $SUDO systemctl disable --now prometheus || true
    fi
    ;;
esac
