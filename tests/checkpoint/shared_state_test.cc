// Incremental keyed state in checkpoint storage: shared files uploaded once
// into the job's shared directory and referenced by later checkpoints,
// private files inside the task's state file, the metadata that records
// them, restores at other parallelisms, verification, and the registry
// that deletes a shared file when no retained checkpoint references it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "freshet/key_groups.h"
#include "runtime/checkpoint/checkpoint_coordinator.h"
#include "runtime/checkpoint/checkpoint_storage.h"
#include "support/temp_dir.h"

namespace freshet::internal {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using test_support::ReadFile;
using test_support::WriteFile;

class SharedStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    job_ = fs::path(dir_.Path()) / "job-1";
    local_ = fs::path(dir_.Path()) / "local";
    fs::create_directories(local_);
  }

  /// A local backend file with `bytes`.
  std::string Local(const std::string& name, const std::string& bytes) {
    WriteFile(local_ / name, bytes);
    return (local_ / name).string();
  }

  /// Writes checkpoint `id` of a one-operator job at `parallelism`: every
  /// subtask uploads (or references) the given shared files and writes a
  /// private manifest; returns the metadata, written to _metadata.
  CheckpointMetadata WriteCheckpoint(CheckpointId id, int parallelism,
                                     const std::vector<std::vector<std::pair<std::string, std::string>>>& files) {
    std::string directory = CheckpointDirectory(dir_.Path(), "job-1", id);
    CheckpointMetadata md;
    md.job_id = "job-1";
    md.checkpoint_id = id;
    OperatorStateHandle op;
    op.operator_id = "uid";
    op.name = "keyed";
    op.parallelism = parallelism;
    op.max_parallelism = 8;
    op.state_info = {{"s", "value", "l"}};
    for (int subtask = 0; subtask < parallelism; ++subtask) {
      TaskStateWriter writer(directory, "task-" + std::to_string(subtask) + ".state", 1,
                             SharedDirectoryOf(directory));
      writer.BeginOperator(0);
      KeyGroupRange range = KeyGroupRangeForSubtask(subtask, parallelism, 8);
      IncrementalKeyedState state;
      state.backend_id = "backend-" + std::to_string(subtask);
      state.key_group_start = range.start;
      state.key_group_end = range.end;
      for (const auto& [local, bytes] : files[static_cast<size_t>(subtask)]) {
        std::string path = Local(state.backend_id + "-" + local, bytes);
        Result<SharedFileRef> ref = writer.UploadSharedFile(path, state.backend_id + "-" + local);
        EXPECT_TRUE(ref.IsOk()) << ref.GetStatus().ToString();
        if (!ref.IsOk()) return md;
        state.shared_files.emplace_back(local, *ref);
      }
      state.private_files.emplace_back("MANIFEST", "manifest of " + std::to_string(id) + "/" + std::to_string(subtask));
      EXPECT_TRUE(writer.AddIncrementalKeyedState(state).IsOk());
      Result<TaskStateSnapshot> ts = writer.Finish();
      EXPECT_TRUE(ts.IsOk()) << ts.GetStatus().ToString();
      if (!ts.IsOk()) return md;
      op.subtasks.push_back(ts->operators[0]);
      md.files.insert(md.files.end(), ts->files.begin(), ts->files.end());
    }
    md.operators.push_back(std::move(op));
    EXPECT_TRUE(WriteMetadata(directory, md).IsOk());
    return md;
  }

  test_support::TempDir dir_;
  fs::path job_;
  fs::path local_;
};

