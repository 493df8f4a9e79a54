#pragma once
/// Event-time windows with the default trigger, stored window-first: one
/// hash map of keys per open window. With the default trigger every key of
/// a window fires at the same watermark, so a window needs no per-key
/// timers: when the watermark passes a window's end, its map is emitted in
/// one sequential pass and dropped whole at its cleanup time. Per record
/// this costs one lookup in a map of keys, instead of a lookup keyed by
/// (key, window) plus a timer per new (key, window). Results, lateness and
/// late data follow the generic window operator with EventTimeTrigger.

#include <boost/unordered/unordered_flat_map.hpp>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "freshet/internal/window_operator.h"

namespace freshet::internal {

template <class K, class IN, class OUT, class Assigner, class KF, class Policy, class Final>
class BucketedWindowOperator final : public OneInputOperator<IN, OUT> {
 public:
  using W = typename Assigner::WindowType;
  using Acc = typename Policy::Acc;
  using Value = typename Policy::Value;
  static_assert(Assigner::kIsEventTime && !Assigner::kIsMerging);

  BucketedWindowOperator(OperatorContext& ctx, OutputBase* out, KF kf, Assigner assigner, int64_t lateness,
                         std::string late_tag, Policy policy, Final final_stage)
      : OneInputOperator<IN, OUT>(ctx, out),
        keys_(std::move(kf), ctx.max_parallelism),
        assigner_(std::move(assigner)),
        lateness_(lateness),
        late_tag_(std::move(late_tag)),
        policy_(std::move(policy)),
        final_(std::move(final_stage)),
        times_(ctx.key_groups, ctx.max_parallelism, ctx.processing_time, [](const Timer<K, W>&, bool) {}),
        collector_(this->out_) {
    if constexpr (!std::is_same_v<Final, EmitValues>) {
      process_context_.emplace(nullptr, &times_, &ctx.side_outputs);
      function_state_.emplace(ctx);
    }
    if (ctx.counters != nullptr) late_dropped_ = &(*ctx.counters)[ctx.name + "." + kLateRecordsDropped];
  }

  void Open() override {
    if constexpr (!std::is_same_v<Final, EmitValues>) OpenUserFunction(final_, this->ctx_);
  }
  void Close() override {
    if constexpr (!std::is_same_v<Final, EmitValues>) CloseUserFunction(final_, this->ctx_);
  }

  void ProcessElement(const IN& v, Timestamp ts) override {
    windows_.clear();
    assigner_.AssignWindows(v, ts, kNoTimestamp, windows_);
    keys_.Set(v);
    Timestamp wm = times_.CurrentWatermark();
    bool skipped = true;
    for (const W& w : windows_) {
      if (Cleanup(w) <= wm) continue;  // the window is gone
      skipped = false;
      Bucket& bucket = BucketOf(w);
      Acc& acc = bucket[keys_.key];
      InvokeUser(this->ctx_.name, [&] { policy_.Add(acc, v, ts); });
      // A late record of a window kept for allowed lateness fires it again.
      if (w.MaxTimestamp() <= wm) {
        // The window may be new here: mark it fired so the next watermark does not fire it twice.
        buckets_[w].fired = true;
        Emit(keys_.key, w, acc);
      }
    }
    if (skipped && ts + lateness_ <= wm) {
      if (!late_tag_.empty()) {
        if (OutputBase* out = this->ctx_.side_outputs.Find(late_tag_)) {
          static_cast<Output<IN>*>(out)->Collect(v, ts);
          return;
        }
      }
      if (late_dropped_ != nullptr) ++*late_dropped_;
      ++late_dropped_local_;
    }
  }

  void ProcessWatermark(int, Timestamp wm) override {
    times_.AdvanceWatermark(wm);
    // Windows in time order: fire those the watermark passed, drop those
    // past cleanup.
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      const W& w = it->first;
      if (w.MaxTimestamp() > wm) break;
      if (!it->second.fired) {
        it->second.fired = true;
        for (auto& [key, acc] : it->second.keys) {
          if (!Policy::Empty(acc)) Emit(key, w, acc);
        }
      }
      if (Cleanup(w) <= wm) {
        if constexpr (!std::is_same_v<Final, EmitValues>) {
          process_context_->SetWindow(&w);
          for (auto& [key, acc] : it->second.keys) {
            function_state_->Enter(*process_context_, key, w);
            InvokeUser(this->ctx_.name, [&] { final_.Clear(*process_context_); });
          }
        }
        if (last_bucket_ == &it->second) last_bucket_ = nullptr;
        it = buckets_.erase(it);
      } else {
        ++it;
      }
    }
    this->out_->EmitWatermark(wm);
  }

  size_t NumWindows() const { return buckets_.size(); }
  int64_t LateRecordsDropped() const { return late_dropped_local_; }

 private:
  using Bucket = boost::unordered_flat_map<K, Acc, KeyHasher<K>>;
  struct WindowBucket {
    Bucket keys;
    bool fired = false;
  };

  Timestamp Cleanup(const W& w) const {
    Timestamp t = w.MaxTimestamp();
    return t > kMaxWatermark - lateness_ ? kMaxWatermark : t + lateness_;
  }

  Bucket& BucketOf(const W& w) {
    // Consecutive records mostly fall into the same window.
    if (last_bucket_ != nullptr && last_window_ == w) return last_bucket_->keys;
    WindowBucket& b = buckets_[w];
    last_window_ = w;
    last_bucket_ = &b;
    return b.keys;
  }

  void Emit(const K& key, const W& window, Acc& acc) {
    Timestamp ts = window.MaxTimestamp();
    collector_.SetTimestamp(ts);
    if constexpr (std::is_same_v<Final, EmitValues>) {
      InvokeUser(this->ctx_.name,
                 [&] { policy_.Values(acc, window, [&](const Value& value) { this->out_->Collect(value, ts); }); });
    } else {
      values_.clear();
      InvokeUser(this->ctx_.name,
                 [&] { policy_.Values(acc, window, [&](const Value& value) { values_.push_back(value); }); });
      process_context_->SetWindow(&window);
      function_state_->Enter(*process_context_, key, window);
      InvokeUser(this->ctx_.name, [&] { final_.Process(key, *process_context_, values_, collector_); });
    }
  }

  KeyContext<K, KF> keys_;
  Assigner assigner_;
  int64_t lateness_;
  std::string late_tag_;
  Policy policy_;
  Final final_;
  KeyedTimerService<K, W> times_;  // time only: no timers are set
  Collector<OUT> collector_;
  std::map<W, WindowBucket> buckets_;  // std::map: node addresses stay valid
  W last_window_{};
  WindowBucket* last_bucket_ = nullptr;
  std::vector<W> windows_;
  std::vector<Value> values_;
  std::optional<typename FinalContext<Final, K, W>::type> process_context_;
  std::optional<WindowFunctionState<K, W>> function_state_;
  int64_t* late_dropped_ = nullptr;
  int64_t late_dropped_local_ = 0;
};

}  // namespace freshet::internal
