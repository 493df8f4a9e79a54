// Incremental checkpoints of the RocksDB backend through the checkpoint
// storage: the instance's files uploaded into the job's shared directory
// (only those no completed checkpoint holds), restores from them at the
// same and at other parallelisms (clipped and merged key-group ranges),
// the key-group form for outputs without a shared directory, changed
// states, missing, truncated and damaged files, and the heap backend's
// refusal.
#include <freshet/freshet.h>
#include <freshet/internal/keyed_snapshot.h>
#include <freshet/internal/keyed_state.h>
#include <freshet/internal/rocksdb_keyed_state.h>
#include <freshet/testing/operator_harness.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runtime/checkpoint/checkpoint_storage.h"
#include "support/temp_dir.h"

namespace freshet {
namespace {

namespace fs = std::filesystem;
using internal::OperatorStateHandle;
using internal::RocksDBKeyedStateBackend;
using ::testing::HasSubstr;

constexpr int kMaxParallelism = 32;

/// One operator instance: its context, RocksDB backend and two states.
struct Instance {
  internal::OperatorContext ctx;
  std::unique_ptr<RocksDBKeyedStateBackend<int64_t>> backend;
  std::unique_ptr<RuntimeContext> rc;
  ValueState<std::string>* value = nullptr;
  MapState<int64_t, int64_t>* map = nullptr;

  void Register() {
    rc = std::make_unique<RuntimeContext>("op", 0, 1, kMaxParallelism, 0);
    rc->SetKeyedStateStore(backend.get());
    value = &rc->GetState(ValueStateDescriptor<std::string>("value"));
    map = &rc->GetMapState(MapStateDescriptor<int64_t, int64_t>("map"));
  }
  void Put(int64_t key, const std::string& v) {
    backend->SetCurrentKey(key);
    value->Update(v);
    map->Put(key % 7, key);
    map->Put(100 + key % 3, -key);
  }
};

/// A value of about 100 bytes that does not compress away.
std::string Payload(int64_t key, int version) {
  std::mt19937_64 random(static_cast<uint64_t>(key) * 1000003u + static_cast<uint64_t>(version));
  std::string s = std::to_string(key) + "/" + std::to_string(version) + ":";
  while (s.size() < 100) s.push_back(static_cast<char>('a' + random() % 26));
  return s;
}

class RocksDBIncrementalTest : public ::testing::Test {
 protected:
  std::unique_ptr<Instance> Make(int subtask, int parallelism, bool incremental = true) {
    auto instance = std::make_unique<Instance>();
    instance->ctx.key_groups = KeyGroupRangeForSubtask(subtask, parallelism, kMaxParallelism);
    instance->ctx.max_parallelism = kMaxParallelism;
    instance->ctx.processing_time = &time_;
    instance->ctx.state_backend.type = StateBackendOptions::Type::kRocksDB;
    instance->ctx.state_backend.rocksdb_local_dir = (fs::path(dir_.Path()) / "local").string();
    instance->ctx.state_backend.incremental = incremental;
    instance->backend = std::make_unique<RocksDBKeyedStateBackend<int64_t>>(
        instance->ctx.key_groups, kMaxParallelism, &time_, instance->ctx.state_backend, &instance->ctx);
    return instance;
  }

  std::string Directory(CheckpointId id) const {
    return internal::CheckpointDirectory(dir_.Path(), "job-1", id);
  }
  fs::path Shared() const { return fs::path(dir_.Path()) / "job-1" / "shared"; }

