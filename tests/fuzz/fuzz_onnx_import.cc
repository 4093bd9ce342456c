// Arbitrary bytes as an .onnx model: import (ImportOnnxBytes, the same path
// as ImportOnnxFile after reading the file) and, when that succeeds, what
// the server does next with a model: compile it (graph passes with constant
// folding, shape inference, a batch-1 plan) and run it once on zeros.
//
// Properties beyond "no crash, no sanitizer report": every error has a
// non-empty message and is never INTERNAL or UNKNOWN (a bad model is the
// model's fault, and the error must say what is wrong with it).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/compiled_model.h"
#include "engine/onnx_importer.h"
#include "fuzz_util.h"

namespace {

// Small limits: the fuzzer should look for bugs, not allocate gigabytes
// for a well-formed but huge model (which the limits then refuse).
qs::CompileOptions FuzzCompileOptions() {
  qs::CompileOptions options;
  options.limits.max_tensor_bytes = int64_t{4} << 20;
  options.limits.max_total_bytes = int64_t{16} << 20;
  options.max_cached_plans = 2;
  options.intra_op_threads = 1;
  return options;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<qs::Graph> graph = qs::ImportOnnxBytes(bytes, "fuzz model");
  if (!graph.ok()) {
    qs::fuzz::CheckError(graph.status(), "ImportOnnxBytes");
    return 0;
  }
  absl::StatusOr<std::unique_ptr<qs::CompiledModel>> model =
      qs::CompiledModel::Compile(std::move(*graph), FuzzCompileOptions());
  if (!model.ok()) {
    qs::fuzz::CheckError(model.status(), "CompiledModel::Compile");
    return 0;
  }
  // Run on zeros, dynamic dims set to 1 as Compile did (which checked the
  // sizes against the limits).
  std::vector<qs::Tensor> inputs;
  for (const qs::ValueInfo& in : (*model)->inputs()) {
    qs::Shape shape = in.shape;
    for (int64_t& d : shape) d = d < 0 ? 1 : d;
    inputs.emplace_back(in.dtype, shape);
  }
  absl::StatusOr<std::vector<qs::Tensor>> outputs = (*model)->RunOrdered(std::move(inputs));
  if (!outputs.ok()) {
    qs::fuzz::CheckError(outputs.status(), "CompiledModel::RunOrdered");
    return 0;
  }
  // Outputs match what the model declares after compiling.
  const std::vector<qs::ValueInfo>& declared = (*model)->outputs();
  if (outputs->size() != declared.size()) {
    qs::fuzz::Fail("RunOrdered returned %zu outputs, the model declares %zu",
                   outputs->size(), declared.size());
  }
  for (size_t i = 0; i < outputs->size(); ++i) {
    const qs::Tensor& t = (*outputs)[i];
    const qs::ValueInfo& want = declared[i];
    bool ok = t.dtype() == want.dtype && t.rank() == static_cast<int64_t>(want.shape.size());
    for (size_t d = 0; ok && d < want.shape.size(); ++d) {
      ok = want.shape[d] < 0 || want.shape[d] == t.shape()[d];
    }
    if (!ok) {
      qs::fuzz::Fail("output %zu ('%s') is %s %s, the model declares %s %s", i,
                     want.name.c_str(), qs::DataTypeName(t.dtype()).c_str(),
                     qs::ShapeToString(t.shape()).c_str(),
                     qs::DataTypeName(want.dtype).c_str(),
                     qs::ShapeToString(want.shape).c_str());
    }
  }
  return 0;
}
