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
        times_(ctx.key_groups, ctx.max_parallelism, ctx.processing_time, [](const Timer<K, W>&, bool) {}),
        emitter_(ctx, this->out_, &times_, std::move(policy), std::move(final_stage), std::move(late_tag)) {}

  void Open() override { emitter_.Open(); }
  void Close() override { emitter_.Close(); }

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
      InvokeUser(this->ctx_.name, [&] { emitter_.GetPolicy().Add(acc, v, ts); });
      // A late record of a window kept for allowed lateness fires it again.
      if (w.MaxTimestamp() <= wm) {
        // The window may be new here: mark it fired so the next watermark does not fire it twice.
        buckets_[w].fired = true;
        emitter_.Emit(keys_.key, w, acc);
      }
    }
    if (skipped && ts + lateness_ <= wm) emitter_.Late(v, ts);
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
          if (!Policy::Empty(acc)) emitter_.Emit(key, w, acc);
        }
      }
      if (Cleanup(w) <= wm) {
        if constexpr (!std::is_same_v<Final, EmitValues>) {
          for (auto& [key, acc] : it->second.keys) emitter_.Clear(key, w);
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
  int64_t LateRecordsDropped() const { return emitter_.LateRecordsDropped(); }

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

  KeyContext<K, KF> keys_;
  Assigner assigner_;
  int64_t lateness_;
  KeyedTimerService<K, W> times_;  // time only: no timers are set
  WindowEmitter<K, IN, OUT, W, Policy, Final> emitter_;
  std::map<W, WindowBucket> buckets_;  // std::map: node addresses stay valid
  W last_window_{};
  WindowBucket* last_bucket_ = nullptr;
  std::vector<W> windows_;
};

}  // namespace freshet::internal
