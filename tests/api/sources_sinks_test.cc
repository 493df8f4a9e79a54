// Whole jobs exercising the built-in sources (collections, sequences,
// generators, text files, sockets) and sinks (text files, print), and the
// errors a job reports for bad input.

#include <arpa/inet.h>
#include <fmt/format.h>
#include <freshet/freshet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>
#include "support/temp_dir.h"

namespace freshet {
namespace {

using SteadyClock = std::chrono::steady_clock;

template <class T>
std::vector<T> Sorted(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v;
}

class TempDir : public test_support::TempDir {
 public:
  TempDir() : test_support::TempDir("freshet-sources-sinks") {}
};

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  ASSERT_TRUE(out.good()) << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Lines of text that ends with a newline after every line.
std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      ADD_FAILURE() << "text does not end with a newline";
      out.push_back(text.substr(pos));
      break;
    }
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

template <class T>
class TagSubtask : public RichMapFunction<T, std::pair<T, int>> {
 public:
  std::pair<T, int> Map(const T& v) override { return {v, this->GetRuntimeContext().GetIndexOfThisSubtask()}; }
};

/// Thread-safe list a sink appends to while a job runs.
struct SharedLines {
  std::mutex mu;
  std::vector<std::string> lines;
  void Add(const std::string& s) {
    std::lock_guard lock(mu);
    lines.push_back(s);
  }
  std::vector<std::string> Snapshot() {
    std::lock_guard lock(mu);
    return lines;
  }
};

/// Polls `done` every few milliseconds until it holds or `timeout` passes.
template <class F>
bool PollUntil(F done, std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
  auto deadline = SteadyClock::now() + timeout;
  while (!done()) {
    if (SteadyClock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// ---- collections, sequences, generators --------------------------------------

TEST(SourcesTest, FromElementsKeepsOrderAtParallelismOne) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<std::string>({"delta", "alpha", "charlie", "", "bravo", "alpha"}).ExecuteAndCollect();
  EXPECT_EQ(out, (std::vector<std::string>{"delta", "alpha", "charlie", "", "bravo", "alpha"}));
}

TEST(SourcesTest, FromElementsVariadicDeducesTheType) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements(5, 3, 9, 1, 3).Map([](int x) { return x * 10; }).ExecuteAndCollect();
  EXPECT_EQ(out, (std::vector<int>{50, 30, 90, 10, 30}));
}

TEST(SourcesTest, FromElementsConvertsToTheGivenType) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<std::string>("one", "two", std::string("three")).ExecuteAndCollect();
  EXPECT_EQ(out, (std::vector<std::string>{"one", "two", "three"}));
}

TEST(SourcesTest, FromCollectionKeepsOrderOverManyBatches) {
  std::vector<int64_t> values;
  for (int64_t i = 0; i < 10000; ++i) values.push_back((i * 7919) % 10007 - 5000);
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromCollection(values).Map([](int64_t x) { return x; }).ExecuteAndCollect();
  EXPECT_EQ(out, values);
}

TEST(SourcesTest, FromCollectionIsNonParallelUnderAParallelEnvironment) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(4);
  auto out = env->FromCollection(std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9}).ExecuteAndCollect();
  EXPECT_EQ(Sorted(out), (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(SourcesTest, FromCollectionOfNothingFinishes) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromCollection(std::vector<std::string>{}).ExecuteAndCollect();
  EXPECT_TRUE(out.empty());
}

TEST(SourcesTest, FromSequenceAtParallelismThreeGivesExactlyTheRange) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(3);
  auto out = env->FromSequence(-17, 10016).Map(TagSubtask<int64_t>()).ExecuteAndCollect();
  std::vector<int64_t> values;
  std::map<int, std::vector<int64_t>> per_subtask;
  for (const auto& [v, s] : out) {
    values.push_back(v);
    per_subtask[s].push_back(v);
  }
  std::vector<int64_t> expected;
  for (int64_t x = -17; x <= 10016; ++x) expected.push_back(x);
  EXPECT_EQ(Sorted(values), expected);
  // Each subtask emits one contiguous range in ascending order.
  ASSERT_EQ(per_subtask.size(), 3u);
  const int64_t count = 10016 - (-17) + 1;
  for (const auto& [s, vs] : per_subtask) {
    auto [begin, end] = SplitRange(count, s, 3);
    ASSERT_EQ(static_cast<int64_t>(vs.size()), end - begin) << "subtask " << s;
    for (size_t i = 0; i < vs.size(); ++i) ASSERT_EQ(vs[i], -17 + begin + static_cast<int64_t>(i));
  }
}

