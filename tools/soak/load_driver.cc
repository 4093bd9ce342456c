#include "tools/soak/load_driver.h"

#include <grpcpp/alarm.h>
#include <grpcpp/generic/generic_stub.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "inference/grpc_predict_v2.grpc.pb.h"
#include "quantserve/v1/inference.grpc.pb.h"

namespace qs::soak {

using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kPredictMethod = "/quantserve.v1.InferenceService/Predict";
constexpr const char* kModelInferMethod = "/inference.GRPCInferenceService/ModelInfer";

std::chrono::system_clock::time_point After(double ms) {
  return std::chrono::system_clock::now() +
         std::chrono::microseconds(static_cast<int64_t>(std::llround(ms * 1000)));
}

double UniformReal(Rng& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}

// Clients per category: the shares of `mix` (normalized) of `clients`,
// rounded by largest remainder.
std::vector<int> Apportion(const std::vector<double>& mix, int clients) {
  const double sum = std::accumulate(mix.begin(), mix.end(), 0.0);
  std::vector<int> n(mix.size());
  std::vector<std::pair<double, size_t>> remainders;
  int given = 0;
  for (size_t c = 0; c < mix.size(); ++c) {
    const double exact = sum > 0 ? mix[c] / sum * clients : 0;
    n[c] = static_cast<int>(std::floor(exact));
    given += n[c];
    remainders.push_back({exact - n[c], c});
  }
  std::sort(remainders.rbegin(), remainders.rend());
  for (size_t i = 0; given < clients && i < remainders.size(); ++i, ++given) {
    ++n[remainders[i].second];
  }
  return n;
}

}  // namespace

struct LoadDriver::Tag {
  enum class Kind { kFinish, kCancel, kPace };
  Call* call;      // kFinish, kCancel
  Client* client;  // kPace
  Kind kind;
};

struct LoadDriver::Client {
  Category category = Category::kNormal;
  int variant = 0;
  int channel = 0;
  int cq = 0;
  Rng rng;
  // Paced clients start calls at most every options.pace_ms.
  Clock::time_point last_start;
  grpc::Alarm pace_alarm;
  Tag pace_tag{nullptr, this, Tag::Kind::kPace};
};

struct LoadDriver::Call {
  enum class Api { kPredict, kModelInfer, kGeneric };
  explicit Call(Client* c) : client(c) {}
  Client* client;
  Api api = Api::kPredict;
  grpc::ClientContext ctx;
  grpc::Status status;
  v1::PredictResponse predict_resp;
  inference::ModelInferResponse infer_resp;
  grpc::ByteBuffer generic_resp;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::PredictResponse>> predict;
  std::unique_ptr<grpc::ClientAsyncResponseReader<inference::ModelInferResponse>> infer;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> generic;
  Expectation expect;
  GarbageKind kind = GarbageKind::kWrongDtype;
  std::unique_ptr<grpc::Alarm> alarm;  // cancel clients: fires TryCancel
  bool alarm_pending = false;
  bool finished = false;
  Clock::time_point start;
  Tag finish_tag{this, nullptr, Tag::Kind::kFinish};
  Tag alarm_tag{this, nullptr, Tag::Kind::kCancel};
};

struct LoadDriver::Stubs {
  std::unique_ptr<v1::InferenceService::Stub> v1;
  std::unique_ptr<inference::GRPCInferenceService::Stub> kserve;
  std::unique_ptr<grpc::GenericStub> generic;
};

LoadDriver::LoadDriver(const Options& options, const Workload& workload,
                       std::vector<std::shared_ptr<grpc::Channel>> channels, Stats* stats)
    : options_(options), workload_(workload), channels_(std::move(channels)), stats_(stats) {
  // One set of stubs per channel, shared by the driver threads (stubs are
  // thread-safe).
  for (const auto& ch : channels_) {
    stubs_.push_back(std::make_unique<Stubs>(Stubs{v1::InferenceService::NewStub(ch),
                                                   inference::GRPCInferenceService::NewStub(ch),
                                                   std::make_unique<grpc::GenericStub>(ch)}));
  }
  const std::vector<int> per_category = Apportion(options_.mix, options_.clients);
  const int variants = static_cast<int>(workload_.info().variants.size());
  const int cq_count = std::max(1, options_.cq_threads);
  int index = 0;
  for (int c = 0; c < kCategoryCount; ++c) {
    for (int i = 0; i < per_category[c]; ++i, ++index) {
      auto client = std::make_unique<Client>();
      client->category = static_cast<Category>(c);
      client->variant = i % variants;
      client->channel = index % static_cast<int>(channels_.size());
      client->cq = index % cq_count;
      client->rng.seed(options_.seed * 1000003 + static_cast<uint64_t>(index));
      clients_.push_back(std::move(client));
    }
  }
  for (int i = 0; i < cq_count; ++i) cqs_.push_back(std::make_unique<grpc::CompletionQueue>());
  for (int i = 0; i < cq_count; ++i) threads_.emplace_back([this, i] { Poll(i); });
}

