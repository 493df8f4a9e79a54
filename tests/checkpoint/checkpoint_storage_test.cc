#include "runtime/checkpoint/checkpoint_storage.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "freshet/key_groups.h"
#include "support/temp_dir.h"

namespace freshet::internal {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int kMaxParallelism = 128;

using test_support::ReadFile;
using test_support::WriteFile;

void FlipByte(const fs::path& path, size_t offset) {
  std::string bytes = ReadFile(path);
  ASSERT_LT(offset, bytes.size());
  bytes[offset] = static_cast<char>(bytes[offset] ^ 0x5A);
  WriteFile(path, bytes);
}

/// A fresh directory per test, removed afterwards.
class CheckpointStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device random;
    root_ = fs::temp_directory_path() /
            ("freshet-storage-test-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
    fs::create_directories(root_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  fs::path root_;
};

// ---------------------------------------------------------------------------
// CRC32C

TEST(Crc32cTest, KnownVectors) {
  // RFC 3720 (iSCSI) appendix B.4 and the usual check value.
  std::string check = "123456789";
  std::vector<uint8_t> zeros(32, 0x00);
  std::vector<uint8_t> ones(32, 0xFF);
  std::vector<uint8_t> increasing(32);
  std::vector<uint8_t> decreasing(32);
  for (int i = 0; i < 32; ++i) {
    increasing[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
    decreasing[static_cast<size_t>(i)] = static_cast<uint8_t>(31 - i);
  }
  for (auto crc : {&Crc32c, &Crc32cSoftware}) {
    EXPECT_EQ(crc(check.data(), check.size(), 0), 0xE3069283u);
    EXPECT_EQ(crc(zeros.data(), zeros.size(), 0), 0x8A9136AAu);
    EXPECT_EQ(crc(ones.data(), ones.size(), 0), 0x62A8AB43u);
    EXPECT_EQ(crc(increasing.data(), increasing.size(), 0), 0x46DD794Eu);
    EXPECT_EQ(crc(decreasing.data(), decreasing.size(), 0), 0x113FDB5Cu);
    EXPECT_EQ(crc(nullptr, 0, 0), 0u);
  }
}

TEST(Crc32cTest, ChunkedAndUnalignedMatchOneShot) {
  std::mt19937 random(7);
  std::vector<uint8_t> data(4099);
  for (uint8_t& b : data) b = static_cast<uint8_t>(random());
  for (size_t start : {0, 1, 3, 7, 8, 13}) {
    const uint8_t* p = data.data() + start;
    size_t n = data.size() - start;
    uint32_t expected = Crc32cSoftware(p, n);
    EXPECT_EQ(Crc32c(p, n), expected);
    for (size_t split : {size_t{0}, size_t{1}, size_t{5}, size_t{64}, size_t{1000}, n}) {
      EXPECT_EQ(Crc32c(p + split, n - split, Crc32c(p, split)), expected) << start << " " << split;
      EXPECT_EQ(Crc32cSoftware(p + split, n - split, Crc32cSoftware(p, split)), expected) << start << " " << split;
    }
  }
}

// ---------------------------------------------------------------------------
// Writing and restoring

std::string KeyGroupBytes(int subtask, int key_group) {
  if (key_group == 5) return std::string();                // an empty block
  if (key_group == 100) return std::string(3 << 20, 'x');  // larger than the write buffer
  return "kg" + std::to_string(key_group) + "@" + std::to_string(subtask) +
         std::string(static_cast<size_t>(key_group), '.');
}

/// A checkpoint of a two-operator chain ("source" -> "window") run by
/// `parallelism` subtasks, together with what each subtask wrote.
struct TestCheckpoint {
  std::string directory;
  CheckpointMetadata metadata;
  std::vector<MemorySnapshotOutput> written[2];  // [operator][subtask]
};

TestCheckpoint WriteTestCheckpoint(const fs::path& base, int parallelism, CheckpointId id) {
  TestCheckpoint c;
  c.directory = CheckpointDirectory(base.string(), "job0123456789", id);
  c.metadata.job_id = "job0123456789";
  c.metadata.checkpoint_id = id;
  c.metadata.timestamp = 1700000000000 + id;
  OperatorStateHandle source{"uid-source", "Source: numbers", parallelism, kMaxParallelism, {}, {}};
  OperatorStateHandle window{"uid-window", "Window(sum)", parallelism, kMaxParallelism, {}, {}};
  for (int subtask = 0; subtask < parallelism; ++subtask) {
    MemorySnapshotOutput expected_source;
    MemorySnapshotOutput expected_window;
    TaskStateWriter writer(c.directory, "vertex1-" + std::to_string(subtask) + "-0.state", 2);
    auto both = [&](SnapshotOutput& expected, auto&& add) {
      EXPECT_TRUE(add(static_cast<SnapshotOutput&>(writer)).IsOk());
      EXPECT_TRUE(add(expected).IsOk());
    };

    writer.BeginOperator(0);
    // As many split entries per subtask, so that a restore at the same
    // parallelism gives every subtask its own entries back.
    std::vector<std::string> offsets;
    for (int i = 0; i < 2; ++i) offsets.push_back("offset-" + std::to_string(subtask) + "-" + std::to_string(i));
    both(expected_source, [&](SnapshotOutput& out) {
      return out.AddOperatorState("offsets", OperatorStateMode::kSplit, offsets);
    });
    both(expected_source, [&](SnapshotOutput& out) {
      return out.AddOperatorState("rules", OperatorStateMode::kBroadcast, {"rule-a", "rule-b"});
    });
    StateInfo offsets_info{"offsets", "operator-list", "i64"};
    writer.AddStateInfo(offsets_info);
    expected_source.AddStateInfo(offsets_info);

    writer.BeginOperator(1);
    KeyGroupRange range = KeyGroupRangeForSubtask(subtask, parallelism, kMaxParallelism);
    for (int kg = range.start; kg <= range.end; ++kg) {
      if (kg % 7 == 3) continue;  // some key groups hold nothing
      std::string bytes = KeyGroupBytes(subtask, kg);
      both(expected_window, [&](SnapshotOutput& out) { return out.AddKeyGroup(kg, bytes); });
    }
    both(expected_window, [&](SnapshotOutput& out) {
      return out.AddOperatorState("pending", OperatorStateMode::kUnion, {"p" + std::to_string(subtask)});
    });
    StateInfo sum_info{"sum", "value", "long"};
    writer.AddStateInfo(sum_info);
    expected_window.AddStateInfo(sum_info);

    Result<TaskStateSnapshot> snapshot = writer.Finish();
    EXPECT_TRUE(snapshot.IsOk()) << snapshot.GetStatus().ToString();
    if (!snapshot.IsOk()) return c;
    EXPECT_EQ(snapshot->operators.size(), 2u);
    EXPECT_EQ(snapshot->files.size(), 1u);
    source.subtasks.push_back(snapshot->operators[0]);
    window.subtasks.push_back(snapshot->operators[1]);
    source.state_info = snapshot->state_info[0];
    window.state_info = snapshot->state_info[1];
    for (const StateFileInfo& f : snapshot->files) c.metadata.files.push_back(f);
    c.written[0].push_back(std::move(expected_source));
    c.written[1].push_back(std::move(expected_window));
  }
  c.metadata.operators = {source, window};
  EXPECT_TRUE(WriteMetadata(c.directory, c.metadata).IsOk());
  return c;
}

OperatorRestore Load(const TestCheckpoint& c, const CheckpointMetadata& metadata, const std::string& operator_id,
                     int subtask, int parallelism) {
  const OperatorStateHandle* handle = metadata.FindOperator(operator_id);
  EXPECT_NE(handle, nullptr);
  if (handle == nullptr) return {};
  Result<OperatorRestore> restore = LoadRestore(c.directory, AssignRestore(*handle, subtask, parallelism));
  EXPECT_TRUE(restore.IsOk()) << restore.GetStatus().ToString();
  return restore.IsOk() ? std::move(restore).Value() : OperatorRestore{};
}

void ExpectSameRestore(const OperatorRestore& actual, const OperatorRestore& expected) {
  EXPECT_EQ(actual.restored, expected.restored);
  EXPECT_EQ(actual.key_groups, expected.key_groups);
  ASSERT_EQ(actual.operator_state.size(), expected.operator_state.size());
  for (const auto& [name, state] : expected.operator_state) {
    auto it = actual.operator_state.find(name);
    ASSERT_NE(it, actual.operator_state.end()) << name;
    EXPECT_EQ(it->second.mode, state.mode) << name;
    EXPECT_EQ(it->second.entries, state.entries) << name;
  }
  ASSERT_EQ(actual.state_info.size(), expected.state_info.size());
  for (size_t i = 0; i < expected.state_info.size(); ++i) {
    EXPECT_EQ(actual.state_info[i].name, expected.state_info[i].name);
    EXPECT_EQ(actual.state_info[i].kind, expected.state_info[i].kind);
    EXPECT_EQ(actual.state_info[i].type_name, expected.state_info[i].type_name);
  }
}

TEST_F(CheckpointStorageTest, WriterRoundTripAtSameParallelism) {
  TestCheckpoint c = WriteTestCheckpoint(root_, 2, 3);
  Result<CheckpointMetadata> metadata = ReadMetadata(c.directory);
  ASSERT_TRUE(metadata.IsOk()) << metadata.GetStatus().ToString();
  ASSERT_TRUE(VerifyCheckpoint(c.directory, *metadata).IsOk());
  EXPECT_EQ(metadata->files.size(), 2u);
  for (int subtask = 0; subtask < 2; ++subtask) {
    const size_t s = static_cast<size_t>(subtask);
    ExpectSameRestore(Load(c, *metadata, "uid-source", subtask, 2), c.written[0][s].AsRestore());
    // A union list comes back whole to every subtask.
    OperatorRestore window = c.written[1][s].AsRestore();
    window.operator_state["pending"].entries = {"p0", "p1"};
    ExpectSameRestore(Load(c, *metadata, "uid-window", subtask, 2), window);
  }
  // One block read on its own.
  const BlockRef& block = metadata->FindOperator("uid-window")->subtasks[1].key_groups.at(100);
  Result<std::string> bytes = ReadBlock(c.directory, block);
  ASSERT_TRUE(bytes.IsOk()) << bytes.GetStatus().ToString();
  EXPECT_EQ(*bytes, KeyGroupBytes(1, 100));
}

TEST_F(CheckpointStorageTest, WriterRoundTripRescaledKeepsEveryKeyGroup) {
  TestCheckpoint c = WriteTestCheckpoint(root_, 2, 4);
  Result<CheckpointMetadata> metadata = ReadMetadata(c.directory);
  ASSERT_TRUE(metadata.IsOk()) << metadata.GetStatus().ToString();
  std::map<int, std::string> expected;
  for (const MemorySnapshotOutput& w : c.written[1]) expected.insert(w.key_groups.begin(), w.key_groups.end());
  for (int parallelism : {1, 3}) {
    std::map<int, std::string> restored;
    std::vector<std::string> offsets;
    for (int subtask = 0; subtask < parallelism; ++subtask) {
      OperatorRestore source = Load(c, *metadata, "uid-source", subtask, parallelism);
      const auto& part = source.operator_state.at("offsets").entries;
      offsets.insert(offsets.end(), part.begin(), part.end());
      EXPECT_EQ(source.operator_state.at("rules").entries, (std::vector<std::string>{"rule-a", "rule-b"}));
      OperatorRestore r = Load(c, *metadata, "uid-window", subtask, parallelism);
      KeyGroupRange range = KeyGroupRangeForSubtask(subtask, parallelism, kMaxParallelism);
      for (auto& [kg, bytes] : r.key_groups) {
        EXPECT_TRUE(range.Contains(kg)) << kg;
        EXPECT_TRUE(restored.emplace(kg, bytes).second) << kg;
      }
      EXPECT_EQ(r.operator_state.at("pending").entries, (std::vector<std::string>{"p0", "p1"}));
    }
    EXPECT_EQ(restored, expected) << parallelism;
    EXPECT_EQ(offsets, (std::vector<std::string>{"offset-0-0", "offset-0-1", "offset-1-0", "offset-1-1"}));
  }
}

TEST_F(CheckpointStorageTest, WriterFileEndsWithSelfCheckingFooter) {
  std::string directory = (root_ / "chk-1").string();
  TaskStateWriter writer(directory, "v-0-0.state", 1);
  writer.BeginOperator(0);
  ASSERT_TRUE(writer.AddKeyGroup(7, "hello").IsOk());
  ASSERT_TRUE(writer.AddOperatorState("list", OperatorStateMode::kSplit, {"a", "bc"}).IsOk());
  Result<TaskStateSnapshot> snapshot = writer.Finish();
  ASSERT_TRUE(snapshot.IsOk()) << snapshot.GetStatus().ToString();
  ASSERT_EQ(snapshot->files.size(), 1u);
  const StateFileInfo& info = snapshot->files[0];
  EXPECT_EQ(info.file, "v-0-0.state");

  std::string bytes = ReadFile(fs::path(directory) / "v-0-0.state");
  ASSERT_EQ(bytes.size(), info.size);
  ASSERT_EQ(bytes.size(), 8 + kStateFileFooterSize);
  EXPECT_EQ(bytes.substr(0, 8), "helloabc");
  EXPECT_EQ(Crc32c(bytes.data(), bytes.size()), info.crc32c);
  std::string footer = bytes.substr(8);
  uint32_t data_crc;
  uint64_t data_length;
  std::memcpy(&data_crc, footer.data(), 4);
  std::memcpy(&data_length, footer.data() + 4, 8);
  EXPECT_EQ(data_crc, Crc32c(bytes.data(), 8));
  EXPECT_EQ(data_length, 8u);
  EXPECT_EQ(footer.substr(12), "FRSHSTAT");

  const OperatorSubtaskStateHandle& handle = snapshot->operators[0];
  EXPECT_EQ(handle.key_groups.at(7), (BlockRef{"v-0-0.state", 0, 5}));
  EXPECT_EQ(handle.operator_state.at("list").entries[1], (BlockRef{"v-0-0.state", 6, 2}));
}

TEST_F(CheckpointStorageTest, WriterWithoutStateCreatesNoFile) {
  std::string directory = (root_ / "chk-1").string();
  TaskStateWriter writer(directory, "v-0-0.state", 2);
  writer.BeginOperator(0);
  writer.AddStateInfo(StateInfo{"count", "value", "int"});
  writer.BeginOperator(1);
  Result<TaskStateSnapshot> snapshot = writer.Finish();
  ASSERT_TRUE(snapshot.IsOk());
  EXPECT_TRUE(snapshot->files.empty());
  ASSERT_EQ(snapshot->operators.size(), 2u);
  EXPECT_TRUE(snapshot->operators[0].Empty());
  ASSERT_EQ(snapshot->state_info.size(), 2u);
  ASSERT_EQ(snapshot->state_info[0].size(), 1u);
  EXPECT_EQ(snapshot->state_info[0][0].name, "count");
  EXPECT_FALSE(fs::exists(fs::path(directory) / "v-0-0.state"));
}

TEST_F(CheckpointStorageTest, WriterRejectsDuplicateKeyGroup) {
  TaskStateWriter writer((root_ / "chk-1").string(), "v.state", 1);
  writer.BeginOperator(0);
  ASSERT_TRUE(writer.AddKeyGroup(1, "a").IsOk());
  Status st = writer.AddKeyGroup(1, "b");
  EXPECT_EQ(st.Code(), StatusCode::kInternal);
  EXPECT_THAT(st.Message(), HasSubstr("key group 1 written twice"));
}

TEST_F(CheckpointStorageTest, WriterErrorsNameThePath) {
  // The directory cannot be created: a regular file is in the way.
  WriteFile(root_ / "blocker", "x");
  std::string directory = (root_ / "blocker" / "chk-1").string();
  {
    TaskStateWriter writer(directory, "v.state", 1);
    writer.BeginOperator(0);
    Status st = writer.AddKeyGroup(0, "bytes");
    EXPECT_EQ(st.Code(), StatusCode::kIoError);
    EXPECT_THAT(st.Message(), HasSubstr(directory));
    Result<TaskStateSnapshot> snapshot = writer.Finish();
    EXPECT_FALSE(snapshot.IsOk());
  }
  // A full device: the write fails with ENOSPC, reported on Finish. A link
  // to /dev/full keeps anything from touching the device node itself.
  if (fs::exists("/dev/full")) {
    fs::create_symlink("/dev/full", root_ / "full.state");
    TaskStateWriter writer(root_.string(), "full.state", 1);
    writer.BeginOperator(0);
    ASSERT_TRUE(writer.AddKeyGroup(0, "bytes").IsOk());
    Result<TaskStateSnapshot> snapshot = writer.Finish();
    ASSERT_FALSE(snapshot.IsOk());
    EXPECT_EQ(snapshot.GetStatus().Code(), StatusCode::kIoError);
    EXPECT_THAT(snapshot.GetStatus().Message(), HasSubstr((root_ / "full.state").string()));
    EXPECT_THAT(snapshot.GetStatus().Message(), HasSubstr(std::strerror(ENOSPC)));
  }
}

TEST_F(CheckpointStorageTest, AbandonedWriterRemovesItsFile) {
  std::string directory = (root_ / "chk-1").string();
  {
    TaskStateWriter writer(directory, "v.state", 1);
    writer.BeginOperator(0);
    ASSERT_TRUE(writer.AddKeyGroup(0, "bytes").IsOk());
  }
  EXPECT_FALSE(fs::exists(fs::path(directory) / "v.state"));
}

// ---------------------------------------------------------------------------
// Metadata

CheckpointMetadata FullMetadata() {
  CheckpointMetadata m;
  m.job_id = "a1b2c3d4e5f6";
  m.checkpoint_id = 42;
  m.timestamp = 1712345678901;
  m.savepoint = true;
  OperatorStateHandle op;
  op.operator_id = "my-uid";
  op.name = "Map -> Filter";
  op.parallelism = 2;
  op.max_parallelism = 256;
  op.state_info = {StateInfo{"count", "value", "long"}, StateInfo{"buffer", "operator-list", "string"}};
  OperatorSubtaskStateHandle s0;
  s0.key_groups[0] = BlockRef{"a.state", 0, 10};
  s0.key_groups[127] = BlockRef{"a.state", 10, 5};
  s0.operator_state["buffer"] = {OperatorStateMode::kUnion, {BlockRef{"a.state", 15, 1}, BlockRef{"a.state", 16, 0}}};
  OperatorSubtaskStateHandle s1;
  s1.key_groups[128] = BlockRef{"b.state", 0, 3};
  s1.operator_state["rules"] = {OperatorStateMode::kBroadcast, {BlockRef{"b.state", 3, 4}}};
  s1.operator_state["empty"] = {OperatorStateMode::kSplit, {}};
  op.subtasks = {s0, s1};
  OperatorStateHandle stateless;
  stateless.operator_id = "generated-7";
  stateless.name = "Sink: print";
  stateless.subtasks.resize(3);
  m.operators = {op, stateless};
  m.files = {StateFileInfo{"a.state", 36, 0xDEADBEEF}, StateFileInfo{"b.state", 27, 0x01020304}};
  return m;
}

void ExpectSameMetadata(const CheckpointMetadata& a, const CheckpointMetadata& b) {
  EXPECT_EQ(a.job_id, b.job_id);
  EXPECT_EQ(a.checkpoint_id, b.checkpoint_id);
  EXPECT_EQ(a.timestamp, b.timestamp);
  EXPECT_EQ(a.savepoint, b.savepoint);
  ASSERT_EQ(a.operators.size(), b.operators.size());
  for (size_t i = 0; i < a.operators.size(); ++i) {
    const OperatorStateHandle& x = a.operators[i];
    const OperatorStateHandle& y = b.operators[i];
    EXPECT_EQ(x.operator_id, y.operator_id);
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.parallelism, y.parallelism);
    EXPECT_EQ(x.max_parallelism, y.max_parallelism);
    ASSERT_EQ(x.state_info.size(), y.state_info.size());
    for (size_t j = 0; j < x.state_info.size(); ++j) {
      EXPECT_EQ(x.state_info[j].name, y.state_info[j].name);
      EXPECT_EQ(x.state_info[j].kind, y.state_info[j].kind);
      EXPECT_EQ(x.state_info[j].type_name, y.state_info[j].type_name);
    }
    ASSERT_EQ(x.subtasks.size(), y.subtasks.size());
    for (size_t j = 0; j < x.subtasks.size(); ++j) {
      EXPECT_EQ(x.subtasks[j].key_groups, y.subtasks[j].key_groups);
      ASSERT_EQ(x.subtasks[j].operator_state.size(), y.subtasks[j].operator_state.size());
      for (const auto& [name, list] : x.subtasks[j].operator_state) {
        const auto& other = y.subtasks[j].operator_state.at(name);
        EXPECT_EQ(list.mode, other.mode);
        EXPECT_EQ(list.entries, other.entries);
      }
    }
  }
  ASSERT_EQ(a.files.size(), b.files.size());
  for (size_t i = 0; i < a.files.size(); ++i) {
    EXPECT_EQ(a.files[i].file, b.files[i].file);
    EXPECT_EQ(a.files[i].size, b.files[i].size);
    EXPECT_EQ(a.files[i].crc32c, b.files[i].crc32c);
  }
}

TEST_F(CheckpointStorageTest, MetadataRoundTripWithAllFields) {
  std::string directory = (root_ / "savepoint-a1b2c3-42-00000000").string();
  CheckpointMetadata m = FullMetadata();
  ASSERT_TRUE(WriteMetadata(directory, m).IsOk());
  EXPECT_TRUE(fs::exists(fs::path(directory) / "_metadata"));
  EXPECT_FALSE(fs::exists(fs::path(directory) / "_metadata.inprogress"));
  for (const std::string& path : {directory, directory + "/_metadata", directory + "/"}) {
    Result<CheckpointMetadata> read = ReadMetadata(path);
    ASSERT_TRUE(read.IsOk()) << path << ": " << read.GetStatus().ToString();
    ExpectSameMetadata(*read, m);
  }
  ASSERT_NE(m.FindOperator("my-uid"), nullptr);
  EXPECT_EQ(m.FindOperator("my-uid")->name, "Map -> Filter");
  EXPECT_EQ(m.FindOperator("nope"), nullptr);
}

TEST_F(CheckpointStorageTest, MetadataErrorsNameThePathAndProblem) {
  std::string directory = (root_ / "chk-9").string();
  Result<CheckpointMetadata> missing = ReadMetadata(directory);
  ASSERT_FALSE(missing.IsOk());
  EXPECT_EQ(missing.GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.GetStatus().Message(), StartsWith("no checkpoint metadata at " + directory));

  ASSERT_TRUE(WriteMetadata(directory, FullMetadata()).IsOk());
  fs::path file = fs::path(directory) / "_metadata";
  std::string good = ReadFile(file);

  // One flipped byte in the body.
  FlipByte(file, good.size() / 2);
  Result<CheckpointMetadata> flipped = ReadMetadata(directory);
  ASSERT_FALSE(flipped.IsOk());
  EXPECT_EQ(flipped.GetStatus().Code(), StatusCode::kCorruption);
  EXPECT_EQ(flipped.GetStatus().Message(), "checksum mismatch in " + file.string());

  // A flipped byte in the trailing checksum itself.
  WriteFile(file, good);
  FlipByte(file, good.size() - 1);
  EXPECT_EQ(ReadMetadata(directory).GetStatus().Code(), StatusCode::kCorruption);

  // Cut short, at several lengths.
  for (size_t length : {size_t{0}, size_t{5}, size_t{20}, good.size() - 1}) {
    WriteFile(file, good.substr(0, length));
    Result<CheckpointMetadata> truncated = ReadMetadata(directory);
    ASSERT_FALSE(truncated.IsOk()) << length;
    EXPECT_EQ(truncated.GetStatus().Code(), StatusCode::kCorruption);
    EXPECT_THAT(truncated.GetStatus().Message(), StartsWith("checkpoint metadata " + file.string() + " is truncated"))
        << length;
  }

  // A newer version with a valid checksum.
  std::string newer = good;
  uint32_t version = 3;
  std::memcpy(newer.data() + 8, &version, 4);
  uint32_t crc = Crc32c(newer.data(), newer.size() - 4);
  std::memcpy(newer.data() + newer.size() - 4, &crc, 4);
  WriteFile(file, newer);
  Result<CheckpointMetadata> unsupported = ReadMetadata(directory);
  ASSERT_FALSE(unsupported.IsOk());
  EXPECT_THAT(unsupported.GetStatus().Message(),
              StartsWith("unsupported checkpoint metadata version 3 in " + file.string()));

  // Not metadata at all.
  WriteFile(file, "hello, this is a text file that happens to be called _metadata");
  Result<CheckpointMetadata> other = ReadMetadata(directory);
  ASSERT_FALSE(other.IsOk());
  EXPECT_EQ(other.GetStatus().Code(), StatusCode::kCorruption);
  EXPECT_THAT(other.GetStatus().Message(), HasSubstr(file.string()));
}

TEST_F(CheckpointStorageTest, ListCheckpointsNeedsMetadataAndIsNewestFirst) {
  std::string base = root_.string();
  CheckpointMetadata m = FullMetadata();
  for (CheckpointId id : {2, 9, 10, 1}) ASSERT_TRUE(WriteMetadata(CheckpointDirectory(base, "job", id), m).IsOk());
  // In progress: state written, metadata not yet renamed into place.
  fs::path in_progress = CheckpointDirectory(base, "job", 11);
  fs::create_directories(in_progress);
  WriteFile(in_progress / "_metadata.inprogress", "partial");
  WriteFile(in_progress / "v-0-0.state", "state");
  fs::create_directories(CheckpointDirectory(base, "job", 12));
  // Not checkpoints.
  fs::create_directories(fs::path(base) / "job" / "chk-x");
  WriteFile(fs::path(base) / "job" / "chk-x" / "_metadata", "x");
  fs::create_directories(fs::path(base) / "job" / "chk-007");
  WriteFile(fs::path(base) / "job" / "chk-007" / "_metadata", "x");
  WriteFile(fs::path(base) / "job" / "chk-13", "a file, not a directory");
  fs::create_directories(fs::path(base) / "job" / "shared");

  auto list = ListCheckpoints(base, "job");
  std::vector<CheckpointId> ids;
  for (const auto& [id, path] : list) {
    ids.push_back(id);
    EXPECT_EQ(path, CheckpointDirectory(base, "job", id));
  }
  EXPECT_EQ(ids, (std::vector<CheckpointId>{10, 9, 2, 1}));
  EXPECT_TRUE(ListCheckpoints(base, "other-job").empty());
}

TEST(CheckpointPathsTest, CheckpointDirectoryLayout) {
  EXPECT_EQ(CheckpointDirectory("/data/ckp", "abc", 17), "/data/ckp/abc/chk-17");
}

TEST_F(CheckpointStorageTest, SavepointDirectoriesAreFreshAndNamed) {
  std::string target = (root_ / "savepoints").string();
  Result<std::string> a = CreateSavepointDirectory(target, "0123456789abcdef", 5);
  Result<std::string> b = CreateSavepointDirectory(target, "0123456789abcdef", 5);
  ASSERT_TRUE(a.IsOk()) << a.GetStatus().ToString();
  ASSERT_TRUE(b.IsOk()) << b.GetStatus().ToString();
  EXPECT_NE(*a, *b);
  for (const std::string& path : {*a, *b}) {
    EXPECT_TRUE(fs::is_directory(path));
    EXPECT_EQ(fs::path(path).parent_path(), fs::path(target));
    std::string name = fs::path(path).filename().string();
    ASSERT_EQ(name.size(), std::string("savepoint-012345-5-").size() + 8) << name;
    EXPECT_THAT(name, StartsWith("savepoint-012345-5-"));
    std::string suffix = name.substr(name.size() - 8);
    EXPECT_EQ(suffix.find_first_not_of("0123456789abcdef"), std::string::npos) << name;
  }
}

// ---------------------------------------------------------------------------
// Verification and corruption

TEST_F(CheckpointStorageTest, VerifyDetectsFlippedByte) {
  TestCheckpoint c = WriteTestCheckpoint(root_, 2, 1);
  ASSERT_TRUE(VerifyCheckpoint(c.directory, c.metadata).IsOk());
  fs::path victim = fs::path(c.directory) / "vertex1-1-0.state";
  FlipByte(victim, 10);
  Status st = VerifyCheckpoint(c.directory, c.metadata);
  EXPECT_EQ(st.Code(), StatusCode::kCorruption);
  EXPECT_THAT(st.Message(), HasSubstr("checksum mismatch"));
  EXPECT_THAT(st.Message(), HasSubstr(victim.string()));
}

TEST_F(CheckpointStorageTest, VerifyDetectsFlippedFooterByte) {
  TestCheckpoint c = WriteTestCheckpoint(root_, 1, 1);
  fs::path victim = fs::path(c.directory) / "vertex1-0-0.state";
  FlipByte(victim, static_cast<size_t>(fs::file_size(victim)) - 3);
  Status st = VerifyCheckpoint(c.directory, c.metadata);
  EXPECT_EQ(st.Code(), StatusCode::kCorruption);
  EXPECT_THAT(st.Message(), HasSubstr(victim.string()));
}

TEST_F(CheckpointStorageTest, VerifyDetectsTruncatedFile) {
  TestCheckpoint c = WriteTestCheckpoint(root_, 2, 1);
  fs::path victim = fs::path(c.directory) / "vertex1-0-0.state";
  fs::resize_file(victim, fs::file_size(victim) - 1);
  Status st = VerifyCheckpoint(c.directory, c.metadata);
  EXPECT_EQ(st.Code(), StatusCode::kCorruption);
  EXPECT_THAT(st.Message(), HasSubstr(victim.string()));
  EXPECT_THAT(st.Message(), HasSubstr("truncated"));
}

TEST_F(CheckpointStorageTest, VerifyNamesMissingFile) {
  TestCheckpoint c = WriteTestCheckpoint(root_, 2, 1);
  fs::path victim = fs::path(c.directory) / "vertex1-1-0.state";
  fs::remove(victim);
  Status st = VerifyCheckpoint(c.directory, c.metadata);
  EXPECT_FALSE(st.IsOk());
  EXPECT_EQ(st.Code(), StatusCode::kNotFound);
  EXPECT_THAT(st.Message(), HasSubstr(victim.string()));
  EXPECT_THAT(st.Message(), HasSubstr("missing"));
}

TEST_F(CheckpointStorageTest, ReadBlockBeyondEndOfFileIsCorruption) {
  TestCheckpoint c = WriteTestCheckpoint(root_, 1, 1);
  fs::path file = fs::path(c.directory) / "vertex1-0-0.state";
  fs::resize_file(file, 100);
  const BlockRef& block = c.metadata.FindOperator("uid-window")->subtasks[0].key_groups.at(100);
  Result<std::string> bytes = ReadBlock(c.directory, block);
  ASSERT_FALSE(bytes.IsOk());
  EXPECT_EQ(bytes.GetStatus().Code(), StatusCode::kCorruption);
  EXPECT_THAT(bytes.GetStatus().Message(), HasSubstr(file.string()));
  // And through LoadRestore.
  Result<OperatorRestore> restore =
      LoadRestore(c.directory, AssignRestore(*c.metadata.FindOperator("uid-window"), 0, 1));
  ASSERT_FALSE(restore.IsOk());
  EXPECT_EQ(restore.GetStatus().Code(), StatusCode::kCorruption);
}

// ---------------------------------------------------------------------------
// Redistribution

BlockRef Fake(const std::string& what) { return BlockRef{what, 0, 0}; }

std::vector<std::string> Names(const std::vector<BlockRef>& blocks) {
  std::vector<std::string> out;
  for (const BlockRef& b : blocks) out.push_back(b.file);
  return out;
}

TEST(AssignRestoreTest, KeyGroupsGoToTheOwningSubtask) {
  OperatorStateHandle handle;
  handle.operator_id = "op";
  handle.parallelism = 2;
  handle.max_parallelism = kMaxParallelism;
  handle.subtasks.resize(2);
  for (int kg = 0; kg < kMaxParallelism; ++kg) {
    int old = SubtaskForKeyGroup(kg, 2, kMaxParallelism);
    handle.subtasks[static_cast<size_t>(old)].key_groups[kg] = Fake("kg" + std::to_string(kg));
  }
  for (int parallelism : {1, 2, 3, 4}) {
    std::map<int, int> owner;
    for (int subtask = 0; subtask < parallelism; ++subtask) {
      OperatorRestoreRefs refs = AssignRestore(handle, subtask, parallelism);
      EXPECT_TRUE(refs.restored);
      KeyGroupRange range = KeyGroupRangeForSubtask(subtask, parallelism, kMaxParallelism);
      int previous = -1;
      for (const auto& [kg, block] : refs.key_groups) {
        EXPECT_TRUE(range.Contains(kg)) << kg << " at " << subtask << "/" << parallelism;
        EXPECT_EQ(block.file, "kg" + std::to_string(kg));
        EXPECT_LT(previous, kg);  // sorted
        previous = kg;
        EXPECT_TRUE(owner.emplace(kg, subtask).second) << "key group " << kg << " assigned twice";
      }
    }
    EXPECT_EQ(owner.size(), static_cast<size_t>(kMaxParallelism)) << parallelism;
  }
}

OperatorStateHandle ListHandle(OperatorStateMode mode, const std::vector<std::vector<std::string>>& per_subtask) {
  OperatorStateHandle handle;
  handle.operator_id = "op";
  handle.parallelism = static_cast<int>(per_subtask.size());
  handle.state_info = {StateInfo{"list", "operator-list", "string"}};
  for (const auto& entries : per_subtask) {
    OperatorSubtaskStateHandle& s = handle.subtasks.emplace_back();
    auto& list = s.operator_state["list"];
    list.mode = mode;
    for (const std::string& e : entries) list.entries.push_back(Fake(e));
  }
  return handle;
}

TEST(AssignRestoreTest, SplitCutsContiguousNearEqualParts) {
  OperatorStateHandle handle = ListHandle(OperatorStateMode::kSplit, {{"a0", "a1", "a2"}, {"b0", "b1", "b2", "b3"}});
  std::vector<std::vector<std::string>> expected = {{"a0", "a1", "a2"}, {"b0", "b1"}, {"b2", "b3"}};
  for (int subtask = 0; subtask < 3; ++subtask) {
    OperatorRestoreRefs refs = AssignRestore(handle, subtask, 3);
    ASSERT_EQ(refs.operator_state.count("list"), 1u);
    EXPECT_EQ(refs.operator_state.at("list").mode, OperatorStateMode::kSplit);
    EXPECT_EQ(Names(refs.operator_state.at("list").entries), expected[static_cast<size_t>(subtask)]);
    ASSERT_EQ(refs.state_info.size(), 1u);
    EXPECT_EQ(refs.state_info[0].name, "list");
  }
  // More subtasks than entries: the last ones get an empty list, still named.
  OperatorStateHandle small = ListHandle(OperatorStateMode::kSplit, {{"x"}, {"y"}});
  EXPECT_EQ(Names(AssignRestore(small, 0, 3).operator_state.at("list").entries), (std::vector<std::string>{"x"}));
  EXPECT_EQ(Names(AssignRestore(small, 1, 3).operator_state.at("list").entries), (std::vector<std::string>{"y"}));
  EXPECT_TRUE(AssignRestore(small, 2, 3).operator_state.at("list").entries.empty());
}

TEST(AssignRestoreTest, UnionGivesEveryoneEverything) {
  OperatorStateHandle handle = ListHandle(OperatorStateMode::kUnion, {{"a0"}, {"b0", "b1"}, {}});
  for (int subtask = 0; subtask < 2; ++subtask) {
    OperatorRestoreRefs refs = AssignRestore(handle, subtask, 2);
    EXPECT_EQ(refs.operator_state.at("list").mode, OperatorStateMode::kUnion);
    EXPECT_EQ(Names(refs.operator_state.at("list").entries), (std::vector<std::string>{"a0", "b0", "b1"}));
  }
}

TEST(AssignRestoreTest, BroadcastTakesOldSubtaskModuloOldParallelism) {
  OperatorStateHandle handle = ListHandle(OperatorStateMode::kBroadcast, {{"r", "s0"}, {"r", "s1"}});
  std::vector<std::vector<std::string>> expected = {{"r", "s0"}, {"r", "s1"}, {"r", "s0"}, {"r", "s1"}, {"r", "s0"}};
  for (int subtask = 0; subtask < 5; ++subtask) {
    OperatorRestoreRefs refs = AssignRestore(handle, subtask, 5);
    EXPECT_EQ(refs.operator_state.at("list").mode, OperatorStateMode::kBroadcast);
    EXPECT_EQ(Names(refs.operator_state.at("list").entries), expected[static_cast<size_t>(subtask)]);
  }
  EXPECT_EQ(Names(AssignRestore(handle, 0, 1).operator_state.at("list").entries),
            (std::vector<std::string>{"r", "s0"}));
}

// ---------------------------------------------------------------------------
// Compatibility

TEST(CheckRestoreCompatibilityTest, ReportsEveryProblemAtOnce) {
  CheckpointMetadata m;
  m.checkpoint_id = 12;
  OperatorStateHandle keyed;
  keyed.operator_id = "counter";
  keyed.name = "Count";
  keyed.max_parallelism = 128;
  keyed.subtasks.resize(2);
  keyed.subtasks[1].key_groups[70] = Fake("f");
  OperatorStateHandle gone;
  gone.operator_id = "old-source";
  gone.name = "Source: old";
  gone.subtasks.resize(1);
  gone.subtasks[0].operator_state["offsets"].entries.push_back(Fake("f"));
  OperatorStateHandle stateless_gone;
  stateless_gone.operator_id = "old-map";
  stateless_gone.name = "Map";
  stateless_gone.subtasks.resize(2);
  m.operators = {keyed, gone, stateless_gone};

  std::vector<RestoreTarget> job = {RestoreTarget{"counter", "Count", 4, 256}, RestoreTarget{"new", "New", 1, 128}};
  Status st = CheckRestoreCompatibility(m, job, false);
  ASSERT_EQ(st.Code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(st.Message(),
            "snapshot of checkpoint 12 cannot be restored into this job:\n"
            "  - operator 'Count' (uid counter): max parallelism changed from 128 to 256; keyed state cannot be "
            "redistributed\n"
            "  - operator 'Source: old' (uid old-source) has state in the snapshot but is not part of this job (set "
            "allowNonRestoredState / execution.savepoint.ignore-unclaimed-state to skip it)");

  // Allowing non-restored state skips the missing operator, not the keyed one.
  Status allowed = CheckRestoreCompatibility(m, job, true);
  ASSERT_EQ(allowed.Code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(allowed.Message(), HasSubstr("max parallelism changed"));
  EXPECT_THAT(allowed.Message(), ::testing::Not(HasSubstr("old-source")));

  job[0].max_parallelism = 128;
  EXPECT_TRUE(CheckRestoreCompatibility(m, job, true).IsOk());
  EXPECT_FALSE(CheckRestoreCompatibility(m, job, false).IsOk());
  job.push_back(RestoreTarget{"old-source", "Source: old", 3, 64});  // operator state only: max parallelism free
  EXPECT_TRUE(CheckRestoreCompatibility(m, job, false).IsOk());
}

// ---------------------------------------------------------------------------
// Disposal

TEST_F(CheckpointStorageTest, DisposeRefusesUnrelatedDirectory) {
  fs::path precious = root_ / "home" / "documents";
  fs::create_directories(precious);
  WriteFile(precious / "thesis.tex", "years of work");
  Status st = DisposeCheckpoint(precious.string());
  EXPECT_EQ(st.Code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(st.Message(), HasSubstr(precious.string()));
  EXPECT_TRUE(fs::exists(precious / "thesis.tex"));
  WriteFile(root_ / "file", "x");
  EXPECT_EQ(DisposeCheckpoint((root_ / "file").string()).Code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(fs::exists(root_ / "file"));
}

TEST_F(CheckpointStorageTest, DisposeRemovesCheckpointsAndSavepoints) {
  TestCheckpoint c = WriteTestCheckpoint(root_, 2, 6);
  ASSERT_TRUE(fs::exists(c.directory));
  EXPECT_TRUE(DisposeCheckpoint(c.directory + "/").IsOk());
  EXPECT_FALSE(fs::exists(c.directory));
  EXPECT_TRUE(DisposeCheckpoint(c.directory).IsOk());  // already gone

  // A chk-<n> directory whose metadata was never written.
  fs::path partial = CheckpointDirectory(root_.string(), "job", 7);
  fs::create_directories(partial);
  WriteFile(partial / "v-0-0.state", "partial");
  EXPECT_TRUE(DisposeCheckpoint(partial.string()).IsOk());
  EXPECT_FALSE(fs::exists(partial));

  // A moved savepoint: any name, but it holds _metadata.
  fs::path moved = root_ / "my-backup";
  ASSERT_TRUE(WriteMetadata(moved.string(), FullMetadata()).IsOk());
  EXPECT_TRUE(DisposeCheckpoint(moved.string()).IsOk());
  EXPECT_FALSE(fs::exists(moved));

  Result<std::string> savepoint = CreateSavepointDirectory((root_ / "sp").string(), "abcdef123", 1);
  ASSERT_TRUE(savepoint.IsOk());
  EXPECT_TRUE(DisposeCheckpoint(*savepoint).IsOk());
  EXPECT_FALSE(fs::exists(*savepoint));
}

}  // namespace
}  // namespace freshet::internal
