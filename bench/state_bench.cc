// Keyed-state benchmarks: ValueState<int64_t> on int64 keys, on the heap
// backend (and, with --compare-backends, on RocksDB).
//
//   freshet_state_bench [--keys N] [--updates N] [--runs R]
//   freshet_state_bench --snapshot [--keys N] [--value-bytes B] [--runs R] [--dir D]
//   freshet_state_bench --latency [--keys N] [--rate U] [--seconds S] [--settle T] [--runs R] [--dir D]
//   freshet_state_bench --compare-backends [--keys N] [--updates N] [--runs R] [--dir D]
//   freshet_state_bench --incremental [--keys N] [--value-bytes B] [--runs R] [--dir D]
//
// --incremental: RocksDB with incremental checkpoints, for states of 64,
// 256 and 1024 MB of keys and values (or N keys) with B-byte string values
// (default 100). Per run: fill a fresh instance; checkpoint 1 (the task
// thread's part: flush and hard links; the writer's: uploads into the
// shared directory, state file, sync) and the bytes uploaded; then 5
// checkpoints, each after the instance's flushes and compactions finished
// and another 1% of the keys changed, likewise (their median and the
// largest upload: a compaction makes the next checkpoint upload the files
// it wrote); restore the last into a
// new instance (load, link, open), checking a sample of values. Values are
// pseudo-random letters. Everything under D (default /tmp). Medians of R
// runs (default 3).
//
// --compare-backends (default 1 M keys, 2 M operations): per run, the heap
// and then the RocksDB backend (an instance under D, default /tmp): insert
// N keys, then N random read-modify-write updates (Value() + Update()),
// then N random reads (Value()); operations per second, and the heap /
// RocksDB ratio of each run. Medians of R runs (default 3).
//
// Default mode. Phase 1 inserts N keys (one ValueState entry each) and
// reports resident memory growth / N. Phase 2 runs random read-modify-write
// updates over the N keys and reports updates/s (median of R runs).
//
// --snapshot (default 40 M keys with int64 values; with --value-bytes B,
// 4 M keys with B-byte string values). Per run: the time of Snapshot() on
// the task thread; the time to write the snapshot, as a checkpoint does
// (MakeKeyedSnapshot into a TaskStateWriter: one block per key group, then
// Finish, which syncs the file), into a state file under D (default /tmp);
// the time to restore it into a fresh backend (LoadRestore, RestoreKeyGroup
// per key group, then the state's registration, which applies the
// entries), checking the key count and a sample of values. Medians of R
// runs.
//
// --latency (default 40 M keys, 1 M updates/s). The main thread updates
// random keys at a fixed rate U; an update's latency is its completion time
// minus its scheduled time, so a stall also delays the updates queued
// behind it. Windows: S seconds without a snapshot; the write of a
// copy-on-write snapshot on another thread (from the barrier to the end of
// the write); the same with an eager snapshot (every key group serialized
// on the task thread at the barrier, as Snapshot() did before
// copy-on-write, then written on another thread). Each run has a window
// without and one with a copy-on-write snapshot; the eager windows follow
// all of them (so that only the first copy-on-write snapshot needs fresh
// memory for its copies, as in a job that checkpoints periodically). Each
// window starts after T seconds (default 2) without updates, for the
// system to settle (writeback of the previous state file, memory freed).
// Reports p50 / p99 / p99.9 / max latency per window, medians of R runs.
#include <freshet/freshet.h>
#include <freshet/internal/keyed_snapshot.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "runtime/checkpoint/checkpoint_storage.h"

