#!/bin/sh
# Every benchmark of docs/BENCHMARKS.md in one go, on one machine (not part of
# ctest/CI): per model, the engine (`quantserve bench`) against ONNX Runtime
# (bench/ort) in fp32 and int8 QDQ, the oneDNN primitive ceiling
# (dnnl_ceiling), Fashion-MNIST accuracy, gRPC throughput with 32 concurrent
# batch-1 clients (quantserve-loadgen) against the engine at the batch size
# that forms, w8a8 start-up time and serving RSS. Writes the tables between
# the run_all markers of docs/BENCHMARKS.md (--doc - prints only).
#
#   bench/run_all.sh [NAME=FILE.onnx[:fmnist|:calib] ...] [--seconds S]
#                    [--batches 1,16] [--threads 1,2] [--doc FILE|-]
#
# Models: ONNX files; ":fmnist" = takes Fashion-MNIST images (accuracy is
# then measured); ":calib" = any inputs, calibrated on the
# <stem>_calib_<input>.npy files next to it (tools/zoo/bert_encoder.py writes
# them); neither = one float input, calibrated on random samples. Default:
# fmnist_cnn=models/fmnist_cnn.onnx:fmnist plus build/zoo/resnet18.onnx,
# build/zoo/mobilenet_v2.onnx and build/models/bert/bert_encoder.onnx:calib
# when the zoo generator and the bert_encoder_model ctest fixture made them. Needs a build
# (tools/build.sh) and ONNX Runtime: (cd bench/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci).
# About 5 minutes per small model, 10 for ResNet-18, at the default 5 s per measurement.
set -eu
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/run_all.py "$@"