TEST_F(SharedStateTest, SharedFilesAreUploadedOnceAndRecordedInTheMetadata) {
  CheckpointMetadata written = WriteCheckpoint(1, 1, {{{"000010.sst", "ten"}, {"000011.sst", "eleven!"}}});
  const std::string directory = CheckpointDirectory(dir_.Path(), "job-1", 1);
  EXPECT_EQ(ReadFile(job_ / "shared" / "backend-0-000010.sst"), "ten");
  EXPECT_EQ(ReadFile(job_ / "shared" / "backend-0-000011.sst"), "eleven!");

  Result<CheckpointMetadata> md = ReadMetadata(directory);
  ASSERT_TRUE(md.IsOk()) << md.GetStatus().ToString();
  ASSERT_EQ(md->operators.size(), 1u);
  const auto& inc = md->operators[0].subtasks[0].incremental;
  ASSERT_TRUE(inc.has_value());
  EXPECT_EQ(inc->backend_id, "backend-0");
  EXPECT_EQ(inc->key_group_start, 0);
  EXPECT_EQ(inc->key_group_end, 7);
  ASSERT_EQ(inc->shared_files.size(), 2u);
  EXPECT_EQ(inc->shared_files[0].first, "000010.sst");
  EXPECT_EQ(inc->shared_files[0].second.name, "backend-0-000010.sst");
  EXPECT_EQ(inc->shared_files[0].second.size, 3u);
  EXPECT_EQ(inc->shared_files[0].second.crc32c, Crc32c("ten", 3));
  ASSERT_EQ(inc->private_files.size(), 1u);
  EXPECT_EQ(inc->private_files[0].first, "MANIFEST");
  // The shared files are listed (relative to the checkpoint) for verification.
  int shared = 0;
  for (const StateFileInfo& f : md->files) {
    if (!f.shared) continue;
    ++shared;
    EXPECT_THAT(f.file, ::testing::StartsWith("../shared/backend-0-"));
  }
  EXPECT_EQ(shared, 2);
  EXPECT_TRUE(VerifyCheckpoint(directory, *md).IsOk());

  // Restored at the same parallelism: the private bytes, the shared files
  // and where they are.
  Result<OperatorRestore> restore = LoadRestore(directory, AssignRestore(md->operators[0], 0, 1));
  ASSERT_TRUE(restore.IsOk()) << restore.GetStatus().ToString();
  ASSERT_EQ(restore->incremental.size(), 1u);
  const RestoredIncrementalState& r = restore->incremental[0];
  EXPECT_EQ(r.private_files, (std::vector<std::pair<std::string, std::string>>{{"MANIFEST", "manifest of 1/0"}}));
  EXPECT_EQ(fs::path(r.shared_directory), (job_ / "shared").lexically_normal());
  EXPECT_EQ(ReadFile(fs::path(r.shared_directory) / r.shared_files[1].second.name), "eleven!");
}

TEST_F(SharedStateTest, RepeatedUploadKeepsTheFileAndOtherContentsAreRefused) {
  const std::string directory = CheckpointDirectory(dir_.Path(), "job-1", 1);
  TaskStateWriter writer(directory, "t.state", 1, SharedDirectoryOf(directory));
  writer.BeginOperator(0);
  ASSERT_TRUE(writer.UploadSharedFile(Local("a", "alpha"), "b-a").IsOk());
  Result<SharedFileRef> again = writer.UploadSharedFile(Local("a", "alpha"), "b-a");
  ASSERT_TRUE(again.IsOk()) << again.GetStatus().ToString();
  EXPECT_EQ(again->crc32c, Crc32c("alpha", 5));
  Result<SharedFileRef> other = writer.UploadSharedFile(Local("a2", "omega"), "b-a");
  ASSERT_FALSE(other.IsOk());
  EXPECT_THAT(other.GetStatus().Message(), HasSubstr("exists with other contents"));
  EXPECT_FALSE(writer.UploadSharedFile(Local("a3", "x"), "../escape").IsOk());
  EXPECT_FALSE(writer.UploadSharedFile((local_ / "missing").string(), "b-m").IsOk());
  // No temporary upload files are left behind.
  for (const auto& entry : fs::directory_iterator(job_ / "shared")) {
    EXPECT_EQ(entry.path().filename().string().find(".upload-"), std::string::npos) << entry.path();
  }
}