namespace {

using freshet::ByteWriter;
using freshet::Status;
using Backend = freshet::internal::HeapKeyedStateBackend<int64_t>;
using Clock = std::chrono::steady_clock;

constexpr int kMaxParallelism = 128;

int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

uint64_t Mix(uint64_t x) {
  x ^= x >> 31;
  x *= 0x7fb5d329728ea185ULL;
  x ^= x >> 27;
  return x;
}

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

void Check(const Status& s, const char* what) {
  if (!s.IsOk()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

// The value of key number k: k itself, or a string of `bytes` bytes made
// from k.
template <class V>
V ValueFor(int64_t k, size_t bytes) {
  if constexpr (std::is_same_v<V, std::string>) {
    std::string v(bytes, ' ');
    for (size_t i = 0; i < bytes; ++i) v[i] = static_cast<char>('a' + (static_cast<uint64_t>(k) >> (i % 8 * 5)) % 26);
    return v;
  } else {
    (void)bytes;
    return k;
  }
}

// A backend with one ValueState<V> ("value") holding, for the keys Mix(k),
// k = 0..n-1, the value ValueFor(k).
template <class V>
struct KeyedState {
  explicit KeyedState(bool register_state = true, size_t value_bytes = 0)
      : runtime("bench", 0, 1, kMaxParallelism, 0),
        backend(freshet::KeyGroupRange{0, kMaxParallelism - 1}, kMaxParallelism, nullptr),
        value_bytes(value_bytes) {
    runtime.SetKeyedStateStore(&backend);
    if (register_state) Register();
  }
  void Register() { state = &runtime.GetState(freshet::ValueStateDescriptor<V>("value")); }
  void Fill(int64_t keys) {
    for (int64_t k = 0; k < keys; ++k) {
      key = static_cast<int64_t>(Mix(static_cast<uint64_t>(k)));
      backend.SetCurrentKey(key);
      state->Update(ValueFor<V>(k, value_bytes));
    }
  }
  freshet::RuntimeContext runtime;
  Backend backend;
  size_t value_bytes;
  freshet::ValueState<V>* state = nullptr;
  int64_t key = 0;
};

// ---- --compare-backends: heap against RocksDB --------------------------------------

struct BackendFigures {
  double insert_per_s = 0;
  double update_per_s = 0;
  double get_per_s = 0;
};

BackendFigures RunBackend(freshet::StateBackendOptions::Type type, int64_t keys, int64_t ops, const std::string& dir) {
  freshet::StateBackendOptions options;
  options.type = type;
  options.rocksdb_local_dir = dir;
  const freshet::KeyGroupRange range{0, kMaxParallelism - 1};
  std::unique_ptr<freshet::internal::KeyedStateBackend<int64_t>> backend;
  if (type == freshet::StateBackendOptions::Type::kRocksDB) {
    backend = std::make_unique<freshet::internal::RocksDBKeyedStateBackend<int64_t>>(range, kMaxParallelism,
                                                                                       nullptr, options);
  } else {
    backend = std::make_unique<Backend>(range, kMaxParallelism, nullptr);
  }
  freshet::RuntimeContext runtime("bench", 0, 1, kMaxParallelism, 0);
  runtime.SetKeyedStateStore(backend.get());
  auto& state = runtime.GetState(freshet::ValueStateDescriptor<int64_t>("value", 0));
  BackendFigures f;
  int64_t key = 0;
  auto start = Clock::now();
  for (int64_t k = 0; k < keys; ++k) {
    key = static_cast<int64_t>(Mix(static_cast<uint64_t>(k)));
    backend->SetCurrentKey(key);
    state.Update(k);
  }
  f.insert_per_s = static_cast<double>(keys) / Seconds(start);
  uint64_t r = 88172645463325252ULL;
  auto next = [&r] {
    r ^= r << 13;
    r ^= r >> 7;
    r ^= r << 17;
    return r;
  };
  start = Clock::now();
  for (int64_t i = 0; i < ops; ++i) {
    key = static_cast<int64_t>(Mix(next() % static_cast<uint64_t>(keys)));
    backend->SetCurrentKey(key);
    state.Update(state.Value() + 1);
  }
  f.update_per_s = static_cast<double>(ops) / Seconds(start);
  int64_t sum = 0;
  start = Clock::now();
  for (int64_t i = 0; i < ops; ++i) {
    key = static_cast<int64_t>(Mix(next() % static_cast<uint64_t>(keys)));
    backend->SetCurrentKey(key);
    sum += state.Value();
  }
  f.get_per_s = static_cast<double>(ops) / Seconds(start);
  // Every key holds its number plus the updates it got: the sum is at least
  // the sum of the numbers.
  if (sum < 0) {
    std::fprintf(stderr, "reads returned a negative sum\n");
    std::exit(1);
  }
  return f;
}

int RunCompareBackends(int64_t keys, int64_t ops, int runs, const std::string& dir) {
  using Type = freshet::StateBackendOptions::Type;
  std::vector<double> heap_update, rocks_update, heap_get, rocks_get, update_ratio, get_ratio;
  for (int run = 1; run <= runs; ++run) {
    BackendFigures heap = RunBackend(Type::kHeap, keys, ops, dir);
    BackendFigures rocks = RunBackend(Type::kRocksDB, keys, ops, dir);
    std::printf(
        "run %d: heap insert %.2f M/s, update %.2f M/s, get %.2f M/s; RocksDB insert %.3f M/s, update %.3f M/s, "
        "get %.3f M/s; heap / RocksDB: update %.1fx, get %.1fx\n",
        run, heap.insert_per_s / 1e6, heap.update_per_s / 1e6, heap.get_per_s / 1e6, rocks.insert_per_s / 1e6,
        rocks.update_per_s / 1e6, rocks.get_per_s / 1e6, heap.update_per_s / rocks.update_per_s,
        heap.get_per_s / rocks.get_per_s);
    std::fflush(stdout);
    heap_update.push_back(heap.update_per_s);
    rocks_update.push_back(rocks.update_per_s);
    heap_get.push_back(heap.get_per_s);
    rocks_get.push_back(rocks.get_per_s);
    update_ratio.push_back(heap.update_per_s / rocks.update_per_s);
    get_ratio.push_back(heap.get_per_s / rocks.get_per_s);
  }
  std::printf(
      "median over %d runs, %lld keys, %lld operations: heap update %.2f M/s, get %.2f M/s; RocksDB update %.3f "
      "M/s, get %.3f M/s; heap / RocksDB (per-run ratios): update %.1fx, get %.1fx\n",
      runs, static_cast<long long>(keys), static_cast<long long>(ops), Median(heap_update) / 1e6,
      Median(heap_get) / 1e6, Median(rocks_update) / 1e6, Median(rocks_get) / 1e6, Median(update_ratio),
      Median(get_ratio));
  return 0;
}

// ---- default mode: update throughput and memory per entry -------------------------

// The loop of the original benchmark, unchanged, so that its figures stay comparable.
int RunThroughput(int64_t keys, int64_t updates, int runs) {
  freshet::RuntimeContext runtime("bench", 0, 1, 128, 0);
  Backend backend(freshet::KeyGroupRange{0, 127}, 128, nullptr);
  runtime.SetKeyedStateStore(&backend);
  auto& state = runtime.GetState(freshet::ValueStateDescriptor<int64_t>("value", 0));

  int64_t before = ResidentBytes();
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t k = 0; k < keys; ++k) {
    int64_t key = static_cast<int64_t>(Mix(static_cast<uint64_t>(k)));
    backend.SetCurrentKey(key);
    state.Update(k);
  }
  double insert_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int64_t after = ResidentBytes();
  std::printf("inserted %lld keys in %.2f s (%.2f M/s); resident memory +%.1f MB = %.1f bytes per entry\n",
              static_cast<long long>(keys), insert_s, static_cast<double>(keys) / insert_s / 1e6,
              static_cast<double>(after - before) / 1e6, static_cast<double>(after - before) / static_cast<double>(keys));

  std::vector<double> rates;
  uint64_t seed = 1;
  for (int r = 0; r < runs; ++r) {
    auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < updates; ++i) {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      int64_t key = static_cast<int64_t>(Mix((seed >> 20) % static_cast<uint64_t>(keys)));
      backend.SetCurrentKey(key);
      state.Update(state.Value() + 1);
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rates.push_back(static_cast<double>(updates) / s);
    std::printf("run %d: %lld random read-modify-write updates over %lld keys in %.2f s = %.2f M updates/s\n", r + 1,
                static_cast<long long>(updates), static_cast<long long>(keys), s,
                static_cast<double>(updates) / s / 1e6);
    std::fflush(stdout);
  }
  std::sort(rates.begin(), rates.end());
  std::printf("median: %.2f M updates/s over %d runs; %zu keys hold state\n", rates[rates.size() / 2] / 1e6, runs,
              backend.NumKeys());
  return 0;
}

// ---- writing and restoring snapshots -----------------------------------------------

// A snapshot already serialized on the task thread (what Snapshot() did
// before copy-on-write), for the eager comparison.
class SerializedSnapshot final : public freshet::internal::KeyedStateSnapshot {
 public:
  // Serializes every key group of `backend` now.
  explicit SerializedSnapshot(Backend& backend) {
    auto snapshot = backend.Snapshot();
    groups_ = snapshot->KeyGroups();
    info_ = snapshot->Info();
    ByteWriter w;
    for (int kg : groups_) {
      w.Reset();
      snapshot->WriteKeyGroup(kg, w);
      bytes_.emplace(kg, std::string(reinterpret_cast<const char*>(w.Data()), w.Size()));
    }
  }
  const std::vector<int>& KeyGroups() const override { return groups_; }
  void WriteKeyGroup(int key_group, ByteWriter& out) const override {
    const std::string& b = bytes_.at(key_group);
    out.Write(b.data(), b.size());
  }
  const std::vector<freshet::internal::StateInfo>& Info() const override { return info_; }

 private:
  std::vector<int> groups_;
  std::map<int, std::string> bytes_;
  std::vector<freshet::internal::StateInfo> info_;
};

// Writes a keyed snapshot into `<dir>/<file>` as a task's checkpoint does.
freshet::internal::TaskStateSnapshot WriteCheckpoint(std::unique_ptr<freshet::internal::KeyedStateSnapshot> snapshot,
                                                      const std::string& dir, const std::string& file) {
  freshet::internal::TaskStateWriter writer(dir, file, 1);
  writer.BeginOperator(0);
  freshet::internal::AsyncSnapshot async = freshet::internal::MakeKeyedSnapshot(std::move(snapshot), {}, {});
  Check(async(writer), "writing the snapshot");
  auto written = writer.Finish();
  Check(written.GetStatus(), "finishing the state file");
  return std::move(written).Value();
}

uint64_t FileBytes(const freshet::internal::TaskStateSnapshot& written) {
  uint64_t n = 0;
  for (const auto& f : written.files) n += f.size;
  return n;
}

struct RestoreTimes {
  double load_s = 0;     // LoadRestore: reading the blocks
  double decode_s = 0;   // RestoreKeyGroup per key group
  double apply_s = 0;    // registering the state: its entries go into the backend
  double total_s = 0;
};

// Restores the written state into a fresh backend and checks it.
template <class V>
RestoreTimes Restore(const freshet::internal::TaskStateSnapshot& written, const std::string& dir, int64_t keys,
                     size_t value_bytes) {
  RestoreTimes t;
  auto start = Clock::now();
  freshet::internal::OperatorStateHandle handle;
  handle.operator_id = "bench";
  handle.name = "bench";
  handle.parallelism = 1;
  handle.max_parallelism = kMaxParallelism;
  handle.state_info = written.state_info.at(0);
  handle.subtasks = {written.operators.at(0)};
  auto restore = freshet::internal::LoadRestore(dir, freshet::internal::AssignRestore(handle, 0, 1));
  Check(restore.GetStatus(), "loading the state file");
  t.load_s = Seconds(start);

  auto decode_start = Clock::now();
  KeyedState<V> target(/*register_state=*/false, value_bytes);
  target.backend.SetRestoredInfo(restore->state_info);
  for (auto& [kg, block] : restore->key_groups) {
    auto parts = freshet::internal::KeyGroupParts::Decode(block);
    Check(parts.GetStatus(), "decoding a key group");
    for (const auto& [name, bytes] : *parts) {
      if (name != "state") continue;
      Check(target.backend.RestoreKeyGroup(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
            "restoring a key group");
    }
    std::string().swap(block);
  }
  t.decode_s = Seconds(decode_start);
  auto apply_start = Clock::now();
  target.Register();
  t.apply_s = Seconds(apply_start);
  t.total_s = Seconds(start);

  if (static_cast<int64_t>(target.backend.NumKeys()) != keys) {
    std::fprintf(stderr, "restored %zu keys, expected %lld\n", target.backend.NumKeys(), static_cast<long long>(keys));
    std::exit(1);
  }
  for (int64_t k = 0; k < keys; k += 9973) {
    int64_t key = static_cast<int64_t>(Mix(static_cast<uint64_t>(k)));
    target.backend.SetCurrentKey(key);
    if (target.state->Value() != ValueFor<V>(k, value_bytes)) {
      std::fprintf(stderr, "restored key %lld (number %lld) holds another value\n", static_cast<long long>(key),
                   static_cast<long long>(k));
      std::exit(1);
    }
  }
  return t;
}

template <class V>
int RunSnapshot(int64_t keys, size_t value_bytes, int runs, const std::string& base) {
  std::string dir = base + "/freshet-state-bench-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  KeyedState<V> s(true, value_bytes);
  auto t0 = Clock::now();
  s.Fill(keys);
  std::printf("inserted %lld keys (values: %s) in %.2f s; resident memory %.0f MB\n", static_cast<long long>(keys),
              value_bytes > 0 ? (std::to_string(value_bytes) + "-byte strings").c_str() : "int64", Seconds(t0),
              static_cast<double>(ResidentBytes()) / 1e6);
  std::vector<double> take_us, write_s, load_s, decode_s, apply_s, restore_s;
  for (int r = 0; r < runs; ++r) {
    std::string file = "run-" + std::to_string(r) + ".state";
    auto take = Clock::now();
    auto snapshot = s.backend.Snapshot();
    take_us.push_back(Seconds(take) * 1e6);
    auto write = Clock::now();
    freshet::internal::TaskStateSnapshot written = WriteCheckpoint(std::move(snapshot), dir, file);
    write_s.push_back(Seconds(write));
    uint64_t bytes = FileBytes(written);
    RestoreTimes t = Restore<V>(written, dir, keys, value_bytes);
    load_s.push_back(t.load_s);
    decode_s.push_back(t.decode_s);
    apply_s.push_back(t.apply_s);
    restore_s.push_back(t.total_s);
    std::printf(
        "run %d: Snapshot() %.0f us; write %.2f s (%.1f MB, %.0f MB/s); restore %.2f s (load %.2f, "
        "RestoreKeyGroup %.2f, apply %.2f); resident %.0f MB\n",
        r + 1, take_us.back(), write_s.back(), static_cast<double>(bytes) / 1e6,
        static_cast<double>(bytes) / 1e6 / write_s.back(), t.total_s, t.load_s, t.decode_s, t.apply_s,
        static_cast<double>(ResidentBytes()) / 1e6);
    std::fflush(stdout);
    std::filesystem::remove(dir + "/" + file);
  }
  std::printf(
      "median over %d runs, %lld keys: Snapshot() %.0f us; write %.2f s; restore %.2f s (load %.2f, "
      "RestoreKeyGroup %.2f, apply %.2f)\n",
      runs, static_cast<long long>(keys), Median(take_us), Median(write_s), Median(restore_s), Median(load_s),
      Median(decode_s), Median(apply_s));
  std::filesystem::remove_all(dir);
  return 0;
}

// ---- update latency during a snapshot ----------------------------------------------

enum class Window { kNoSnapshot, kCopyOnWrite, kEager };
const char* Name(Window w) {
  switch (w) {
    case Window::kNoSnapshot:
      return "no snapshot";
    case Window::kCopyOnWrite:
      return "copy-on-write snapshot";
    case Window::kEager:
      return "eager snapshot";
  }
  return "?";
}

struct WindowResult {
  double p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
  double take_ms = 0;   // the barrier's work on the task thread
  double write_s = 0;   // from the barrier to the end of the write
  size_t updates = 0;
};

double Percentile(std::vector<int64_t>& v, double q) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return static_cast<double>(v[i]) / 1e3;
}

// Updates random keys at `rate` per second. After `warmup_s`, a barrier:
// takes a snapshot of kind `w` and writes it on another thread; the window
// holds the updates scheduled from the barrier until the write ends (or
// `seconds` long without a snapshot).
WindowResult RunWindow(KeyedState<int64_t>& s, int64_t keys, double rate, double seconds, Window w, const std::string& dir,
                       uint64_t& seed) {
  const auto period = std::chrono::duration<double>(1.0 / rate);
  const int64_t barrier = static_cast<int64_t>(0.2 * rate);
  WindowResult result;
  std::vector<int64_t> latencies;
  latencies.reserve(static_cast<size_t>(rate * (seconds + 10)));
  std::atomic<bool> written{false};
  std::atomic<int64_t> written_at{0};  // ns since `start`
  std::thread writer;
  auto start = Clock::now();
  int64_t end_ns = -1;  // scheduled times before this are in the window
  for (int64_t i = 0;; ++i) {
    auto scheduled = start + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(i));
    int64_t scheduled_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(scheduled - start).count();
    if (i > barrier) {
      if (end_ns < 0 && w == Window::kNoSnapshot) {
        end_ns = scheduled_ns + static_cast<int64_t>(seconds * 1e9);
      }
      if (end_ns < 0 && written.load(std::memory_order_acquire)) end_ns = written_at.load();
      if (end_ns >= 0 && scheduled_ns >= end_ns) break;
    }
    while (Clock::now() < scheduled) {
    }
    if (i == barrier && w != Window::kNoSnapshot) {
      auto take = Clock::now();
      std::unique_ptr<freshet::internal::KeyedStateSnapshot> snapshot;
      if (w == Window::kCopyOnWrite) {
        snapshot = s.backend.Snapshot();
      } else {
        snapshot = std::make_unique<SerializedSnapshot>(s.backend);
      }
      result.take_ms = Seconds(take) * 1e3;
      writer = std::thread([&, snapshot = std::move(snapshot)]() mutable {
        WriteCheckpoint(std::move(snapshot), dir, "latency.state");
        written_at.store(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
        written.store(true, std::memory_order_release);
      });
    }
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    s.key = static_cast<int64_t>(Mix((seed >> 20) % static_cast<uint64_t>(keys)));
    s.backend.SetCurrentKey(s.key);
    s.state->Update(s.state->Value() + 1);
    if (i >= barrier) latencies.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - scheduled).count());
  }
  if (writer.joinable()) {
    writer.join();
    result.write_s = static_cast<double>(written_at.load()) / 1e9 - static_cast<double>(barrier) / rate;
    std::filesystem::remove(dir + "/latency.state");
  }
  result.updates = latencies.size();
  result.p50_us = Percentile(latencies, 0.5);
  result.p99_us = Percentile(latencies, 0.99);
  result.p999_us = Percentile(latencies, 0.999);
  result.max_us = Percentile(latencies, 1.0);
  return result;
}