  /// Writes checkpoint `id` of `subtasks` (one operator) and its metadata;
  /// the checkpoint completes (its files become the base of the next)
  /// unless `complete` is false.
  OperatorStateHandle Checkpoint(CheckpointId id, const std::vector<Instance*>& subtasks,
                                 bool complete = true) {
    const std::string directory = Directory(id);
    OperatorStateHandle op;
    op.operator_id = "uid";
    op.name = "op";
    op.parallelism = static_cast<int>(subtasks.size());
    op.max_parallelism = kMaxParallelism;
    internal::CheckpointMetadata md;
    md.job_id = "job-1";
    md.checkpoint_id = id;
    for (size_t i = 0; i < subtasks.size(); ++i) {
      subtasks[i]->ctx.checkpoint_id = id;
      internal::AsyncSnapshot write = internal::MakeKeyedSnapshot(subtasks[i]->backend->Snapshot(), {}, {});
      internal::TaskStateWriter writer(directory, "task-" + std::to_string(i) + ".state", 1,
                                       internal::SharedDirectoryOf(directory));
      writer.BeginOperator(0);
      Status s = write(writer);
      EXPECT_TRUE(s.IsOk()) << s.ToString();
      Result<internal::TaskStateSnapshot> ts = writer.Finish();
      EXPECT_TRUE(ts.IsOk()) << ts.GetStatus().ToString();
      if (!ts.IsOk()) return op;
      op.subtasks.push_back(ts->operators[0]);
      if (i == 0) op.state_info = ts->state_info[0];
      md.files.insert(md.files.end(), ts->files.begin(), ts->files.end());
    }
    md.operators.push_back(op);
    EXPECT_TRUE(internal::WriteMetadata(directory, md).IsOk());
    if (complete) {
      for (Instance* instance : subtasks) instance->backend->NotifyCheckpointComplete(id);
    }
    return op;
  }

  /// Subtask `subtask` of `parallelism` restored from checkpoint `id`.
  std::unique_ptr<Instance> Restore(const OperatorStateHandle& op, CheckpointId id, int subtask,
                                    int parallelism, Status* status = nullptr) {
    Result<internal::OperatorRestore> restore =
        internal::LoadRestore(Directory(id), internal::AssignRestore(op, subtask, parallelism));
    EXPECT_TRUE(restore.IsOk()) << restore.GetStatus().ToString();
    auto instance = Make(subtask, parallelism);
    if (!restore.IsOk()) return instance;
    instance->backend->SetRestoredInfo(restore->state_info);
    Status s = instance->backend->RestoreFiles(restore->incremental);
    if (status != nullptr) {
      *status = s;
    } else {
      EXPECT_TRUE(s.IsOk()) << s.ToString();
    }
    return instance;
  }

  /// Bytes of the files in the shared directory.
  uint64_t SharedBytes() const {
    uint64_t total = 0;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(Shared(), ec)) total += entry.file_size();
    return total;
  }

  /// Expects `instance` to hold exactly `expected` of its key groups.
  static void ExpectHolds(Instance& instance, const std::map<int64_t, std::string>& expected) {
    size_t in_range = 0;
    for (const auto& [key, v] : expected) {
      if (!instance.ctx.key_groups.Contains(AssignToKeyGroup(key, kMaxParallelism))) continue;
      ++in_range;
      instance.backend->SetCurrentKey(key);
      ASSERT_EQ(instance.value->Get(), v) << "key " << key;
      std::map<int64_t, int64_t> entries;
      for (const auto& [k, mv] : instance.map->Entries()) entries.emplace(k, mv);
      ASSERT_EQ(entries, (std::map<int64_t, int64_t>{{key % 7, key}, {100 + key % 3, -key}})) << "key " << key;
    }
    // Nothing outside the range (clipped away) and nothing else.
    EXPECT_EQ(instance.backend->NumKeys(), in_range);
  }

