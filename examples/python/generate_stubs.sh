#!/bin/sh
# Generates the Python protobuf + gRPC stubs of quantserve.v1 into DIR
# (default: examples/python/gen), for predict.py and your own clients.
#
#   examples/python/generate_stubs.sh [DIR]
#
# Uses `python3 -m grpc_tools.protoc` (Debian: python3-grpc-tools) when it is
# installed, else protoc + grpc_python_plugin (Debian: protobuf-compiler +
# protobuf-compiler-grpc, already installed by tools/install_deps.sh).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$here/gen}
py=${PYTHON:-/usr/bin/python3}
proto=quantserve/v1/inference.proto

mkdir -p "$out"
if "$py" -c 'import grpc_tools.protoc' 2>/dev/null; then
  "$py" -m grpc_tools.protoc -I"$root/proto" --python_out="$out" --grpc_python_out="$out" "$proto"
  how="$py -m grpc_tools.protoc"
elif command -v protoc >/dev/null 2>&1 && command -v grpc_python_plugin >/dev/null 2>&1; then
  protoc -I"$root/proto" --python_out="$out" --grpc_python_out="$out" \
    --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" "$proto"
  how="protoc + grpc_python_plugin"
else
  cat >&2 <<MSG
generate_stubs: no Python gRPC code generator found. On Debian 12 install either
  apt-get install python3-grpc-tools                    # python3 -m grpc_tools.protoc
  apt-get install protobuf-compiler protobuf-compiler-grpc  # protoc + grpc_python_plugin
MSG
  if command -v apt-cache >/dev/null 2>&1; then
    apt-cache policy python3-grpc-tools >&2 || true
  fi
  exit 1
fi
echo "generate_stubs: wrote $out/quantserve/v1/inference_pb2{,_grpc}.py ($how)"

if ! "$py" -c 'import grpc' 2>/dev/null; then
  echo "generate_stubs: note: running the stubs needs python3-grpcio (apt-get install python3-grpcio)" >&2
fi