TEST(SourcesTest, FromSequenceWithOneElementAndEmptyRange) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(3);
  EXPECT_EQ(env->FromSequence(42, 42).ExecuteAndCollect(), (std::vector<int64_t>{42}));
  auto env2 = StreamExecutionEnvironment::Create();
  env2->SetParallelism(3);
  EXPECT_TRUE(env2->FromSequence(5, 4).ExecuteAndCollect().empty());
}

TEST(SourcesTest, FromGeneratorSplitsTheIndexesOverSubtasks) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(3);
  auto out = env->FromGenerator([](int64_t i) { return fmt::format("item-{}", i); }, 1000)
                 .Map(TagSubtask<std::string>())
                 .ExecuteAndCollect();
  ASSERT_EQ(out.size(), 1000u);
  std::map<int, std::vector<std::string>> per_subtask;
  for (const auto& [v, s] : out) per_subtask[s].push_back(v);
  ASSERT_EQ(per_subtask.size(), 3u);
  for (const auto& [s, vs] : per_subtask) {
    auto [begin, end] = SplitRange(1000, s, 3);
    std::vector<std::string> expected;
    for (int64_t i = begin; i < end; ++i) expected.push_back(fmt::format("item-{}", i));
    EXPECT_EQ(vs, expected) << "subtask " << s;
  }
}

TEST(SourcesTest, FromGeneratorWithZeroCountFinishes) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  EXPECT_TRUE(env->FromGenerator([](int64_t i) { return i; }, 0).ExecuteAndCollect().empty());
}

TEST(SourcesTest, FromGeneratorRateLimitSlowsTheSource) {
  for (int p : {1, 2}) {
    auto env = StreamExecutionEnvironment::Create();
    env->SetParallelism(p);
    auto count = std::make_shared<std::atomic<int64_t>>(0);
    env->FromGenerator([](int64_t i) { return i; }, 2000, 10000.0).SinkTo([count](const int64_t&) {
      count->fetch_add(1);
    });
    auto start = SteadyClock::now();
    auto result = env->Execute("rate limited");
    double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
    ASSERT_TRUE(result.IsOk()) << result.GetStatus().ToString();
    EXPECT_EQ(count->load(), 2000);
    EXPECT_EQ(result->records_in, 2000);
    // 2,000 records at 10,000/s take 0.2 s; allow for the first record's slack.
    EXPECT_GE(seconds, 0.15) << "parallelism " << p;
    EXPECT_LT(seconds, 5.0) << "parallelism " << p;
  }
}

TEST(SourcesTest, FromSequenceSplitsAHugeRangeWithoutOverflow) {
  // The range is far too long to finish: look at where each subtask starts.
  const int64_t from = 0;
  const int64_t to = int64_t{4'000'000'000'000'000'000};
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(4);
  struct First {
    std::mutex mu;
    std::map<int, int64_t> value;
  };
  auto first = std::make_shared<First>();
  env->FromSequence(from, to).Map(TagSubtask<int64_t>()).SinkTo([first](const std::pair<int64_t, int>& r) {
    std::lock_guard lock(first->mu);
    first->value.try_emplace(r.second, r.first);
  });
  auto client = env->ExecuteAsync();
  ASSERT_TRUE(client.IsOk());
  bool all = PollUntil([&] {
    std::lock_guard lock(first->mu);
    return first->value.size() == 4;
  });
  (*client)->Cancel();
  EXPECT_EQ((*client)->Wait().GetStatus().Code(), StatusCode::kCancelled);
  ASSERT_TRUE(all);
  const __int128 count = static_cast<__int128>(to) - from + 1;
  for (int s = 0; s < 4; ++s) {
    auto begin = static_cast<int64_t>(count * s / 4);
    EXPECT_EQ(first->value[s], from + begin) << "subtask " << s;
  }
}

