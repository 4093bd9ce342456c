#include "engine/data/dataset.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/data/idx.h"
#include "engine/data/npy.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

absl::StatusOr<Tensor> ReadAny(DatasetSpec::Format format, const std::string& path) {
  return format == DatasetSpec::Format::kIdx ? ReadIdx(path) : ReadNpy(path);
}

// Converts the first `n` elements of `src` to float, applying raw*scale+offset
// when `scale_it` is set.
template <typename T>
void ConvertRows(const Tensor& src, int64_t n, bool scale_it, float scale,
                 float offset, float* dst) {
  const T* p = src.data<T>();
  for (int64_t i = 0; i < n; ++i) {
    float v = static_cast<float>(p[i]);
    dst[i] = scale_it ? v * scale + offset : v;
  }
}

bool IsFloat(DataType t) { return t == DataType::kFloat32 || t == DataType::kFloat64; }

}  // namespace

int64_t Dataset::size() const {
  if (!named.empty()) return named.front().second.shape()[0];
  return inputs.empty() || inputs.rank() == 0 ? 0 : inputs.shape()[0];
}

std::vector<std::pair<std::string, Tensor>> Dataset::NamedBatch(int64_t begin,
                                                                int64_t count) const {
  const int64_t n = size();
  begin = std::clamp<int64_t>(begin, 0, n);
  count = std::clamp<int64_t>(count, 0, n - begin);
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [name, t] : named) {
    Shape shape = t.shape();
    shape[0] = count;
    Tensor rows(t.dtype(), shape);
    const size_t row = n > 0 ? t.byte_size() / n : 0;
    if (count > 0) {
      std::memcpy(rows.raw_data(), static_cast<const char*>(t.raw_data()) + begin * row,
                  count * row);
    }
    out.emplace_back(name, std::move(rows));
  }
  return out;
}

namespace {

absl::StatusOr<Dataset> LoadNamedInputs(const DatasetSpec& spec) {
  Dataset d;
  for (const auto& [name, path] : spec.named_inputs) {
    auto t = ReadNpy(path);
    if (!t.ok()) {
      return absl::Status(t.status().code(),
                          absl::StrCat("input '", name, "': ", t.status().message()));
    }
    if (t->rank() < 1 || (!d.named.empty() && t->shape()[0] != d.size())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", name, "' (", path, "): shape ", ShapeToString(t->shape()),
          " does not have the other inputs' ", d.size(), " samples"));
    }
    d.named.emplace_back(name, *std::move(t));
  }
  if (spec.limit > 0 && spec.limit < d.size()) {
    for (auto& [name, t] : d.named) {
      Shape shape = t.shape();
      shape[0] = spec.limit;
      Tensor head(t.dtype(), shape);
      std::memcpy(head.raw_data(), t.raw_data(), head.byte_size());
      t = std::move(head);
    }
  }
  return d;
}

}  // namespace

Tensor Dataset::Batch(int64_t begin, int64_t count) const {
  const int64_t n = size();
  begin = std::clamp<int64_t>(begin, 0, n);
  count = std::clamp<int64_t>(count, 0, n - begin);
  Shape shape = inputs.empty() ? Shape{0} : inputs.shape();
  if (shape.empty()) shape.push_back(0);
  shape[0] = count;
  Tensor out(DataType::kFloat32, shape);
  if (count == 0) return out;
  const int64_t row = inputs.num_elements() / n;
  std::memcpy(out.data<float>(), inputs.data<float>() + begin * row,
              static_cast<size_t>(count * row) * sizeof(float));
  return out;
}

