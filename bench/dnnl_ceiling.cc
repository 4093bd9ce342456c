// "The ceiling": what oneDNN itself reaches on a model's conv and
// inner-product layer shapes, int8 (u8 activations × s8 weights, per-channel
// output scales, u8 output) against fp32, with no engine around the
// primitives. The engine's own w8a8/fp32 ratio is read against this one.
//
//   dnnl_ceiling --model FILE.onnx [--batch N] [--threads T]
//                [--seconds-per-layer S] [--json]
//
// Each distinct layer shape is timed for S seconds per precision (after a
// warm-up); totals weight each shape by how often the model uses it.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <unordered_map>

#include "bench/layer_shapes.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace {

using qs::bench::LayerShape;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using Clock = std::chrono::steady_clock;

struct Timing {
  double ms = 0;  // mean per execution
  std::string impl;
};

// A primitive with its arguments, memory filled with small constants (the
// values do not change the speed; they must only avoid denormals).
struct Bound {
  dnnl::primitive prim;
  std::unordered_map<int, dnnl::memory> args;
};

dnnl::memory Filled(const dnnl::memory::desc& md, const dnnl::engine& eng, int byte) {
  dnnl::memory m(md, eng);
  std::memset(m.get_data_handle(), byte, md.get_size());
  return m;
}

template <typename PD>
Bound Bind(dnnl::primitive prim, const PD& pd, const dnnl::engine& eng, bool int8) {
  Bound b;
  b.prim = std::move(prim);
  // 0x3c: 0.0115f as f32 bytes, 60 as u8/s8.
  b.args[DNNL_ARG_SRC] = Filled(pd.src_desc(), eng, int8 ? 3 : 0x3c);
  b.args[DNNL_ARG_WEIGHTS] = Filled(pd.weights_desc(), eng, int8 ? 3 : 0x3c);
  b.args[DNNL_ARG_BIAS] = Filled(pd.bias_desc(), eng, 0);
  b.args[DNNL_ARG_DST] = Filled(pd.dst_desc(), eng, 0);
  return b;
}

dnnl::primitive_attr Attr(bool int8, int64_t channels) {
  dnnl::primitive_attr attr;
  if (int8) attr.set_output_scales(1 << 1, std::vector<float>(channels, 0.01f));
  return attr;
}

Bound Make(const LayerShape& l, bool int8, const dnnl::engine& eng, std::string* impl) {
  const dt act = int8 ? dt::u8 : dt::f32;
  const dt wei = int8 ? dt::s8 : dt::f32;
  const dnnl::memory::desc bias({l.oc}, dt::f32, tag::a);
  if (l.op == "ip") {
    dnnl::inner_product_forward::desc d(
        dnnl::prop_kind::forward_inference, dnnl::memory::desc({l.n, l.ic}, act, tag::any),
        dnnl::memory::desc({l.oc, l.ic}, wei, tag::any), bias,
        dnnl::memory::desc({l.n, l.oc}, act, tag::any));
    dnnl::inner_product_forward::primitive_desc pd(d, Attr(int8, l.oc), eng);
    *impl = pd.impl_info_str();
    return Bind(dnnl::inner_product_forward(pd), pd, eng, int8);
  }
  const dnnl::memory::dims weights =
      l.groups == 1 ? dnnl::memory::dims{l.oc, l.ic, l.kh, l.kw}
                    : dnnl::memory::dims{l.groups, l.oc / l.groups, l.ic / l.groups, l.kh, l.kw};
  dnnl::convolution_forward::desc d(
      dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
      dnnl::memory::desc({l.n, l.ic, l.ih, l.iw}, act, tag::any),
      dnnl::memory::desc(weights, wei, tag::any), bias,
      dnnl::memory::desc({l.n, l.oc, l.oh, l.ow}, act, tag::any), {l.stride_h, l.stride_w},
      {l.dil_h, l.dil_w}, {l.pad_t, l.pad_l}, {l.pad_b, l.pad_r});
  dnnl::convolution_forward::primitive_desc pd(d, Attr(int8, l.oc), eng);
  *impl = pd.impl_info_str();
  return Bind(dnnl::convolution_forward(pd), pd, eng, int8);
}