TEST(SourcesTest, FromSequenceAtTheEndsOfTheInt64Range) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(3);
  const int64_t max = std::numeric_limits<int64_t>::max();
  auto out = env->FromSequence(max - 10, max).ExecuteAndCollect();
  std::vector<int64_t> expected;
  for (int64_t i = 10; i >= 0; --i) expected.push_back(max - i);
  EXPECT_EQ(Sorted(out), expected);
  auto env2 = StreamExecutionEnvironment::Create();
  env2->SetParallelism(2);
  const int64_t min = std::numeric_limits<int64_t>::min();
  auto out2 = env2->FromSequence(min, min + 4).ExecuteAndCollect();
  EXPECT_EQ(Sorted(out2), (std::vector<int64_t>{min, min + 1, min + 2, min + 3, min + 4}));
}

TEST(SourcesTest, UnboundedGeneratorInterleavesIndexesOverSubtasks) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(3);
  struct Seen {
    std::mutex mu;
    std::map<int, std::vector<int64_t>> values;
  };
  auto seen = std::make_shared<Seen>();
  env->FromGenerator([](int64_t i) { return i; }, -1).Map(TagSubtask<int64_t>()).SinkTo(
      [seen](const std::pair<int64_t, int>& r) {
        std::lock_guard lock(seen->mu);
        auto& v = seen->values[r.second];
        if (v.size() < 100) v.push_back(r.first);
      });
  auto client = env->ExecuteAsync();
  ASSERT_TRUE(client.IsOk());
  bool all = PollUntil([&] {
    std::lock_guard lock(seen->mu);
    if (seen->values.size() < 3) return false;
    for (const auto& [s, v] : seen->values) {
      if (v.size() < 100) return false;
    }
    return true;
  });
  (*client)->Cancel();
  EXPECT_EQ((*client)->Wait().GetStatus().Code(), StatusCode::kCancelled);
  ASSERT_TRUE(all);
  for (const auto& [s, v] : seen->values) {
    for (size_t k = 0; k < v.size(); ++k) ASSERT_EQ(v[k], s + 3 * static_cast<int64_t>(k)) << "subtask " << s;
  }
}

// ---- text files ------------------------------------------------------------

TEST(TextFileSourceTest, ReadsLinesWithCrLfAndAFinalLineWithoutNewline) {
  TempDir dir;
  ASSERT_FALSE(dir.Path().empty());
  WriteFile(dir / "input.txt", "first\r\nsecond\n\nfourth \r\n\r\n  sixth\tx\nlast without newline");
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->ReadTextFile(dir / "input.txt").ExecuteAndCollect();
  EXPECT_EQ(out, (std::vector<std::string>{"first", "second", "", "fourth ", "", "  sixth\tx", "last without newline"}));
}

TEST(TextFileSourceTest, FinalCrLfAndLoneCarriageReturn) {
  TempDir dir;
  WriteFile(dir / "a.txt", "one\r\ntwo\r\n");
  WriteFile(dir / "b.txt", "x\ry\r");
  auto env = StreamExecutionEnvironment::Create();
  EXPECT_EQ(env->ReadTextFile(dir / "a.txt").ExecuteAndCollect(), (std::vector<std::string>{"one", "two"}));
  auto env2 = StreamExecutionEnvironment::Create();
  EXPECT_EQ(env2->ReadTextFile(dir / "b.txt").ExecuteAndCollect(), (std::vector<std::string>{"x\ry"}));
}

TEST(TextFileSourceTest, EmptyFileAndFileWithOneNewline) {
  TempDir dir;
  WriteFile(dir / "empty.txt", "");
  WriteFile(dir / "newline.txt", "\n");
  auto env = StreamExecutionEnvironment::Create();
  EXPECT_TRUE(env->ReadTextFile(dir / "empty.txt").ExecuteAndCollect().empty());
  auto env2 = StreamExecutionEnvironment::Create();
  EXPECT_EQ(env2->ReadTextFile(dir / "newline.txt").ExecuteAndCollect(), (std::vector<std::string>{""}));
}

