#include "engine/plan.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

// Values known when a plan is built: initializers, plus outputs of nodes
// evaluated at build time (shape computations for this plan's shapes).
struct KnownValues {
  const Graph& graph;
  std::unordered_map<std::string, Tensor> folded;

  const Tensor* Find(const std::string& name) const {
    auto it = folded.find(name);
    return it != folded.end() ? &it->second : graph.FindInitializer(name);
  }
};

// Outputs of build-time evaluated nodes larger than this stay run-time steps.
constexpr int64_t kMaxFoldedBytes = int64_t{1} << 20;

// Whether `node` is evaluated while the plan is built: a shape-only op, or
// a node whose inputs are all known and at least one of them was itself
// computed at build time (all-initializer nodes are the FoldConstants
// pass's business), with small outputs.
bool FoldAtBuild(const OpDef& def, const Node& node, const KnownValues& known,
                 const std::vector<TypedShape>& out_types) {
  bool any_folded = def.shape_only;
  for (const auto& in : node.inputs) {
    if (in.empty()) continue;
    if (known.Find(in) == nullptr && !def.shape_only) return false;
    any_folded |= known.folded.count(in) > 0;
  }
  if (!any_folded) return false;
  for (const auto& t : out_types) {
    if (NumElements(t.shape) * static_cast<int64_t>(DataTypeSize(t.dtype)) > kMaxFoldedBytes) {
      return false;
    }
  }
  return true;
}

// Infers shapes for `node` and builds its kernel.
absl::StatusOr<std::unique_ptr<Kernel>> BuildNode(
    const Node& node, const KnownValues& known,
    const std::unordered_map<std::string, TypedShape>& types,
    const std::unordered_map<std::string, dnnl::memory::desc>& layouts, bool out_layout_free,
    const dnnl::engine& engine, WeightCache& weights, std::vector<TypedShape>& out_types) {
  const Graph& graph = known.graph;
  const OpDef* def = FindOp(node.op_type);
  if (def == nullptr) {
    return absl::UnimplementedError(absl::StrCat(node.Describe(), ": unsupported op"));
  }
  OpContext ctx{node};
  ctx.opset = NodeOpset(graph, node.domain);
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    const std::string& in = node.inputs[i];
    if (in.empty()) {
      ctx.in_shapes.emplace_back();
      ctx.in_dtypes.push_back(DataType::kUndefined);
      ctx.constants.push_back(nullptr);
      continue;
    }
    const TypedShape& t = types.at(in);
    ctx.in_shapes.push_back(t.shape);
    ctx.in_dtypes.push_back(t.dtype);
    ctx.constants.push_back(known.Find(in));
  }
  ctx.in_layouts.resize(node.inputs.size());
  for (int i : def->layout_free_inputs) {
    if (!node.HasInput(i)) continue;
    auto it = layouts.find(node.inputs[i]);
    if (it != layouts.end()) ctx.in_layouts[i] = it->second;
  }
  ctx.out_layout_free = out_layout_free;
  if (ctx.in_shapes.empty() || node.inputs[0].empty()) {
    return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": has no input"));
  }
  for (int i : def->constant_inputs) {
    if (node.HasInput(i) && ctx.constants[i] == nullptr) {
      return absl::UnimplementedError(absl::StrCat(
          node.Describe(), ": input ", i, " ('", node.inputs[i],
          "') must be a constant (an initializer or Constant node)"));
    }
  }
  ASSIGN_OR_RETURN(out_types, def->infer(ctx));
  for (const auto& t : out_types) {
    ctx.out_shapes.push_back(t.shape);
    ctx.out_dtypes.push_back(t.dtype);
  }
  ctx.engine = &engine;
  ctx.weights = &weights;
  try {
    return def->build(ctx);
  } catch (const dnnl::error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("oneDNN rejected ", node.Describe(), ": ", e.what()));
  }
}

