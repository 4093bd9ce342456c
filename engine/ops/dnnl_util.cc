#include "engine/ops/dnnl_util.h"

#include <cstring>

namespace qs {

dnnl::memory::data_type ToDnnl(DataType dtype) {
  using dt = dnnl::memory::data_type;
  switch (dtype) {
    case DataType::kFloat32: return dt::f32;
    case DataType::kUint8: return dt::u8;
    case DataType::kInt8: return dt::s8;
    case DataType::kInt32: return dt::s32;
    default: return dt::undef;
  }
}

std::string DnnlTypeName(dnnl::memory::data_type t) {
  using dt = dnnl::memory::data_type;
  switch (t) {
    case dt::f32: return "f32";
    case dt::u8: return "u8";
    case dt::s8: return "s8";
    case dt::s32: return "s32";
    case dt::bf16: return "bf16";
    case dt::f16: return "f16";
    default: return "undef";
  }
}

dnnl::memory::dims RowMajorStrides(const Shape& shape) {
  dnnl::memory::dims strides(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) {
    strides[i] = strides[i + 1] * std::max<int64_t>(shape[i + 1], 1);
  }
  return strides;
}

dnnl::memory::desc PlainDesc(const Shape& shape, DataType dtype) {
  Shape dims = shape.empty() ? Shape{1} : shape;
  return dnnl::memory::desc(dims, ToDnnl(dtype), RowMajorStrides(dims));
}

dnnl::post_ops MakeActivationPostOps(const std::vector<FusedActivation>& fused,
                                     float output_unit) {
  dnnl::post_ops ops;
  for (const auto& act : fused) {
    switch (act.kind) {
      case FusedActivation::Kind::kRelu:
        ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
        break;
      case FusedActivation::Kind::kLeakyRelu:
        ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, act.alpha, 0.f);
        break;
      case FusedActivation::Kind::kClip:
        ops.append_eltwise(1.f, dnnl::algorithm::eltwise_clip, act.alpha / output_unit,
                           act.beta / output_unit);
        break;
      case FusedActivation::Kind::kGeluErf:
        // GELU is not scale-invariant: in output units u, y/u = gelu(u·x')/u.
        if (output_unit != 1.f) {
          ops.append_eltwise(1.f, dnnl::algorithm::eltwise_linear, output_unit, 0.f);
        }
        ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
        if (output_unit != 1.f) {
          ops.append_eltwise(1.f, dnnl::algorithm::eltwise_linear, 1.f / output_unit, 0.f);
        }
        break;
    }
  }
  return ops;
}

bool TakeTrailingGelu(std::vector<FusedActivation>& fused) {
  if (fused.empty() || fused.back().kind != FusedActivation::Kind::kGeluErf) return false;
  fused.pop_back();
  return true;
}

dnnl::primitive_attr MakeAttr(const std::vector<FusedActivation>& fused) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (!fused.empty()) attr.set_post_ops(MakeActivationPostOps(fused));
  return attr;
}

void DnnlStep::Execute(std::unordered_map<int, dnnl::memory> args,
                       RunContext& ctx) const {
  size_t bytes = scratchpad.get_size();
  if (bytes > 0) {
    args.emplace(DNNL_ARG_SCRATCHPAD,
                 dnnl::memory(scratchpad, ctx.engine(), ctx.Scratchpad(bytes)));
  }
  primitive.execute(ctx.stream(), args);
}

dnnl::memory Wrap(const dnnl::memory::desc& desc, const Tensor& t,
                  const dnnl::engine& engine) {
  return dnnl::memory(desc, engine, const_cast<void*>(t.raw_data()));
}

dnnl::memory::desc GivenLayout(const OpContext& c, size_t i) {
  dnnl::memory::desc given = c.in_layout(i);
  return given != dnnl::memory::desc() ? given : PlainDesc(c.in_shapes[i], c.in_dtypes[i]);
}

