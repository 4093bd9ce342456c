// QDense: a quantized dense layer (from Gemm or MatMul with constant
// weights) on oneDNN's int8 inner product: x [..., K] codes → y [..., N].
#include "absl/strings/str_cat.h"
#include "engine/ops/dnnl_util.h"
#include "engine/ops/gelu.h"
#include "engine/ops/op_registry.h"
#include "engine/ops/quantized_layer.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

using dnnl::memory;

absl::StatusOr<std::vector<TypedShape>> InferQDense(const OpContext& c) {
  RETURN_IF_ERROR(CheckQuantizedIo(c));
  const Shape w = c.node.GetInts("w_shape");  // [N, K]
  const Shape& x = c.in_shapes[0];
  if (w.size() != 2 || x.empty() || x.back() != w[1]) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": input ", ShapeToString(x), " does not end in K of weights ",
        ShapeToString(w)));
  }
  Shape out(x.begin(), x.end() - 1);
  out.push_back(w[0]);
  return std::vector<TypedShape>{{static_cast<DataType>(c.node.GetInt("out_dtype", 1)), out}};
}

class QDenseKernel : public Kernel {
 public:
  KernelInfo Info() const override { return info_; }
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext& ctx) const override {
    out[0] = Tensor::Uninitialized(out_dtype_, out_shape_);
    const auto& eng = ctx.engine();
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, Wrap(src_desc_, in[0], eng)},
                                            {DNNL_ARG_WEIGHTS, weights_},
                                            {DNNL_ARG_DST, Wrap(dst_desc_, out[0], eng)}};
    if (bias_) args[DNNL_ARG_BIAS] = *bias_;
    step_.Execute(args, ctx);
    ctx.stream().wait();
    if (gelu_) GeluErfInPlace(out[0].data<float>(), out[0].num_elements());
    return absl::OkStatus();
  }

  static absl::StatusOr<std::unique_ptr<Kernel>> Build(const OpContext& c) {
    ASSIGN_OR_RETURN(QuantizedLayerParams q, ReadQuantizedLayer(c));
    auto k = std::make_unique<QDenseKernel>();
    const int64_t n = q.w_shape[0], kdim = q.w_shape[1];
    const int64_t m = NumElements(c.in_shapes[0]) / kdim;
    k->out_shape_ = c.out_shapes[0];
    k->out_dtype_ = q.out_dtype;
    k->src_desc_ = PlainDesc({m, kdim}, q.x_dtype);
    k->dst_desc_ = PlainDesc({m, n}, q.out_dtype);
    memory::desc w_any({n, kdim}, memory::data_type::s8, memory::format_tag::any);
    // A float32 output takes its GELU after the primitive (ops/gelu.h).
    Node epilogue_node = c.node;
    k->gelu_ = q.out_dtype == DataType::kFloat32 &&
               TakeTrailingGelu(epilogue_node.fused_activations);
    Int8Epilogue e = MakeInt8Epilogue(epilogue_node, q, /*scale_mask=*/1 << 1);
    memory::desc b_desc = PlainDesc({n});
    std::optional<dnnl::inner_product_forward::desc> desc;
    if (!e.bias_acc.empty()) {
      desc.emplace(dnnl::prop_kind::forward_inference, k->src_desc_, w_any, b_desc, k->dst_desc_);
    } else {
      desc.emplace(dnnl::prop_kind::forward_inference, k->src_desc_, w_any, k->dst_desc_);
    }
    dnnl::inner_product_forward::primitive_desc pd(*desc, e.attr, *c.engine);
    k->info_ = DescribePrimitive(pd);
    k->step_ = MakeStep<dnnl::inner_product_forward::primitive_desc,
                        dnnl::inner_product_forward>(pd);
    Tensor codes = Tensor::FromVector<int8_t>(q.w_shape, q.weights.codes);
    k->weights_ = c.weights->Get(c.node.name + "#qweights", codes,
                                 PlainDesc(q.w_shape, DataType::kInt8), pd.weights_desc());
    if (!e.bias_acc.empty()) {
      Tensor bias = Tensor::FromVector<float>({n}, e.bias_acc);
      k->bias_ = c.weights->Get(c.node.name + "#qbias", bias, b_desc, b_desc);
    }
    return std::unique_ptr<Kernel>(std::move(k));
  }

 private:
  bool gelu_ = false;
  Shape out_shape_;
  DataType out_dtype_ = DataType::kFloat32;
  memory::desc src_desc_, dst_desc_;
  memory weights_;
  std::optional<memory> bias_;
  KernelInfo info_;
  DnnlStep step_;
};

}  // namespace

extern const OpDef kQDenseOp = {"QDense", 1, {1, 2, 3, 4}, InferQDense, QDenseKernel::Build};

}  // namespace qs