// Runs a kernel, turning oneDNN and allocation failures into a status
// naming the node.
absl::Status RunGuarded(const Kernel& kernel, const Node& node, std::span<const Tensor> in,
                        std::span<Tensor> out, RunContext& ctx) {
  absl::Status st;
  try {
    st = kernel.Run(in, out, ctx);
  } catch (const dnnl::error& e) {
    st = absl::InternalError(absl::StrCat("oneDNN failed: ", e.what()));
  } catch (const std::bad_alloc&) {
    st = absl::ResourceExhaustedError("out of memory");
  }
  if (st.ok()) return st;
  return absl::Status(st.code(), absl::StrCat(node.Describe(), ": ", st.message()));
}

bool IsLayoutFreeInput(const Node& consumer, size_t input) {
  const OpDef* def = FindOp(consumer.op_type);
  if (def == nullptr) return false;
  const auto& free = def->layout_free_inputs;
  return std::find(free.begin(), free.end(), static_cast<int>(input)) != free.end();
}

// Values that may stay in an opaque oneDNN layout: output 0 of a
// layout-aware node whose every reader takes it as a layout-free input and
// that is not a graph output (callers and observers see plain tensors).
std::unordered_set<std::string> LayoutFreeValues(const Graph& graph) {
  std::unordered_map<std::string, bool> readers_ok;
  for (const Node& node : graph.nodes) {
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      if (node.inputs[i].empty()) continue;
      auto [it, fresh] = readers_ok.try_emplace(node.inputs[i], true);
      it->second = it->second && IsLayoutFreeInput(node, i);
    }
  }
  for (const auto& out : graph.outputs) readers_ok[out.name] = false;
  std::unordered_set<std::string> free;
  for (const Node& node : graph.nodes) {
    const OpDef* def = FindOp(node.op_type);
    if (def == nullptr || def->layout_free_inputs.empty() || node.outputs.empty()) continue;
    auto it = readers_ok.find(node.outputs[0]);
    if (it != readers_ok.end() && it->second) free.insert(node.outputs[0]);
  }
  return free;
}

