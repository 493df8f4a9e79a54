#pragma once
/// Sliding event-time windows with incremental functions, computed from
/// shared panes: each record updates one pane (gcd(size, slide) long), and
/// a window's result merges its size/pane panes when it fires. A record
/// therefore costs one update instead of size/slide, and one timer per key
/// is pending at a time. Results, lateness and late-data handling are those
/// of the generic window operator with the default trigger.

#include <boost/unordered/unordered_flat_map.hpp>

#include <algorithm>
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
        keys_{std::move(kf), ctx.max_parallelism},
        size_(assigner.Size()),
        slide_(assigner.Slide()),
        offset_(assigner.Offset()),
        pane_(std::gcd(assigner.Size(), assigner.Slide())),
        lateness_(lateness),
        late_tag_(std::move(late_tag)),
        policy_(std::move(policy)),
        final_(std::move(final_stage)),
        timers_(ctx.key_groups, ctx.max_parallelism, ctx.processing_time,
                [this](const Timer<K, TimeWindow>& t, bool) { OnTimer(t); }),
        collector_(this->out_) {
    if constexpr (!std::is_same_v<Final, EmitValues>) process_context_.emplace(nullptr, &timers_, &ctx.side_outputs);
    if (ctx.counters != nullptr) late_dropped_ = &(*ctx.counters)[ctx.name + "." + kLateRecordsDropped];
  }

  void Open() override {
    if constexpr (!std::is_same_v<Final, EmitValues>) OpenUserFunction(final_, this->ctx_);
  }
  void Close() override {
    if constexpr (!std::is_same_v<Final, EmitValues>) CloseUserFunction(final_, this->ctx_);
  }

  void ProcessElement(const IN& v, Timestamp ts) override {
    if (ts == kNoTimestamp) ThrowNoTimestamp();
    Timestamp wm = timers_.CurrentWatermark();
    Timestamp pane = TimeWindow::StartWithOffset(ts, offset_, pane_);
    Timestamp last_end = LastWindowEnd(pane);
    if (Cleanup(last_end) <= wm) {  // every window of this record is gone
      if (!late_tag_.empty()) {
        if (OutputBase* out = this->ctx_.side_outputs.Find(late_tag_)) {
          static_cast<Output<IN>*>(out)->Collect(v, ts);
          return;
        }
      }
      if (late_dropped_ != nullptr) ++*late_dropped_;
      ++late_dropped_local_;
      return;
    }
    keys_.Set(v);
    KeyPanes& kp = state_[keys_.key];
    Acc& acc = PaneAcc(kp, pane);
    InvokeUser(this->ctx_.name, [&] { policy_.Add(acc, v, ts); });

    // Windows of this pane already fired but kept for lateness fire again.
    Timestamp first_end = FirstWindowEnd(pane);
    Timestamp e = first_end;
    for (; e <= last_end && e - 1 <= wm; e += slide_) {
      if (e - 1 + lateness_ > wm) EmitWindow(keys_.key, kp, e);
    }
    // The earliest unfired window of this pane needs a pending timer.
    if (e <= last_end && (kp.next_fire == kNoTimestamp || e < kp.next_fire)) {
      kp.next_fire = e;
      timers_.RegisterEventTimeTimer(keys_.KeyGroup(), keys_.key, TimeWindow{0, 0}, e - 1);
    }
    if (lateness_ > 0) ScheduleCleanup(kp, keys_.key, keys_.KeyGroup(), last_end);
  }

  void ProcessWatermark(int, Timestamp wm) override {
    timers_.AdvanceWatermark(wm);
    this->out_->EmitWatermark(wm);
  }

  size_t NumKeys() const { return state_.size(); }
  size_t NumPanes() const {
    size_t n = 0;
    for (const auto& [k, kp] : state_) n += kp.panes.size();
    return n;
  }
  int64_t LateRecordsDropped() const { return late_dropped_local_; }

 private:
  struct KeyPanes {
    std::vector<std::pair<Timestamp, Acc>> panes;  // sorted by pane start
    Timestamp next_fire = kNoTimestamp;             // end of the earliest pending window
    Timestamp cleanup_at = kNoTimestamp;            // pending cleanup timer (lateness > 0)
  };

  // Windows start at offset + k * slide. A pane [p, p + pane) lies in the
  // windows whose start s satisfies p + pane - size <= s <= p.
  Timestamp LastWindowEnd(Timestamp pane) const { return TimeWindow::StartWithOffset(pane, offset_, slide_) + size_; }
  Timestamp FirstWindowEnd(Timestamp pane) const {
    Timestamp lowest = pane + pane_ - size_;
    Timestamp s = TimeWindow::StartWithOffset(lowest, offset_, slide_);
    if (s < lowest) s += slide_;
    return s + size_;
  }
  Timestamp Cleanup(Timestamp window_end) const { return window_end - 1 + lateness_; }

  static Acc& PaneAcc(KeyPanes& kp, Timestamp pane) {
    auto& v = kp.panes;
    // In-order input hits the last pane; search backwards.
    for (size_t i = v.size(); i-- > 0;) {
      if (v[i].first == pane) return v[i].second;
      if (v[i].first < pane) return v.insert(v.begin() + static_cast<long>(i) + 1, {pane, Acc{}})->second;
    }
    return v.insert(v.begin(), {pane, Acc{}})->second;
  }

  void EmitWindow(const K& key, KeyPanes& kp, Timestamp end) {
    Timestamp start = end - size_;
    auto it = std::lower_bound(kp.panes.begin(), kp.panes.end(), start,
                               [](const auto& p, Timestamp t) { return p.first < t; });
    Acc merged{};
    bool any = false;
    InvokeUser(this->ctx_.name, [&] {
      for (; it != kp.panes.end() && it->first < end; ++it) {
        if (Policy::Empty(it->second)) continue;
        Acc copy = it->second;
        policy_.Merge(merged, copy);
        any = true;
      }
    });
    if (!any) return;
    TimeWindow window{start, end};
    Timestamp ts = window.MaxTimestamp();
    collector_.SetTimestamp(ts);
    if constexpr (std::is_same_v<Final, EmitValues>) {
      InvokeUser(this->ctx_.name,
                 [&] { policy_.Values(merged, window, [&](const Value& value) { this->out_->Collect(value, ts); }); });
    } else {
      values_.clear();
      InvokeUser(this->ctx_.name,
                 [&] { policy_.Values(merged, window, [&](const Value& value) { values_.push_back(value); }); });
      process_context_->SetWindow(&window);
      InvokeUser(this->ctx_.name, [&] { final_.Process(key, *process_context_, values_, collector_); });
    }
  }

  void ScheduleCleanup(KeyPanes& kp, const K& key, int key_group, Timestamp last_end) {
    Timestamp at = Cleanup(last_end);
    if (kp.cleanup_at != kNoTimestamp && kp.cleanup_at >= at) return;
    kp.cleanup_at = at;
    timers_.RegisterEventTimeTimer(key_group, key, TimeWindow{1, 1}, at);
  }

  void OnTimer(const Timer<K, TimeWindow>& t) {
    auto it = state_.find(t.key);
    if (it == state_.end()) return;
    KeyPanes& kp = it->second;
    if (t.ns.start == 0) {  // a window end
      Timestamp end = t.timestamp + 1;
      if (kp.next_fire == end) kp.next_fire = kNoTimestamp;
      EmitWindow(t.key, kp, end);
      // Next window with data: starts after this one's start + slide.
      Timestamp next_start = end + slide_ - size_;
      auto p = std::lower_bound(kp.panes.begin(), kp.panes.end(), next_start,
                                [](const auto& x, Timestamp v) { return x.first < v; });
      if (p != kp.panes.end()) {
        Timestamp next = std::max(end + slide_, FirstWindowEnd(p->first));
        if (kp.next_fire == kNoTimestamp || next < kp.next_fire) {
          kp.next_fire = next;
          timers_.RegisterEventTimeTimer(t.key_group, t.key, TimeWindow{0, 0}, next - 1);
        }
      }
    } else if (kp.cleanup_at == t.timestamp) {
      kp.cleanup_at = kNoTimestamp;
    }
    // Drop panes whose every window is past cleanup at this timer's time
    // (timers fire in time order while the watermark may be far ahead).
    std::erase_if(kp.panes, [&](const auto& pane) { return Cleanup(LastWindowEnd(pane.first)) <= t.timestamp; });
    if (kp.panes.empty()) {
      if (kp.next_fire == kNoTimestamp && kp.cleanup_at == kNoTimestamp) state_.erase(it);
    } else if (lateness_ > 0 && kp.cleanup_at == kNoTimestamp) {
      ScheduleCleanup(kp, t.key, t.key_group, LastWindowEnd(kp.panes.back().first));
    }
  }

  KeyContext<K, KF> keys_;
  int64_t size_;
  int64_t slide_;
  int64_t offset_;
  int64_t pane_;
  int64_t lateness_;
  std::string late_tag_;
  Policy policy_;
  Final final_;
  KeyedTimerService<K, TimeWindow> timers_;
  Collector<OUT> collector_;
  boost::unordered_flat_map<K, KeyPanes, KeyHasher<K>> state_;
  std::vector<Value> values_;
  std::optional<typename FinalContext<Final, K, TimeWindow>::type> process_context_;
  int64_t* late_dropped_ = nullptr;
  int64_t late_dropped_local_ = 0;
};

}  // namespace freshet::internal
