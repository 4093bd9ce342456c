#include "engine/random_inputs.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <random>

#include "engine/compiled_model.h"
#include "engine/data/npy.h"
#include "engine/onnx_importer.h"

namespace qs {

absl::StatusOr<std::vector<Tensor>> RandomInputs(const std::vector<ValueInfo>& inputs,
                                                 int64_t batch, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(0.f, 1.f);
  std::vector<Tensor> out;
  for (const ValueInfo& in : inputs) {
    Shape shape = in.shape;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] >= 0) continue;
      if (d != 0) {
        return absl::InvalidArgumentError(
            "input '" + in.name + "' has a dynamic dimension " + std::to_string(d) +
            " besides the batch; only the batch dimension can be set");
      }
      shape[d] = batch;
    }
    Tensor t(in.dtype, shape);
    if (in.dtype == DataType::kFloat32) {
      float* p = t.data<float>();
      for (int64_t i = 0; i < t.num_elements(); ++i) p[i] = uniform(rng);
    } else {
      std::memset(t.raw_data(), 0, t.byte_size());
    }
    out.push_back(std::move(t));
  }
  return out;
}

absl::StatusOr<std::vector<std::vector<Tensor>>> BatchesFromNpy(
    const std::vector<ValueInfo>& inputs, const std::string& npy_path, int64_t batch,
    int64_t max_batches) {
  if (inputs.size() != 1) {
    return absl::InvalidArgumentError("input data '" + npy_path + "': the model has " +
                                      std::to_string(inputs.size()) +
                                      " inputs; a .npy file can feed only a single-input model");
  }
  auto data = ReadNpy(npy_path);
  if (!data.ok()) return data.status();
  const ValueInfo& in = inputs.front();
  if (data->dtype() == DataType::kFloat64 && in.dtype == DataType::kFloat32) {
    Tensor converted(DataType::kFloat32, data->shape());
    const double* src = data->data<double>();
    float* dst = converted.data<float>();
    for (int64_t i = 0; i < data->num_elements(); ++i) dst[i] = static_cast<float>(src[i]);
    *data = std::move(converted);
  }
  if (data->dtype() != in.dtype) {
    return absl::InvalidArgumentError("input data '" + npy_path + "': dtype " +
                                      DataTypeName(data->dtype()) + ", but input '" + in.name +
                                      "' is " + DataTypeName(in.dtype));
  }
  const Shape& file_shape = data->shape();
  const bool shape_matches =
      file_shape.size() == in.shape.size() && !file_shape.empty() && file_shape[0] > 0 &&
      std::equal(in.shape.begin() + 1, in.shape.end(), file_shape.begin() + 1,
                 [](int64_t want, int64_t have) { return want < 0 || want == have; });
  if (!shape_matches) {
    return absl::InvalidArgumentError("input data '" + npy_path + "': shape " +
                                      ShapeToString(file_shape) + " does not fit input '" +
                                      in.name + "' " + ShapeToString(in.shape) +
                                      " (first dimension = samples)");
  }
  const int64_t rows = file_shape[0];
  const int64_t count = std::clamp<int64_t>((rows + batch - 1) / batch, 1, max_batches);
  const size_t row_bytes = data->byte_size() / static_cast<size_t>(rows);
  Shape shape = file_shape;
  shape[0] = batch;
  std::vector<std::vector<Tensor>> batches;
  for (int64_t k = 0; k < count; ++k) {
    Tensor t(in.dtype, shape);
    for (int64_t r = 0; r < batch; ++r) {
      std::memcpy(static_cast<char*>(t.raw_data()) + r * row_bytes,
                  static_cast<const char*>(data->raw_data()) + ((k * batch + r) % rows) * row_bytes,
                  row_bytes);
    }
    batches.emplace_back();
    batches.back().push_back(std::move(t));
  }
  return batches;
}

absl::StatusOr<std::string> WriteRandomCalibrationNpy(const std::string& model_path,
                                                      int64_t samples, uint32_t seed) {
  auto graph = ImportOnnxFile(model_path);
  if (!graph.ok()) return graph.status();
  if (graph->inputs.size() != 1) {
    return absl::InvalidArgumentError("random calibration data: '" + model_path + "' has " +
                                      std::to_string(graph->inputs.size()) +
                                      " inputs; only single-input models are supported");
  }
  auto data = RandomInputs(graph->inputs, samples, seed);
  if (!data.ok()) return data.status();
  static std::atomic<int> counter{0};
  const std::string path =
      (std::filesystem::temp_directory_path() /
       ("quantserve_random_calib_" + std::to_string(getpid()) + "_" +
        std::to_string(counter++) + ".npy"))
          .string();
  absl::Status written = WriteNpy(path, data->front());
  if (!written.ok()) return written;
  return path;
}

}  // namespace qs
