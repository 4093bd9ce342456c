#include "engine/quant/calibrator.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "engine/ops/conv_geometry.h"
#include "engine/quant/layer_selector.h"
#include "engine/status_macros.h"

namespace qs::quant {
namespace {

// How to turn one layer's input tensor into matrix-product rows.
struct RowSampler {
  std::string node;
  bool conv = false;
  SpatialParams geo;  // conv only
  Shape w_shape;      // conv: [M, C, k...]
  int64_t k = 0;      // row length
  std::vector<float> rows;
  int64_t group = 1;
};

// Appends up to `want` rows of im2col patches of x [N, C, H, W] (2-D conv).
void SamplePatches(const Tensor& x, RowSampler& s, int64_t per_sample, int64_t max_rows,
                   std::mt19937& rng) {
  const Shape& xs = x.shape();
  if (xs.size() != 4) return;  // patches for 2-D convs only
  const int64_t c = xs[1], h = xs[2], w = xs[3];
  const int64_t kh = s.w_shape[2], kw = s.w_shape[3];
  const int64_t oh = s.geo.out[0], ow = s.geo.out[1];
  const float* data = x.data<float>();
  for (int64_t n = 0; n < xs[0]; ++n) {
    for (int64_t p = 0; p < per_sample; ++p) {
      if (static_cast<int64_t>(s.rows.size()) >= max_rows * s.k) return;
      const int64_t oy = std::uniform_int_distribution<int64_t>(0, oh - 1)(rng);
      const int64_t ox = std::uniform_int_distribution<int64_t>(0, ow - 1)(rng);
      for (int64_t ci = 0; ci < c; ++ci) {
        for (int64_t ky = 0; ky < kh; ++ky) {
          for (int64_t kx = 0; kx < kw; ++kx) {
            const int64_t iy = oy * s.geo.strides[0] - s.geo.pad_begin[0] + ky * s.geo.dilations[0];
            const int64_t ix = ox * s.geo.strides[1] - s.geo.pad_begin[1] + kx * s.geo.dilations[1];
            const bool inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
            s.rows.push_back(inside ? data[((n * c + ci) * h + iy) * w + ix] : 0.f);
          }
        }
      }
    }
  }
}

void SampleDenseRows(const Tensor& x, RowSampler& s, int64_t max_rows) {
  const int64_t n = x.num_elements() / s.k;
  const float* data = x.data<float>();
  for (int64_t r = 0; r < n && static_cast<int64_t>(s.rows.size()) < max_rows * s.k; ++r) {
    s.rows.insert(s.rows.end(), data + r * s.k, data + (r + 1) * s.k);
  }
}

}  // namespace

const LayerInputStats* CalibrationStats::ForLayer(const std::string& node) const {
  auto it = by_layer_.find(node);
  return it == by_layer_.end() ? nullptr : &it->second;
}

absl::StatusOr<CalibrationStats> CalibrationStats::Collect(const CompiledModel& fp32,
                                                           const Dataset& data,
                                                           const CalibrationOptions& options) {
  const Graph& graph = fp32.graph();
  // value name -> layers reading it
  std::multimap<std::string, RowSampler> samplers;
  std::map<std::string, ActivationHistogram> histograms;
  for (const Node& node : graph.nodes) {
    if (!IsQuantizableLayer(graph, node)) continue;
    RowSampler s;
    s.node = node.name;
    const Tensor& w = *graph.FindInitializer(node.inputs[1]);
    if (node.op_type == "Conv") {
      s.conv = true;
      s.w_shape = w.shape();
      s.group = node.GetInt("group", 1);
      s.k = NumElements(w.shape()) / w.shape()[0];
    } else {
      const bool tb = node.GetInt("transB", 0) != 0;
      s.k = node.op_type == "Gemm" && tb ? w.shape()[1] : w.shape()[0];
    }
    histograms.emplace(node.inputs[0], ActivationHistogram());
    samplers.emplace(node.inputs[0], std::move(s));
  }
  std::mt19937 rng(options.seed);
  Plan::ValueObserver observer = [&](const std::string& value, const Tensor& t) {
    auto h = histograms.find(value);
    if (h == histograms.end() || t.dtype() != DataType::kFloat32) return;
    h->second.Add(t.data<float>(), t.num_elements(), !options.histograms);
    if (options.max_rows == 0) return;
    auto range = samplers.equal_range(value);
    for (auto it = range.first; it != range.second; ++it) {
      RowSampler& s = it->second;
      if (!s.conv) {
        SampleDenseRows(t, s, options.max_rows);
      } else if (s.group == 1 && t.rank() == 4) {
        if (s.geo.out.empty()) {
          auto geo = ConvGeometry(*std::find_if(graph.nodes.begin(), graph.nodes.end(),
                                                [&](const Node& n) { return n.name == s.node; }),
                                  t.shape(), s.w_shape, nullptr);
          if (!geo.ok()) continue;
          s.geo = *geo;
        }
        SamplePatches(t, s, options.patches_per_sample, options.max_rows, rng);
      }
    }
  };
  CalibrationStats stats;
  for (int64_t begin = 0; begin < data.size(); begin += options.batch_size) {
    const int64_t count = std::min(options.batch_size, data.size() - begin);
    absl::StatusOr<std::vector<Tensor>> out;
    if (data.named.empty()) {
      out = fp32.RunOrdered({data.Batch(begin, count)}, &observer);
    } else {
      ASSIGN_OR_RETURN(std::vector<Tensor> ordered,
                       fp32.OrderInputs(data.NamedBatch(begin, count)));
      out = fp32.RunOrdered(std::move(ordered), &observer);
    }
    if (!out.ok()) {
      return absl::Status(out.status().code(),
                          absl::StrCat("calibration run failed: ", out.status().message()));
    }
    stats.samples_ += count;
  }
  for (auto& [value, sampler] : samplers) {
    LayerInputStats& layer = stats.by_layer_[sampler.node];
    layer.histogram = histograms.at(value);
    const int64_t n = static_cast<int64_t>(sampler.rows.size()) / std::max<int64_t>(sampler.k, 1);
    if (n > 0) {
      layer.rows = Tensor(DataType::kFloat32, {n, sampler.k});
      std::copy(sampler.rows.begin(), sampler.rows.begin() + n * sampler.k,
                layer.rows.data<float>());
    }
  }
  return stats;
}

}  // namespace qs::quant