absl::StatusOr<Dataset> LoadDataset(const DatasetSpec& spec, const Shape& sample_shape) {
  if (spec.limit < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("dataset limit must be >= 0, got ", spec.limit));
  }
  if (!spec.named_inputs.empty()) return LoadNamedInputs(spec);
  ASSIGN_OR_RETURN(Tensor raw, ReadAny(spec.format, spec.inputs));
  if (raw.rank() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dataset inputs '", spec.inputs, "' must have a leading sample dim, got shape ",
        ShapeToString(raw.shape())));
  }
  const int64_t file_n = raw.shape()[0];
  const Shape file_sample(raw.shape().begin() + 1, raw.shape().end());
  const int64_t per_sample = NumElements(file_sample);

  Shape out_sample = file_sample;
  if (!sample_shape.empty()) {
    int64_t want = NumElements(sample_shape);
    if (want < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model sample shape ", ShapeToString(sample_shape),
          " has unknown dims; cannot reshape dataset '", spec.inputs, "'"));
    }
    if (want != per_sample) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dataset '", spec.inputs, "' samples have shape ", ShapeToString(file_sample),
          " (", per_sample, " elements) but the model expects ",
          ShapeToString(sample_shape), " (", want, " elements)"));
    }
    out_sample = sample_shape;
  }

  Tensor raw_labels;
  if (!spec.labels.empty()) {
    ASSIGN_OR_RETURN(raw_labels, ReadAny(spec.format, spec.labels));
    const Shape& ls = raw_labels.shape();
    // Accept [N] and the common column-vector form [N, 1].
    if (ls.empty() || ls.size() > 2 || (ls.size() == 2 && ls[1] != 1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "labels '", spec.labels, "' must have shape [N] or [N,1], got ",
          ShapeToString(ls)));
    }
    switch (raw_labels.dtype()) {
      case DataType::kUint8: case DataType::kInt8:
      case DataType::kInt32: case DataType::kInt64: break;
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            "labels '", spec.labels, "' must be integers, got ",
            DataTypeName(raw_labels.dtype())));
    }
    if (ls[0] != file_n) {
      return absl::InvalidArgumentError(absl::StrCat(
          "labels '", spec.labels, "' have ", ls[0], " entries but inputs '",
          spec.inputs, "' have ", file_n, " samples"));
    }
  }

  const int64_t n = spec.limit > 0 ? std::min(spec.limit, file_n) : file_n;
  Shape out_shape{n};
  out_shape.insert(out_shape.end(), out_sample.begin(), out_sample.end());
  Dataset ds;
  ds.inputs = Tensor(DataType::kFloat32, out_shape);
  const int64_t total = n * per_sample;
  const bool scale_it = !IsFloat(raw.dtype()) || spec.apply_scale_to_float;
  float* dst = ds.inputs.data<float>();
  const float s = spec.scale, o = spec.offset;
  switch (raw.dtype()) {
    case DataType::kFloat32: ConvertRows<float>(raw, total, scale_it, s, o, dst); break;
    case DataType::kFloat64: ConvertRows<double>(raw, total, scale_it, s, o, dst); break;
    case DataType::kUint8: ConvertRows<uint8_t>(raw, total, scale_it, s, o, dst); break;
    case DataType::kInt8: ConvertRows<int8_t>(raw, total, scale_it, s, o, dst); break;
    case DataType::kInt32: ConvertRows<int32_t>(raw, total, scale_it, s, o, dst); break;
    case DataType::kInt64: ConvertRows<int64_t>(raw, total, scale_it, s, o, dst); break;
    case DataType::kBool: ConvertRows<bool>(raw, total, scale_it, s, o, dst); break;
    case DataType::kUndefined:
      return absl::InvalidArgumentError(
          absl::StrCat("dataset inputs '", spec.inputs, "' have no data type"));
  }

  if (!raw_labels.empty()) {
    ds.labels = Tensor(DataType::kInt64, Shape{n});
    int64_t* out = ds.labels.data<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      out[i] = raw_labels.ScalarAsInt64(i);
      if (out[i] < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "labels '", spec.labels, "' entry ", i, " is negative (", out[i], ")"));
      }
    }
  }
  return ds;
}

}  // namespace qs
