// The RocksDB instances of one slot share its memory budget
// (state.backend.rocksdb.memory.fixed-per-slot): with a state many times
// the budget, the slot's cache (data, index and filter blocks, charged
// with the memtables) stays at the budget and the process does not grow
// with the state; every value still reads back.
#include <freshet/freshet.h>
#include <freshet/internal/keyed_state.h>
#include <freshet/internal/rocksdb_keyed_state.h>
#include <freshet/testing/operator_harness.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace freshet {
namespace {

namespace fs = std::filesystem;
using internal::RocksDBKeyedStateBackend;

constexpr int kMaxParallelism = 128;

uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

uint64_t TreeBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) total += entry.file_size();
  }
  return total;
}

/// A value that does not compress away, different per key and version.
std::string Value(int64_t key, int version) {
  std::string v(200, ' ');
  uint64_t x = static_cast<uint64_t>(key) * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(version);
  for (char& c : v) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>('a' + x % 26);
  }
  return v;
}

/// One operator instance of the slot: a RocksDB backend with a value and a
/// map state.
struct Operator {
  Operator(const StateBackendOptions& options, internal::OperatorContext* ctx)
      : backend({0, kMaxParallelism - 1}, kMaxParallelism, nullptr, options, ctx),
        rc("op", 0, 1, kMaxParallelism, 0) {
    rc.SetKeyedStateStore(&backend);
    value = &rc.GetState(ValueStateDescriptor<std::string>("value"));
    map = &rc.GetMapState(MapStateDescriptor<int32_t, int64_t>("map"));
  }
  RocksDBKeyedStateBackend<int64_t> backend;
  RuntimeContext rc;
  ValueState<std::string>* value;
  MapState<int32_t, int64_t>* map;
  int64_t key = 0;
};

TEST(RocksDBMemoryTest, StateManyTimesTheSlotBudgetStaysWithinIt) {
  test_support::TempDir dir("freshet-rocksdb-memory");
  constexpr uint64_t kBudget = uint64_t{16} << 20;
  StateBackendOptions options;
  options.type = StateBackendOptions::Type::kRocksDB;
  options.rocksdb_local_dir = dir.Path();
  options.rocksdb_memory_per_slot = kBudget;
  internal::OperatorContext ctx;
  ctx.slot = "job/slot-0";
  // Two operators of the slot (chained or slot-shared tasks).
  Operator a(options, &ctx), b(options, &ctx);
  ASSERT_EQ(a.backend.Rocks()->SlotMemoryBudget(), kBudget);

  const uint64_t resident_before = ResidentBytes();
  uint64_t max_usage = 0, max_memtables = 0, max_resident = 0;
  constexpr int64_t kKeys = 400000;  // per operator: ~100 MB of keys and values each
  for (int64_t k = 0; k < kKeys; ++k) {
    for (Operator* op : {&a, &b}) {
      op->key = k;
      op->backend.SetCurrentKey(op->key);
      op->value->Update(Value(k, op == &a ? 0 : 1));
      op->map->Put(static_cast<int32_t>(k % 3), k);
    }
    if (k % 5000 == 0) {
      max_usage = std::max(max_usage, a.backend.Rocks()->SlotMemoryUsage());
      max_memtables =
          std::max(max_memtables, a.backend.Rocks()->MemTableBytes() + b.backend.Rocks()->MemTableBytes());
      max_resident = std::max(max_resident, ResidentBytes());
    }
  }
  // Random reads over the whole state: every value comes back, through the
  // cache, from disk.
  uint64_t x = 88172645463325252ULL;
  for (int i = 0; i < 100000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    Operator& op = i % 2 == 0 ? a : b;
    op.key = static_cast<int64_t>(x % kKeys);
    op.backend.SetCurrentKey(op.key);
    ASSERT_EQ(op.value->Value(), Value(op.key, &op == &a ? 0 : 1)) << "key " << op.key;
    ASSERT_EQ(op.map->Get(static_cast<int32_t>(op.key % 3)), op.key);
    if (i % 5000 == 0) {
      max_usage = std::max(max_usage, a.backend.Rocks()->SlotMemoryUsage());
      max_resident = std::max(max_resident, ResidentBytes());
    }
  }
  a.backend.Rocks()->WaitForBackgroundWork();
  b.backend.Rocks()->WaitForBackgroundWork();
  const uint64_t on_disk = TreeBytes(dir.Path());
  const uint64_t growth = max_resident > resident_before ? max_resident - resident_before : 0;
  std::printf(
      "budget %.0f MB; state on disk %.0f MB; slot cache usage max %.1f MB; memtables max %.1f MB; resident "
      "memory grew by at most %.1f MB\n",
      kBudget / 1e6, on_disk / 1e6, max_usage / 1e6, max_memtables / 1e6, growth / 1e6);
  EXPECT_GT(on_disk, 8 * kBudget) << "the state is many times the budget";
  // The cache evicts to its capacity; what it holds beyond is what is in
  // use at that moment (memtables being flushed, blocks read).
  EXPECT_LE(max_usage, kBudget + kBudget / 4);
  EXPECT_LE(max_memtables, kBudget);
  // The process grows by the budget plus what RocksDB keeps outside it
  // (table readers, compaction buffers, allocator slack), not by the state.
  EXPECT_LT(growth, 3 * kBudget + (uint64_t{32} << 20));
}

}  // namespace
}  // namespace freshet