TEST_F(SharedStateTest, SavepointsTakeNoSharedFiles) {
  TaskStateWriter writer((fs::path(dir_.Path()) / "savepoint-x").string(), "t.state", 1);
  writer.BeginOperator(0);
  EXPECT_TRUE(writer.SharedDirectory().empty());
  EXPECT_EQ(writer.UploadSharedFile(Local("a", "alpha"), "b-a").GetStatus().Code(),
            StatusCode::kFailedPrecondition);
  IncrementalKeyedState state;
  state.backend_id = "b";
  EXPECT_EQ(writer.AddIncrementalKeyedState(state).Code(), StatusCode::kFailedPrecondition);
}

TEST_F(SharedStateTest, CorruptOrMissingSharedFileFailsVerification) {
  CheckpointMetadata md = WriteCheckpoint(1, 1, {{{"1.sst", "some table bytes"}}});
  const std::string directory = CheckpointDirectory(dir_.Path(), "job-1", 1);
  ASSERT_TRUE(VerifyCheckpoint(directory, md).IsOk());
  fs::path file = job_ / "shared" / "backend-0-1.sst";
  std::string bytes = ReadFile(file);
  bytes[3] ^= 0x20;
  WriteFile(file, bytes);
  Status corrupt = VerifyCheckpoint(directory, md);
  EXPECT_EQ(corrupt.Code(), StatusCode::kCorruption);
  EXPECT_THAT(corrupt.Message(), HasSubstr("shared state file"));
  EXPECT_THAT(corrupt.Message(), HasSubstr("backend-0-1.sst"));
  fs::remove(file);
  Status missing = VerifyCheckpoint(directory, md);
  EXPECT_FALSE(missing.IsOk());
  EXPECT_THAT(missing.Message(), HasSubstr("missing"));
}

// Rescaling: each new subtask gets every old instance whose key groups
// overlap its own (it clips them to its range when it restores).
TEST_F(SharedStateTest, RestoreAtOtherParallelismGetsTheOverlappingInstances) {
  CheckpointMetadata md = WriteCheckpoint(1, 2, {{{"1.sst", "first half"}}, {{"1.sst", "second half"}}});
  const std::string directory = CheckpointDirectory(dir_.Path(), "job-1", 1);
  // 2 -> 1: both.
  Result<OperatorRestore> one = LoadRestore(directory, AssignRestore(md.operators[0], 0, 1));
  ASSERT_TRUE(one.IsOk());
  ASSERT_EQ(one->incremental.size(), 2u);
  EXPECT_EQ(one->incremental[0].backend_id, "backend-0");
  EXPECT_EQ(one->incremental[1].backend_id, "backend-1");
  EXPECT_EQ(one->incremental[1].private_files[0].second, "manifest of 1/1");
  // 2 -> 4: each new subtask overlaps exactly one old one (key groups 0-1,
  // 2-3 from the first; 4-5, 6-7 from the second).
  for (int subtask = 0; subtask < 4; ++subtask) {
    Result<OperatorRestore> r = LoadRestore(directory, AssignRestore(md.operators[0], subtask, 4));
    ASSERT_TRUE(r.IsOk());
    ASSERT_EQ(r->incremental.size(), 1u) << subtask;
    EXPECT_EQ(r->incremental[0].backend_id, subtask < 2 ? "backend-0" : "backend-1") << subtask;
  }
  // 2 -> 3: the middle subtask (key groups 3-5) overlaps both.
  Result<OperatorRestore> middle = LoadRestore(directory, AssignRestore(md.operators[0], 1, 3));
  ASSERT_TRUE(middle.IsOk());
  EXPECT_EQ(middle->incremental.size(), 2u);
  // Max parallelism must not change for incremental keyed state either.
  std::vector<RestoreTarget> targets = {{"uid", "keyed", 2, 16}};
  Status s = CheckRestoreCompatibility(md, targets, false);
  EXPECT_FALSE(s.IsOk());
  EXPECT_THAT(s.Message(), HasSubstr("max parallelism changed from 8 to 16"));
}

