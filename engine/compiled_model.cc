#include "engine/compiled_model.h"

#include <omp.h>

#include "absl/strings/str_cat.h"
#include "engine/passes/passes.h"
#include "engine/status_macros.h"

namespace qs {

CompiledModel::CompiledModel(Graph graph, const CompileOptions& options)
    : graph_(std::move(graph)),
      options_(options),
      engine_(dnnl::engine::kind::cpu, 0),
      weights_(engine_) {}

absl::StatusOr<std::unique_ptr<CompiledModel>> CompiledModel::Compile(
    Graph graph, const CompileOptions& options) {
  if (options.optimize) {
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    RETURN_IF_ERROR(RunDefaultPasses(graph, engine));
  }
  auto model = std::unique_ptr<CompiledModel>(new CompiledModel(std::move(graph), options));
  // Compile once with every dynamic dim set to 1: this checks shapes and
  // op attributes for the whole graph at load time, not at first request.
  // A second plan with dynamic dims set to 2 tells which output dims follow
  // them (those are reported as dynamic, -1).
  std::vector<Shape> ones, twos;
  bool any_dynamic = false;
  for (const auto& in : model->graph_.inputs) {
    Shape one = in.shape, two = in.shape;
    for (size_t d = 0; d < one.size(); ++d) {
      if (one[d] < 0) {
        one[d] = 1;
        two[d] = 2;
        any_dynamic = true;
      }
    }
    ones.push_back(one);
    twos.push_back(two);
  }
  ASSIGN_OR_RETURN(auto plan, model->PlanFor(ones));
  model->batch1_plan_ = plan;
  std::shared_ptr<const Plan> plan2 = plan;
  if (any_dynamic) {
    ASSIGN_OR_RETURN(plan2, model->PlanFor(twos));
  }
  model->outputs_ = model->graph_.outputs;
  for (size_t i = 0; i < model->outputs_.size(); ++i) {
    model->outputs_[i].dtype = plan->output_types()[i].dtype;
    Shape s = plan->output_types()[i].shape;
    const Shape& s2 = plan2->output_types()[i].shape;
    for (size_t d = 0; d < s.size() && d < s2.size(); ++d) {
      if (s[d] != s2[d]) s[d] = -1;
    }
    model->outputs_[i].shape = s;
  }
  return model;
}

absl::StatusOr<int> CompiledModel::WarmUp(int64_t max_batch) const {
  for (const auto& in : graph_.inputs) {
    if (in.shape.empty() || in.shape[0] >= 0) return 0;  // no batch dim to vary
    for (size_t d = 1; d < in.shape.size(); ++d) {
      if (in.shape[d] < 0) return 0;
    }
  }
  auto cached = [this] {
    std::lock_guard<std::mutex> lock(mu_);
    return plans_.size();
  };
  const size_t before = cached();
  // Half the cache at most: batch sizes beyond the warmed ones (larger
  // client batches, or max_batch_size > 32) should find room without
  // evicting warmed plans.
  const size_t limit = options_.max_cached_plans / 2;
  for (int64_t batch = 2; batch <= max_batch && cached() < limit; ++batch) {
    std::vector<Shape> shapes;
    for (const auto& in : graph_.inputs) {
      shapes.push_back(in.shape);
      shapes.back()[0] = batch;
    }
    absl::Status built = PlanFor(shapes).status();
    if (!built.ok()) {
      return absl::Status(built.code(),
                          absl::StrCat("batch size ", batch, ": ", built.message()));
    }
  }
  return static_cast<int>(cached() - before);
}

std::vector<Plan::LayerInfo> CompiledModel::Layers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batch1_plan_ ? batch1_plan_->Layers() : std::vector<Plan::LayerInfo>{};
}

int64_t CompiledModel::weight_bytes() const {
  int64_t bytes = graph_.InitializerBytes();
  for (const auto& layer : Layers()) bytes += layer.kernel.weight_bytes;
  return bytes;
}

absl::Status CompiledModel::ValidateInputs(const std::vector<Tensor>& inputs) const {
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ValueInfo& want = graph_.inputs[i];
    const Tensor& t = inputs[i];
    if (t.dtype() != want.dtype) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", want.name, "': datatype ", DataTypeName(t.dtype()), ", expected ",
          DataTypeName(want.dtype)));
    }
    bool ok = t.rank() == static_cast<int64_t>(want.shape.size());
    for (size_t d = 0; ok && d < want.shape.size(); ++d) {
      ok = want.shape[d] < 0 || want.shape[d] == t.shape()[d];
    }
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", want.name, "': shape ", ShapeToString(t.shape()), ", expected ",
          ShapeToString(want.shape), " (? = any size)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Tensor>> CompiledModel::Run(const NamedTensors& inputs) const {
  auto ordered = OrderInputs(inputs);
  if (!ordered.ok()) return ordered.status();
  return RunOrdered(std::move(*ordered));
}