absl::Status CheckSize(const std::string& value, const Node& node, const TypedShape& t,
                       const PlanLimits& limits) {
  long double bytes = DataTypeSize(t.dtype);
  for (int64_t d : t.shape) bytes *= static_cast<long double>(d);
  if (bytes > static_cast<long double>(limits.max_tensor_bytes)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        node.Describe(), ": output '", value, "' of shape ", ShapeToString(t.shape),
        " would need ", static_cast<double>(bytes), " bytes; the limit is ",
        limits.max_tensor_bytes));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Plan>> Plan::Build(const Graph& graph,
                                                  const std::vector<Shape>& input_shapes,
                                                  const PlanLimits& limits,
                                                  const dnnl::engine& engine,
                                                  WeightCache& weights) {
  auto plan = std::unique_ptr<Plan>(new Plan());
  std::unordered_map<std::string, int> slot;
  std::unordered_map<std::string, TypedShape> types;
  auto add_slot = [&](const std::string& name) {
    slot[name] = plan->num_slots_;
    return plan->num_slots_++;
  };
  for (size_t i = 0; i < graph.inputs.size(); ++i) {
    plan->input_slots_.push_back(add_slot(graph.inputs[i].name));
    plan->input_names_.push_back(graph.inputs[i].name);
    types[graph.inputs[i].name] = {graph.inputs[i].dtype, input_shapes[i]};
    // Shape inference multiplies dims in int64: bound every input first (a
    // model may declare fixed input dims of any size). A 0 dim does not
    // excuse the others: [0, 2^40, 2^40] would still overflow a product.
    long double bytes = DataTypeSize(graph.inputs[i].dtype);
    for (int64_t d : input_shapes[i]) bytes *= static_cast<long double>(std::max<int64_t>(d, 1));
    if (bytes > static_cast<long double>(limits.max_tensor_bytes)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "input '", graph.inputs[i].name, "' of shape ", ShapeToString(input_shapes[i]),
          " would need ", static_cast<double>(bytes), " bytes; the limit is ",
          limits.max_tensor_bytes));
    }
  }
  for (const auto& [name, tensor] : graph.initializers) {
    plan->constants_.emplace_back(add_slot(name), tensor);
    plan->constant_buffers_.insert(tensor.raw_data());
    types[name] = {tensor.dtype(), tensor.shape()};
  }
  long double total = 0;
  KnownValues known{graph, {}};
  std::optional<RunContext> fold_ctx;
  const std::unordered_set<std::string> layout_free = LayoutFreeValues(graph);
  std::unordered_map<std::string, dnnl::memory::desc> layouts;  // opaque values only
  for (const Node& node : graph.nodes) {
    Step step;
    step.node = &node;
    std::vector<TypedShape> out_types;
    // A node folded at build time hands out constants: those stay plain.
    bool all_known = true;
    for (const auto& in : node.inputs) all_known &= in.empty() || known.Find(in) != nullptr;
    const bool out_free = !all_known && !node.outputs.empty() &&
                          layout_free.count(node.outputs[0]) > 0;
    ASSIGN_OR_RETURN(step.kernel, BuildNode(node, known, types, layouts, out_free, engine,
                                            weights, out_types));
    if (FoldAtBuild(*FindOp(node.op_type), node, known, out_types)) {
      if (!fold_ctx) fold_ctx.emplace(engine);
      std::vector<Tensor> in, out(node.outputs.size());
      for (const auto& name : node.inputs) {
        const Tensor* t = name.empty() ? nullptr : known.Find(name);
        in.push_back(t != nullptr ? *t : Tensor());  // shape-only ops ignore their input
      }
      RETURN_IF_ERROR(RunGuarded(*step.kernel, node, in, out, *fold_ctx));
      for (size_t i = 0; i < node.outputs.size() && i < out_types.size(); ++i) {
        const std::string& name = node.outputs[i];
        if (name.empty()) continue;
        known.folded[name] = out[i];
        plan->constants_.emplace_back(add_slot(name), out[i]);
        plan->constant_buffers_.insert(out[i].raw_data());
        types[name] = out_types[i];
      }
      continue;
    }
    for (const auto& in : node.inputs) step.inputs.push_back(in.empty() ? -1 : slot.at(in));
    if (out_types.size() < node.outputs.size()) {
      for (size_t i = out_types.size(); i < node.outputs.size(); ++i) {
        if (!node.outputs[i].empty()) {
          return absl::UnimplementedError(absl::StrCat(
              node.Describe(), ": output ", i, " ('", node.outputs[i],
              "') is not supported"));
        }
      }
    }
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (node.outputs[i].empty() || i >= out_types.size()) {
        step.outputs.push_back(-1);
        continue;
      }
      RETURN_IF_ERROR(CheckSize(node.outputs[i], node, out_types[i], limits));
      total += DataTypeSize(out_types[i].dtype) *
               static_cast<long double>(std::max<int64_t>(NumElements(out_types[i].shape), 0));
      step.outputs.push_back(add_slot(node.outputs[i]));
      types[node.outputs[i]] = out_types[i];
    }
    if (out_free && step.outputs[0] >= 0) {
      dnnl::memory::desc layout = step.kernel->OutputLayout();
      if (layout != dnnl::memory::desc()) {
        layouts[node.outputs[0]] = layout;
        const dnnl::memory::desc plain = PlainDesc(out_types[0].shape, out_types[0].dtype);
        plan->opaque_slots_.emplace(
            step.outputs[0],
            OpaqueValue{layout, plain,
                        dnnl::reorder(dnnl::reorder::primitive_desc(engine, layout, engine, plain))});
      }
    }
    plan->steps_.push_back(std::move(step));
  }
  if (total > static_cast<long double>(limits.max_total_bytes)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "one run with input shapes would need ", static_cast<double>(total),
        " bytes of activations; the limit is ", limits.max_total_bytes));
  }
  plan->activation_bytes_ = static_cast<int64_t>(total);
  for (const auto& out : graph.outputs) {
    plan->output_slots_.push_back(slot.at(out.name));
    plan->output_types_.push_back(types.at(out.name));
  }
  // Free each intermediate value after its last reader.
  std::vector<int> last_use(plan->num_slots_, -1);
  for (size_t s = 0; s < plan->steps_.size(); ++s) {
    for (int in : plan->steps_[s].inputs) {
      if (in >= 0) last_use[in] = static_cast<int>(s);
    }
  }
  for (int out : plan->output_slots_) last_use[out] = -1;
  for (const auto& c : plan->constants_) last_use[c.first] = -1;
  for (int s = 0; s < plan->num_slots_; ++s) {
    if (last_use[s] >= 0) plan->steps_[last_use[s]].release.push_back(s);
  }
  return plan;
}