int RunLatency(int64_t keys, double rate, double seconds, double settle_s, int runs, const std::string& base) {
  std::string dir = base + "/freshet-state-bench-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  KeyedState<int64_t> s;
  auto t0 = Clock::now();
  s.Fill(keys);
  std::printf("inserted %lld keys in %.2f s; resident memory %.0f MB; updating at %.0f per second\n",
              static_cast<long long>(keys), Seconds(t0), static_cast<double>(ResidentBytes()) / 1e6, rate);
  const Window windows[] = {Window::kNoSnapshot, Window::kCopyOnWrite, Window::kEager};
  std::map<Window, std::vector<WindowResult>> results;
  uint64_t seed = 1;
  // The eager runs come last, so that the copy-on-write runs after the
  // first reuse only memory their predecessors freed (as in a job that
  // checkpoints periodically); the first one needs fresh memory for its
  // copies.
  auto run = [&](int r, Window w) {
    // Let the system settle (writeback of the previous state file, freed memory).
    std::this_thread::sleep_for(std::chrono::duration<double>(settle_s));
    WindowResult x = RunWindow(s, keys, rate, seconds, w, dir, seed);
    results[w].push_back(x);
    std::printf(
        "run %d, %-22s: %zu updates; latency p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us; barrier %.2f "
        "ms; write %.2f s; resident %.0f MB\n",
        r + 1, Name(w), x.updates, x.p50_us, x.p99_us, x.p999_us, x.max_us, x.take_ms, x.write_s,
        static_cast<double>(ResidentBytes()) / 1e6);
    std::fflush(stdout);
  };
  for (int r = 0; r < runs; ++r) {
    run(r, Window::kNoSnapshot);
    run(r, Window::kCopyOnWrite);
  }
  for (int r = 0; r < runs; ++r) run(r, Window::kEager);
  for (Window w : windows) {
    auto median = [&](double WindowResult::*field) {
      std::vector<double> v;
      for (const WindowResult& x : results[w]) v.push_back(x.*field);
      return Median(v);
    };
    std::printf(
        "median over %d runs, %-22s: latency p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us; barrier %.2f ms; "
        "write %.2f s\n",
        runs, Name(w), median(&WindowResult::p50_us), median(&WindowResult::p99_us), median(&WindowResult::p999_us),
        median(&WindowResult::max_us), median(&WindowResult::take_ms), median(&WindowResult::write_s));
  }
  std::filesystem::remove_all(dir);
  return 0;
}

