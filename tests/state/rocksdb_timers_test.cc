// Timers in RocksDB (state.backend.rocksdb.timer-service.factory: ROCKSDB)
// against timers on the heap: the same random registrations, deletions,
// watermarks and processing times fire the same timers and snapshot the
// same key groups; the setting is parsed and placed only where the keyed
// state is in RocksDB.
#include <freshet/freshet.h>
#include <freshet/internal/keyed_state.h>
#include <freshet/internal/rocksdb_keyed_state.h>
#include <freshet/testing/operator_harness.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "support/temp_dir.h"

namespace freshet {
namespace {

using internal::KeyedTimerService;
using internal::Timer;
using internal::VoidNamespace;

constexpr int kMaxParallelism = 32;

using Fired = std::tuple<Timestamp, int64_t, bool>;  // time, key, event time

/// Timers of keys of one operator, with what they fired.
struct Timers {
  explicit Timers(testing::ManualProcessingTimeService* time)
      : service({0, kMaxParallelism - 1}, kMaxParallelism, time,
                [this](const Timer<int64_t, VoidNamespace>& t, bool event_time) {
                  fired.emplace_back(t.timestamp, t.key, event_time);
                }) {}
  KeyedTimerService<int64_t, VoidNamespace> service;
  std::vector<Fired> fired;
};

/// The timers of each key group of a snapshot, as a set.
std::map<int, std::set<std::tuple<int, Timestamp, int64_t>>> Decode(const std::map<int, std::string>& blocks) {
  std::map<int, std::set<std::tuple<int, Timestamp, int64_t>>> out;
  for (const auto& [kg, bytes] : blocks) {
    ByteReader r(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    for (int domain = 0; domain < 2; ++domain) {
      uint64_t n = 0;
      r.Read(&n, sizeof(n));
      for (uint64_t i = 0; i < n; ++i) {
        Timestamp ts = 0;
        int64_t key = 0;
        VoidNamespace ns;
        r.Read(&ts, sizeof(ts));
        TypeSerializer<int64_t>::Deserialize(r, key);
        TypeSerializer<VoidNamespace>::Deserialize(r, ns);
        out[kg].emplace(domain, ts, key);
      }
    }
    EXPECT_FALSE(r.Failed());
    EXPECT_EQ(r.Remaining(), 0u);
  }
  return out;
}

TEST(RocksDBTimersTest, FireAndSnapshotLikeHeapTimers) {
  test_support::TempDir dir("freshet-rocksdb-timers");
  testing::ManualProcessingTimeService heap_time, rocks_time;
  Timers heap(&heap_time), rocks(&rocks_time);
  StateBackendOptions options;
  options.type = StateBackendOptions::Type::kRocksDB;
  options.rocksdb_local_dir = dir.Path();
  internal::RocksDBKeyedStateBackend<int64_t> backend({0, kMaxParallelism - 1}, kMaxParallelism, &rocks_time,
                                                      options);
  rocks.service.UseStorage(backend.Rocks()->NewTimerStorage("event"), backend.Rocks()->NewTimerStorage("proc"));
  ASSERT_TRUE(rocks.service.UsesStorage());

  uint64_t r = 12345;
  auto next = [&r] {
    r ^= r << 13;
    r ^= r >> 7;
    r ^= r << 17;
    return r;
  };
  Timestamp watermark = -1000, now = 0;
  for (int step = 0; step < 20000; ++step) {
    uint64_t x = next();
    int64_t key = static_cast<int64_t>(x % 300) - 50;  // negative keys too
    int kg = AssignToKeyGroup(key, kMaxParallelism);
    // Times around the watermark, negative ones included.
    Timestamp ts = watermark + static_cast<Timestamp>((x >> 12) % 400) - 100;
    switch ((x >> 32) % 10) {
      case 0:
      case 1:
      case 2:
      case 3:
        heap.service.RegisterEventTimeTimer(kg, key, VoidNamespace{}, ts);
        rocks.service.RegisterEventTimeTimer(kg, key, VoidNamespace{}, ts);
        break;
      case 4:
        heap.service.DeleteEventTimeTimer(kg, key, VoidNamespace{}, ts);
        rocks.service.DeleteEventTimeTimer(kg, key, VoidNamespace{}, ts);
        break;
      case 5:
      case 6:
        heap.service.RegisterProcessingTimeTimer(kg, key, VoidNamespace{}, now + ts - watermark);
        rocks.service.RegisterProcessingTimeTimer(kg, key, VoidNamespace{}, now + ts - watermark);
        break;
      case 7:
        heap.service.DeleteProcessingTimeTimer(kg, key, VoidNamespace{}, now + ts - watermark);
        rocks.service.DeleteProcessingTimeTimer(kg, key, VoidNamespace{}, now + ts - watermark);
        break;
      case 8:
        watermark += static_cast<Timestamp>((x >> 40) % 50);
        heap.service.AdvanceWatermark(watermark);
        rocks.service.AdvanceWatermark(watermark);
        break;
      default:
        now += static_cast<Timestamp>((x >> 40) % 50);
        heap_time.SetTime(now);
        rocks_time.SetTime(now);
        break;
    }
    ASSERT_EQ(rocks.service.NumEventTimeTimers(), heap.service.NumEventTimeTimers()) << "step " << step;
    ASSERT_EQ(rocks.service.NumProcessingTimeTimers(), heap.service.NumProcessingTimeTimers()) << "step " << step;
    if (step % 2000 == 0) {
      ASSERT_EQ(Decode(internal::CaptureTimers(rocks.service, {0, kMaxParallelism - 1})),
                Decode(internal::CaptureTimers(heap.service, {0, kMaxParallelism - 1})))
          << "step " << step;
    }
  }
  // The same timers fired; each domain in time order (ties in any order).
  ASSERT_GT(heap.fired.size(), 1000u);
  ASSERT_EQ(rocks.fired.size(), heap.fired.size());
  for (bool event_time : {true, false}) {
    std::vector<Fired> h, k;
    for (const Fired& f : heap.fired) {
      if (std::get<2>(f) == event_time) h.push_back(f);
    }
    for (const Fired& f : rocks.fired) {
      if (std::get<2>(f) == event_time) k.push_back(f);
    }
    // In the order they fired, the same times (ties may differ in key).
    std::vector<Timestamp> heap_times, rocks_times;
    for (const Fired& f : h) heap_times.push_back(std::get<0>(f));
    for (const Fired& f : k) rocks_times.push_back(std::get<0>(f));
    EXPECT_EQ(rocks_times, heap_times);
    std::sort(h.begin(), h.end());
    std::sort(k.begin(), k.end());
    EXPECT_EQ(k, h) << (event_time ? "event time" : "processing time");
  }
  // Restored from the key-group blocks into a fresh storage: the same timers.
  testing::ManualProcessingTimeService restored_time;
  restored_time.SetTime(now);
  Timers restored(&restored_time);
  internal::RocksDBKeyedStateBackend<int64_t> restored_backend({0, kMaxParallelism - 1}, kMaxParallelism,
                                                               &restored_time, options);
  restored.service.UseStorage(restored_backend.Rocks()->NewTimerStorage("event"),
                              restored_backend.Rocks()->NewTimerStorage("proc"));
  auto blocks = internal::CaptureTimers(rocks.service, {0, kMaxParallelism - 1});
  for (const auto& [kg, bytes] : blocks) {
    ASSERT_TRUE(
        restored.service.RestoreKeyGroup(kg, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()).IsOk());
  }
  EXPECT_EQ(Decode(internal::CaptureTimers(restored.service, {0, kMaxParallelism - 1})), Decode(blocks));
  restored.service.AdvanceWatermark(kMaxWatermark);
  rocks.service.AdvanceWatermark(kMaxWatermark);
  std::vector<Fired> a(restored.fired.begin(), restored.fired.end());
  std::vector<Fired> b(rocks.fired.end() - static_cast<std::ptrdiff_t>(a.size()), rocks.fired.end());
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(a, b);
}

TEST(RocksDBTimersTest, TheSettingIsParsedAndPlacesTimersOnlyWithRocksDBState) {
  Configuration config;
  config.Set("state.backend.rocksdb.timer-service.factory", "ROCKSDB");
  ExecutionOptions options;
  ASSERT_TRUE(config.ApplyTo(options).IsOk());
  EXPECT_TRUE(options.state_backend.rocksdb_timers);
  config.Set("state.backend.rocksdb.timer-service.factory", "heap");
  ASSERT_TRUE(config.ApplyTo(options).IsOk());
  EXPECT_FALSE(options.state_backend.rocksdb_timers);
  config.Set("state.backend.rocksdb.timer-service.factory", "disk");
  Status bad = config.ApplyTo(options);
  EXPECT_EQ(bad.Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.Message().find("HEAP or ROCKSDB"), std::string::npos) << bad.Message();

  test_support::TempDir dir("freshet-rocksdb-timers");
  testing::ManualProcessingTimeService time;
  for (auto type : {StateBackendOptions::Type::kHeap, StateBackendOptions::Type::kRocksDB}) {
    internal::OperatorContext ctx;
    ctx.key_groups = {0, kMaxParallelism - 1};
    ctx.max_parallelism = kMaxParallelism;
    ctx.processing_time = &time;
    ctx.state_backend.type = type;
    ctx.state_backend.rocksdb_local_dir = dir.Path();
    ctx.state_backend.rocksdb_timers = true;
    auto backend = internal::CreateKeyedStateBackend<int64_t>(ctx);
    Timers timers(&time);
    internal::PlaceTimers(timers.service, *backend, ctx);
    EXPECT_EQ(timers.service.UsesStorage(), type == StateBackendOptions::Type::kRocksDB);
  }
}

}  // namespace
}  // namespace freshet
