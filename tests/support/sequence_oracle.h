#pragma once
// The sequence oracle of the fault-tolerance tests: the records of every
// key carry its numbers 0, 1, 2, ... in order; a keyed checker holding the
// last number per key counts any gap or duplicate as a violation of
// exactly-once state, and a sink records each key's last number at the end.
// Jobs report through the process-wide `g_oracle`, which a test points at
// its own report before it runs a job.

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

#include "freshet/freshet.h"

namespace freshet::test_support {

struct Seq {
  int64_t key;
  int64_t seq;
};

/// What the jobs of a test report.
struct OracleReport {
  std::mutex mu;
  std::map<int64_t, int64_t> final_seq;          // key -> last number, from RecordFinal
  std::map<int64_t, std::string> final_summary;  // key -> what a checker summarized
  std::atomic<int64_t> violations{0};
  std::atomic<int64_t> processed{0};
  std::atomic<int64_t> finals_written{0};
  std::atomic<int64_t> rocksdb_instances{0};  // seen by a checker when it opened
};

inline OracleReport* g_oracle = nullptr;

/// A sink: records the last number of the record's key.
inline void RecordFinal(const Seq& s) {
  std::lock_guard lock(g_oracle->mu);
  g_oracle->final_seq[s.key] = s.seq;
  g_oracle->finals_written.fetch_add(1);
}

/// Record i of a generator source of `parallelism` subtasks over `keys`
/// keys with `per_key` numbers each: each subtask reads a contiguous range
/// of indexes and owns keys / parallelism keys, emitting their numbers in
/// order round-robin, so every key's sequence comes from one subtask.
inline Seq SequenceAt(int64_t i, int64_t keys, int64_t per_key, int parallelism) {
  const int64_t keys_per_subtask = keys / parallelism;
  const int64_t range = keys_per_subtask * per_key;
  const int64_t subtask = i / range, j = i % range;
  return Seq{subtask * keys_per_subtask + j % keys_per_subtask, j / keys_per_subtask};
}

/// Fails its subtask once in each attempt below `attempts`, at record
/// `first + per_attempt * attempt + per_subtask * subtask` or later, once
/// the attempt has completed a checkpoint (so that every restart resumes
/// from one, however slow the build: sanitizers, RocksDB).
class FaultInjector : public RichMapFunction<Seq, Seq>, public CheckpointListener {
 public:
  FaultInjector(int attempts, int64_t first, int64_t per_attempt, int64_t per_subtask)
      : attempts_(attempts), first_(first), per_attempt_(per_attempt), per_subtask_(per_subtask) {}
  void Open() override {
    auto& rc = GetRuntimeContext();
    fail_at_ = rc.GetAttemptNumber() < attempts_
                   ? first_ + per_attempt_ * rc.GetAttemptNumber() + per_subtask_ * rc.GetIndexOfThisSubtask()
                   : -1;
  }
  void NotifyCheckpointComplete(CheckpointId) override { checkpointed_ = true; }
  Seq Map(const Seq& s) override {
    if (++seen_ >= fail_at_ && fail_at_ > 0 && checkpointed_) {
      fail_at_ = -1;
      throw std::runtime_error("injected failure");
    }
    return s;
  }

 private:
  int attempts_;
  int64_t first_, per_attempt_, per_subtask_;
  int64_t fail_at_ = -1;
  int64_t seen_ = 0;
  bool checkpointed_ = false;
};

/// Up to `attempts` restarts, `delay_ms` apart.
inline RestartStrategyOptions FixedDelayRestarts(int attempts = 10, int64_t delay_ms = 20) {
  RestartStrategyOptions restart;
  restart.kind = RestartStrategyOptions::Kind::kFixedDelay;
  restart.fixed_delay_attempts = attempts;
  restart.fixed_delay_ms = delay_ms;
  return restart;
}

}  // namespace freshet::test_support