// ---- --incremental: incremental checkpoints of the RocksDB backend -----------------

struct IncrementalFigures {
  double fill_s = 0;
  double first_sync_ms = 0, first_async_s = 0, first_mb = 0;
  // Medians and maxima over the later checkpoints.
  double later_sync_ms = 0, later_async_s = 0, later_mb = 0, later_max_mb = 0;
  double restore_s = 0;
};

constexpr int kLaterCheckpoints = 5;

/// `bytes` pseudo-random letters for key number k at `version` (Snappy,
/// RocksDB's block compression here, barely shrinks them).
std::string Letters(int64_t k, int version, size_t bytes) {
  std::string v(bytes, ' ');
  uint64_t x = Mix(static_cast<uint64_t>(k) * 31 + static_cast<uint64_t>(version) + 1);
  for (size_t i = 0; i < bytes; ++i) {
    if (i % 12 == 0) x = Mix(x + i);
    v[i] = static_cast<char>('a' + (x >> (i % 12 * 5)) % 26);
  }
  return v;
}

uint64_t DirectoryBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) total += e.file_size();
  return total;
}

/// One RocksDB operator instance with incremental checkpoints configured.
struct RocksInstance {
  explicit RocksInstance(const std::string& local_dir) : runtime("bench", 0, 1, kMaxParallelism, 0) {
    ctx.key_groups = freshet::KeyGroupRange{0, kMaxParallelism - 1};
    ctx.max_parallelism = kMaxParallelism;
    ctx.state_backend.type = freshet::StateBackendOptions::Type::kRocksDB;
    ctx.state_backend.rocksdb_local_dir = local_dir;
    ctx.state_backend.incremental = true;
    backend = std::make_unique<freshet::internal::RocksDBKeyedStateBackend<int64_t>>(
        ctx.key_groups, kMaxParallelism, nullptr, ctx.state_backend, &ctx);
    runtime.SetKeyedStateStore(backend.get());
  }
  void Register() { state = &runtime.GetState(freshet::ValueStateDescriptor<std::string>("value")); }
  void Put(int64_t k, int version, size_t value_bytes) {
    key = static_cast<int64_t>(Mix(static_cast<uint64_t>(k)));
    backend->SetCurrentKey(key);
    state->Update(Letters(k, version, value_bytes));
  }
  freshet::internal::OperatorContext ctx;
  std::unique_ptr<freshet::internal::RocksDBKeyedStateBackend<int64_t>> backend;
  freshet::RuntimeContext runtime;
  freshet::ValueState<std::string>* state = nullptr;
  int64_t key = 0;
};

