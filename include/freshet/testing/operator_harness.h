#pragma once
/// Test harnesses for one operator: push elements, watermarks and
/// processing time by hand, read the output, the side outputs and the
/// emitted watermarks. The operator is the one that produces a stream built
/// through the normal API, so what is tested is what runs in a job.
///
///   auto env = StreamExecutionEnvironment::Create();
///   auto out = env->FromElements<Event>({}).KeyBy(...).Window(...).Reduce(...);
///   OneInputOperatorHarness<Event, Event> h(out);
///   h.ProcessElement(e, 7); h.ProcessWatermark(20);
///   h.Output();  // records with timestamps

#include <any>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "freshet/data_stream.h"
#include "freshet/internal/timer_service.h"

namespace freshet::testing {

/// Processing time that moves only when told to.
class ManualProcessingTimeService final : public internal::ProcessingTimeService {
 public:
  Timestamp CurrentProcessingTime() const override { return now_; }
  void RegisterTimer(Timestamp time, std::function<void(Timestamp)> callback) override {
    queue_.Add(time, std::move(callback));
  }
  /// Moves time to `t` and runs every callback due by then, in time order.
  void SetTime(Timestamp t) {
    now_ = t;
    queue_.RunDue(now_);
  }
  size_t PendingTimers() const { return queue_.Size(); }

 private:
  Timestamp now_ = 0;
  internal::CallbackQueue queue_;
};

/// Records what an operator emits.
template <class T>
class CollectingOutput final : public internal::Output<T> {
 public:
  void Collect(const T& value, Timestamp ts) override { records.emplace_back(value, ts); }
  void EmitWatermark(Timestamp wm) override { watermarks.push_back(wm); }
  void EmitWatermarkStatus(bool idle) override { statuses.push_back(idle); }
  std::vector<std::pair<T, Timestamp>> records;
  std::vector<Timestamp> watermarks;
  std::vector<bool> statuses;
};

/// Drives the operator that produces `stream` (a one-input operator).
template <class IN, class OUT>
class OneInputOperatorHarness {
 public:
  /// `subtask` of `parallelism` decides the key groups the operator owns;
  /// by default it owns all of them.
  explicit OneInputOperatorHarness(const DataStream<OUT>& stream, int subtask = 0, int parallelism = 1,
                                   int max_parallelism = 128)
      : runtime_("harness", subtask, parallelism, max_parallelism, 0) {
    const internal::Transformation& t = stream.Env()->GetTransformation(stream.Id());
    ctx_.name = t.name;
    ctx_.runtime = &runtime_;
    ctx_.max_parallelism = max_parallelism;
    ctx_.key_groups = KeyGroupRangeForSubtask(subtask, parallelism, max_parallelism);
    ctx_.records_in = &records_in_;
    ctx_.records_out = &records_out_;
    ctx_.accumulators = &accumulators_;
    ctx_.processing_time = &time_;
    ctx_.counters = &counters_;
    ctx_.state_backend = stream.Env()->GetStateBackend();
    op_ = t.factory(ctx_, &output_);
    input_ = static_cast<internal::Input<IN>*>(op_->InputAt(1));
  }
  ~OneInputOperatorHarness() {
    if (open_) op_->Close();
  }

  /// Collects side output `tag` from now on.
  template <class X>
  void CollectSideOutput(const OutputTag<X>& tag) {
    auto out = std::make_shared<CollectingOutput<X>>();
    side_[tag.Id()] = out;
    ctx_.side_outputs.Add(tag.Id(), out.get());
  }

  /// Restores state (call before Open()), e.g. from Snapshot() of another
  /// harness or from RestoreFromSnapshots().
  void InitializeState(const internal::OperatorRestore& restore) { op_->InitializeState(restore); }
  /// Takes checkpoint `id` as a task would at the barrier and writes it at once.
  internal::MemorySnapshotOutput Snapshot(CheckpointId id = 1) {
    op_->PrepareSnapshotPreBarrier(id);
    internal::MemorySnapshotOutput out;
    if (internal::AsyncSnapshot write = op_->SnapshotState(id)) {
      Status s = write(out);
      if (!s.IsOk()) throw std::runtime_error("snapshot failed: " + s.ToString());
    }
    return out;
  }
  void NotifyCheckpointComplete(CheckpointId id) { op_->NotifyCheckpointComplete(id); }

