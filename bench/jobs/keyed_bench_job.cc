// The keyed throughput workload as a job library, for measuring it on a
// cluster of processes and embedded with the same code: records
// {u64 key, u64 value, i64 ts} over 10,000 keys from a generator in a slot
// of its own, keyBy, a running sum per key (one output per input), and a
// counting sink. With one slot per TaskManager the source and the sum run
// in different processes, so every record crosses TCP.
//
//   --records N --output DIR
//
// Each sink subtask writes "records first_ns last_ns" (steady clock, the
// same on every process of a host) to DIR/sink-<subtask>: the records it
// saw and when its first and last arrived.
#include <freshet/freshet.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "../keyed_records.h"

namespace {

using freshet_bench::Event;
using freshet_bench::MakeEvent;

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class TimingWriter final : public freshet::SinkWriter<Event> {
 public:
  explicit TimingWriter(std::string path) : path_(std::move(path)) {}
  freshet::Status Write(const Event&, freshet::Timestamp) override {
    // One clock read per record would distort what is measured: the first
    // record's time is taken once, the last one's at the end of input.
    if (records_++ == 0) first_ns_ = NowNanos();
    return freshet::Status::Ok();
  }
  freshet::Status Flush(bool end_of_input) override {
    if (!end_of_input) return freshet::Status::Ok();
    std::ofstream out(path_, std::ios::trunc);
    out << records_ << ' ' << first_ns_ << ' ' << NowNanos() << '\n';
    out.close();
    if (!out) return freshet::Status::IoError("keyed_bench_job: cannot write " + path_);
    return freshet::Status::Ok();
  }

 private:
  std::string path_;
  int64_t records_ = 0;
  int64_t first_ns_ = 0;
};

class TimingSink final : public freshet::Sink<Event> {
 public:
  explicit TimingSink(std::string dir) : dir_(std::move(dir)) {}
  std::unique_ptr<freshet::SinkWriter<Event>> CreateWriter(freshet::RuntimeContext& context) const override {
    return std::make_unique<TimingWriter>(dir_ + "/sink-" + std::to_string(context.GetIndexOfThisSubtask()));
  }

 private:
  std::string dir_;
};

int RunJob(int argc, char** argv) {
  int64_t records = 10'000'000;
  std::string output;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--records") {
      records = std::atoll(argv[i + 1]);
    } else if (flag == "--output") {
      output = argv[i + 1];
    } else {
      std::fprintf(stderr, "keyed_bench_job: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (output.empty() || records < 1) {
    std::fprintf(stderr, "keyed_bench_job: --output DIR and --records N (N >= 1) are required\n");
    return 2;
  }
  auto env = freshet::StreamExecutionEnvironment::Create();
  env->SetParallelism(1);
  env->FromGenerator(MakeEvent, records)
      .SlotSharingGroup("source")
      .KeyBy([](const Event& e) { return e.key; })
      .Sum(&Event::value)
      .SinkTo(TimingSink(output), "Timing Sink");
  auto result = env->Execute("Keyed Bench Job");
  if (!result.IsOk()) {
    std::fprintf(stderr, "keyed_bench_job: %s\n", result.GetStatus().Message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

FRESHET_JOB_ENTRY(RunJob)