// Bad names in the metadata never point a restore outside its directories.
TEST_F(SharedStateTest, MetadataWithPathsInFileNamesIsCorrupt) {
  const std::string directory = CheckpointDirectory(dir_.Path(), "job-1", 1);
  CheckpointMetadata md;
  md.job_id = "job-1";
  md.checkpoint_id = 1;
  OperatorStateHandle op;
  op.operator_id = "uid";
  op.subtasks.resize(1);
  op.subtasks[0].incremental.emplace();
  op.subtasks[0].incremental->shared_files.push_back({"1.sst", SharedFileRef{"../../etc/passwd", 1, 0}});
  md.operators.push_back(op);
  ASSERT_TRUE(WriteMetadata(directory, md).IsOk());
  Result<CheckpointMetadata> read = ReadMetadata(directory);
  ASSERT_FALSE(read.IsOk());
  EXPECT_EQ(read.GetStatus().Code(), StatusCode::kCorruption);
  EXPECT_THAT(read.GetStatus().Message(), HasSubstr("bad shared file name"));
}

// Metadata of version 1 (before incremental state) is still read. Without
// subtasks and files the two versions differ only in the version field.
TEST_F(SharedStateTest, MetadataVersionOneIsRead) {
  const std::string directory = CheckpointDirectory(dir_.Path(), "job-1", 4);
  CheckpointMetadata md;
  md.job_id = "job-1";
  md.checkpoint_id = 4;
  md.timestamp = 1234;
  ASSERT_TRUE(WriteMetadata(directory, md).IsOk());
  fs::path file = fs::path(directory) / "_metadata";
  std::string bytes = ReadFile(file);
  uint32_t version = 1;
  std::memcpy(bytes.data() + 8, &version, 4);
  uint32_t crc = Crc32c(bytes.data(), bytes.size() - 4);
  std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
  WriteFile(file, bytes);
  Result<CheckpointMetadata> read = ReadMetadata(directory);
  ASSERT_TRUE(read.IsOk()) << read.GetStatus().ToString();
  EXPECT_EQ(read->checkpoint_id, 4);
  EXPECT_EQ(read->timestamp, 1234);
  version = 0;
  std::memcpy(bytes.data() + 8, &version, 4);
  crc = Crc32c(bytes.data(), bytes.size() - 4);
  std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
  WriteFile(file, bytes);
  Result<CheckpointMetadata> zero = ReadMetadata(directory);
  ASSERT_FALSE(zero.IsOk());
  EXPECT_THAT(zero.GetStatus().Message(), HasSubstr("reads versions 1 to 2"));
}

TEST(SharedFileRegistryTest, DeletesOnlyWhenNoRetainedCheckpointReferences) {
  SharedFileRegistry registry;
  registry.Register({"a", "b"});       // checkpoint 1
  registry.Register({"a", "b", "c"});  // checkpoint 2 references a and b again
  EXPECT_TRUE(registry.Release({"a", "b"}).empty());  // 1 retired: 2 still holds them
  registry.Register({"b", "c", "d"});                 // checkpoint 3
  EXPECT_EQ(registry.Release({"a", "b", "c"}), (std::vector<std::string>{"a"}));  // 2 retired
  EXPECT_TRUE(registry.Referenced("b"));
  EXPECT_FALSE(registry.Referenced("a"));
  std::vector<std::string> last = registry.Release({"b", "c", "d"});
  EXPECT_EQ(last, (std::vector<std::string>{"b", "c", "d"}));
  EXPECT_EQ(registry.Size(), 0u);
  EXPECT_TRUE(registry.Release({"unknown"}).empty());
}

}  // namespace
}  // namespace freshet::internal