absl::StatusOr<std::vector<Tensor>> CompiledModel::OrderInputs(const NamedTensors& inputs) const {
  std::vector<Tensor> ordered(graph_.inputs.size());
  std::vector<bool> seen(graph_.inputs.size(), false);
  for (const auto& [name, tensor] : inputs) {
    size_t i = 0;
    while (i < graph_.inputs.size() && graph_.inputs[i].name != name) ++i;
    if (i == graph_.inputs.size()) {
      std::string names;
      for (const auto& in : graph_.inputs) names += (names.empty() ? "'" : ", '") + in.name + "'";
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", name, "' is not an input of the model (inputs: ", names, ")"));
    }
    if (seen[i]) {
      return absl::InvalidArgumentError(absl::StrCat("input '", name, "' is given twice"));
    }
    seen[i] = true;
    ordered[i] = tensor;
  }
  for (size_t i = 0; i < seen.size(); ++i) {
    if (!seen[i]) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", graph_.inputs[i].name, "' is missing"));
    }
  }
  return ordered;
}

absl::StatusOr<std::vector<Tensor>> CompiledModel::RunOrdered(
    std::vector<Tensor> inputs, const Plan::ValueObserver* observer, RunProfile* profile) const {
  if (inputs.size() != graph_.inputs.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the model takes ", graph_.inputs.size(), " inputs, got ", inputs.size()));
  }
  RETURN_IF_ERROR(ValidateInputs(inputs));
  std::vector<Shape> shapes;
  for (const auto& t : inputs) shapes.push_back(t.shape());
  ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, PlanFor(shapes));
  // OpenMP's team size is per calling thread; set it for this thread.
  if (options_.intra_op_threads > 0) omp_set_num_threads(options_.intra_op_threads);
  std::unique_ptr<RunContext> ctx = AcquireContext();
  auto result = plan->Execute(std::move(inputs), *ctx, observer, profile);
  ReleaseContext(std::move(ctx));
  return result;
}

absl::StatusOr<std::shared_ptr<const Plan>> CompiledModel::PlanFor(
    const std::vector<Shape>& shapes) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = plans_.find(shapes);
    if (it != plans_.end()) {
      it->second.last_used = ++use_clock_;
      return it->second.plan;
    }
  }
  // Built outside the lock: two threads may race to build the same plan;
  // both results are equivalent and the first one inserted wins.
  // oneDNN fixes a primitive's thread count when the primitive is created
  // (from omp_get_max_threads(); e.g. jit:avx2 conv runs
  // `omp parallel num_threads(jcp.nthr)`), not when it runs: build under the
  // team size the plan will run with, then restore this thread's setting.
  const int caller_threads = omp_get_max_threads();
  if (options_.intra_op_threads > 0) omp_set_num_threads(options_.intra_op_threads);
  auto built_or = Plan::Build(graph_, shapes, options_.limits, engine_, weights_);
  omp_set_num_threads(caller_threads);
  ASSIGN_OR_RETURN(std::unique_ptr<Plan> built, std::move(built_or));
  std::shared_ptr<const Plan> plan = std::move(built);
  std::lock_guard<std::mutex> lock(mu_);
  ++plans_built_;
  if (auto it = plans_.find(shapes); it != plans_.end()) {
    it->second.last_used = ++use_clock_;
    return it->second.plan;  // another thread built it first
  }
  if (options_.max_cached_plans == 0) return plan;
  if (plans_.size() >= options_.max_cached_plans) {
    // Least recently used out: with dynamic batching more distinct batch
    // sizes can form than the cache holds, and a cache that kept only the
    // first ones seen rebuilt a plan (~60 ms for ResNet-18) on every run of
    // the others. A linear scan: the cache is small.
    auto oldest = plans_.begin();
    for (auto it = plans_.begin(); it != plans_.end(); ++it) {
      if (it->second.last_used < oldest->second.last_used) oldest = it;
    }
    plans_.erase(oldest);
  }
  plans_.emplace(shapes, CachedPlan{plan, ++use_clock_});
  return plan;
}

CompiledModel::PlanCacheStats CompiledModel::plan_cache_stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {plans_.size(), plans_built_};
}

std::unique_ptr<RunContext> CompiledModel::AcquireContext() const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_contexts_.empty()) {
      auto ctx = std::move(idle_contexts_.back());
      idle_contexts_.pop_back();
      return ctx;
    }
  }
  return std::make_unique<RunContext>(engine_);
}

void CompiledModel::ReleaseContext(std::unique_ptr<RunContext> ctx) const {
  // Layout scratch buffers above this are freed when a run ends (also a
  // failed one): an idle pooled context would otherwise keep a copy of the
  // largest activation it ever reordered, per slot, while the model serves.
  constexpr size_t kKeptScratchBytes = size_t{4} << 20;
  ctx->TrimScratch(kKeptScratchBytes);
  std::lock_guard<std::mutex> lock(mu_);
  idle_contexts_.push_back(std::move(ctx));
}

}  // namespace qs
