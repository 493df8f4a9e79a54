#pragma once
// A job for metric tests, run on a MiniCluster the test can reach:
//
//   Holding Source (P) -> Counting Map (P)  | keyBy |  Metrics Sink (P)
//
// Subtask s of the source emits its contiguous share of 0..records-1 with
// the value as timestamp (monotonous watermarks), then stays alive and
// idle until Release(), so the test can read the metrics of a job whose
// record counts are known. The map counts its records in a user Counter
// "mappedRecords" and records them in a Histogram "values".

#include <freshet/freshet.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cluster/mini_cluster.h"
#include "graph/stream_graph.h"

namespace freshet::testing_metrics {

class HoldingSource final : public Source<int64_t> {
 public:
  HoldingSource(int64_t records, std::shared_ptr<std::atomic<bool>> release)
      : records_(records), release_(std::move(release)) {}
  Boundedness GetBoundedness() const override { return Boundedness::kContinuousUnbounded; }
  std::unique_ptr<SourceReader<int64_t>> CreateReader(SourceReaderContext& ctx) const override {
    int64_t s = ctx.SubtaskIndex();
    int64_t p = ctx.Parallelism();
    return std::make_unique<Reader>(records_ * s / p, records_ * (s + 1) / p, release_);
  }

 private:
  class Reader final : public SourceReader<int64_t> {
   public:
    Reader(int64_t begin, int64_t end, std::shared_ptr<std::atomic<bool>> release)
        : next_(begin), end_(end), release_(std::move(release)) {}
    Result<InputStatus> PollNext(ReaderOutput<int64_t>& out) override {
      for (int i = 0; i < 1000 && next_ < end_; ++i, ++next_) out.Collect(next_);
      if (next_ < end_) return InputStatus::kMoreAvailable;
      return release_->load() ? InputStatus::kEndOfInput : InputStatus::kNothingAvailable;
    }
    Duration PollDelay() const override { return Duration(5); }

   private:
    int64_t next_;
    int64_t end_;
    std::shared_ptr<std::atomic<bool>> release_;
  };
  int64_t records_;
  std::shared_ptr<std::atomic<bool>> release_;
};

class CountingMap : public RichMapFunction<int64_t, int64_t> {
 public:
  void Open() override {
    mapped_ = &GetRuntimeContext().GetMetricGroup().Counter("mappedRecords");
    values_ = &GetRuntimeContext().GetMetricGroup().Histogram("values");
  }
  int64_t Map(const int64_t& value) override {
    mapped_->Inc();
    values_->Update(value);
    return value;
  }

 private:
  Counter* mapped_ = nullptr;
  Histogram* values_ = nullptr;
};

class HeldJob {
 public:
  HeldJob(int64_t records, int parallelism) : release_(std::make_shared<std::atomic<bool>>(false)) {
    auto env = StreamExecutionEnvironment::Create();
    env->SetParallelism(parallelism);
    env->FromSource(HoldingSource(records, release_),
                    WatermarkStrategy<int64_t>::ForMonotonousTimestamps().WithTimestampAssigner(
                        [](const int64_t& v) { return v; }),
                    "Holding Source")
        .Map(CountingMap())
        .Name("Counting Map")
        .KeyBy([](const int64_t& v) { return v % 7; })
        .SinkTo([](const int64_t&) {}, "Metrics Sink");
    Result<internal::StreamGraph> graph =
        internal::BuildStreamGraph(env->Transformations(), env->GetOptions(), "metrics job");
    if (!graph.IsOk()) throw std::runtime_error(graph.GetStatus().ToString());
    job_ = std::make_shared<const internal::JobGraph>(internal::BuildJobGraph(
        std::make_shared<const internal::StreamGraph>(std::move(graph).Value()), internal::NewJobId()));
    for (const internal::JobVertex& v : job_->vertices) {
      if (v.is_source) {
        source_vertex_ = v.id;
        source_name_ = v.name;
      } else {
        sink_vertex_ = v.id;
      }
    }
    cluster_ = std::make_unique<internal::MiniCluster>(internal::JobMaster::RequiredSlots(*job_), Clock::System());
    Result<std::shared_ptr<internal::JobMaster>> master = cluster_->SubmitJob(job_);
    if (!master.IsOk()) throw std::runtime_error(master.GetStatus().ToString());
    master_ = *master;
  }
  ~HeldJob() {
    master_->Cancel();
    master_->Wait(std::nullopt);
    cluster_->ReleaseJob(job_->job_id);
  }

  /// Lets the sources end: the job then finishes.
  void Release() { release_->store(true); }
  Result<JobExecutionResult> Wait() {
    Result<JobExecutionResult> r = *master_->Wait(std::nullopt);
    cluster_->ReleaseJob(job_->job_id);
    return r;
  }
  internal::MetricRegistry& Metrics() { return cluster_->Metrics(); }
  internal::MiniCluster& Cluster() { return *cluster_; }
  const std::string& JobId() const { return job_->job_id; }
  int SourceVertex() const { return source_vertex_; }
  int SinkVertex() const { return sink_vertex_; }
  /// "Source: Holding Source -> Counting Map" or similar.
  const std::string& SourceVertexName() const { return source_name_; }

 private:
  std::shared_ptr<std::atomic<bool>> release_;
  std::shared_ptr<const internal::JobGraph> job_;
  std::unique_ptr<internal::MiniCluster> cluster_;
  std::shared_ptr<internal::JobMaster> master_;
  int source_vertex_ = -1;
  int sink_vertex_ = -1;
  std::string source_name_;
};

/// Polls `done` until it holds or `timeout` passes (generous: a loaded
/// two-core machine).
template <class F>
bool PollUntil(F done, std::chrono::milliseconds timeout = std::chrono::milliseconds(60'000)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

/// The value of aggregate `name` over the vertex's subtasks (nullopt: the
/// vertex or the metric has no group yet).
inline std::optional<internal::AggregatedMetric> Aggregate(internal::MetricRegistry& registry,
                                                           const std::string& job_id, int vertex,
                                                           const std::string& name) {
  Result<std::vector<internal::AggregatedMetric>> r = registry.AggregateSubtasks(job_id, vertex, {name});
  if (!r.IsOk() || r->empty()) return std::nullopt;
  return r->front();
}

}  // namespace freshet::testing_metrics