TEST(TextFileSourceTest, LargeFileWithLinesAcrossReadChunks) {
  TempDir dir;
  std::vector<std::string> lines;
  std::string content;
  for (int i = 0; i < 20000; ++i) {
    std::string line = fmt::format("{}:{}", i, std::string(static_cast<size_t>(i * 31 % 97), static_cast<char>('a' + i % 26)));
    if (i % 1000 == 7) line += std::string(70000, 'L');  // longer than a read chunk
    lines.push_back(line);
    content += line;
    content += i % 3 == 0 ? "\r\n" : "\n";
  }
  WriteFile(dir / "big.txt", content);
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->ReadTextFile(dir / "big.txt").ExecuteAndCollect();
  ASSERT_EQ(out.size(), lines.size());
  for (size_t i = 0; i < lines.size(); ++i) ASSERT_EQ(out[i], lines[i]) << "line " << i;
}

TEST(TextFileSourceTest, DirectoryAtParallelismTwoReadsEveryVisibleFileOnce) {
  TempDir dir;
  std::vector<std::string> expected;
  for (const char* name : {"a.txt", "b.txt", "c.log", "d"}) {
    std::string content;
    for (int i = 0; i < 300; ++i) {
      std::string line = fmt::format("{}:{}", name, i);
      content += line + "\n";
      expected.push_back(line);
    }
    WriteFile(dir / name, content);
  }
  WriteFile(dir / "e-empty", "");
  WriteFile(dir / ".hidden", "hidden line\n");
  WriteFile(dir / "_in_progress", "unfinished line\n");
  std::filesystem::create_directory(dir / "subdir");
  WriteFile(dir / "subdir/nested.txt", "nested line\n");

  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  auto out = env->ReadTextFile(dir.Path()).Map(TagSubtask<std::string>()).ExecuteAndCollect();
  std::vector<std::string> lines;
  std::map<std::string, std::set<int>> readers_of_file;
  std::map<std::string, std::vector<std::string>> lines_of_file;
  for (const auto& [line, s] : out) {
    lines.push_back(line);
    std::string file = line.substr(0, line.find(':'));
    readers_of_file[file].insert(s);
    lines_of_file[file].push_back(line);
  }
  EXPECT_EQ(Sorted(lines), Sorted(expected));
  std::set<int> readers;
  for (const auto& [file, subtasks] : readers_of_file) {
    EXPECT_EQ(subtasks.size(), 1u) << "one subtask reads " << file;
    readers.insert(*subtasks.begin());
  }
  EXPECT_EQ(readers, (std::set<int>{0, 1})) << "files are spread over both subtasks";
  for (const auto& [file, file_lines] : lines_of_file) {
    for (size_t i = 0; i < file_lines.size(); ++i) ASSERT_EQ(file_lines[i], fmt::format("{}:{}", file, i));
  }
}

TEST(TextFileSourceTest, EmptyDirectoryFinishesWithNothing) {
  TempDir dir;
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  EXPECT_TRUE(env->ReadTextFile(dir.Path()).ExecuteAndCollect().empty());
}

TEST(TextFileSourceTest, SingleFileAtParallelismTwo) {
  TempDir dir;
  WriteFile(dir / "one.txt", "a\nb\nc\n");
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  auto out = env->ReadTextFile(dir / "one.txt").Map(TagSubtask<std::string>()).ExecuteAndCollect();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].first, "a");
  EXPECT_EQ(out[1].first, "b");
  EXPECT_EQ(out[2].first, "c");
  EXPECT_EQ(out[0].second, out[2].second) << "a single file is read by one subtask";
}