Timing Time(const LayerShape& l, bool int8, double seconds, const dnnl::engine& eng,
            dnnl::stream& stream) {
  Timing t;
  Bound b = Make(l, int8, eng, &t.impl);
  for (int i = 0; i < 3; ++i) b.prim.execute(stream, b.args);
  stream.wait();
  int runs = 0;
  const auto start = Clock::now();
  const auto until = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < until || runs < 5) {
    b.prim.execute(stream, b.args);
    stream.wait();
    ++runs;
  }
  t.ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count() / runs;
  return t;
}

double Gops(const LayerShape& l, double ms) { return 2.0 * l.macs() / (ms * 1e6); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dnnl_ceiling: oneDNN int8 (u8 x s8) vs fp32 primitives on a model's conv and "
               "inner-product layer shapes"};
  std::string model;
  int64_t batch = 1;
  int threads = 1;
  double seconds = 0.3;
  bool json = false;
  app.add_option("--model", model, "ONNX model file")->required()->check(CLI::ExistingFile);
  app.add_option("--batch", batch, "Batch size")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--threads", threads, "OpenMP threads")->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--seconds-per-layer", seconds, "Measured seconds per shape and precision")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--json", json, "Print one JSON object");
  CLI11_PARSE(app, argc, argv);

  auto layers = qs::bench::ModelLayerShapes(model, batch);
  if (!layers.ok()) {
    std::fprintf(stderr, "dnnl_ceiling: %s\n", layers.status().ToString().c_str());
    return 1;
  }
  omp_set_num_threads(threads);
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(eng);
  nlohmann::json out;
  out["model"] = model;
  out["batch"] = batch;
  out["threads"] = threads;
  out["layers"] = nlohmann::json::array();
  double total_f32 = 0, total_int8 = 0, total_ops = 0;
  if (!json) {
    std::printf("%-40s %5s %10s %10s %7s  %s\n", "layer shape", "count", "fp32 GOP/s",
                "int8 GOP/s", "ratio", "implementations (fp32 / int8)");
  }
  for (const LayerShape& l : *layers) {
    Timing f32, i8;
    try {
      f32 = Time(l, false, seconds, eng, stream);
      i8 = Time(l, true, seconds, eng, stream);
    } catch (const dnnl::error& e) {
      std::fprintf(stderr, "dnnl_ceiling: %s (%s): oneDNN: %s\n", l.name.c_str(),
                   l.Describe().c_str(), e.what());
      return 1;
    }
    total_f32 += l.count * f32.ms;
    total_int8 += l.count * i8.ms;
    total_ops += l.count * 2.0 * l.macs();
    nlohmann::json j;
    j["name"] = l.name;
    j["shape"] = l.Describe();
    j["count"] = l.count;
    j["gop"] = 2.0 * l.macs() / 1e9;
    j["fp32_ms"] = f32.ms;
    j["int8_ms"] = i8.ms;
    j["fp32_gops"] = Gops(l, f32.ms);
    j["int8_gops"] = Gops(l, i8.ms);
    j["ratio"] = f32.ms / i8.ms;
    j["fp32_impl"] = f32.impl;
    j["int8_impl"] = i8.impl;
    out["layers"].push_back(j);
    if (!json) {
      std::printf("%-40s %5d %10.1f %10.1f %6.2fx  %s / %s\n", l.Describe().c_str(), l.count,
                  Gops(l, f32.ms), Gops(l, i8.ms), f32.ms / i8.ms, f32.impl.c_str(),
                  i8.impl.c_str());
    }
  }
  out["fp32_ms"] = total_f32;
  out["int8_ms"] = total_int8;
  out["fp32_gops"] = total_f32 > 0 ? total_ops / (total_f32 * 1e6) : 0.0;
  out["int8_gops"] = total_int8 > 0 ? total_ops / (total_int8 * 1e6) : 0.0;
  out["ratio"] = total_int8 > 0 ? total_f32 / total_int8 : 0.0;
  if (json) {
    std::cout << out.dump() << std::endl;
  } else {
    std::printf("model total (each shape x count): fp32 %.3f ms, int8 %.3f ms, %.1f / %.1f "
                "GOP/s, int8/fp32 %.2fx\n",
                total_f32, total_int8, out["fp32_gops"].get<double>(),
                out["int8_gops"].get<double>(), out["ratio"].get<double>());
  }
  return 0;
}