  void Open() {
    op_->Open();
    open_ = true;
  }
  void ProcessElement(const IN& value, Timestamp ts = kNoTimestamp) { input_->ProcessElement(value, ts); }
  void ProcessWatermark(Timestamp wm) { op_->ProcessWatermark(1, wm); }
  void ProcessWatermarkStatus(bool idle) { op_->ProcessWatermarkStatus(1, idle); }
  void SetProcessingTime(Timestamp t) { time_.SetTime(t); }
  /// Ends the input: EndInput, then Finish.
  void EndInput() {
    op_->EndInput(1);
    op_->Finish();
  }
  void Close() {
    if (open_) op_->Close();
    open_ = false;
  }

  /// Records emitted so far, with their timestamps.
  const std::vector<std::pair<OUT, Timestamp>>& Output() const { return output_.records; }
  std::vector<OUT> OutputValues() const {
    std::vector<OUT> v;
    for (const auto& [value, ts] : output_.records) v.push_back(value);
    return v;
  }
  void ClearOutput() { output_.records.clear(); }
  const std::vector<Timestamp>& Watermarks() const { return output_.watermarks; }
  const std::vector<bool>& WatermarkStatuses() const { return output_.statuses; }
  template <class X>
  const std::vector<std::pair<X, Timestamp>>& SideOutput(const OutputTag<X>& tag) const {
    return std::static_pointer_cast<CollectingOutput<X>>(side_.at(tag.Id()))->records;
  }
  int64_t Counter(const std::string& name) const {
    auto it = counters_.find(name);
    return it == counters_.end() ? 0 : it->second;
  }
  internal::StreamOperator& Operator() { return *op_; }
  ManualProcessingTimeService& ProcessingTime() { return time_; }

 private:
  RuntimeContext runtime_;
  internal::OperatorContext ctx_;
  ManualProcessingTimeService time_;
  CollectingOutput<OUT> output_;
  std::map<std::string, std::shared_ptr<void>> side_;
  std::map<std::string, std::string> accumulators_;
  std::map<std::string, int64_t> counters_;
  int64_t records_in_ = 0;
  int64_t records_out_ = 0;
  std::unique_ptr<internal::StreamOperator> op_;
  internal::Input<IN>* input_ = nullptr;
  bool open_ = false;
};

/// Drives the two-input operator that produces `stream` (connected streams,
/// broadcast connected streams, joins), like OneInputOperatorHarness.
template <class IN1, class IN2, class OUT>
class TwoInputOperatorHarness {
 public:
  explicit TwoInputOperatorHarness(const DataStream<OUT>& stream, int subtask = 0, int parallelism = 1,
                                   int max_parallelism = 128)
      : runtime_("harness", subtask, parallelism, max_parallelism, 0) {
    const internal::Transformation& t = stream.Env()->GetTransformation(stream.Id());
    ctx_.name = t.name;
    ctx_.runtime = &runtime_;
    ctx_.max_parallelism = max_parallelism;
    ctx_.key_groups = KeyGroupRangeForSubtask(subtask, parallelism, max_parallelism);
    ctx_.records_in = &records_in_;
    ctx_.records_out = &records_out_;
    ctx_.accumulators = &accumulators_;
    ctx_.processing_time = &time_;
    ctx_.counters = &counters_;
    ctx_.state_backend = stream.Env()->GetStateBackend();
    op_ = t.factory(ctx_, &output_);
    input1_ = static_cast<internal::Input<IN1>*>(op_->InputAt(1));
    input2_ = static_cast<internal::Input<IN2>*>(op_->InputAt(2));
  }
  ~TwoInputOperatorHarness() {
    if (open_) op_->Close();
  }

  /// Collects side output `tag` from now on.
  template <class X>
  void CollectSideOutput(const OutputTag<X>& tag) {
    auto out = std::make_shared<CollectingOutput<X>>();
    side_[tag.Id()] = out;
    ctx_.side_outputs.Add(tag.Id(), out.get());
  }

  /// Restores state (call before Open()).
  void InitializeState(const internal::OperatorRestore& restore) { op_->InitializeState(restore); }
  /// Takes checkpoint `id` as a task would at the barrier and writes it at once.
  internal::MemorySnapshotOutput Snapshot(CheckpointId id = 1) {
    op_->PrepareSnapshotPreBarrier(id);
    internal::MemorySnapshotOutput out;
    if (internal::AsyncSnapshot write = op_->SnapshotState(id)) {
      Status s = write(out);
      if (!s.IsOk()) throw std::runtime_error("snapshot failed: " + s.ToString());
    }
    return out;
  }
  void NotifyCheckpointComplete(CheckpointId id) { op_->NotifyCheckpointComplete(id); }

