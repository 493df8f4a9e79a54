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
#include <boost/unordered/unordered_flat_set.hpp>

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
      WindowBucket& bucket = BucketOf(w);
      Acc& acc = bucket.keys[keys_.key];
      InvokeUser(this->ctx_.name, [&] { emitter_.GetPolicy().Add(acc, v, ts); });
      // A late record of a window kept for allowed lateness fires it again.
      if (w.MaxTimestamp() <= wm) {
        // The window may be new here: mark it fired so the next watermark does not fire it twice.
        bucket.fired = true;
        emitter_.Emit(keys_.key, w, acc);
      } else if (bucket.fired || FiredBeforeRestore(w, keys_.key)) {
        // Restored without a watermark yet: the window fired before the
        // snapshot, so this record is late for it as well.
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
        const KeySet* fired_keys = FiredKeysBeforeRestore(w);
        for (auto& [key, acc] : it->second.keys) {
          if (Policy::Empty(acc) || (fired_keys != nullptr && fired_keys->contains(key))) continue;
          emitter_.Emit(key, w, acc);
        }
        if (fired_keys != nullptr) fired_before_restore_.erase(w);
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

  /// Per key group: the function's GlobalState() as "state", its
  /// WindowState() as "window-state", and "window-buckets": per window
  /// holding keys of the group, the window, whether it fired (u8), a u64
  /// count and (key, contents) per key.
  AsyncSnapshot SnapshotState(CheckpointId) override {
    const int max_parallelism = this->ctx_.max_parallelism;
    KeyGroupPartWriter buckets;
    struct Group {
      uint64_t count = 0;
      ByteWriter bytes;
    };
    for (const auto& [w, bucket] : buckets_) {
      const KeySet* fired_keys = FiredKeysBeforeRestore(w);
      std::map<std::pair<int, uint8_t>, Group> groups;  // (key group, fired) -> keys
      for (const auto& [key, acc] : bucket.keys) {
        bool fired = bucket.fired || (fired_keys != nullptr && fired_keys->contains(key));
        Group& g = groups[{AssignToKeyGroup(key, max_parallelism), fired ? uint8_t{1} : uint8_t{0}}];
        ++g.count;
        TypeSerializer<K>::Serialize(key, g.bytes);
        TypeSerializer<Acc>::Serialize(acc, g.bytes);
      }
      for (const auto& [id, g] : groups) {
        ByteWriter& out = buckets.Entry(id.first);
        TypeSerializer<W>::Serialize(w, out);
        out.Write(&id.second, sizeof(id.second));
        out.Write(&g.count, sizeof(g.count));
        out.Write(g.bytes.Data(), g.bytes.Size());
      }
    }
    KeyGroupExtraParts extra;
    buckets.AddTo(kBucketsPart, extra);
    std::vector<StateInfo> info = {{kBucketsPart, Policy::kStateKind, TypeNameOf<Acc>()}};
    emitter_.CaptureWindowState(extra, info);
    return MakeKeyedSnapshot(emitter_.SnapshotGlobalState(), {}, std::move(extra), std::move(info));
  }

  void InitializeState(const OperatorRestore& restore) override {
    const std::string& op = this->ctx_.name;
    CheckRestoredType(restore, op, kBucketsPart, TypeNameOf<Acc>());
    emitter_.SetRestoredInfo(restore);
    RestoreKeyedState(restore, emitter_.GlobalStateBackend(), &times_, op,
                      [&](const std::string& part, int kg, std::string_view bytes) {
                        if (part != kBucketsPart) return emitter_.RestorePart(part, kg, bytes);
                        ReadPartEntries(op, part, kg, bytes, [&](ByteReader& r) { RestoreBucketEntry(r); });
                        return true;
                      });
  }

 private:
  using Bucket = boost::unordered_flat_map<K, Acc, KeyHasher<K>>;
  using KeySet = boost::unordered_flat_set<K, KeyHasher<K>>;
  struct WindowBucket {
    Bucket keys;
    bool fired = false;
  };
  static constexpr const char* kBucketsPart = "window-buckets";

  // One window's keys of one key group. Key groups restored from several
  // old subtasks may disagree on whether a window fired (their watermarks
  // differed): the window then counts as not fired, and the keys that did
  // fire are remembered so the watermark does not fire them twice.
  void RestoreBucketEntry(ByteReader& r) {
    W w{};
    uint8_t fired = 0;
    uint64_t n = 0;
    TypeSerializer<W>::Deserialize(r, w);
    r.Read(&fired, sizeof(fired));
    r.Read(&n, sizeof(n));
    if (r.Failed() || fired > 1) {
      r.Fail();
      return;
    }
    auto [it, created] = buckets_.try_emplace(w);
    WindowBucket& bucket = it->second;
    if (created) {
      bucket.fired = fired == 1;
    } else if (bucket.fired && fired == 0) {
      KeySet& fired_keys = fired_before_restore_[w];
      for (const auto& [key, acc] : bucket.keys) fired_keys.insert(key);
      bucket.fired = false;
    }
    bool remember = fired == 1 && !bucket.fired;
    for (uint64_t i = 0; i < n && !r.Failed(); ++i) {
      K key{};
      Acc acc{};
      TypeSerializer<K>::Deserialize(r, key);
      TypeSerializer<Acc>::Deserialize(r, acc);
      if (r.Failed()) return;
      if (remember) fired_before_restore_[w].insert(key);
      bucket.keys.insert_or_assign(std::move(key), std::move(acc));
    }
  }
  const KeySet* FiredKeysBeforeRestore(const W& w) const {
    if (fired_before_restore_.empty()) return nullptr;
    auto it = fired_before_restore_.find(w);
    return it == fired_before_restore_.end() ? nullptr : &it->second;
  }
  bool FiredBeforeRestore(const W& w, const K& key) const {
    const KeySet* keys = FiredKeysBeforeRestore(w);
    return keys != nullptr && keys->contains(key);
  }

  Timestamp Cleanup(const W& w) const {
    Timestamp t = w.MaxTimestamp();
    return t > kMaxWatermark - lateness_ ? kMaxWatermark : t + lateness_;
  }

  WindowBucket& BucketOf(const W& w) {
    // Consecutive records mostly fall into the same window.
    if (last_bucket_ != nullptr && last_window_ == w) return *last_bucket_;
    WindowBucket& b = buckets_[w];
    last_window_ = w;
    last_bucket_ = &b;
    return b;
  }

  KeyContext<K, KF> keys_;
  Assigner assigner_;
  int64_t lateness_;
  KeyedTimerService<K, W> times_;  // time only: no timers are set
  WindowEmitter<K, IN, OUT, W, Policy, Final> emitter_;
  std::map<W, WindowBucket> buckets_;  // std::map: node addresses stay valid
  // After a restore: per window that fired for some restored key groups
  // only, the keys that fired (see RestoreBucketEntry). Usually empty.
  std::map<W, KeySet> fired_before_restore_;
  W last_window_{};
  WindowBucket* last_bucket_ = nullptr;
  std::vector<W> windows_;
};

}  // namespace freshet::internal
