#include "engine/ops/spatial.h"

#include "absl/strings/str_cat.h"

namespace qs {

absl::StatusOr<SpatialParams> ResolveSpatial(const Node& node,
                                             const std::vector<int64_t>& in,
                                             const std::vector<int64_t>& kernel,
                                             bool ceil_mode) {
  const size_t n = in.size();
  SpatialParams p;
  p.kernel = kernel;
  p.strides = node.GetInts("strides", std::vector<int64_t>(n, 1));
  p.dilations = node.GetInts("dilations", std::vector<int64_t>(n, 1));
  std::vector<int64_t> pads = node.GetInts("pads", std::vector<int64_t>(2 * n, 0));
  if (p.kernel.size() != n || p.strides.size() != n || p.dilations.size() != n ||
      pads.size() != 2 * n) {
    return absl::InvalidArgumentError(absl::StrCat(
        node.Describe(), ": kernel_shape/strides/dilations/pads do not match ",
        n, " spatial dimensions"));
  }
  const std::string auto_pad = node.GetString("auto_pad", "NOTSET");
  p.pad_begin.assign(pads.begin(), pads.begin() + n);
  p.pad_end.assign(pads.begin() + n, pads.end());
  p.out.resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (p.strides[i] < 1 || p.dilations[i] < 1 || p.kernel[i] < 1 ||
        p.pad_begin[i] < 0 || p.pad_end[i] < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          node.Describe(), ": strides, dilations and kernel must be >= 1 and "
                           "pads >= 0"));
    }
    const int64_t eff_kernel = (p.kernel[i] - 1) * p.dilations[i] + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      p.out[i] = (in[i] + p.strides[i] - 1) / p.strides[i];
      int64_t total =
          std::max<int64_t>(0, (p.out[i] - 1) * p.strides[i] + eff_kernel - in[i]);
      int64_t small = total / 2;
      p.pad_begin[i] = auto_pad == "SAME_UPPER" ? small : total - small;
      p.pad_end[i] = total - p.pad_begin[i];
      continue;
    }
    if (auto_pad == "VALID") {
      p.pad_begin[i] = p.pad_end[i] = 0;
    } else if (auto_pad != "NOTSET") {
      return absl::InvalidArgumentError(absl::StrCat(
          node.Describe(), ": auto_pad '", auto_pad,
          "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID"));
    }
    int64_t span = in[i] + p.pad_begin[i] + p.pad_end[i] - eff_kernel;
    if (span < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          node.Describe(), ": the kernel (", eff_kernel,
          " with dilation) is larger than the padded input (",
          in[i] + p.pad_begin[i] + p.pad_end[i], ") in spatial dim ", i));
    }
    p.out[i] = (ceil_mode ? (span + p.strides[i] - 1) / p.strides[i]
                          : span / p.strides[i]) + 1;
    // ONNX (like PyTorch) drops a last window that starts in the end padding.
    if (ceil_mode && (p.out[i] - 1) * p.strides[i] >= in[i] + p.pad_begin[i]) {
      --p.out[i];
    }
  }
  return p;
}

}  // namespace qs
