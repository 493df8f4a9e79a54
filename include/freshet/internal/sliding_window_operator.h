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
#include <limits>
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
    // After a restore, until the watermark says as much: what had happened
    // to this key's windows before the snapshot.
    Progress restored;
    if (!restored_progress_.empty()) {
      keys_.Set(v);
      restored = RestoredProgress(keys_.key);
    }
    if (Cleanup(last_end) <= wm || last_end <= restored.cleaned) {  // every window of this record is gone
      emitter_.Late(v, ts);
      return;
    }
    if (restored_progress_.empty()) keys_.Set(v);
    Acc& acc = PaneOf(pane)[keys_.key];
    InvokeUser(this->ctx_.name, [&] { emitter_.GetPolicy().Add(acc, v, ts); });
    // Windows of this pane that already fired but are kept for lateness
    // fire again for this key.
    Timestamp first_end = FirstWindowEnd(pane);
    for (Timestamp e = first_end; e <= last_end && (e - 1 <= wm || e <= restored.fired); e += slide_) {
      if (Cleanup(e) > wm && e > restored.cleaned) EmitKey(keys_.key, e);
    }
    if (first_fire_ == kNoTimestamp || first_end < first_fire_) {
      // The earliest window end not yet fired that has data.
      Timestamp e = first_end;
      while (e - 1 <= wm || e <= restored.fired) e += slide_;
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
    // The watermark now says at least as much as the restored progress.
    if (!restored_progress_.empty() && wm >= restored_progress_until_) restored_progress_.clear();
    this->out_->EmitWatermark(wm);
  }

  size_t NumPanes() const { return panes_.size(); }
  int64_t LateRecordsDropped() const { return emitter_.LateRecordsDropped(); }

  /// Per key group: the function's GlobalState() as "state", its
  /// WindowState() as "window-state", "window-panes" (per pane holding
  /// keys of the group: pane start, u64 count, (key, contents) per key)
  /// and "window-panes-progress" (two i64: windows ending at or before
  /// the first have fired, those ending at or before the second are gone,
  /// kNoTimestamp for none; what the generic operator's consumed timers
  /// say).
  AsyncSnapshot SnapshotState(CheckpointId) override {
    const int max_parallelism = this->ctx_.max_parallelism;
    KeyGroupPartWriter panes;
    struct Group {
      uint64_t count = 0;
      ByteWriter bytes;
    };
    for (const auto& [start, bucket] : panes_) {
      std::map<int, Group> groups;
      for (const auto& [key, acc] : bucket) {
        Group& g = groups[AssignToKeyGroup(key, max_parallelism)];
        ++g.count;
        TypeSerializer<K>::Serialize(key, g.bytes);
        TypeSerializer<Acc>::Serialize(acc, g.bytes);
      }
      for (const auto& [kg, g] : groups) {
        ByteWriter& out = panes.Entry(kg);
        out.Write(&start, sizeof(start));
        out.Write(&g.count, sizeof(g.count));
        out.Write(g.bytes.Data(), g.bytes.Size());
      }
    }
    KeyGroupExtraParts extra;
    panes.AddTo(kPanesPart, extra);
    const Progress now = ProgressAt(times_.CurrentWatermark());
    for (auto& [kg, parts] : extra) {
      Progress p = now;
      if (auto it = restored_progress_.find(kg); it != restored_progress_.end()) {
        p.fired = std::max(p.fired, it->second.fired);
        p.cleaned = std::max(p.cleaned, it->second.cleaned);
      }
      std::string bytes(2 * sizeof(Timestamp), '\0');
      std::memcpy(bytes.data(), &p.fired, sizeof(Timestamp));
      std::memcpy(bytes.data() + sizeof(Timestamp), &p.cleaned, sizeof(Timestamp));
      parts.emplace_back(kProgressPart, std::move(bytes));
    }
    std::vector<StateInfo> info = {{kPanesPart, Policy::kStateKind, TypeNameOf<Acc>()}};
    emitter_.CaptureWindowState(extra, info);
    return MakeKeyedSnapshot(emitter_.SnapshotGlobalState(), {}, std::move(extra), std::move(info));
  }

  void InitializeState(const OperatorRestore& restore) override {
    const std::string& op = this->ctx_.name;
    CheckRestoredType(restore, op, kPanesPart, TypeNameOf<Acc>());
    emitter_.SetRestoredInfo(restore);
    std::map<int, Progress> by_group;  // key groups holding panes
    RestoreKeyedState(restore, emitter_.GlobalStateBackend(), &times_, op,
                      [&](const std::string& part, int kg, std::string_view bytes) {
                        if (part == kPanesPart) {
                          by_group.try_emplace(kg);
                          ReadPartEntries(op, part, kg, bytes, [&](ByteReader& r) { RestorePaneEntry(r); });
                        } else if (part == kProgressPart) {
                          Progress p;
                          if (bytes.size() != 2 * sizeof(Timestamp)) {
                            throw OperatorException(op, "state part '" + part + "' of key group " +
                                                            std::to_string(kg) + " does not decode");
                          }
                          std::memcpy(&p.fired, bytes.data(), sizeof(Timestamp));
                          std::memcpy(&p.cleaned, bytes.data() + sizeof(Timestamp), sizeof(Timestamp));
                          by_group.insert_or_assign(kg, p);
                        } else {
                          return emitter_.RestorePart(part, kg, bytes);
                        }
                        return true;
                      });
    if (panes_.empty()) return;
    // Key groups restored from old subtasks that had fired up to different
    // windows keep their own progress until the watermark passes them all;
    // the first window to fire is the earliest one not fired for some group.
    Timestamp min_fired = kMaxWatermark;
    for (const auto& [kg, p] : by_group) {
      min_fired = std::min(min_fired, p.fired);
      // kMaxWatermark: every window fired (no pane is left then).
      if (p.fired == kNoTimestamp || p.fired == kMaxWatermark) continue;
      restored_progress_.emplace(kg, p);
      Timestamp until = p.fired - 1;
      if (p.cleaned != kNoTimestamp) until = std::max(until, Cleanup(p.cleaned));
      restored_progress_until_ = std::max(restored_progress_until_, until);
    }
    if (min_fired == kNoTimestamp) {
      first_fire_ = FirstWindowEnd(panes_.begin()->first);
    } else if (min_fired != kMaxWatermark) {
      first_fire_ = NextWindowWithData(min_fired);
    }
  }

 private:
  using Bucket = boost::unordered_flat_map<K, Acc, KeyHasher<K>>;
  static constexpr const char* kPanesPart = "window-panes";
  static constexpr const char* kProgressPart = "window-panes-progress";

  // What had happened to a key group's windows at a snapshot: windows
  // ending at or before `fired` had fired, those ending at or before
  // `cleaned` were gone; kNoTimestamp for none.
  struct Progress {
    Timestamp fired = kNoTimestamp;
    Timestamp cleaned = kNoTimestamp;
  };

  void RestorePaneEntry(ByteReader& r) {
    Timestamp start = 0;
    uint64_t n = 0;
    r.Read(&start, sizeof(start));
    r.Read(&n, sizeof(n));
    if (r.Failed()) return;
    Bucket& bucket = panes_[start];
    for (uint64_t i = 0; i < n && !r.Failed(); ++i) {
      K key{};
      Acc acc{};
      TypeSerializer<K>::Deserialize(r, key);
      TypeSerializer<Acc>::Deserialize(r, acc);
      if (!r.Failed()) bucket.insert_or_assign(std::move(key), std::move(acc));
    }
  }

  // The windows the watermark `wm` has fired and dropped: a window ending
  // at e fired when e - 1 <= wm and is gone when Cleanup(e) <= wm.
  Progress ProgressAt(Timestamp wm) const {
    // Far from any real time: nothing yet, or everything (the final watermark).
    if (wm < kNoTimestamp / 2) return Progress{};
    if (wm > kMaxWatermark / 2) return Progress{kMaxWatermark, kMaxWatermark};
    return Progress{LastWindowEndAtOrBefore(wm + 1), LastWindowEndAtOrBefore(wm + 1 - lateness_)};
  }
  Timestamp LastWindowEndAtOrBefore(Timestamp t) const {
    return TimeWindow::StartWithOffset(t - size_, offset_, slide_) + size_;
  }
  // The restored progress of `key`'s group. REQUIRES: !restored_progress_.empty().
  Progress RestoredProgress(const K& key) const {
    auto it = restored_progress_.find(AssignToKeyGroup(key, this->ctx_.max_parallelism));
    return it == restored_progress_.end() ? Progress{} : it->second;
  }

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
      if (!restored_progress_.empty() && end <= RestoredProgress(key).fired) continue;  // fired before the restore
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
  // After a restore, until the watermark reaches restored_progress_until_:
  // per key group, the windows that had fired and were gone at the
  // snapshot (its old subtask's watermark). They do not fire again, and a
  // late record for one still kept fires it as it would have then.
  std::map<int, Progress> restored_progress_;
  Timestamp restored_progress_until_ = kNoTimestamp;
  Timestamp last_pane_ = std::numeric_limits<int64_t>::max();
  Bucket* last_pane_bucket_ = nullptr;
  Timestamp last_pane_bucket_start_ = 0;
};

}  // namespace freshet::internal
