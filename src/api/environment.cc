#include "freshet/environment.h"

#include <filesystem>
#include <limits>

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
    cluster_->Executor().ReleaseJob(job_id_);
  }
  const std::string& GetJobId() const override { return job_id_; }
  JobStatus GetJobStatus() const override { return master_->GetStatus(); }
  void Cancel() override { master_->Cancel(); }
  Result<JobExecutionResult> Wait() override {
    auto r = *master_->Wait(std::nullopt);
    cluster_->Executor().ReleaseJob(job_id_);
    return r;
  }
  std::optional<Result<JobExecutionResult>> WaitFor(Duration timeout) override {
    auto r = master_->Wait(timeout);
    if (r) cluster_->Executor().ReleaseJob(job_id_);
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

Status DisposeSavepoint(const std::string& path) {
  std::string dir = path;
  if (std::filesystem::path(dir).filename() == "_metadata") dir = std::filesystem::path(dir).parent_path().string();
  return internal::DisposeCheckpoint(dir);
}

std::unique_ptr<StreamExecutionEnvironment> StreamExecutionEnvironment::Create() {
  return std::unique_ptr<StreamExecutionEnvironment>(new StreamExecutionEnvironment());
}

std::unique_ptr<StreamExecutionEnvironment> StreamExecutionEnvironment::Create(const Configuration& config) {
  auto env = Create();
  env->config_error_ = config.ApplyTo(env->options_);
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
  FRESHET_RETURN_IF_ERROR(config_error_);
  std::vector<internal::Transformation> transformations;
  transformations.swap(transformations_);
  FRESHET_ASSIGN_OR_RETURN(internal::StreamGraph graph,
                           internal::BuildStreamGraph(transformations, options_, job_name));
  std::string job_id = internal::NewJobId();
  auto job = std::make_shared<const internal::JobGraph>(
      internal::BuildJobGraph(std::make_shared<const internal::StreamGraph>(std::move(graph)), job_id));
  Clock& clock = clock_ != nullptr ? *clock_ : Clock::System();
  auto cluster = std::make_unique<internal::MiniCluster>(internal::JobMaster::RequiredSlots(*job), clock);
  FRESHET_ASSIGN_OR_RETURN(std::shared_ptr<internal::JobMaster> master, cluster->SubmitJob(job));
  return std::unique_ptr<JobClient>(new EmbeddedJobClient(std::move(cluster), std::move(master), job_id));
}

Result<JobExecutionResult> StreamExecutionEnvironment::Execute(const std::string& job_name) {
  FRESHET_ASSIGN_OR_RETURN(std::unique_ptr<JobClient> client, ExecuteAsync(job_name));
  return client->Wait();
}

}  // namespace freshet
