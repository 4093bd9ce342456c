#include "tools/soak/workload.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

namespace qs::soak {

static_assert(std::endian::native == std::endian::little,
              "raw tensors are little-endian; the soak sends native floats");

namespace {

template <typename T>
T Uniform(Rng& rng, T lo, T hi) {  // inclusive
  return std::uniform_int_distribution<T>(lo, hi)(rng);
}

bool Coin(Rng& rng) { return (rng() & 1) != 0; }

std::string Floats(const float* data, size_t n) {
  return std::string(reinterpret_cast<const char*>(data), n * sizeof(float));
}

}  // namespace

std::vector<int> ArgMax(const float* logits, int64_t rows, int64_t classes) {
  std::vector<int> out(static_cast<size_t>(rows), 0);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logits + r * classes;
    out[r] = static_cast<int>(std::max_element(row, row + classes) - row);
  }
  return out;
}

Workload::Workload(ModelInfo info, Dataset images, const Options& options)
    : info_(std::move(info)), images_(std::move(images)), options_(options) {
  sample_elements_ = 1;
  for (int64_t d : info_.sample_shape) sample_elements_ *= d;
  references_.resize(info_.variants.size());
}

void Workload::SetReference(int variant, std::vector<float> logits) {
  references_[variant] = std::move(logits);
}

Expectation Workload::RandomExpectation(int variant, Rng& rng) const {
  Expectation e;
  e.variant = variant;
  e.rows = Uniform<int>(rng, 1, std::min(options_.max_rows, images()));
  e.first = Uniform<int>(rng, 0, images() - e.rows);
  return e;
}

std::string Workload::ImageBytes(int first, int rows) const {
  std::string bytes;
  bytes.reserve(static_cast<size_t>(rows * sample_elements_) * sizeof(float));
  for (int r = 0; r < rows; ++r) {  // wraps around the pool
    const int image = (first + r) % images();
    bytes += Floats(images_.inputs.data<float>() + image * sample_elements_,
                    static_cast<size_t>(sample_elements_));
  }
  return bytes;
}

void Workload::FillPredict(const Expectation& e, v1::PredictRequest* req) const {
  req->set_model(info_.model);
  req->set_variant(info_.variants[e.variant]);
  req->set_top_k(1);
  req->set_raw_output((e.first & 1) != 0);  // both encodings of the answer
  v1::Tensor* t = req->add_inputs();
  t->set_name(info_.input_name);
  t->set_datatype(v1::FP32);
  t->add_shape(e.rows);
  for (int64_t d : info_.sample_shape) t->add_shape(d);
  if (e.rows % 2 == 0) {
    t->set_raw_data(ImageBytes(e.first, e.rows));
  } else {
    const float* p = images_.inputs.data<float>() + e.first * sample_elements_;
    t->mutable_float_data()->Add(p, p + e.rows * sample_elements_);
  }
}

void Workload::FillModelInfer(const Expectation& e, inference::ModelInferRequest* req) const {
  req->set_model_name(info_.model);
  req->set_model_version(info_.variants[e.variant]);
  auto* in = req->add_inputs();
  in->set_name(info_.input_name);
  in->set_datatype("FP32");
  in->add_shape(e.rows);
  for (int64_t d : info_.sample_shape) in->add_shape(d);
  if (e.rows % 2 == 0) {
    req->add_raw_input_contents(ImageBytes(e.first, e.rows));
  } else {
    const float* p = images_.inputs.data<float>() + e.first * sample_elements_;
    in->mutable_contents()->mutable_fp32_contents()->Add(p, p + e.rows * sample_elements_);
  }
}

