#include "freshet/environment.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include "api/execution_context.h"
#include "cluster/mini_cluster.h"
#include "freshet/data_stream.h"
#include "graph/stream_graph.h"

namespace freshet {

namespace {

/// A job on its own embedded mini-cluster. Destroying the client cancels
/// a job that is still running and waits for its threads.
class EmbeddedJobClient final : public JobClient {
 public:
  EmbeddedJobClient(std::unique_ptr<internal::MiniCluster> cluster, std::shared_ptr<internal::JobMaster> master,
                    std::string job_id)
      : cluster_(std::move(cluster)), master_(std::move(master)), job_id_(std::move(job_id)) {}
  ~EmbeddedJobClient() override {
    master_->Cancel();
    master_->Wait(std::nullopt);
    cluster_->ReleaseJob(job_id_);
  }
  const std::string& GetJobId() const override { return job_id_; }
  JobStatus GetJobStatus() const override { return master_->GetStatus(); }
  void Cancel() override { master_->Cancel(); }
  Result<JobExecutionResult> Wait() override {
    auto r = *master_->Wait(std::nullopt);
    cluster_->ReleaseJob(job_id_);
    return r;
  }
  std::optional<Result<JobExecutionResult>> WaitFor(Duration timeout) override {
    auto r = master_->Wait(timeout);
    if (r) cluster_->ReleaseJob(job_id_);
    return r;
  }
  Result<std::string> TriggerSavepoint(const std::string& target_directory) override {
    return master_->TriggerSavepoint(target_directory, internal::SavepointMode::kSavepoint);
  }
  Result<std::string> StopWithSavepoint(const std::string& target_directory, bool drain) override {
    return master_->TriggerSavepoint(target_directory,
                                     drain ? internal::SavepointMode::kStopDrain : internal::SavepointMode::kStop);
  }
  std::vector<std::string> CompletedCheckpoints() const override { return master_->CompletedCheckpoints(); }

