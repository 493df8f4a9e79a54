#pragma once
/// Sliding event-time windows with incremental functions and the default
/// trigger, computed from shared panes stored window-first. A pane is
/// gcd(size, slide) long; each record updates one (key, pane) accumulator.
/// When the watermark passes a window's end, the accumulators of its
/// size/pane panes are merged per key and emitted. A record therefore costs
/// one update instead of size/slide, and no timers are kept per key.
/// Results, lateness and late data follow the generic window operator with
/// EventTimeTrigger.

#include <boost/unordered/unordered_flat_map.hpp>

#include <algorithm>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "freshet/internal/window_operator.h"

namespace freshet::internal {

template <class K, class IN, class OUT, class KF, class Policy, class Final>
class SlidingPaneWindowOperator final : public OneInputOperator<IN, OUT> {
 public:
  using Acc = typename Policy::Acc;
  using Value = typename Policy::Value;

  SlidingPaneWindowOperator(OperatorContext& ctx, OutputBase* out, KF kf, const SlidingEventTimeWindows& assigner,
                            Policy policy, Final final_stage, int64_t lateness, std::string late_tag)
      : OneInputOperator<IN, OUT>(ctx, out),
        keys_(std::move(kf), ctx.max_parallelism),
        size_(assigner.Size()),
        slide_(assigner.Slide()),
        offset_(assigner.Offset()),
        pane_(std::gcd(assigner.Size(), assigner.Slide())),
        lateness_(lateness),
        times_(ctx.key_groups, ctx.max_parallelism, ctx.processing_time, [](const Timer<K, TimeWindow>&, bool) {}),
        emitter_(ctx, this->out_, &times_, std::move(policy), std::move(final_stage), std::move(late_tag)) {}

  void Open() override { emitter_.Open(); }
  void Close() override { emitter_.Close(); }

  void ProcessElement(const IN& v, Timestamp ts) override {
    if (ts == kNoTimestamp) ThrowNoTimestamp();
    Timestamp wm = times_.CurrentWatermark();
    if (ts < last_pane_ || ts - last_pane_ >= pane_) last_pane_ = TimeWindow::StartWithOffset(ts, offset_, pane_);
    Timestamp pane = last_pane_;
    Timestamp last_end = LastWindowEnd(pane);
    if (Cleanup(last_end) <= wm) {  // every window of this record is gone
      emitter_.Late(v, ts);
      return;
    }
    keys_.Set(v);
    Acc& acc = PaneOf(pane)[keys_.key];
    InvokeUser(this->ctx_.name, [&] { emitter_.GetPolicy().Add(acc, v, ts); });
    // Windows of this pane that already fired but are kept for lateness
    // fire again for this key.
    Timestamp first_end = FirstWindowEnd(pane);
    for (Timestamp e = first_end; e <= last_end && e - 1 <= wm; e += slide_) {
      if (Cleanup(e) > wm) EmitKey(keys_.key, e);
    }
    if (first_fire_ == kNoTimestamp || first_end < first_fire_) {
      // The earliest window end not yet fired that has data.
      Timestamp e = first_end;
      while (e - 1 <= wm) e += slide_;
      if (first_fire_ == kNoTimestamp || e < first_fire_) first_fire_ = e;
    }
  }

  void ProcessWatermark(int, Timestamp wm) override {
    times_.AdvanceWatermark(wm);
    while (first_fire_ != kNoTimestamp && first_fire_ - 1 <= wm) {
      Timestamp e = first_fire_;
      EmitWindow(e);
      first_fire_ = NextWindowWithData(e);
    }
    // Drop panes whose every window is past cleanup.
    while (!panes_.empty() && Cleanup(LastWindowEnd(panes_.begin()->first)) <= wm) {
      if (last_pane_bucket_ == &panes_.begin()->second) last_pane_bucket_ = nullptr;
      panes_.erase(panes_.begin());
    }
    this->out_->EmitWatermark(wm);
  }