  test_support::TempDir dir_{"freshet-rocksdb-incremental"};
  testing::ManualProcessingTimeService time_;
};

TEST_F(RocksDBIncrementalTest, CheckpointOfFilesRestoresEveryState) {
  auto instance = Make(0, 1);
  instance->Register();
  std::map<int64_t, std::string> expected;
  for (int64_t k = 0; k < 2000; ++k) instance->Put(k, expected[k] = Payload(k, 0));
  OperatorStateHandle op = Checkpoint(1, {instance.get()});
  // The keyed state is the backend's files: SST files in the shared
  // directory, the small files in the task's state file; no key groups.
  ASSERT_EQ(op.subtasks.size(), 1u);
  ASSERT_TRUE(op.subtasks[0].incremental.has_value());
  EXPECT_TRUE(op.subtasks[0].key_groups.empty());
  const auto& inc = *op.subtasks[0].incremental;
  EXPECT_EQ(inc.backend_id, instance->backend->Rocks()->BackendId());
  EXPECT_FALSE(inc.shared_files.empty());
  std::set<std::string> privates;
  for (const auto& [name, block] : inc.private_files) privates.insert(name.substr(0, name.find('-')));
  EXPECT_TRUE(privates.count("CURRENT") && privates.count("MANIFEST") && privates.count("OPTIONS"))
      << ::testing::PrintToString(privates);
  for (const auto& [local, ref] : inc.shared_files) {
    EXPECT_THAT(local, ::testing::EndsWith(".sst"));
    EXPECT_EQ(ref.name, inc.backend_id + "-" + local);
    EXPECT_EQ(fs::file_size(Shared() / ref.name), ref.size);
  }
  // The checkpoint directory of the RocksDB checkpoint is gone.
  for (const auto& entry : fs::directory_iterator(fs::path(dir_.Path()) / "local")) {
    EXPECT_EQ(entry.path().string().find(".chk-"), std::string::npos) << entry.path();
  }

  auto restored = Restore(op, 1, 0, 1);
  restored->Register();
  ExpectHolds(*restored, expected);
  // The restored instance goes on and checkpoints again.
  restored->Put(5, expected[5] = Payload(5, 1));
  OperatorStateHandle again = Checkpoint(2, {restored.get()});
  auto twice = Restore(again, 2, 0, 1);
  twice->Register();
  ExpectHolds(*twice, expected);
}

TEST_F(RocksDBIncrementalTest, SecondCheckpointUploadsOnlyWhatChanged) {
  auto instance = Make(0, 1);
  instance->Register();
  std::map<int64_t, std::string> expected;
  // Small enough to stay in one memtable until the checkpoint flushes it:
  // no flush or compaction in the background changes files in between.
  constexpr int64_t kKeys = 40000;
  for (int64_t k = 0; k < kKeys; ++k) instance->Put(k, expected[k] = Payload(k, 0));
  OperatorStateHandle first = Checkpoint(1, {instance.get()});
  const uint64_t first_bytes = SharedBytes();
  ASSERT_GT(first_bytes, uint64_t{2} << 20);  // ~4 MB of values

  // 1% of the keys change.
  for (int64_t k = 0; k < kKeys; k += 100) instance->Put(k, expected[k] = Payload(k, 1));
  OperatorStateHandle second = Checkpoint(2, {instance.get()});
  const uint64_t second_bytes = SharedBytes() - first_bytes;
  std::printf("first checkpoint uploaded %llu bytes, the second %llu (%.2f%%)\n",
              static_cast<unsigned long long>(first_bytes), static_cast<unsigned long long>(second_bytes),
              100.0 * static_cast<double>(second_bytes) / static_cast<double>(first_bytes));
  EXPECT_LT(second_bytes * 20, first_bytes);
  // The second references every file of the first (still live).
  std::set<std::string> first_files, second_files;
  for (const auto& [local, ref] : first.subtasks[0].incremental->shared_files) first_files.insert(ref.name);
  for (const auto& [local, ref] : second.subtasks[0].incremental->shared_files) second_files.insert(ref.name);
  for (const std::string& name : first_files) EXPECT_TRUE(second_files.count(name)) << name;
  EXPECT_GT(second_files.size(), first_files.size());

  auto restored = Restore(second, 2, 0, 1);
  restored->Register();
  ExpectHolds(*restored, expected);
}

TEST_F(RocksDBIncrementalTest, FilesOfACheckpointNotCompletedAreUploadedAgain) {
  auto instance = Make(0, 1);
  instance->Register();
  std::map<int64_t, std::string> expected;
  for (int64_t k = 0; k < 500; ++k) instance->Put(k, expected[k] = Payload(k, 0));
  Checkpoint(1, {instance.get()}, /*complete=*/false);
  // Checkpoint 1 was aborted and its files deleted.
  fs::remove_all(Shared());
  instance->Put(1, expected[1] = Payload(1, 1));
  OperatorStateHandle second = Checkpoint(2, {instance.get()});
  auto restored = Restore(second, 2, 0, 1);
  restored->Register();
  ExpectHolds(*restored, expected);
}

TEST_F(RocksDBIncrementalTest, RescalingClipsAndMergesKeyGroupRanges) {
  // Two instances, each with its own history of checkpoints.
  auto a = Make(0, 2), b = Make(1, 2);
  a->Register();
  b->Register();
  std::map<int64_t, std::string> expected;
  auto put = [&](int64_t k, int version) {
    Instance& owner = a->ctx.key_groups.Contains(AssignToKeyGroup(k, kMaxParallelism)) ? *a : *b;
    owner.Put(k, expected[k] = Payload(k, version));
  };
  for (int64_t k = 0; k < 3000; ++k) put(k, 0);
  Checkpoint(1, {a.get(), b.get()});
  for (int64_t k = 0; k < 3000; k += 3) put(k, 1);
  OperatorStateHandle op = Checkpoint(2, {a.get(), b.get()});

  for (int parallelism : {1, 3, 4}) {
    SCOPED_TRACE("parallelism " + std::to_string(parallelism));
    std::vector<std::unique_ptr<Instance>> restored;
    for (int subtask = 0; subtask < parallelism; ++subtask) {
      restored.push_back(Restore(op, 2, subtask, parallelism));
      restored.back()->Register();
      ExpectHolds(*restored.back(), expected);
    }
    // And on from there: a checkpoint of the rescaled job restores back at 2.
    std::vector<Instance*> all;
    for (auto& r : restored) all.push_back(r.get());
    OperatorStateHandle rescaled = Checkpoint(10 + parallelism, all);
    for (int subtask = 0; subtask < 2; ++subtask) {
      auto back = Restore(rescaled, 10 + parallelism, subtask, 2);
      back->Register();
      ExpectHolds(*back, expected);
    }
  }
}

TEST_F(RocksDBIncrementalTest, OutputsWithoutSharedFilesGetKeyGroups) {
  // A savepoint (or a harness) takes the backend-independent form even from
  // a snapshot that made files; it restores into the heap backend.
  auto instance = Make(0, 1);
  instance->Register();
  std::map<int64_t, std::string> expected;
  for (int64_t k = 0; k < 300; ++k) instance->Put(k, expected[k] = Payload(k, 0));
  instance->ctx.checkpoint_id = 1;
  std::unique_ptr<internal::KeyedStateSnapshot> files = instance->backend->Snapshot();
  ASSERT_TRUE(files->HasFiles());
  internal::MemorySnapshotOutput with_files;
  ASSERT_TRUE(internal::MakeKeyedSnapshot(std::move(files), {}, {})(with_files).IsOk());
  instance->ctx.savepoint = true;
  std::unique_ptr<internal::KeyedStateSnapshot> plain = instance->backend->Snapshot();
  EXPECT_FALSE(plain->HasFiles());
  internal::MemorySnapshotOutput without;
  ASSERT_TRUE(internal::MakeKeyedSnapshot(std::move(plain), {}, {})(without).IsOk());
  EXPECT_FALSE(with_files.key_groups.empty());
  EXPECT_EQ(with_files.key_groups, without.key_groups);

  internal::HeapKeyedStateBackend<int64_t> heap({0, kMaxParallelism - 1}, kMaxParallelism, &time_);
  for (const auto& [kg, block] : with_files.key_groups) {
    auto parts = internal::KeyGroupParts::Decode(block);
    ASSERT_TRUE(parts.IsOk());
    for (const auto& [name, bytes] : *parts) {
      ASSERT_TRUE(heap.RestoreKeyGroup(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()).IsOk());
    }
  }
  RuntimeContext rc("op", 0, 1, kMaxParallelism, 0);
  rc.SetKeyedStateStore(&heap);
  auto& value = rc.GetState(ValueStateDescriptor<std::string>("value"));
  for (const auto& [key, v] : expected) {
    heap.SetCurrentKey(key);
    ASSERT_EQ(value.Get(), v);
  }
}

TEST_F(RocksDBIncrementalTest, ChangedStateTypeStartsEmptyAndIsReported) {
  auto instance = Make(0, 1);
  instance->Register();
  for (int64_t k = 0; k < 100; ++k) instance->Put(k, Payload(k, 0));
  OperatorStateHandle op = Checkpoint(1, {instance.get()});
  auto restored = Restore(op, 1, 0, 1);
  std::vector<std::string> problems;
  restored->backend->SetRestoreProblems(&problems, "op");
  RuntimeContext rc("op", 0, 1, kMaxParallelism, 0);
  rc.SetKeyedStateStore(restored->backend.get());
  auto& changed = rc.GetState(ValueStateDescriptor<int64_t>("value"));  // was a string
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr("keyed state 'value' was saved as value state"));
  const int64_t key = 3;  // the backend keeps a pointer to the current key
  restored->backend->SetCurrentKey(key);
  EXPECT_EQ(changed.Get(), std::nullopt);
  changed.Update(7);
  EXPECT_EQ(changed.Get(), 7);
  // The unchanged state kept its entries.
  auto& map = rc.GetMapState(MapStateDescriptor<int64_t, int64_t>("map"));
  EXPECT_EQ(map.Get(3), 3);
}

