#include "engine/quant/layer_loss.h"

#include <algorithm>
#include <cmath>

#include "engine/quant/weight_quantizer_internal.h"

namespace qs::quant {
namespace {

// y[0..n) += a·x[0..n). Blocks of 8 with a fixed inner trip count: GCC's -O2
// cost model only vectorizes loops that need no scalar epilogue, and the
// RelWithDebInfo build is -O2. The products below are all such axpys over
// contiguous rows (no reductions), so they vectorize without -ffast-math.
inline void Axpy(float a, const float* __restrict x, float* __restrict y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) y[i + j] += a * x[i + j];
  }
  for (; i < n; ++i) y[i] += a * x[i];
}

// out[r][c] = in[c][r] for in [rows, cols].
void Transpose(const float* in, int64_t rows, int64_t cols, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = in[r * cols + c];
  }
}

// e[0..oc) = Σ_k x[k] · mt[k][0..oc) for mt [k, oc]: one row's product with
// the transposed matrix. Zero inputs (ReLU outputs, conv padding in im2col
// patches) are common and skipped.
void RowTimes(const float* x, const float* mt, int64_t k, int64_t oc, float* e) {
  std::fill(e, e + oc, 0.0f);
  for (int64_t i = 0; i < k; ++i) {
    if (x[i] != 0.0f) Axpy(x[i], mt + i * oc, e, oc);
  }
}

// Softmax of `z` into `p` (double: logits of a confident head differ by tens);
// returns log Σ exp z.
double Softmax(const float* z, int64_t n, double* p) {
  double m = z[0];
  for (int64_t i = 1; i < n; ++i) m = std::max(m, static_cast<double>(z[i]));
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += (p[i] = std::exp(z[i] - m));
  for (int64_t i = 0; i < n; ++i) p[i] /= sum;
  return m + std::log(sum);
}

}  // namespace

void SoftWeights::StartRounding() {
  round = true;
  base.resize(n), v.resize(n), h.resize(n), dhdv.resize(n), dqdv.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i / group;
    const double x = static_cast<double>(w[i]) / Scale(c);
    // Bounded so far-out-of-range weights stay finite; they clamp to lo/hi anyway.
    const double b = std::clamp(std::floor(x), lo[c] - 1.0, static_cast<double>(hi[c]));
    const double sig = (std::clamp(x - b, 0.0, 1.0) + 0.1) / 1.2;
    base[i] = static_cast<float>(b);
    v[i] = static_cast<float>(std::log(sig / (1.0 - sig)));
  }
}

// Per channel, with local pointers and no branches on the data: this runs
// over every weight every iteration and is a large share of the time.
void SoftWeights::Update() {
  for (int64_t c = 0; c < channels; ++c) {
    const float l = static_cast<float>(lo[c]), r = static_cast<float>(hi[c]), sc = Scale(c);
    const int64_t b = c * group, e = b + group;
    float* __restrict qq = q.data();
    if (round) {
      const float *vv = v.data(), *bb = base.data();
      float *__restrict hh = h.data(), *__restrict dh = dhdv.data(), *__restrict dq = dqdv.data();
      for (int64_t i = b; i < e; ++i) {
        const float sig = 1.0f / (1.0f + std::exp(-vv[i]));
        const float raw = 1.2f * sig - 0.1f;
        // Inclusive: weights on an exact grid point start at h = 0 and must be free to move.
        const bool free = (raw >= 0.0f) & (raw <= 1.0f);
        dh[i] = free ? 1.2f * sig * (1.0f - sig) : 0.0f;
        hh[i] = std::min(std::max(raw, 0.0f), 1.0f);
        const float soft = bb[i] + hh[i];
        qq[i] = std::min(std::max(soft, l), r);
        dq[i] = (soft >= l) & (soft <= r) ? dh[i] : 0.0f;
      }
    } else if (reround) {
      for (int64_t i = b; i < e; ++i) {
        qq[i] = static_cast<float>(
            internal::RoundClamp(static_cast<double>(w[i]) / sc, lo[c], hi[c]));
      }
    } else {
      for (int64_t i = b; i < e; ++i) qq[i] = fixed[i];
    }
  }
}