TEST(TextFileSourceTest, ContinuousModePicksUpAFileAddedWhileRunning) {
  TempDir dir;
  WriteFile(dir / "early.txt", "early-1\nearly-2\n");
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  auto seen = std::make_shared<SharedLines>();
  env->ReadTextFile(dir.Path(), FileProcessingMode::kProcessContinuously, Duration(20))
      .SinkTo([seen](const std::string& line) { seen->Add(line); });
  auto client_or = env->ExecuteAsync("continuous files");
  ASSERT_TRUE(client_or.IsOk()) << client_or.GetStatus().ToString();
  std::unique_ptr<JobClient> client = std::move(client_or).Value();

  ASSERT_TRUE(PollUntil([&] { return seen->Snapshot().size() >= 2; })) << "the first file is read";
  EXPECT_EQ(client->GetJobStatus(), JobStatus::kRunning);

  // Written under a hidden name, then renamed: the source never sees half a file.
  WriteFile(dir / ".late.tmp", "late-1\nlate-2\nlate-3\n");
  std::filesystem::rename(dir / ".late.tmp", dir / "late.txt");
  ASSERT_TRUE(PollUntil([&] { return seen->Snapshot().size() >= 5; })) << "the added file is read";
  EXPECT_EQ(Sorted(seen->Snapshot()),
            (std::vector<std::string>{"early-1", "early-2", "late-1", "late-2", "late-3"}));
  EXPECT_EQ(client->GetJobStatus(), JobStatus::kRunning) << "continuous mode does not end";

  client->Cancel();
  auto result = client->WaitFor(Duration(5000));
  ASSERT_TRUE(result.has_value()) << "cancellation ends the job";
  ASSERT_FALSE(result->IsOk());
  EXPECT_EQ(result->GetStatus().Code(), StatusCode::kCancelled) << result->GetStatus().ToString();
  EXPECT_EQ(client->GetJobStatus(), JobStatus::kCanceled);
  EXPECT_EQ(seen->Snapshot().size(), 5u) << "each file is read once";
}

TEST(TextFileSinkTest, WriteAsTextAtParallelismOneWritesOneFileInOrder) {
  TempDir dir;
  auto env = StreamExecutionEnvironment::Create();
  env->FromSequence(1, 5000).Map([](int64_t x) { return x * x; }).WriteAsText(dir / "squares.txt");
  auto result = env->Execute();
  ASSERT_TRUE(result.IsOk()) << result.GetStatus().ToString();
  std::vector<std::string> lines = SplitLines(ReadFile(dir / "squares.txt"));
  ASSERT_EQ(lines.size(), 5000u);
  for (int64_t x = 1; x <= 5000; ++x) ASSERT_EQ(lines[static_cast<size_t>(x - 1)], std::to_string(x * x));
}

TEST(TextFileSinkTest, WriteAsTextAtParallelismTwoWritesADirectoryOfFiles) {
  TempDir dir;
  const std::string out = dir / "out";
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  env->FromSequence(0, 999).WriteAsText(out);
  auto result = env->Execute();
  ASSERT_TRUE(result.IsOk()) << result.GetStatus().ToString();
  ASSERT_TRUE(std::filesystem::is_directory(out));
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(out)) names.insert(e.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"1", "2"}));
  // The sink chains to the sequence source: file k holds subtask k-1's range in order.
  for (int s = 0; s < 2; ++s) {
    std::vector<std::string> lines = SplitLines(ReadFile(out + "/" + std::to_string(s + 1)));
    auto [begin, end] = SplitRange(1000, s, 2);
    std::vector<std::string> expected;
    for (int64_t i = begin; i < end; ++i) expected.push_back(std::to_string(i));
    EXPECT_EQ(lines, expected) << "file " << s + 1;
  }
}

TEST(TextFileSinkTest, ParallelSinkCreatesAFileForASubtaskWithoutRecords) {
  TempDir dir;
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  env->FromElements<std::string>({"only"}).WriteAsText(dir / "out");
  auto result = env->Execute();
  ASSERT_TRUE(result.IsOk()) << result.GetStatus().ToString();
  std::string one = ReadFile(dir / "out/1");
  std::string two = ReadFile(dir / "out/2");
  EXPECT_TRUE(std::filesystem::exists(dir / "out/1"));
  EXPECT_TRUE(std::filesystem::exists(dir / "out/2"));
  EXPECT_EQ(one + two, "only\n");
}

struct Point {
  std::string name;
  int x;
  double y;
};