LoadDriver::~LoadDriver() {
  StopIssuing();
  CancelAll();
  WaitIdle(Clock::now() + std::chrono::seconds(10));
  for (auto& cq : cqs_) cq->Shutdown();
  for (auto& t : threads_) t.join();
}

std::vector<int> LoadDriver::ClientsPerCategory() const {
  std::vector<int> n(kCategoryCount, 0);
  for (const auto& c : clients_) ++n[static_cast<int>(c->category)];
  return n;
}

void LoadDriver::Start() {
  issuing_ = true;
  for (auto& client : clients_) Issue(*client);
}

void LoadDriver::StopIssuing() { issuing_ = false; }

bool LoadDriver::WaitIdle(Clock::time_point until) const {
  while (in_flight_ > 0) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

int64_t LoadDriver::calls_in_flight() const {
  std::lock_guard<std::mutex> lock(calls_mu_);
  return static_cast<int64_t>(calls_.size());
}

void LoadDriver::CancelAll() {
  std::lock_guard<std::mutex> lock(calls_mu_);
  for (Call* call : calls_) call->ctx.TryCancel();
}

void LoadDriver::Issue(Client& client) {
  auto* call = new Call(&client);
  {
    std::lock_guard<std::mutex> lock(calls_mu_);
    calls_.push_back(call);
  }
  ++in_flight_;
  call->start = Clock::now();
  client.last_start = call->start;
  if (client.category == Category::kGarbage) {
    StartGarbage(call, client.rng);
  } else {
    StartValid(call, client.rng);
  }
}

void LoadDriver::StartValid(Call* call, Rng& rng) {
  Client& client = *call->client;
  grpc::CompletionQueue* cq = cqs_[client.cq].get();
  Stubs& stubs = *stubs_[client.channel];
  if (client.category == Category::kDeadline) {
    call->ctx.set_deadline(After(UniformReal(rng, 0, options_.tiny_deadline_max_ms)));
  } else {
    call->ctx.set_deadline(After(static_cast<double>(options_.timeout_ms)));
  }
  call->expect = workload_.RandomExpectation(client.variant, rng);
  if ((rng() & 1) != 0) {
    call->api = Call::Api::kPredict;
    v1::PredictRequest req;
    workload_.FillPredict(call->expect, &req);
    call->predict = stubs.v1->PrepareAsyncPredict(&call->ctx, req, cq);
    call->predict->StartCall();
    call->predict->Finish(&call->predict_resp, &call->status, &call->finish_tag);
  } else {
    call->api = Call::Api::kModelInfer;
    inference::ModelInferRequest req;
    workload_.FillModelInfer(call->expect, &req);
    call->infer = stubs.kserve->PrepareAsyncModelInfer(&call->ctx, req, cq);
    call->infer->StartCall();
    call->infer->Finish(&call->infer_resp, &call->status, &call->finish_tag);
  }
  if (client.category == Category::kCancel) {
    call->alarm = std::make_unique<grpc::Alarm>();
    call->alarm_pending = true;
    call->alarm->Set(cq, After(UniformReal(rng, 0, options_.cancel_max_ms)), &call->alarm_tag);
  }
}

void LoadDriver::StartGarbage(Call* call, Rng& rng) {
  Client& client = *call->client;
  grpc::CompletionQueue* cq = cqs_[client.cq].get();
  Stubs& stubs = *stubs_[client.channel];
  call->ctx.set_deadline(After(static_cast<double>(options_.timeout_ms)));
  call->kind = static_cast<GarbageKind>(rng() % kGarbageKindCount);
  if (call->kind == GarbageKind::kRandomBytes) {
    call->api = Call::Api::kGeneric;
    const std::string bytes = Workload::RandomBytes(rng);
    grpc::Slice slice(bytes);
    grpc::ByteBuffer buffer(&slice, 1);
    call->generic = stubs.generic->PrepareUnaryCall(
        &call->ctx, (rng() & 1) != 0 ? kPredictMethod : kModelInferMethod, buffer, cq);
    call->generic->StartCall();
    call->generic->Finish(&call->generic_resp, &call->status, &call->finish_tag);
  } else if (Workload::KServeOnly(call->kind) || (rng() & 1) != 0) {
    call->api = Call::Api::kModelInfer;
    inference::ModelInferRequest req;
    workload_.FillGarbageModelInfer(call->kind, client.variant, rng, &req);
    call->infer = stubs.kserve->PrepareAsyncModelInfer(&call->ctx, req, cq);
    call->infer->StartCall();
    call->infer->Finish(&call->infer_resp, &call->status, &call->finish_tag);
  } else {
    call->api = Call::Api::kPredict;
    v1::PredictRequest req;
    workload_.FillGarbagePredict(call->kind, client.variant, rng, &req);
    call->predict = stubs.v1->PrepareAsyncPredict(&call->ctx, req, cq);
    call->predict->StartCall();
    call->predict->Finish(&call->predict_resp, &call->status, &call->finish_tag);
  }
}

void LoadDriver::OnFinish(Call* call) {
  Client& client = *call->client;
  const Phase phase = phase_;
  CallRecord r;
  r.category = client.category;
  r.kind = call->kind;
  r.phase = phase;
  r.kserve = call->api == Call::Api::kModelInfer;
  r.code = call->status.error_code();
  r.message = call->status.error_message();
  r.variant = client.variant;
  r.ms = std::chrono::duration<double, std::milli>(Clock::now() - call->start).count();
  const std::set<grpc::StatusCode> expected =
      client.category == Category::kGarbage
          ? InPhase(ExpectedGarbageCodes(call->kind, options_.nan_rejected), phase)
          : ExpectedCodes(client.category, phase, options_.allow_overload);
  r.expected = expected.count(r.code) > 0;
  if (r.code == grpc::StatusCode::OK && client.category != Category::kGarbage) {
    r.bad_answer = call->api == Call::Api::kPredict
                       ? workload_.CheckPredict(call->predict_resp, call->expect, &r.logit_diff)
                       : workload_.CheckModelInfer(call->infer_resp, call->expect, &r.logit_diff);
  }
  if (r.code == grpc::StatusCode::OK && client.category == Category::kGarbage &&
      call->kind == GarbageKind::kEmptyBatch) {
    r.bad_answer = call->api == Call::Api::kPredict
                       ? workload_.CheckEmptyPredict(call->predict_resp)
                       : workload_.CheckEmptyModelInfer(call->infer_resp);
  }
  stats_->Record(r);
  call->finished = true;
  if (call->alarm_pending) call->alarm->Cancel();  // its event still comes
  // After SIGTERM a refused client stops: the server is going away.
  const bool refused = phase == Phase::kShutdown && r.code == grpc::StatusCode::UNAVAILABLE;
  if (!issuing_ || refused) return;
  const auto next = client.last_start + std::chrono::microseconds(
                                            static_cast<int64_t>(options_.pace_ms * 1000));
  if (client.category == Category::kNormal || Clock::now() >= next) {
    Issue(client);
    return;
  }
  // Calls the client abandons (or the server refuses at once) would
  // otherwise follow each other as fast as the client can make them: an
  // unbounded flood that measures the machine rather than the server.
  ++in_flight_;  // the alarm, until its event
  client.pace_alarm.Set(cqs_[client.cq].get(),
                        std::chrono::system_clock::now() +
                            std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                next - Clock::now()),
                        &client.pace_tag);
}

void LoadDriver::Poll(int cq) {
  void* tag = nullptr;
  bool ok = false;
  while (cqs_[cq]->Next(&tag, &ok)) {
    Tag* t = static_cast<Tag*>(tag);
    if (t->kind == Tag::Kind::kPace) {
      if (issuing_) Issue(*t->client);
      --in_flight_;
      continue;
    }
    Call* call = t->call;
    if (t->kind == Tag::Kind::kCancel) {
      call->alarm_pending = false;
      if (ok && !call->finished) call->ctx.TryCancel();
    } else {
      OnFinish(call);
    }
    if (call->finished && !call->alarm_pending) {
      {
        std::lock_guard<std::mutex> lock(calls_mu_);
        auto it = std::find(calls_.begin(), calls_.end(), call);
        if (it != calls_.end()) {
          *it = calls_.back();
          calls_.pop_back();
        }
      }
      delete call;
      --in_flight_;
    }
  }
}

}  // namespace qs::soak