  void Open() {
    op_->Open();
    open_ = true;
  }
  void ProcessElement1(const IN1& value, Timestamp ts = kNoTimestamp) { input1_->ProcessElement(value, ts); }
  void ProcessElement2(const IN2& value, Timestamp ts = kNoTimestamp) { input2_->ProcessElement(value, ts); }
  void ProcessWatermark1(Timestamp wm) { op_->ProcessWatermark(1, wm); }
  void ProcessWatermark2(Timestamp wm) { op_->ProcessWatermark(2, wm); }
  void ProcessWatermarkStatus1(bool idle) { op_->ProcessWatermarkStatus(1, idle); }
  void ProcessWatermarkStatus2(bool idle) { op_->ProcessWatermarkStatus(2, idle); }
  void SetProcessingTime(Timestamp t) { time_.SetTime(t); }
  /// Ends both inputs: EndInput(1), EndInput(2), then Finish.
  void EndInput() {
    op_->EndInput(1);
    op_->EndInput(2);
    op_->Finish();
  }
  void Close() {
    if (open_) op_->Close();
    open_ = false;
  }

  /// Records emitted so far, with their timestamps.
  const std::vector<std::pair<OUT, Timestamp>>& Output() const { return output_.records; }
  std::vector<OUT> OutputValues() const {
    std::vector<OUT> v;
    for (const auto& [value, ts] : output_.records) v.push_back(value);
    return v;
  }
  void ClearOutput() { output_.records.clear(); }
  const std::vector<Timestamp>& Watermarks() const { return output_.watermarks; }
  const std::vector<bool>& WatermarkStatuses() const { return output_.statuses; }
  template <class X>
  const std::vector<std::pair<X, Timestamp>>& SideOutput(const OutputTag<X>& tag) const {
    return std::static_pointer_cast<CollectingOutput<X>>(side_.at(tag.Id()))->records;
  }
  int64_t Counter(const std::string& name) const {
    auto it = counters_.find(name);
    return it == counters_.end() ? 0 : it->second;
  }
  internal::StreamOperator& Operator() { return *op_; }
  ManualProcessingTimeService& ProcessingTime() { return time_; }

 private:
  RuntimeContext runtime_;
  internal::OperatorContext ctx_;
  ManualProcessingTimeService time_;
  CollectingOutput<OUT> output_;
  std::map<std::string, std::shared_ptr<void>> side_;
  std::map<std::string, std::string> accumulators_;
  std::map<std::string, int64_t> counters_;
  int64_t records_in_ = 0;
  int64_t records_out_ = 0;
  std::unique_ptr<internal::StreamOperator> op_;
  internal::Input<IN1>* input1_ = nullptr;
  internal::Input<IN2>* input2_ = nullptr;
  bool open_ = false;
};

/// What subtask `subtask` of `parallelism` restores from the snapshots of
/// all old subtasks (index = old subtask), with the redistribution a job
/// restore applies: key groups of the new range; split lists cut into
/// contiguous parts; union lists whole; broadcast lists from old subtask
/// (subtask mod old parallelism).
inline internal::OperatorRestore RestoreFromSnapshots(const std::vector<internal::MemorySnapshotOutput>& old,
                                                      int subtask, int parallelism, int max_parallelism = 128) {
  internal::OperatorRestore r;
  r.restored = true;
  KeyGroupRange range = KeyGroupRangeForSubtask(subtask, parallelism, max_parallelism);
  std::map<std::string, std::vector<std::string>> split;
  std::map<std::string, internal::OperatorStateMode> modes;
  for (size_t i = 0; i < old.size(); ++i) {
    const internal::MemorySnapshotOutput& o = old[i];
    for (const auto& [kg, bytes] : o.key_groups) {
      if (range.Contains(kg)) r.key_groups.emplace_back(kg, bytes);
    }
    for (const auto& [name, state] : o.operator_state) {
      modes[name] = state.mode;
      auto& entries = split[name];
      if (state.mode == internal::OperatorStateMode::kBroadcast) {
        if (static_cast<int>(i) == subtask % static_cast<int>(old.size())) entries = state.entries;
      } else {
        entries.insert(entries.end(), state.entries.begin(), state.entries.end());
      }
    }
    if (r.state_info.empty()) r.state_info = o.state_info;
  }
  for (auto& [name, entries] : split) {
    auto& out = r.operator_state[name];
    out.mode = modes[name];
    if (out.mode != internal::OperatorStateMode::kSplit) {
      out.entries = std::move(entries);
      continue;
    }
    size_t n = entries.size(), p = static_cast<size_t>(parallelism), i = static_cast<size_t>(subtask);
    size_t begin = i * (n / p) + std::min(i, n % p);
    size_t end = begin + n / p + (i < n % p ? 1 : 0);
    out.entries.assign(entries.begin() + static_cast<std::ptrdiff_t>(begin),
                       entries.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return r;
}

}  // namespace freshet::testing