/// Takes checkpoint `id` of `instance` into `base`: the task thread's part
/// (Snapshot(): flush and hard links) and the writer's (uploads, state
/// file, sync); completes it. Returns the handle.
freshet::internal::OperatorStateHandle IncrementalCheckpoint(RocksInstance& instance, const std::string& base,
                                                             freshet::CheckpointId id, double* sync_ms,
                                                             double* async_s) {
  const std::string directory = freshet::internal::CheckpointDirectory(base, "bench", id);
  instance.ctx.checkpoint_id = id;
  auto start = Clock::now();
  auto snapshot = instance.backend->Snapshot();
  *sync_ms = Seconds(start) * 1e3;
  start = Clock::now();
  freshet::internal::TaskStateWriter writer(directory, "task.state", 1,
                                            freshet::internal::SharedDirectoryOf(directory));
  writer.BeginOperator(0);
  Check(freshet::internal::MakeKeyedSnapshot(std::move(snapshot), {}, {})(writer), "writing the checkpoint");
  auto written = writer.Finish();
  Check(written.GetStatus(), "finishing the state file");
  *async_s = Seconds(start);
  instance.backend->NotifyCheckpointComplete(id);
  freshet::internal::OperatorStateHandle handle;
  handle.operator_id = "bench";
  handle.name = "bench";
  handle.parallelism = 1;
  handle.max_parallelism = kMaxParallelism;
  handle.state_info = written->state_info.at(0);
  handle.subtasks = {written->operators.at(0)};
  return handle;
}