TEST(TextFileSinkTest, WriteAsTextFormatsPairsStructsAndContainers) {
  TempDir dir;
  {
    auto env = StreamExecutionEnvironment::Create();
    env->FromElements(std::make_pair(std::string("a"), 1), std::make_pair(std::string("b"), -2))
        .WriteAsText(dir / "pairs");
    ASSERT_TRUE(env->Execute().IsOk());
  }
  EXPECT_EQ(ReadFile(dir / "pairs"), "(a,1)\n(b,-2)\n");
  {
    auto env = StreamExecutionEnvironment::Create();
    env->FromElements(Point{"p", 3, 0.5}).WriteAsText(dir / "points");
    ASSERT_TRUE(env->Execute().IsOk());
  }
  EXPECT_EQ(ReadFile(dir / "points"), "{p, 3, 0.5}\n");
  {
    auto env = StreamExecutionEnvironment::Create();
    env->FromElements(std::vector<int>{1, 2, 3}, std::vector<int>{}).WriteAsText(dir / "vectors");
    ASSERT_TRUE(env->Execute().IsOk());
  }
  EXPECT_EQ(ReadFile(dir / "vectors"), "[1, 2, 3]\n[]\n");
}

TEST(TextFileSinkTest, WriteAsTextReplacesAnExistingFile) {
  TempDir dir;
  WriteFile(dir / "out.txt", "old content that is longer than the new one\nsecond old line\n");
  auto env = StreamExecutionEnvironment::Create();
  env->FromElements<std::string>({"new"}).WriteAsText(dir / "out.txt");
  ASSERT_TRUE(env->Execute().IsOk());
  EXPECT_EQ(ReadFile(dir / "out.txt"), "new\n");
}

TEST(TextFileSinkTest, ReadTextFileThenWriteAsTextRoundTrips) {
  TempDir dir;
  std::string content;
  for (int i = 0; i < 3000; ++i) content += fmt::format("line {} {}\n", i, std::string(static_cast<size_t>(i % 50), '-'));
  WriteFile(dir / "in.txt", content);
  auto env = StreamExecutionEnvironment::Create();
  env->ReadTextFile(dir / "in.txt").WriteAsText(dir / "copy.txt");
  ASSERT_TRUE(env->Execute().IsOk());
  EXPECT_EQ(ReadFile(dir / "copy.txt"), content);
}

// ---- print -------------------------------------------------------------------

std::vector<std::string> CapturedLines(const std::string& captured) {
  std::vector<std::string> out;
  std::istringstream in(captured);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

TEST(PrintSinkTest, ParallelPrintPrefixesTheSubtaskNumber) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  env->FromSequence(1, 10).Print();
  testing::internal::CaptureStdout();
  auto result = env->Execute();
  std::string captured = testing::internal::GetCapturedStdout();
  ASSERT_TRUE(result.IsOk()) << result.GetStatus().ToString();
  std::vector<std::string> expected;
  for (int i = 1; i <= 5; ++i) expected.push_back("1> " + std::to_string(i));
  for (int i = 6; i <= 10; ++i) expected.push_back("2> " + std::to_string(i));
  EXPECT_EQ(Sorted(CapturedLines(captured)), Sorted(expected)) << captured;
}

TEST(PrintSinkTest, NonParallelPrintHasNoSubtaskPrefix) {
  auto env = StreamExecutionEnvironment::Create();
  env->FromElements<std::string>({"x", "y z"}).Print();
  testing::internal::CaptureStdout();
  auto result = env->Execute();
  std::string captured = testing::internal::GetCapturedStdout();
  ASSERT_TRUE(result.IsOk());
  EXPECT_EQ(captured, "x\ny z\n");
}