LayoutIn::LayoutIn(const dnnl::memory::desc& given, const dnnl::memory::desc& want,
                   const dnnl::engine& engine)
    : given_(given), want_(want) {
  if (given_ != want_) reorder_.emplace(dnnl::reorder::primitive_desc(engine, given_, engine, want_));
}

dnnl::memory LayoutIn::Get(const Tensor& t, RunContext& ctx, ScratchSlot slot) const {
  dnnl::memory src(given_, ctx.engine(), const_cast<void*>(t.raw_data()));
  if (!reorder_) return src;
  dnnl::memory dst(want_, ctx.engine(), ctx.Scratch(slot, want_.get_size()));
  reorder_->execute(ctx.stream(), src, dst);
  return dst;
}

Tensor LayoutIn::GetTensor(const Tensor& t, RunContext& ctx) const {
  if (!reorder_) return t;
  Tensor out = Tensor::Uninitialized(t.dtype(), t.shape(), want_.get_size());
  dnnl::memory src(given_, ctx.engine(), const_cast<void*>(t.raw_data()));
  dnnl::memory dst(want_, ctx.engine(), out.raw_data());
  reorder_->execute(ctx.stream(), src, dst);
  ctx.stream().wait();
  return out;
}

LayoutOut::LayoutOut(const dnnl::memory::desc& produced, DataType dtype, const Shape& shape,
                     bool opaque_ok, const dnnl::engine& engine)
    : produced_(produced), plain_(PlainDesc(shape, dtype)), dtype_(dtype), shape_(shape) {
  opaque_ = opaque_ok && produced_ != plain_;
  if (!opaque_ && produced_ != plain_) {
    reorder_.emplace(dnnl::reorder::primitive_desc(engine, produced_, engine, plain_));
  }
}

dnnl::memory LayoutOut::Begin(Tensor& out, RunContext& ctx) const {
  if (opaque_) {
    out = Tensor::Uninitialized(dtype_, shape_, produced_.get_size());
    return dnnl::memory(produced_, ctx.engine(), out.raw_data());
  }
  out = Tensor::Uninitialized(dtype_, shape_);
  if (!reorder_) return dnnl::memory(plain_, ctx.engine(), out.raw_data());
  return dnnl::memory(produced_, ctx.engine(), ctx.Scratch(ScratchSlot::kDst, produced_.get_size()));
}

void LayoutOut::Finish(const dnnl::memory& written, Tensor& out, RunContext& ctx) const {
  if (!reorder_) return;
  dnnl::memory src = written;  // execute() takes non-const handles
  dnnl::memory dst(plain_, ctx.engine(), out.raw_data());
  reorder_->execute(ctx.stream(), src, dst);
}

dnnl::memory WeightCache::Get(const std::string& key, const Tensor& plain,
                              const dnnl::memory::desc& plain_desc,
                              const dnnl::memory::desc& want) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& e : entries_) {
    if (e.key == key && e.desc == want) return e.memory;
  }
  Entry entry{key, want, {}, {}};
  dnnl::memory src(plain_desc, engine_, const_cast<void*>(plain.raw_data()));
  if (plain_desc == want) {
    entry.keep_alive = plain;
    entry.memory = src;
  } else {
    entry.memory = dnnl::memory(want, engine_);
    dnnl::stream s(engine_);
    dnnl::reorder(src, entry.memory).execute(s, src, entry.memory);
    s.wait();
  }
  entries_.push_back(entry);
  return entry.memory;
}

std::shared_ptr<const void> WeightCache::Share(const std::string& key,
                                               std::shared_ptr<const void> value) {
  std::lock_guard<std::mutex> lock(mu_);
  return shared_.try_emplace(key, std::move(value)).first->second;
}

std::shared_ptr<const void> WeightCache::FindShared(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = shared_.find(key);
  return it == shared_.end() ? nullptr : it->second;
}

int64_t WeightCache::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t total = 0;
  for (const auto& e : entries_) total += e.desc.get_size();
  return total;
}

}  // namespace qs