  size_t NumPanes() const { return panes_.size(); }
  int64_t LateRecordsDropped() const { return emitter_.LateRecordsDropped(); }

 private:
  using Bucket = boost::unordered_flat_map<K, Acc, KeyHasher<K>>;

  // Windows start at offset + k * slide. A pane [p, p + pane) lies in the
  // windows whose start s satisfies p + pane - size <= s <= p.
  Timestamp LastWindowEnd(Timestamp pane) const { return TimeWindow::StartWithOffset(pane, offset_, slide_) + size_; }
  Timestamp FirstWindowEnd(Timestamp pane) const {
    Timestamp lowest = pane + pane_ - size_;
    Timestamp s = TimeWindow::StartWithOffset(lowest, offset_, slide_);
    if (s < lowest) s += slide_;
    return s + size_;
  }
  Timestamp Cleanup(Timestamp window_end) const {
    Timestamp t = window_end - 1;
    return t > kMaxWatermark - lateness_ ? kMaxWatermark : t + lateness_;
  }

  Bucket& PaneOf(Timestamp pane) {
    if (last_pane_bucket_ == nullptr || last_pane_bucket_start_ != pane) {
      last_pane_bucket_ = &panes_[pane];
      last_pane_bucket_start_ = pane;
    }
    return *last_pane_bucket_;
  }

  // The first window end after `end` whose window holds a pane.
  Timestamp NextWindowWithData(Timestamp end) const {
    auto it = panes_.lower_bound(end + slide_ - size_);
    if (it == panes_.end()) return kNoTimestamp;
    return std::max(end + slide_, FirstWindowEnd(it->first));
  }

  // Merges the window's panes per key and emits every key.
  void EmitWindow(Timestamp end) {
    merged_.clear();
    InvokeUser(this->ctx_.name, [&] {
      for (auto it = panes_.lower_bound(end - size_); it != panes_.end() && it->first < end; ++it) {
        for (const auto& [key, acc] : it->second) {
          if (Policy::Empty(acc)) continue;
          Acc copy = acc;
          emitter_.GetPolicy().Merge(merged_[key], copy);
        }
      }
    });
    TimeWindow window{end - size_, end};
    for (auto& [key, acc] : merged_) {
      emitter_.Emit(key, window, acc);
      // Without lateness a window is dropped as it fires: its function's
      // per-window state goes with it.
      if (lateness_ == 0) emitter_.Clear(key, window);
    }
  }

  // Emits one key's result of one window (late firing).
  void EmitKey(const K& key, Timestamp end) {
    Acc result{};
    bool any = false;
    InvokeUser(this->ctx_.name, [&] {
      for (auto it = panes_.lower_bound(end - size_); it != panes_.end() && it->first < end; ++it) {
        auto k = it->second.find(key);
        if (k == it->second.end() || Policy::Empty(k->second)) continue;
        Acc copy = k->second;
        emitter_.GetPolicy().Merge(result, copy);
        any = true;
      }
    });
    if (any) emitter_.Emit(key, TimeWindow{end - size_, end}, result);
  }

  KeyContext<K, KF> keys_;
  int64_t size_;
  int64_t slide_;
  int64_t offset_;
  int64_t pane_;
  int64_t lateness_;
  KeyedTimerService<K, TimeWindow> times_;  // time only: no timers are set
  WindowEmitter<K, IN, OUT, TimeWindow, Policy, Final> emitter_;
  std::map<Timestamp, Bucket> panes_;  // by pane start; std::map keeps node addresses
  Bucket merged_;
  Timestamp first_fire_ = kNoTimestamp;
  Timestamp last_pane_ = std::numeric_limits<int64_t>::max();
  Bucket* last_pane_bucket_ = nullptr;
  Timestamp last_pane_bucket_start_ = 0;
};

}  // namespace freshet::internal