IncrementalFigures RunIncrementalOnce(int64_t keys, size_t value_bytes, const std::string& dir) {
  IncrementalFigures f;
  std::filesystem::remove_all(dir);
  const std::string local = dir + "/local", checkpoints = dir + "/checkpoints";
  const std::string shared = checkpoints + "/bench/shared";
  RocksInstance source(local);
  source.Register();
  auto start = Clock::now();
  for (int64_t k = 0; k < keys; ++k) source.Put(k, 0, value_bytes);
  f.fill_s = Seconds(start);
  IncrementalCheckpoint(source, checkpoints, 1, &f.first_sync_ms, &f.first_async_s);
  const uint64_t first = DirectoryBytes(shared);
  f.first_mb = static_cast<double>(first) / 1e6;
  // Later checkpoints, each after 1% of the keys changed (a different 1%
  // each time). Uploaded bytes: what the shared directory grew by (no
  // checkpoint is deleted here).
  std::vector<double> sync_ms, async_s, mb;
  uint64_t before = first;
  freshet::internal::OperatorStateHandle handle;
  freshet::CheckpointId id = 1;
  for (int c = 1; c <= kLaterCheckpoints; ++c) {
    // As between checkpoints seconds apart: the flushes and compactions the
    // last checkpoint started finish first (their output is uploaded).
    source.backend->Rocks()->WaitForBackgroundWork();
    for (int64_t k = c; k < keys; k += 100) source.Put(k, c, value_bytes);
    double ms = 0, s = 0;
    handle = IncrementalCheckpoint(source, checkpoints, ++id, &ms, &s);
    uint64_t now = DirectoryBytes(shared);
    sync_ms.push_back(ms);
    async_s.push_back(s);
    mb.push_back(static_cast<double>(now - before) / 1e6);
    before = now;
  }
  f.later_sync_ms = Median(sync_ms);
  f.later_async_s = Median(async_s);
  f.later_mb = Median(mb);
  f.later_max_mb = *std::max_element(mb.begin(), mb.end());

  // Restore of the last one: the files linked into a new instance, opened.
  start = Clock::now();
  auto restore = freshet::internal::LoadRestore(freshet::internal::CheckpointDirectory(checkpoints, "bench", id),
                                                freshet::internal::AssignRestore(handle, 0, 1));
  Check(restore.GetStatus(), "loading the checkpoint");
  RocksInstance target(local);
  target.backend->SetRestoredInfo(restore->state_info);
  Check(target.backend->RestoreFiles(restore->incremental), "restoring the files");
  target.Register();
  f.restore_s = Seconds(start);
  for (int64_t k = 0; k < keys; k += 9973) {
    target.key = static_cast<int64_t>(Mix(static_cast<uint64_t>(k)));
    target.backend->SetCurrentKey(target.key);
    const int version = k % 100 >= 1 && k % 100 <= kLaterCheckpoints ? static_cast<int>(k % 100) : 0;
    if (target.state->Value() != Letters(k, version, value_bytes)) {
      std::fprintf(stderr, "restored key number %lld holds another value\n", static_cast<long long>(k));
      std::exit(1);
    }
  }
  return f;
}

