#include "engine/ml/dot_engine.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/cpu_features.h"
#include "engine/ops/dnnl_util.h"
#include "engine/status_macros.h"

namespace qs::ml {
namespace {

class FloatDot final : public DotEngine {
 public:
  FloatDot(std::vector<float> w, int64_t m, int64_t f) : w_(std::move(w)), m_(m), f_(f) {}

  absl::Status Dot(const float* x, int64_t n, double* out, RunContext&) const override {
    // One thread: these models are small, and an OpenMP team on a busy
    // machine costs more than it saves (docs/CLASSICAL_ML.md).
    for (int64_t r = 0; r < n; ++r) {
      const float* xr = x + r * f_;
      for (int64_t j = 0; j < m_; ++j) {
        const float* wj = w_.data() + j * f_;
        double s = 0;
        for (int64_t k = 0; k < f_; ++k) s += static_cast<double>(xr[k]) * wj[k];
        out[r * m_ + j] = s;
      }
    }
    return absl::OkStatus();
  }
  KernelInfo Info() const override { return {"ml_dot:f64acc", "f32", "f32", "f32", bytes()}; }
  int64_t bytes() const override { return static_cast<int64_t>(w_.size()) * 4; }

 private:
  std::vector<float> w_;
  int64_t m_, f_;
};

class Int8Dot final : public DotEngine {
 public:
  absl::Status Dot(const float* x, int64_t n, double* out, RunContext& ctx) const override {
    if (n != rows_) return absl::InternalError("int8 dot built for another batch size");
    Tensor codes(DataType::kUint8, {n, f_});
    uint8_t* u = codes.data<uint8_t>();
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t k = 0; k < f_; ++k) {
        const float v = std::nearbyint((x[r * f_ + k] - lo_[k]) * inv_scale_[k]);
        u[r * f_ + k] = static_cast<uint8_t>(std::clamp(v, 0.f, 255.f));
      }
    }
    Tensor dst(DataType::kFloat32, {n, m_});
    const auto& eng = ctx.engine();
    step_.Execute({{DNNL_ARG_SRC, Wrap(src_desc_, codes, eng)},
                   {DNNL_ARG_WEIGHTS, weights_},
                   {DNNL_ARG_BIAS, Wrap(bias_desc_, bias_, eng)},
                   {DNNL_ARG_DST, Wrap(dst_desc_, dst, eng)}},
                  ctx);
    ctx.stream().wait();
    for (int64_t i = 0; i < n * m_; ++i) out[i] = dst.data<float>()[i];
    return absl::OkStatus();
  }
  KernelInfo Info() const override { return info_; }
  int64_t bytes() const override {
    // s8 codes, a scale and a bias per row, lo and scale per feature.
    return m_ * f_ + m_ * 8 + f_ * 8;
  }

  int64_t rows_ = 0, m_ = 0, f_ = 0;
  std::vector<float> lo_, inv_scale_;
  Tensor wq_, bias_;
  dnnl::memory::desc src_desc_, bias_desc_, dst_desc_;
  dnnl::memory weights_;
  DnnlStep step_;
  KernelInfo info_;
};

}  // namespace

std::unique_ptr<DotEngine> MakeFloatDot(std::vector<float> weights, int64_t m, int64_t f) {
  return std::make_unique<FloatDot>(std::move(weights), m, f);
}

