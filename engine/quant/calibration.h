// Activation calibration: choosing each activation tensor's clipping range
// from the streamed ActivationHistogram of sample data.
//
// Quantizer conventions (what the MSE / KL searches model):
//  * signed: symmetric, levels -L..L with L = 2^(bits-1) - 1, step T/L
//    (the most negative code is unused so that lo == -hi);
//  * unsigned: levels 0..2^bits - 1, step T/(2^bits - 1), range [0, T].
// Signed methods work on the |x| histogram (the negative half folded onto
// the positive one), unsigned ones on x with negatives counted at 0 (the
// quantizer clamps them there).
#pragma once

#include "absl/status/statusor.h"
#include "engine/quant/histogram.h"

namespace qs::quant {

enum class CalibrationMethod { kMinMax, kPercentile, kMse, kKl };

// "minmax", "percentile", "mse", "kl".
const char* CalibrationMethodName(CalibrationMethod m);

struct CalibrationSpec {
  CalibrationMethod method = CalibrationMethod::kMinMax;
  double percentile = 99.99;  // for kPercentile, in (50, 100]
  int bits = 8;               // activation bits, 2..8
  bool is_unsigned = false;   // tensor known non-negative (after ReLU): [0, T]
};

// Clip range: lo == 0 when unsigned, lo == -hi when signed; hi > 0 always
// (all-zero data gets hi = 1: any scale represents 0 exactly, and a zero
// scale would divide by zero downstream).
struct ActivationRange {
  float lo;
  float hi;
};

// Chooses the clipping range for a quantizer with 2^bits levels:
//  minmax:     [min, max] made symmetric (+-max|x|) or [0, max].
//  percentile: the given percentile of |x| (signed) or x (unsigned),
//              interpolated within its histogram bin.
//  mse:        the threshold T minimising the expected quantization MSE
//              (clipping + rounding, values uniform within each bin),
//              searched over up to 1024 bin edges between w and max.
//  kl:         TensorRT entropy calibration: T minimising KL(P||Q), P the
//              histogram clipped at T with the outliers folded into its last
//              bin, Q that histogram merged into 2^bits (unsigned) or
//              2^(bits-1) (signed, per side) levels and spread back.
// Errors: InvalidArgument for a bad percentile or bits; FailedPrecondition
// when the histogram holds no finite values.
absl::StatusOr<ActivationRange> ChooseRange(const ActivationHistogram& h,
                                            const CalibrationSpec& spec);

}  // namespace qs::quant