void DequantizeCodes(std::span<const float> codes, const std::vector<float>& scales,
                     int64_t group, std::vector<float>& out) {
  for (size_t c = 0; c < scales.size(); ++c) {
    for (int64_t i = c * group; i < static_cast<int64_t>(c + 1) * group; ++i) {
      out[i] = scales[c] * codes[i];
    }
  }
}

LayerLoss::LayerLoss(Loss loss, std::span<const float> w, int64_t oc, int64_t k,
                     const Tensor& inputs, std::span<const float> bias)
    : loss_(loss),
      oc_(oc),
      k_(k),
      rows_(inputs.shape()[0]),
      w_(w.begin(), w.end()),
      inputs_(inputs),
      delta_t_(oc * k),
      grad_t_(oc * k),
      e_(oc),
      g_(oc),
      z_(oc),
      p_(oc),
      q_(oc) {
  if (loss_ != Loss::kCrossEntropy) return;
  // Teacher logits once; every later call only needs the error term ΔW·x.
  std::vector<float> wt(oc * k);
  Transpose(w_.data(), oc, k, wt.data());
  teacher_.resize(rows_ * oc);
  double entropy = 0.0;
  for (int64_t r = 0; r < rows_; ++r) {
    float* t = teacher_.data() + r * oc;
    RowTimes(inputs_.data<float>() + r * k, wt.data(), k, oc, t);
    for (int64_t o = 0; o < oc && !bias.empty(); ++o) t[o] += bias[o];
    const double lse = Softmax(t, oc, p_.data());
    for (int64_t o = 0; o < oc; ++o) entropy += p_[o] * (lse - t[o]);
  }
  floor_ = entropy / static_cast<double>(rows_);
}

double LayerLoss::RowLoss(int64_t row, const float* e, float* g) {
  if (loss_ == Loss::kMse) {
    double sum = 0.0;
    for (int64_t o = 0; o < oc_; ++o) {
      sum += static_cast<double>(e[o]) * e[o];
      g[o] = 2.0f * e[o] / static_cast<float>(oc_);
    }
    return sum / static_cast<double>(oc_);
  }
  // −Σ p log q = lse(z) − Σ p·z with z = teacher + e; d/dz = q − p. The
  // teacher softmax is recomputed (oc exps) rather than stored: S×oc doubles
  // more memory for a cost far below the row's k×oc product.
  const float* t = teacher_.data() + row * oc_;
  for (int64_t o = 0; o < oc_; ++o) z_[o] = t[o] + e[o];
  Softmax(t, oc_, p_.data());
  double loss = Softmax(z_.data(), oc_, q_.data());
  for (int64_t o = 0; o < oc_; ++o) {
    loss -= p_[o] * z_[o];
    g[o] = static_cast<float>(q_[o] - p_[o]);
  }
  return loss;
}

double LayerLoss::Compute(std::span<const float> w_hat, std::span<const int64_t> rows,
                          std::span<float> grad) {
  const int64_t n = rows.empty() ? rows_ : static_cast<int64_t>(rows.size());
  for (int64_t o = 0; o < oc_; ++o) {
    for (int64_t i = 0; i < k_; ++i) {
      delta_t_[i * oc_ + o] = w_hat[o * k_ + i] - w_[o * k_ + i];
    }
  }
  const bool want_grad = !grad.empty();
  if (want_grad) std::fill(grad_t_.begin(), grad_t_.end(), 0.0f);
  const float inv_n = 1.0f / static_cast<float>(n);
  double sum = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t r = rows.empty() ? j : rows[j];
    const float* x = inputs_.data<float>() + r * k_;
    RowTimes(x, delta_t_.data(), k_, oc_, e_.data());
    sum += RowLoss(r, e_.data(), g_.data());
    if (!want_grad) continue;
    // dloss/dŴ[o][i] = g[o]·x[i], accumulated transposed so that it is an
    // axpy over oc (skipping zero inputs) like the forward product.
    for (int64_t i = 0; i < k_; ++i) {
      if (x[i] != 0.0f) Axpy(x[i] * inv_n, g_.data(), grad_t_.data() + i * oc_, oc_);
    }
  }
  if (want_grad) Transpose(grad_t_.data(), k_, oc_, grad.data());
  return sum / static_cast<double>(n);
}

}  // namespace qs::quant
