// Every Prometheus metric name, help text and label key the server exports,
// in one place (docs/METRICS.md describes them for operators). Names follow
// the Prometheus conventions: base units (`_seconds`, `_bytes`), `_total` on
// counters, histograms rather than summaries. Labels stay low-cardinality:
// `model`, `variant`, `bits` and `code` only — never a request id or any
// other string a client chose.
#pragma once

namespace qs::metric {

// Label keys.
inline constexpr char kModel[] = "model";
inline constexpr char kVariant[] = "variant";
inline constexpr char kBits[] = "bits";  // weight bits: "8", "4", "32" for fp32
inline constexpr char kCode[] = "code";  // gRPC code name: "OK", "NOT_FOUND", ...
inline constexpr char kResult[] = "result";  // config reloads: "success", "failure"

// The model and variant label (and bits) of requests for a model or variant
// that is not served: the requested name itself would be unbounded.
inline constexpr char kUnknown[] = "unknown";

// Requests (quantserve.v1 Predict and KServe ModelInfer).
inline constexpr char kRequestsTotal[] = "quantserve_requests_total";
inline constexpr char kRequestsTotalHelp[] =
    "Inference requests (Predict and ModelInfer) by outcome";
inline constexpr char kRequestDuration[] = "quantserve_request_duration_seconds";
inline constexpr char kRequestDurationHelp[] =
    "End-to-end time of an inference request in the service handler";
inline constexpr char kInflight[] = "quantserve_inflight_requests";
inline constexpr char kInflightHelp[] = "Inference requests being handled now";

// Execution, per run of the model (a batch, or one unbatched request).
inline constexpr char kQueueDuration[] = "quantserve_queue_duration_seconds";
inline constexpr char kQueueDurationHelp[] =
    "Time the oldest request of a batch waited in the batching queue (0 when unbatched)";
inline constexpr char kComputeDuration[] = "quantserve_compute_duration_seconds";
inline constexpr char kComputeDurationHelp[] = "Time to run the model on one batch";
inline constexpr char kBatchSize[] = "quantserve_batch_size";
inline constexpr char kBatchSizeHelp[] = "Rows (samples) per executed batch";

// Per variant, set once when the model is loaded.
inline constexpr char kWeightBytes[] = "quantserve_variant_weight_bytes";
inline constexpr char kWeightBytesHelp[] = "Size of the variant's stored weights";
inline constexpr char kBuildSeconds[] = "quantserve_variant_build_seconds";
inline constexpr char kBuildSecondsHelp[] = "Time to quantize and compile the variant at load";
inline constexpr char kAccuracy[] = "quantserve_variant_accuracy";
inline constexpr char kAccuracyHelp[] =
    "Top-1 accuracy on the evaluation set, 0..1 (only for evaluated variants)";
inline constexpr char kAccuracyDrop[] = "quantserve_variant_accuracy_drop";
inline constexpr char kAccuracyDropHelp[] =
    "fp32 accuracy minus this variant's accuracy, as a fraction (0.01 = one point)";
inline constexpr char kTop1Agreement[] = "quantserve_variant_top1_agreement";
inline constexpr char kTop1AgreementHelp[] =
    "Fraction of evaluation samples whose top-1 class equals the fp32 model's";

// Live accuracy drift: sampled live requests are replayed off the request
// path on the model's reference (fp32) variant and compared per sample.
// Labels model/variant/bits name the quantized variant being compared.
// Agreement rate = rate(agreements) / rate(samples).
inline constexpr char kDriftSamples[] = "quantserve_drift_samples_total";
inline constexpr char kDriftSamplesHelp[] =
    "Live samples (rows) of this variant compared against the reference variant";
inline constexpr char kDriftAgreements[] = "quantserve_drift_top1_agreements_total";
inline constexpr char kDriftAgreementsHelp[] =
    "Compared live samples whose top-1 class equals the reference variant's";
inline constexpr char kDriftKl[] = "quantserve_drift_kl_divergence";
inline constexpr char kDriftKlHelp[] =
    "KL(reference || variant) between the softmax outputs of one live sample, in nats";
inline constexpr char kDriftRelativeError[] = "quantserve_drift_relative_error";
inline constexpr char kDriftRelativeErrorHelp[] =
    "||variant - reference|| / ||reference|| (L2) of one live sample's first output";
inline constexpr char kDriftErrors[] = "quantserve_drift_errors_total";
inline constexpr char kDriftErrorsHelp[] =
    "Drift replays of this variant (or of the reference for it) that failed";
// Labels model/variant/bits of the variant whose request was sampled.
inline constexpr char kDriftDropped[] = "quantserve_drift_dropped_total";
inline constexpr char kDriftDroppedHelp[] =
    "Sampled requests not replayed because the drift queue was full";
inline constexpr char kDriftEnqueued[] = "quantserve_drift_enqueued_total";
inline constexpr char kDriftEnqueuedHelp[] = "Sampled requests queued for a drift replay";
// Label model only.
inline constexpr char kDriftQueueLength[] = "quantserve_drift_queue_length";
inline constexpr char kDriftQueueLengthHelp[] = "Sampled requests waiting for a drift replay";

// Feedback RPC: true labels reported by clients for earlier request ids.
// Live accuracy = rate(correct) / rate(samples), per variant.
inline constexpr char kFeedbackSamples[] = "quantserve_feedback_samples_total";
inline constexpr char kFeedbackSamplesHelp[] =
    "Labelled samples (from Feedback) for which this variant's top-1 class is known";
inline constexpr char kFeedbackCorrect[] = "quantserve_feedback_correct_total";
inline constexpr char kFeedbackCorrectHelp[] =
    "Labelled samples (from Feedback) this variant classified correctly";
// Label model only.
inline constexpr char kFeedbackUnmatched[] = "quantserve_feedback_unmatched_total";
inline constexpr char kFeedbackUnmatchedHelp[] =
    "Feedback calls naming a request id the server does not remember (unknown or evicted)";

// Config reloads (SIGHUP or a watched file change).
inline constexpr char kConfigReloads[] = "quantserve_config_reloads_total";
inline constexpr char kConfigReloadsHelp[] =
    "Config reloads attempted, by result (a failed one leaves the old models serving)";
inline constexpr char kConfigLastReloadSuccessful[] = "quantserve_config_last_reload_successful";
inline constexpr char kConfigLastReloadSuccessfulHelp[] =
    "1 if the last config reload (or the start-up load) succeeded, else 0";
inline constexpr char kConfigLastReloadTime[] =
    "quantserve_config_last_reload_success_timestamp_seconds";
inline constexpr char kConfigLastReloadTimeHelp[] =
    "When the models last changed by a successful load or reload, seconds since the Unix epoch";

// The engine's activation buffer cache (engine/buffer_cache.h), read at
// every scrape.
inline constexpr char kActivationCacheIdle[] = "quantserve_activation_cache_idle_bytes";
inline constexpr char kActivationCacheIdleHelp[] =
    "Bytes of idle activation and scratch buffers kept for the next runs (server.activation_cache_mb caps it)";
inline constexpr char kActivationCacheRequests[] = "quantserve_activation_cache_requests_total";
inline constexpr char kActivationCacheRequestsHelp[] =
    "Large activation buffers requested, by result: hit (an idle buffer reused) or miss "
    "(allocated from the system)";

// The process (Linux /proc/self), refreshed at every scrape.
inline constexpr char kProcessCpu[] = "process_cpu_seconds_total";
inline constexpr char kProcessCpuHelp[] = "Total user and system CPU time spent";
inline constexpr char kProcessResident[] = "process_resident_memory_bytes";
inline constexpr char kProcessResidentHelp[] = "Resident memory size";
inline constexpr char kProcessVirtual[] = "process_virtual_memory_bytes";
inline constexpr char kProcessVirtualHelp[] = "Virtual memory size";
inline constexpr char kProcessOpenFds[] = "process_open_fds";
inline constexpr char kProcessOpenFdsHelp[] = "Open file descriptors";
inline constexpr char kProcessStartTime[] = "process_start_time_seconds";
inline constexpr char kProcessStartTimeHelp[] = "Start time of the process since the Unix epoch";

}  // namespace qs::metric