TEST(PrintSinkTest, PrintWithAPrefix) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  env->FromSequence(1, 4).Print("nums");
  testing::internal::CaptureStdout();
  auto result = env->Execute();
  std::string captured = testing::internal::GetCapturedStdout();
  ASSERT_TRUE(result.IsOk());
  EXPECT_EQ(Sorted(CapturedLines(captured)), (std::vector<std::string>{"nums:1> 1", "nums:1> 2", "nums:2> 3", "nums:2> 4"}));

  auto env1 = StreamExecutionEnvironment::Create();
  env1->FromElements(7).PrintToErr("err");
  testing::internal::CaptureStderr();
  auto result1 = env1->Execute();
  std::string err = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(result1.IsOk());
  EXPECT_EQ(err, "err> 7\n");
}

// ---- sockets ---------------------------------------------------------------------

/// A one-connection TCP server on 127.0.0.1 and an ephemeral port: sends
/// `payload`, then closes the connection.
class LineServer {
 public:
  explicit LineServer(std::string payload) : payload_(std::move(payload)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listen_fd_, 1) != 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~LineServer() {
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }
  int Port() const { return port_; }
  bool Served() const { return served_.load(); }

 private:
  void Serve() {
    pollfd pfd{listen_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 10000) <= 0) return;  // nobody connected
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    size_t sent = 0;
    while (sent < payload_.size()) {
      ssize_t n = ::send(fd, payload_.data() + sent, std::min<size_t>(payload_.size() - sent, 7777), MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    served_.store(sent == payload_.size());
    ::close(fd);
  }
  std::string payload_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> served_{false};
};

TEST(SocketSourceTest, ReadsLinesUntilTheServerCloses) {
  LineServer server("alpha\r\nbeta\n\ngamma delta\nlast without newline");
  ASSERT_GT(server.Port(), 0);
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->SocketTextStream("127.0.0.1", server.Port()).ExecuteAndCollect();
  EXPECT_EQ(out, (std::vector<std::string>{"alpha", "beta", "", "gamma delta", "last without newline"}));
  EXPECT_TRUE(server.Served());
}

TEST(SocketSourceTest, CustomDelimiterAndManyLines) {
  std::string payload;
  std::vector<std::string> expected;
  for (int i = 0; i < 50000; ++i) {
    std::string line = fmt::format("record {}", i);
    expected.push_back(line);
    payload += line + ";";
  }
  LineServer server(payload);
  ASSERT_GT(server.Port(), 0);
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->SocketTextStream("127.0.0.1", server.Port(), ';').Map([](const std::string& s) { return s; });
  EXPECT_EQ(out.ExecuteAndCollect(), expected);
}

// ---- bad input -------------------------------------------------------------------

TEST(BadInputTest, MissingFileNamesThePathAndTheReason) {
  TempDir dir;
  const std::string missing = dir / "does-not-exist.txt";
  auto env = StreamExecutionEnvironment::Create();
  env->ReadTextFile(missing).Print();
  auto result = env->Execute();
  ASSERT_FALSE(result.IsOk());
  const std::string& message = result.GetStatus().Message();
  EXPECT_NE(message.find(missing), std::string::npos) << message;
  EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
}

TEST(BadInputTest, UnreachableSocketNamesHostAndPort) {
  // A port that was just free: bound, then closed without listening.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  int port = ntohs(addr.sin_port);
  ::close(fd);

  auto env = StreamExecutionEnvironment::Create();
  env->SocketTextStream("127.0.0.1", port).Print();
  auto start = SteadyClock::now();
  auto result = env->Execute();
  ASSERT_FALSE(result.IsOk());
  EXPECT_LT(std::chrono::duration<double>(SteadyClock::now() - start).count(), 10.0);
  const std::string& message = result.GetStatus().Message();
  EXPECT_NE(message.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << message;
  EXPECT_NE(message.find("Connection refused"), std::string::npos) << message;
}

TEST(BadInputTest, ZeroParallelismIsInvalid) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(0);
  env->FromSequence(1, 3).Print();
  auto result = env->Execute();
  ASSERT_FALSE(result.IsOk());
  EXPECT_EQ(result.GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.GetStatus().Message().find("parallelism"), std::string::npos) << result.GetStatus().Message();
}

TEST(BadInputTest, MaxParallelismBelowParallelismIsInvalid) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2).SetMaxParallelism(1);
  env->FromSequence(1, 3).Print();
  auto result = env->Execute();
  ASSERT_FALSE(result.IsOk());
  EXPECT_EQ(result.GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.GetStatus().Message().find("max-parallelism"), std::string::npos) << result.GetStatus().Message();
}