absl::StatusOr<std::vector<Tensor>> Plan::Execute(std::vector<Tensor> inputs, RunContext& ctx,
                                                  const ValueObserver* observer,
                                                  RunProfile* profile) const {
  using Clock = std::chrono::steady_clock;
  const auto run_start = profile ? Clock::now() : Clock::time_point();
  std::vector<Tensor> slots(num_slots_);
  for (size_t i = 0; i < input_slots_.size(); ++i) {
    if (observer) (*observer)(input_names_[i], inputs[i]);
    slots[input_slots_[i]] = std::move(inputs[i]);
  }
  for (const auto& [s, t] : constants_) slots[s] = t;
  std::vector<Tensor> in, out;
  for (const Step& step : steps_) {
    in.clear();
    for (int s : step.inputs) in.push_back(s >= 0 ? slots[s] : Tensor());
    out.assign(step.outputs.size(), Tensor());
    const auto step_start = profile ? Clock::now() : Clock::time_point();
    RETURN_IF_ERROR(RunGuarded(*step.kernel, *step.node, in, out, ctx));
    if (profile) {
      profile->Record(step.node, step.node->name, step.node->op_type,
                      std::chrono::duration<double, std::milli>(Clock::now() - step_start).count(),
                      [&] { return step.kernel->Info().impl; });
    }
    for (size_t i = 0; i < step.outputs.size(); ++i) {
      if (step.outputs[i] < 0) continue;
      if (observer) (*observer)(step.node->outputs[i], PlainView(step.outputs[i], out[i], ctx));
      slots[step.outputs[i]] = std::move(out[i]);
    }
    for (int s : step.release) slots[s] = Tensor();
  }
  std::vector<Tensor> result;
  for (int s : output_slots_) {
    // Never hand out a model's weights (a graph output that is, or is a
    // view of, an initializer): the caller may write into its outputs.
    const bool is_constant = constant_buffers_.count(slots[s].raw_data()) > 0;
    result.push_back(is_constant ? slots[s].Clone() : slots[s]);
  }
  if (profile) {
    slots.clear();  // buffers go back to the cache: part of the run
    profile->RecordRun(std::chrono::duration<double, std::milli>(Clock::now() - run_start).count());
  }
  return result;
}

Tensor Plan::PlainView(int slot, const Tensor& value, RunContext& ctx) const {
  auto it = opaque_slots_.find(slot);
  if (it == opaque_slots_.end()) return value;
  const OpaqueValue& v = it->second;
  Tensor out = Tensor::Uninitialized(value.dtype(), value.shape());  // the reorder writes it all
  dnnl::memory src(v.layout, ctx.engine(), const_cast<void*>(value.raw_data()));
  dnnl::memory dst(v.plain, ctx.engine(), out.raw_data());
  v.to_plain.execute(ctx.stream(), src, dst);
  ctx.stream().wait();
  return out;
}

std::vector<Plan::LayerInfo> Plan::Layers() const {
  std::vector<LayerInfo> layers;
  for (const Step& step : steps_) {
    const bool opaque = !step.outputs.empty() && opaque_slots_.count(step.outputs[0]) > 0;
    layers.push_back({step.node->name, step.node->op_type, step.kernel->Info(), opaque});
  }
  return layers;
}

absl::StatusOr<std::vector<Tensor>> EvaluateConstantNode(const Node& node,
                                                         const Graph& graph,
                                                         const dnnl::engine& engine) {
  Graph g;
  g.opset = graph.opset;
  g.ml_opset = graph.ml_opset;
  for (const auto& in : node.inputs) {
    if (!in.empty()) g.initializers[in] = graph.initializers.at(in);
  }
  g.nodes.push_back(node);
  for (const auto& out : node.outputs) {
    if (!out.empty()) g.outputs.push_back(ValueInfo{out, DataType::kFloat32, {}});
  }
  WeightCache weights(engine);
  ASSIGN_OR_RETURN(auto plan, Plan::Build(g, {}, PlanLimits{}, engine, weights));
  RunContext ctx(engine);
  return plan->Execute({}, ctx);
}

}  // namespace qs
