#include "bench/layer_shapes.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "engine/compiled_model.h"
#include "engine/onnx_importer.h"
#include "engine/ops/conv_geometry.h"
#include "engine/random_inputs.h"

namespace qs::bench {

double LayerShape::macs() const {
  if (op == "ip") return static_cast<double>(n) * ic * oc;
  return static_cast<double>(n) * oc * oh * ow * (ic / groups) * kh * kw;
}

std::string LayerShape::Describe() const {
  if (op == "ip") return absl::StrCat("ip ", n, "x", ic, " -> ", oc);
  return absl::StrCat("conv ", ic, "x", ih, "x", iw, " -> ", oc, " k", kh, "x", kw, " s",
                      stride_h, groups > 1 ? absl::StrCat(" g", groups) : "");
}

namespace {

bool SameShape(const LayerShape& a, const LayerShape& b) {
  return a.op == b.op && a.n == b.n && a.ic == b.ic && a.ih == b.ih && a.iw == b.iw &&
         a.oc == b.oc && a.groups == b.groups && a.kh == b.kh && a.kw == b.kw &&
         a.stride_h == b.stride_h && a.stride_w == b.stride_w && a.dil_h == b.dil_h &&
         a.dil_w == b.dil_w && a.pad_t == b.pad_t && a.pad_l == b.pad_l && a.pad_b == b.pad_b &&
         a.pad_r == b.pad_r;
}

absl::StatusOr<LayerShape> ConvLayer(const Node& node, const Shape& x, const Shape& w) {
  auto geo = ConvGeometry(node, x, w, nullptr);
  if (!geo.ok()) return geo.status();
  LayerShape l;
  l.name = node.name;
  l.op = "conv";
  l.n = x[0], l.ic = x[1], l.ih = x[2], l.iw = x[3];
  l.oc = w[0], l.groups = node.GetInt("group", 1), l.kh = w[2], l.kw = w[3];
  l.oh = geo->out[0], l.ow = geo->out[1];
  l.stride_h = geo->strides[0], l.stride_w = geo->strides[1];
  l.dil_h = geo->dilations[0] - 1, l.dil_w = geo->dilations[1] - 1;
  l.pad_t = geo->pad_begin[0], l.pad_l = geo->pad_begin[1];
  l.pad_b = geo->pad_end[0], l.pad_r = geo->pad_end[1];
  return l;
}

}  // namespace

absl::StatusOr<std::vector<LayerShape>> ModelLayerShapes(const std::string& model_path,
                                                         int64_t batch) {
  auto graph = ImportOnnxFile(model_path);
  if (!graph.ok()) return graph.status();
  auto model = CompiledModel::Compile(std::move(*graph));
  if (!model.ok()) return model.status();
  auto inputs = RandomInputs((*model)->inputs(), batch, 1);
  if (!inputs.ok()) return inputs.status();
  std::map<std::string, Shape> shapes;
  for (size_t i = 0; i < inputs->size(); ++i) {
    shapes[(*model)->inputs()[i].name] = (*inputs)[i].shape();
  }
  const Plan::ValueObserver observer = [&](const std::string& value, const Tensor& t) {
    shapes[value] = t.shape();
  };
  auto run = (*model)->RunOrdered(*inputs, &observer);
  if (!run.ok()) return run.status();

  const Graph& g = (*model)->graph();
  std::vector<LayerShape> layers;
  for (const Node& node : g.nodes) {
    if (node.inputs.size() < 2 || !g.IsConstant(node.inputs[1])) continue;
    const Shape& w = g.initializers.at(node.inputs[1]).shape();
    const Shape& x = shapes[node.inputs[0]];
    LayerShape l;
    if (node.op_type == "Conv" && x.size() == 4 && w.size() == 4) {
      auto conv = ConvLayer(node, x, w);
      if (!conv.ok()) return conv.status();
      l = *conv;
    } else if ((node.op_type == "Gemm" || node.op_type == "MatMul") && x.size() >= 2 &&
               w.size() == 2 && node.GetInt("transA", 0) == 0 &&
               (node.op_type == "MatMul" || x.size() == 2)) {
      // A MatMul on [..., K] x [K, N] (a transformer's Linear on
      // [batch, seq, d]) is one inner product over all leading rows.
      const bool trans_b = node.op_type == "Gemm" && node.GetInt("transB", 0) != 0;
      l.name = node.name;
      l.op = "ip";
      l.n = 1;
      for (size_t d = 0; d + 1 < x.size(); ++d) l.n *= x[d];
      l.ic = x.back();
      l.oc = trans_b ? w[0] : w[1];
    } else {
      continue;
    }
    bool merged = false;
    for (LayerShape& seen : layers) {
      if (SameShape(seen, l)) {
        ++seen.count;
        merged = true;
        break;
      }
    }
    if (!merged) layers.push_back(l);
  }
  return layers;
}

}  // namespace qs::bench