TEST(BadInputTest, OperatorParallelismZeroNamesTheOperator) {
  auto env = StreamExecutionEnvironment::Create();
  auto mapped = env->FromSequence(1, 3).Map([](int64_t x) { return x; });
  mapped.Name("Zero Wide").SetParallelism(0);
  mapped.Print();
  auto result = env->Execute();
  ASSERT_FALSE(result.IsOk());
  EXPECT_EQ(result.GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.GetStatus().Message().find("Zero Wide"), std::string::npos) << result.GetStatus().Message();
  EXPECT_NE(result.GetStatus().Message().find("parallelism"), std::string::npos) << result.GetStatus().Message();
}

TEST(BadInputTest, NonParallelSourceRejectsAWiderParallelism) {
  auto env = StreamExecutionEnvironment::Create();
  auto source = env->FromElements(1, 2, 3);
  source.SetParallelism(2);
  source.Print();
  auto result = env->Execute();
  ASSERT_FALSE(result.IsOk());
  EXPECT_EQ(result.GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.GetStatus().Message().find("parallelism"), std::string::npos) << result.GetStatus().Message();
}

TEST(BadInputTest, ContinuousModeOnAFileIsRejected) {
  TempDir dir;
  WriteFile(dir / "file.txt", "a\n");
  auto env = StreamExecutionEnvironment::Create();
  env->ReadTextFile(dir / "file.txt", FileProcessingMode::kProcessContinuously).Print();
  auto client = env->ExecuteAsync();
  ASSERT_TRUE(client.IsOk());
  auto result = (*client)->WaitFor(Duration(10000));
  ASSERT_TRUE(result.has_value()) << "the job fails at once";
  ASSERT_FALSE(result->IsOk());
  EXPECT_NE(result->GetStatus().Message().find(dir / "file.txt"), std::string::npos) << result->GetStatus().Message();
}

TEST(BadInputTest, UnwritableSinkPathNamesThePath) {
  TempDir dir;
  const std::string target = dir / "no-such-dir/out.txt";
  auto env = StreamExecutionEnvironment::Create();
  env->FromElements(1, 2).WriteAsText(target);
  auto result = env->Execute();
  ASSERT_FALSE(result.IsOk());
  EXPECT_NE(result.GetStatus().Message().find(target), std::string::npos) << result.GetStatus().Message();
}

TEST(BadInputTest, UnknownConfigurationKeyIsNamed) {
  Configuration config;
  config.Set("pipeline.no-such-setting", "1");
  auto env = StreamExecutionEnvironment::Create(config);
  env->FromElements(1).Print();
  auto result = env->Execute();
  ASSERT_FALSE(result.IsOk());
  EXPECT_EQ(result.GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.GetStatus().Message().find("pipeline.no-such-setting"), std::string::npos);
}

}  // namespace
}  // namespace freshet

namespace freshet {
namespace {

TEST(FromSequenceRangeTest, ARangeTooLargeToCountIsReportedByExecute) {
  auto env = StreamExecutionEnvironment::Create();
  env->FromSequence(std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max())
      .SinkTo([](const int64_t&) {});
  auto result = env->Execute();
  ASSERT_FALSE(result.IsOk());
  EXPECT_EQ(result.GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.GetStatus().Message().find("FromSequence"), std::string::npos) << result.GetStatus().Message();
}

TEST(FromSequenceRangeTest, TheWidestCountableRangeIsAccepted) {
  auto env = StreamExecutionEnvironment::Create();
  // 2^62 numbers: accepted at build time; only the first few are read here.
  auto stream = env->FromSequence(0, (int64_t{1} << 62) - 1);
  auto client = env->ExecuteAsync();
  ASSERT_FALSE(client.IsOk()) << "no sink yet: the job must be rejected for that, not for its range";
  EXPECT_EQ(client.GetStatus().Message().find("FromSequence"), std::string::npos) << client.GetStatus().Message();
}

}  // namespace
}  // namespace freshet