 private:
  std::unique_ptr<internal::MiniCluster> cluster_;
  std::shared_ptr<internal::JobMaster> master_;
  std::string job_id_;
};

}  // namespace

namespace internal {

namespace {
thread_local ExecutionContext* current_context = nullptr;
}  // namespace

const char* PlanCaptured::what() const noexcept { return "the job graph was taken in plan mode"; }

ExecutionContext* CurrentExecutionContext() { return current_context; }

ScopedExecutionContext::ScopedExecutionContext(ExecutionContext* context) : previous_(current_context) {
  current_context = context;
}

ScopedExecutionContext::~ScopedExecutionContext() { current_context = previous_; }

}  // namespace internal

Status DisposeSavepoint(const std::string& path) {
  std::string dir = path;
  if (std::filesystem::path(dir).filename() == "_metadata") dir = std::filesystem::path(dir).parent_path().string();
  return internal::DisposeCheckpoint(dir);
}

std::unique_ptr<StreamExecutionEnvironment> StreamExecutionEnvironment::Create() {
  if (internal::CurrentExecutionContext() != nullptr) return Create(Configuration());
  return std::unique_ptr<StreamExecutionEnvironment>(new StreamExecutionEnvironment());
}

std::unique_ptr<StreamExecutionEnvironment> StreamExecutionEnvironment::Create(const Configuration& config) {
  auto env = std::unique_ptr<StreamExecutionEnvironment>(new StreamExecutionEnvironment());
  Configuration merged;
  if (const internal::ExecutionContext* context = internal::CurrentExecutionContext()) merged = context->config;
  for (const auto& [key, value] : config.Values()) merged.Set(key, value);
  env->config_error_ = merged.ApplyTo(env->options_);
  if (auto tms = merged.Get("minicluster.number-of-taskmanagers")) {
    char* end = nullptr;
    long n = std::strtol(tms->c_str(), &end, 10);
    if (tms->empty() || *end != '\0' || n < 1 || n > 1024) {
      if (env->config_error_.IsOk()) {
        env->config_error_ = Status::InvalidArgument(
            "minicluster.number-of-taskmanagers must be a number from 1 to 1024, got '" + *tms + "'");
      }
    } else {
      env->local_task_managers_ = static_cast<int>(n);
    }
  }
  return env;
}

int StreamExecutionEnvironment::AddTransformation(internal::Transformation t) {
  t.id = static_cast<int>(transformations_.size());
  transformations_.push_back(std::move(t));
  return transformations_.back().id;
}

DataStream<int64_t> StreamExecutionEnvironment::FromSequence(int64_t from, int64_t to) {
  int64_t count = 0;
  if (to >= from) {
    int64_t span = 0;
    if (__builtin_sub_overflow(to, from, &span) || span == std::numeric_limits<int64_t>::max()) {
      // More than 2^63 - 1 numbers cannot be counted; Execute() reports it.
      if (config_error_.IsOk()) {
        config_error_ = Status::InvalidArgument("FromSequence(" + std::to_string(from) + ", " + std::to_string(to) +
                                                "): the range holds more than 2^63 - 1 numbers");
      }
    } else {
      count = span + 1;
    }
  }
  auto stream = FromGenerator([from](int64_t i) { return from + i; }, count);
  GetTransformation(stream.Id()).name = "Source: Sequence Source";
  return stream;
}

DataStream<std::string> StreamExecutionEnvironment::ReadTextFile(const std::string& path, FileProcessingMode mode,
                                                                 Duration scan_interval) {
  return FromSource(TextFileSource(path, mode == FileProcessingMode::kProcessContinuously, scan_interval),
                    "Text File " + path);
}

DataStream<std::string> StreamExecutionEnvironment::SocketTextStream(const std::string& host, int port,
                                                                     char delimiter) {
  return FromSource(SocketTextSource(host, port, delimiter), "Socket Stream " + host + ":" + std::to_string(port));
}

Result<std::unique_ptr<JobClient>> StreamExecutionEnvironment::ExecuteAsync(const std::string& job_name) {
  internal::ExecutionContext* context = internal::CurrentExecutionContext();
  bool plan_mode = context != nullptr && context->capture_plan;
  std::vector<internal::Transformation> transformations;
  transformations.swap(transformations_);
  Result<internal::StreamGraph> built = config_error_.IsOk()
                                            ? internal::BuildStreamGraph(transformations, options_, job_name)
                                            : Result<internal::StreamGraph>(config_error_);
  if (plan_mode) {
    // The program does not go on after Execute() in plan mode, whether the
    // graph was built or not: the host reports the outcome.
    if (built.IsOk()) {
      context->captured = std::move(built).Value();
    } else {
      context->plan_error = built.GetStatus();
    }
    throw internal::PlanCaptured();
  }
  FRESHET_ASSIGN_OR_RETURN(internal::StreamGraph graph, std::move(built));
  std::string job_id = internal::NewJobId();
  auto job = std::make_shared<const internal::JobGraph>(
      internal::BuildJobGraph(std::make_shared<const internal::StreamGraph>(std::move(graph)), job_id));
  Clock& clock = clock_ != nullptr ? *clock_ : Clock::System();
  // `minicluster.number-of-taskmanagers` > 1: the slots are spread over
  // that many TaskExecutors, which exchange data over TCP on loopback.
  int slots = internal::JobMaster::RequiredSlots(*job);
  int task_managers = std::min(local_task_managers_, slots);
  FRESHET_ASSIGN_OR_RETURN(std::unique_ptr<internal::MiniCluster> cluster,
                           internal::MiniCluster::Create(task_managers, (slots + task_managers - 1) / task_managers,
                                                         clock));
  FRESHET_ASSIGN_OR_RETURN(std::shared_ptr<internal::JobMaster> master, cluster->SubmitJob(job));
  return std::unique_ptr<JobClient>(new EmbeddedJobClient(std::move(cluster), std::move(master), job_id));
}

Result<JobExecutionResult> StreamExecutionEnvironment::Execute(const std::string& job_name) {
  FRESHET_ASSIGN_OR_RETURN(std::unique_ptr<JobClient> client, ExecuteAsync(job_name));
  return client->Wait();
}

}  // namespace freshet