int RunIncremental(int64_t keys, size_t value_bytes, int runs, const std::string& base) {
  std::string dir = base + "/freshet-incremental-bench-" + std::to_string(getpid());
  std::vector<int64_t> sizes;
  if (keys > 0) {
    sizes = {keys};
  } else {
    for (int64_t mb : {64, 256, 1024}) sizes.push_back(mb * 1000000 / static_cast<int64_t>(value_bytes + 8));
  }
  for (int64_t n : sizes) {
    std::vector<IncrementalFigures> all;
    for (int run = 1; run <= runs; ++run) {
      IncrementalFigures f = RunIncrementalOnce(n, value_bytes, dir);
      std::printf(
          "%lld keys x %zu B, run %d: fill %.1f s; checkpoint 1: task thread %.0f ms, writer %.2f s, uploaded %.1f "
          "MB; next %d checkpoints (1%% of keys changed before each), medians: task thread %.0f ms, writer %.3f s, "
          "uploaded %.2f MB (%.2f%%; max %.2f MB); restore %.3f s\n",
          static_cast<long long>(n), value_bytes, run, f.fill_s, f.first_sync_ms, f.first_async_s, f.first_mb,
          kLaterCheckpoints, f.later_sync_ms, f.later_async_s, f.later_mb, 100.0 * f.later_mb / f.first_mb,
          f.later_max_mb, f.restore_s);
      std::fflush(stdout);
      all.push_back(f);
    }
    auto median = [&all](double IncrementalFigures::*field) {
      std::vector<double> v;
      for (const auto& f : all) v.push_back(f.*field);
      return Median(v);
    };
    std::printf(
        "median over %d runs, %lld keys (%.0f MB of keys and values): checkpoint 1 task thread %.0f ms, writer %.2f "
        "s, %.1f MB; later checkpoints task thread %.0f ms, writer %.3f s, %.2f MB (max %.2f MB); restore %.3f s\n",
        runs, static_cast<long long>(n), static_cast<double>(n) * static_cast<double>(value_bytes + 8) / 1e6,
        median(&IncrementalFigures::first_sync_ms), median(&IncrementalFigures::first_async_s),
        median(&IncrementalFigures::first_mb), median(&IncrementalFigures::later_sync_ms),
        median(&IncrementalFigures::later_async_s), median(&IncrementalFigures::later_mb),
        median(&IncrementalFigures::later_max_mb), median(&IncrementalFigures::restore_s));
    std::fflush(stdout);
  }
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  enum class Mode { kThroughput, kSnapshot, kLatency, kCompareBackends, kIncremental } mode = Mode::kThroughput;
  int64_t keys = -1;
  int64_t updates = 20'000'000;
  bool updates_set = false;
  int64_t value_bytes = 0;
  int runs = -1;
  double rate = 1'000'000;
  double seconds = 5;
  double settle_s = 2;
  std::string dir = "/tmp";
  std::string command = argv[0];
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--keys" && i + 1 < argc) {
      keys = std::atoll(argv[++i]);
    } else if (a == "--updates" && i + 1 < argc) {
      updates = std::atoll(argv[++i]);
      updates_set = true;
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (a == "--rate" && i + 1 < argc) {
      rate = std::atof(argv[++i]);
    } else if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (a == "--settle" && i + 1 < argc) {
      settle_s = std::atof(argv[++i]);
    } else if (a == "--value-bytes" && i + 1 < argc) {
      value_bytes = std::atoll(argv[++i]);
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--snapshot") {
      mode = Mode::kSnapshot;
    } else if (a == "--latency") {
      mode = Mode::kLatency;
    } else if (a == "--compare-backends") {
      mode = Mode::kCompareBackends;
    } else if (a == "--incremental") {
      mode = Mode::kIncremental;
    } else {
      std::fprintf(stderr,
                   "usage: freshet_state_bench [--keys N] [--updates N] [--runs R]\n"
                   "       freshet_state_bench --snapshot [--keys N] [--value-bytes B] [--runs R] [--dir D]\n"
                   "       freshet_state_bench --latency [--keys N] [--rate U] [--seconds S] [--settle T] [--runs R] "
                   "[--dir D]\n"
                   "       freshet_state_bench --compare-backends [--keys N] [--updates N] [--runs R] [--dir D]\n"
                   "       freshet_state_bench --incremental [--keys N] [--value-bytes B] [--runs R] [--dir D]\n");
      return 2;
    }
  }
  switch (mode) {
    case Mode::kThroughput:
      return RunThroughput(keys > 0 ? keys : 10'000'000, updates, runs > 0 ? runs : 5);
    case Mode::kSnapshot:
      std::printf("command: %s\n", command.c_str());
      if (value_bytes > 0) {
        return RunSnapshot<std::string>(keys > 0 ? keys : 4'000'000, static_cast<size_t>(value_bytes),
                                        runs > 0 ? runs : 3, dir);
      }
      return RunSnapshot<int64_t>(keys > 0 ? keys : 40'000'000, 0, runs > 0 ? runs : 3, dir);
    case Mode::kLatency:
      std::printf("command: %s\n", command.c_str());
      return RunLatency(keys > 0 ? keys : 40'000'000, rate, seconds, settle_s, runs > 0 ? runs : 3, dir);
    case Mode::kCompareBackends:
      std::printf("command: %s\n", command.c_str());
      return RunCompareBackends(keys > 0 ? keys : 1'000'000, updates_set ? updates : 2'000'000, runs > 0 ? runs : 3,
                                dir);
    case Mode::kIncremental:
      std::printf("command: %s\n", command.c_str());
      return RunIncremental(keys, value_bytes > 0 ? static_cast<size_t>(value_bytes) : 100, runs > 0 ? runs : 3, dir);
  }
  return 0;
}
