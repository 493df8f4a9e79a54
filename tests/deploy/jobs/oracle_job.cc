// A job library for fault-tolerance tests across processes: every key
// carries its numbers 0, 1, 2, ... in order; a keyed checker keeps the last
// number and a count of gaps or duplicates in its state (so a replay that
// breaks exactly-once state shows as violations); when input ends it emits
// "key last violations" to an exactly-once file sink.
//   --keys K --per-key N --rate R --output DIR --checkpoints DIR [--interval MS] [--parallelism P]
#include <freshet/freshet.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

struct Seq {
  int64_t key;
  int64_t seq;
};

class Checker : public freshet::KeyedProcessFunction<int64_t, Seq, std::string> {
 public:
  void Open() override {
    last_ = &GetRuntimeContext().GetState(freshet::ValueStateDescriptor<int64_t>("last", -1));
    violations_ = &GetRuntimeContext().GetState(freshet::ValueStateDescriptor<int64_t>("violations", 0));
  }
  void ProcessElement(const Seq& s, Context& ctx, freshet::Collector<std::string>&) override {
    int64_t last = last_->Value();
    if (s.seq != last + 1) violations_->Update(violations_->Value() + 1);
    if (last < 0) ctx.GetTimerService().RegisterEventTimeTimer(freshet::kMaxWatermark);
    last_->Update(s.seq);
  }
  void OnTimer(freshet::Timestamp, OnTimerContext& ctx, freshet::Collector<std::string>& out) override {
    out.Collect(std::to_string(ctx.GetCurrentKey()) + " " + std::to_string(last_->Value()) + " " +
                std::to_string(violations_->Value()));
  }

 private:
  freshet::ValueState<int64_t>* last_ = nullptr;
  freshet::ValueState<int64_t>* violations_ = nullptr;
};

int RunJob(int argc, char** argv) {
  int64_t keys = 20, per_key = 1000, interval = 100;
  double rate = 5000;
  int parallelism = 2;
  std::string output, checkpoints;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    const char* v = argv[i + 1];
    if (flag == "--keys") keys = std::atoll(v);
    else if (flag == "--per-key") per_key = std::atoll(v);
    else if (flag == "--rate") rate = std::atof(v);
    else if (flag == "--interval") interval = std::atoll(v);
    else if (flag == "--parallelism") parallelism = std::atoi(v);
    else if (flag == "--output") output = v;
    else if (flag == "--checkpoints") checkpoints = v;
    else {
      std::fprintf(stderr, "oracle_job: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  auto env = freshet::StreamExecutionEnvironment::Create();
  env->SetParallelism(parallelism);
  env->EnableCheckpointing(freshet::Duration(interval));
  env->GetCheckpointConfig().directory = checkpoints;
  freshet::RestartStrategyOptions restart;
  restart.kind = freshet::RestartStrategyOptions::Kind::kFixedDelay;
  restart.fixed_delay_attempts = 20;
  restart.fixed_delay_ms = 200;
  env->SetRestartStrategy(restart);
  const int64_t keys_per_subtask = keys / parallelism;
  env->FromGenerator(
         [keys_per_subtask, per_key](int64_t i) {
           // Subtask ranges are contiguous: each subtask owns its keys and
           // emits their numbers in order, round-robin.
           const int64_t range = keys_per_subtask * per_key;
           const int64_t subtask = i / range, j = i % range;
           return Seq{subtask * keys_per_subtask + j % keys_per_subtask, j / keys_per_subtask};
         },
         keys_per_subtask * parallelism * per_key, rate)
      .Uid("source")
      .KeyBy([](const Seq& s) { return s.key; })
      .Process(Checker())
      .Uid("checker")
      .SinkTo(freshet::FileSink<std::string>(output))
      .Uid("sink");
  auto result = env->Execute("Oracle Job");
  if (!result.IsOk()) {
    std::fprintf(stderr, "oracle_job: %s\n", result.GetStatus().Message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

FRESHET_JOB_ENTRY(RunJob)