TEST_F(RocksDBIncrementalTest, MissingOrDamagedSharedFilesAreClearErrors) {
  auto instance = Make(0, 1);
  instance->Register();
  for (int64_t k = 0; k < 100; ++k) instance->Put(k, Payload(k, 0));
  OperatorStateHandle op = Checkpoint(1, {instance.get()});
  const std::string name = op.subtasks[0].incremental->shared_files[0].second.name;

  fs::resize_file(Shared() / name, 10);
  Status status;
  Restore(op, 1, 0, 1, &status);
  EXPECT_EQ(status.Code(), StatusCode::kCorruption) << status.ToString();
  EXPECT_THAT(status.Message(), HasSubstr(name));
  EXPECT_THAT(status.Message(), HasSubstr("has 10 bytes"));

  fs::remove(Shared() / name);
  Restore(op, 1, 0, 1, &status);
  EXPECT_EQ(status.Code(), StatusCode::kNotFound) << status.ToString();
  EXPECT_THAT(status.Message(), HasSubstr(name));
}

TEST_F(RocksDBIncrementalTest, DamagedFileContentsFailWithRocksDBsMessageNotACrash) {
  auto instance = Make(0, 1);
  instance->Register();
  for (int64_t k = 0; k < 5000; ++k) instance->Put(k, Payload(k, 0));
  OperatorStateHandle op = Checkpoint(1, {instance.get()});
  // The largest shared file gets 64 bytes overwritten in its middle; its
  // size stays (the size check at restore passes).
  internal::SharedFileRef largest;
  for (const auto& [local, ref] : op.subtasks[0].incremental->shared_files) {
    if (ref.size > largest.size) largest = ref;
  }
  {
    std::fstream f(Shared() / largest.name, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(largest.size / 2));
    const std::string junk(64, 'X');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  // Either the restore or the first read of a damaged block fails, with
  // RocksDB's message and the instance's directory.
  std::string error;
  try {
    Status status;
    auto restored = Restore(op, 1, 0, 1, &status);
    if (!status.IsOk()) {
      error = status.ToString();
    } else {
      restored->Register();
      for (int64_t key = 0; key < 5000; ++key) {
        restored->backend->SetCurrentKey(key);
        restored->value->Get();
      }
    }
  } catch (const internal::RocksDBStateError& e) {
    error = e.what();
  }
  EXPECT_THAT(error, HasSubstr("Corruption"));
  EXPECT_THAT(error, HasSubstr(instance->ctx.state_backend.rocksdb_local_dir));
}

TEST_F(RocksDBIncrementalTest, HeapBackendRefusesTheFilesNamingTheWayOut) {
  auto instance = Make(0, 1);
  instance->Register();
  instance->Put(1, Payload(1, 0));
  OperatorStateHandle op = Checkpoint(1, {instance.get()});
  Result<internal::OperatorRestore> restore =
      internal::LoadRestore(Directory(1), internal::AssignRestore(op, 0, 1));
  ASSERT_TRUE(restore.IsOk());
  internal::HeapKeyedStateBackend<int64_t> heap({0, kMaxParallelism - 1}, kMaxParallelism, &time_);
  std::vector<std::string> problems;
  heap.SetRestoreProblems(&problems, "op");
  EXPECT_TRUE(heap.RestoreFiles(restore->incremental).IsOk());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr("restores only into the RocksDB backend"));
  EXPECT_THAT(problems[0], HasSubstr("savepoint"));
}

}  // namespace
}  // namespace freshet