std::string Workload::RandomBytes(Rng& rng) {
  std::string bytes(Uniform<size_t>(rng, 0, 300), '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  return bytes;
}

void Workload::FillGarbagePredict(GarbageKind k, int variant, Rng& rng,
                                  v1::PredictRequest* req) const {
  Expectation e = RandomExpectation(variant, rng);
  e.rows = std::min(e.rows, 4);
  req->set_model(info_.model);
  req->set_variant(info_.variants[variant]);
  v1::Tensor* t = req->add_inputs();
  t->set_name(info_.input_name);
  t->set_datatype(v1::FP32);
  const auto set_shape = [&](int64_t rows, const Shape& sample) {
    t->clear_shape();
    t->add_shape(rows);
    for (int64_t d : sample) t->add_shape(d);
  };
  set_shape(e.rows, info_.sample_shape);
  std::string raw = ImageBytes(e.first, e.rows);
  const int64_t count = e.rows * sample_elements_;
  switch (k) {
    case GarbageKind::kWrongDtype:
      t->set_datatype(v1::INT64);
      t->mutable_int64_data()->Resize(static_cast<int>(count), 1);
      return;
    case GarbageKind::kWrongShape: {
      Shape sample = info_.sample_shape;
      sample.back() -= 1;
      set_shape(e.rows, sample);
      raw.resize(raw.size() / info_.sample_shape.back() * sample.back());
      break;
    }
    case GarbageKind::kWrongRank:
      t->clear_shape();
      t->add_shape(e.rows);
      t->add_shape(sample_elements_);
      break;
    case GarbageKind::kUnknownModel:
      req->set_model("soak_no_such_model_" + std::to_string(rng() % 100000));
      break;
    case GarbageKind::kUnknownVariant:
      req->set_variant("soak_no_such_variant_" + std::to_string(rng() % 100000));
      break;
    case GarbageKind::kNanInput:
    case GarbageKind::kInfInput: {
      const float bad = k == GarbageKind::kNanInput ? std::numeric_limits<float>::quiet_NaN()
                                                    : (Coin(rng) ? 1 : -1) *
                                                          std::numeric_limits<float>::infinity();
      const size_t at = Uniform<size_t>(rng, 0, static_cast<size_t>(count) - 1);
      std::memcpy(raw.data() + at * sizeof(float), &bad, sizeof(float));
      break;
    }
    case GarbageKind::kHugeShape:
      if (Coin(rng)) {
        set_shape(options_.max_tensor_elements / sample_elements_ + 1 + rng() % 1000,
                  info_.sample_shape);
      } else {
        t->clear_shape();  // overflows int64 when multiplied out
        t->add_shape(int64_t{1} << 40);
        t->add_shape(int64_t{1} << 40);
      }
      return;  // no data: the size alone must be refused
    case GarbageKind::kTooManyRows:
      set_shape(options_.max_batch_rows + 1, info_.sample_shape);
      raw = ImageBytes(e.first, static_cast<int>(options_.max_batch_rows + 1));
      break;
    case GarbageKind::kBadRawLength:
      raw.resize(Coin(rng) ? raw.size() - sizeof(float) : raw.size() + 1);
      break;
    case GarbageKind::kRawAndTyped:
      t->add_float_data(0.5f);
      break;
    case GarbageKind::kNegativeDim:
      set_shape(-Uniform<int64_t>(rng, 1, 8), info_.sample_shape);
      return;
    case GarbageKind::kNoInputs:
      req->clear_inputs();
      return;
    case GarbageKind::kUnknownInput:
      t->set_name("soak_bogus_input");
      break;
    case GarbageKind::kUnknownOutput:
      req->add_output_names("soak_bogus_output");
      break;
    case GarbageKind::kDuplicateInput:
      t->set_raw_data(raw);
      *req->add_inputs() = *t;
      return;
    case GarbageKind::kUnknownDatatype:
      t->set_datatype(v1::DATA_TYPE_UNSPECIFIED);
      break;
    case GarbageKind::kEmptyBatch:
      set_shape(0, info_.sample_shape);
      return;
    case GarbageKind::kRawCountMismatch:  // KServe only
    case GarbageKind::kRandomBytes:       // generic stub
      break;
  }
  t->set_raw_data(std::move(raw));
}

void Workload::FillGarbageModelInfer(GarbageKind k, int variant, Rng& rng,
                                     inference::ModelInferRequest* req) const {
  Expectation e = RandomExpectation(variant, rng);
  e.rows = std::min(e.rows, 4);
  req->set_model_name(info_.model);
  req->set_model_version(info_.variants[variant]);
  auto* in = req->add_inputs();
  in->set_name(info_.input_name);
  in->set_datatype("FP32");
  const auto set_shape = [&](int64_t rows, const Shape& sample) {
    in->clear_shape();
    in->add_shape(rows);
    for (int64_t d : sample) in->add_shape(d);
  };
  set_shape(e.rows, info_.sample_shape);
  std::string raw = ImageBytes(e.first, e.rows);
  const int64_t count = e.rows * sample_elements_;
  switch (k) {
    case GarbageKind::kWrongDtype:
      in->set_datatype("INT64");
      raw.assign(static_cast<size_t>(count) * sizeof(int64_t), '\0');
      break;
    case GarbageKind::kWrongShape: {
      Shape sample = info_.sample_shape;
      sample.back() -= 1;
      set_shape(e.rows, sample);
      raw.resize(raw.size() / info_.sample_shape.back() * sample.back());
      break;
    }
    case GarbageKind::kWrongRank:
      in->clear_shape();
      in->add_shape(e.rows);
      in->add_shape(sample_elements_);
      break;
    case GarbageKind::kUnknownModel:
      req->set_model_name("soak_no_such_model_" + std::to_string(rng() % 100000));
      break;
    case GarbageKind::kUnknownVariant:
      req->set_model_version("soak_no_such_variant_" + std::to_string(rng() % 100000));
      break;
    case GarbageKind::kNanInput:
    case GarbageKind::kInfInput: {
      const float bad = k == GarbageKind::kNanInput ? std::numeric_limits<float>::quiet_NaN()
                                                    : std::numeric_limits<float>::infinity();
      const size_t at = Uniform<size_t>(rng, 0, static_cast<size_t>(count) - 1);
      std::memcpy(raw.data() + at * sizeof(float), &bad, sizeof(float));
      break;
    }
    case GarbageKind::kHugeShape:
      set_shape(options_.max_tensor_elements / sample_elements_ + 1 + rng() % 1000,
                info_.sample_shape);
      return;
    case GarbageKind::kTooManyRows:
      set_shape(options_.max_batch_rows + 1, info_.sample_shape);
      raw = ImageBytes(e.first, static_cast<int>(options_.max_batch_rows + 1));
      break;
    case GarbageKind::kBadRawLength:
      raw.resize(Coin(rng) ? raw.size() - sizeof(float) : raw.size() + 1);
      break;
    case GarbageKind::kRawAndTyped:
      in->mutable_contents()->add_fp32_contents(0.5f);
      break;
    case GarbageKind::kNegativeDim:
      set_shape(-Uniform<int64_t>(rng, 1, 8), info_.sample_shape);
      return;
    case GarbageKind::kNoInputs:
      req->clear_inputs();
      return;
    case GarbageKind::kUnknownInput:
      in->set_name("soak_bogus_input");
      break;
    case GarbageKind::kUnknownOutput:
      req->add_outputs()->set_name("soak_bogus_output");
      break;
    case GarbageKind::kDuplicateInput:
      *req->add_inputs() = *in;
      req->add_raw_input_contents(raw);
      break;
    case GarbageKind::kRawCountMismatch:
      req->add_raw_input_contents(raw);  // a second entry for the one input
      break;
    case GarbageKind::kUnknownDatatype:
      in->set_datatype(Coin(rng) ? "FP16" : "BYTES");
      break;
    case GarbageKind::kEmptyBatch:
      set_shape(0, info_.sample_shape);
      raw.clear();
      break;
    case GarbageKind::kRandomBytes:
      break;
  }
  req->add_raw_input_contents(std::move(raw));
}

std::string Workload::CheckLogits(const float* logits, int64_t rows, const Expectation& e,
                                  double* max_diff) const {
  const int64_t c = info_.classes;
  const std::vector<float>& ref = references_[e.variant];
  const std::vector<int> got_top = ArgMax(logits, rows, c);
  for (int64_t r = 0; r < rows; ++r) {
    const int image = (e.first + static_cast<int>(r)) % images();
    const float* want = ref.data() + image * c;
    const float* got = logits + r * c;
    double diff = 0;
    for (int64_t k = 0; k < c; ++k) {
      if (!std::isfinite(got[k])) {
        return "row " + std::to_string(r) + ": logit " + std::to_string(k) + " is not finite";
      }
      diff = std::max(diff, static_cast<double>(std::fabs(got[k] - want[k])));
    }
    *max_diff = std::max(*max_diff, diff);
    const int ref_top = static_cast<int>(std::max_element(want, want + c) - want);
    // A different top-1 is only acceptable for a near tie in the reference.
    if (got_top[r] != ref_top && want[ref_top] - want[got_top[r]] > 2 * options_.logit_tolerance) {
      return "row " + std::to_string(r) + " (image " + std::to_string(image) + "): top-1 " +
             std::to_string(got_top[r]) + ", but this variant answered " +
             std::to_string(ref_top) + " for the same image alone";
    }
    if (diff > options_.logit_tolerance) {
      return "row " + std::to_string(r) + " (image " + std::to_string(image) +
             "): logits differ from the reference by " + std::to_string(diff);
    }
  }
  return "";
}

std::string Workload::CheckPredict(const v1::PredictResponse& resp, const Expectation& e,
                                   double* max_diff) const {
  if (resp.variant() != info_.variants[e.variant]) {
    return "served by variant '" + resp.variant() + "'";
  }
  if (resp.outputs_size() != 1) return std::to_string(resp.outputs_size()) + " outputs";
  const v1::Tensor& out = resp.outputs(0);
  const int64_t want = e.rows * info_.classes;
  if (out.datatype() != v1::FP32 || out.shape_size() != 2 || out.shape(0) != e.rows ||
      out.shape(1) != info_.classes) {
    return "output " + out.name() + ": datatype " + v1::DataType_Name(out.datatype()) +
           ", rank " + std::to_string(out.shape_size()) + ", want FP32 [" +
           std::to_string(e.rows) + "," + std::to_string(info_.classes) + "]";
  }
  std::vector<float> logits(static_cast<size_t>(want));
  if (!out.raw_data().empty()) {
    if (out.raw_data().size() != logits.size() * sizeof(float)) return "raw_data size";
    std::memcpy(logits.data(), out.raw_data().data(), out.raw_data().size());
  } else {
    if (out.float_data_size() != want) return "float_data size";
    std::copy(out.float_data().begin(), out.float_data().end(), logits.begin());
  }
  if (resp.top_k_size() != e.rows) return "top_k: " + std::to_string(resp.top_k_size()) + " entries";
  const std::vector<int> top = ArgMax(logits.data(), e.rows, info_.classes);
  for (int r = 0; r < e.rows; ++r) {
    if (resp.top_k(r).indices_size() != 1 || resp.top_k(r).indices(0) != top[r]) {
      return "top_k[" + std::to_string(r) + "] disagrees with the logits";
    }
  }
  return CheckLogits(logits.data(), e.rows, e, max_diff);
}

std::string Workload::CheckModelInfer(const inference::ModelInferResponse& resp,
                                      const Expectation& e, double* max_diff) const {
  if (resp.model_version() != info_.variants[e.variant]) {
    return "served by version '" + resp.model_version() + "'";
  }
  if (resp.outputs_size() != 1) return std::to_string(resp.outputs_size()) + " outputs";
  const auto& out = resp.outputs(0);
  const int64_t want = e.rows * info_.classes;
  if (out.datatype() != "FP32" || out.shape_size() != 2 || out.shape(0) != e.rows ||
      out.shape(1) != info_.classes) {
    return "output " + out.name() + ": datatype " + out.datatype() + ", want FP32 [" +
           std::to_string(e.rows) + "," + std::to_string(info_.classes) + "]";
  }
  std::vector<float> logits(static_cast<size_t>(want));
  if (resp.raw_output_contents_size() > 0) {
    if (resp.raw_output_contents_size() != 1 ||
        resp.raw_output_contents(0).size() != logits.size() * sizeof(float)) {
      return "raw_output_contents size";
    }
    std::memcpy(logits.data(), resp.raw_output_contents(0).data(), logits.size() * sizeof(float));
  } else {
    if (out.contents().fp32_contents_size() != want) return "fp32_contents size";
    std::copy(out.contents().fp32_contents().begin(), out.contents().fp32_contents().end(),
              logits.begin());
  }
  return CheckLogits(logits.data(), e.rows, e, max_diff);
}

std::string Workload::CheckEmptyPredict(const v1::PredictResponse& resp) const {
  if (resp.outputs_size() != 1 || resp.outputs(0).shape_size() != 2 ||
      resp.outputs(0).shape(0) != 0 || resp.outputs(0).shape(1) != info_.classes) {
    return "zero rows in, but not [0," + std::to_string(info_.classes) + "] out: " +
           resp.ShortDebugString().substr(0, 200);
  }
  return "";
}

std::string Workload::CheckEmptyModelInfer(const inference::ModelInferResponse& resp) const {
  if (resp.outputs_size() != 1 || resp.outputs(0).shape_size() != 2 ||
      resp.outputs(0).shape(0) != 0 || resp.outputs(0).shape(1) != info_.classes) {
    return "zero rows in, but not [0," + std::to_string(info_.classes) + "] out: " +
           resp.ShortDebugString().substr(0, 200);
  }
  return "";
}

}  // namespace qs::soak