absl::StatusOr<std::unique_ptr<DotEngine>> MakeInt8Dot(const std::vector<float>& w, int64_t m,
                                                       int64_t f,
                                                       const std::vector<float>& ranges,
                                                       int64_t rows,
                                                       const dnnl::engine& engine) {
  if (static_cast<int64_t>(ranges.size()) != 2 * f) {
    return absl::InvalidArgumentError(absl::StrCat("qs_input_ranges has ", ranges.size(),
                                                   " values; expected 2 per feature (", 2 * f, ")"));
  }
  auto k = std::make_unique<Int8Dot>();
  k->rows_ = rows;
  k->m_ = m;
  k->f_ = f;
  std::vector<float> step(f);
  for (int64_t i = 0; i < f; ++i) {
    const float lo = ranges[2 * i], hi = std::max(ranges[2 * i + 1], ranges[2 * i]);
    step[i] = hi > lo ? (hi - lo) / 255.f : 1.f;
    k->lo_.push_back(lo);
    k->inv_scale_.push_back(1.f / step[i]);
  }
  // Folded weights w'_jk = w_jk · s_k, quantized per row j.
  const int qmax = std::min(127, MaxSafeWeightCode());
  k->wq_ = Tensor(DataType::kInt8, {m, f});
  k->bias_ = Tensor(DataType::kFloat32, {m});
  std::vector<float> out_scale(m);
  for (int64_t j = 0; j < m; ++j) {
    double max_abs = 0, offset = 0;
    for (int64_t i = 0; i < f; ++i) {
      max_abs = std::max(max_abs, std::fabs(static_cast<double>(w[j * f + i]) * step[i]));
      offset += static_cast<double>(w[j * f + i]) * k->lo_[i];
    }
    const double scale = max_abs > 0 ? max_abs / qmax : 1.0;
    for (int64_t i = 0; i < f; ++i) {
      k->wq_.data<int8_t>()[j * f + i] =
          static_cast<int8_t>(std::lround(static_cast<double>(w[j * f + i]) * step[i] / scale));
    }
    out_scale[j] = static_cast<float>(scale);
    // dst = oscale·(acc + bias): the bias is in accumulator units.
    k->bias_.data<float>()[j] = static_cast<float>(offset / scale);
  }
  using dnnl::memory;
  using dt = memory::data_type;
  return CatchDnnl(Node{}, [&]() -> absl::StatusOr<std::unique_ptr<DotEngine>> {
    k->src_desc_ = memory::desc({rows, f}, dt::u8, memory::format_tag::ab);
    k->dst_desc_ = memory::desc({rows, m}, dt::f32, memory::format_tag::ab);
    k->bias_desc_ = memory::desc({m}, dt::f32, memory::format_tag::a);
    const memory::desc plain_w({m, f}, dt::s8, memory::format_tag::ab);
    const memory::desc any_w({m, f}, dt::s8, memory::format_tag::any);
    dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_inference, k->src_desc_, any_w,
                                        k->bias_desc_, k->dst_desc_);
    dnnl::primitive_attr attr = MakeAttr({});
    attr.set_output_scales(2, out_scale);
    dnnl::inner_product_forward::primitive_desc pd(d, attr, engine);
    memory plain(plain_w, engine, k->wq_.raw_data());
    k->weights_ = memory(pd.weights_desc(), engine);
    dnnl::stream s(engine);
    dnnl::reorder(plain, k->weights_).execute(s, plain, k->weights_);
    s.wait();
    k->step_ = MakeStep<dnnl::inner_product_forward::primitive_desc,
                        dnnl::inner_product_forward>(pd);
    k->info_ = DescribePrimitive(pd);
    k->info_.weight_bytes = k->bytes();
    return std::unique_ptr<DotEngine>(std::move(k));
  });
}

absl::StatusOr<std::unique_ptr<DotEngine>> MakeDotForNode(const OpContext& c,
                                                          std::vector<float> weights, int64_t m,
                                                          int64_t f, int64_t rows) {
  if (c.node.GetInt("qs_weight_bits", 0) == 0) return MakeFloatDot(std::move(weights), m, f);
  auto dot = MakeInt8Dot(weights, m, f, c.node.GetFloats("qs_input_ranges"), rows, *c.engine);
  if (!dot.ok()) {
    return absl::Status(dot.status().code(),
                        absl::StrCat(c.node.Describe(), ": ", dot.status().message()));
  }
  return dot;
}

}  // namespace qs::ml
