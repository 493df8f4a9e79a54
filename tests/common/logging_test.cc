// Process logging: the log file, levels per logger, errors.
#include "common/logging.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.h"

namespace freshet::internal {
namespace {

class LoggingTest : public ::testing::Test {
 protected:
  void TearDown() override { ResetProcessLogging(); }

  // A configuration logging into a directory that does not exist yet.
  Configuration Conf() {
    Configuration conf;
    conf.Set("env.log.dir", log_dir_);
    return conf;
  }

  std::vector<std::string> Lines(const std::string& path) {
    std::istringstream in(test_support::ReadFile(path));
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  // The lines of `path` that contain `text`.
  std::vector<std::string> LinesWith(const std::string& path, const std::string& text) {
    std::vector<std::string> out;
    for (const std::string& line : Lines(path)) {
      if (line.find(text) != std::string::npos) out.push_back(line);
    }
    return out;
  }

  test_support::TempDir dir_{"freshet-logging"};
  std::string log_dir_ = dir_ / "logs/nested";
};

TEST_F(LoggingTest, LoggersWorkBeforeInitialisationOnTheConsoleAtInfo) {
  ResetProcessLogging();
  auto logger = Log("early");
  ASSERT_NE(logger, nullptr);
  EXPECT_EQ(logger->level(), spdlog::level::info);
  EXPECT_EQ(Log("early"), logger);  // created once
  EXPECT_EQ(ProcessLogFile(), "");
  logger->info("console only");
}

TEST_F(LoggingTest, FileHoldsLinesOfTwoLoggersWithLevelLoggerAndThread) {
  Status s = InitProcessLogging(Conf(), "jobmanager");
  ASSERT_TRUE(s.IsOk()) << s.ToString();
  std::string expected = (std::filesystem::path(log_dir_) / "freshet-jobmanager.log").string();
  EXPECT_EQ(ProcessLogFile(), std::filesystem::absolute(expected).lexically_normal().string());
  EXPECT_TRUE(std::filesystem::is_regular_file(ProcessLogFile()));

  Log("dispatcher")->info("job {} submitted", "a1b2");
  Log("resourcemanager")->warn("taskmanager {} lost", 3);

  std::vector<std::string> first = LinesWith(ProcessLogFile(), "job a1b2 submitted");
  std::vector<std::string> second = LinesWith(ProcessLogFile(), "taskmanager 3 lost");
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NE(first[0].find(" INFO  "), std::string::npos) << first[0];
  EXPECT_NE(first[0].find(" dispatcher - "), std::string::npos) << first[0];
  EXPECT_NE(second[0].find(" WARN  "), std::string::npos) << second[0];
  EXPECT_NE(second[0].find(" resourcemanager - "), std::string::npos) << second[0];
  // "2024-05-01 12:00:00,123 INFO  [1234] dispatcher - ..."
  EXPECT_EQ(first[0][4], '-');
  EXPECT_EQ(first[0][19], ',');
  EXPECT_NE(first[0].find(" ["), std::string::npos) << first[0];
}

TEST_F(LoggingTest, PerLoggerLevelsFilterLines) {
  Configuration conf = Conf();
  conf.Set("logger.checkpoint.level", "debug").Set("logger.network.level", "ERROR");
  auto created_before = Log("checkpoint.coordinator");  // re-levelled by the init below
  ASSERT_TRUE(InitProcessLogging(conf, "taskmanager-1").IsOk());

  Log("checkpoint")->debug("checkpoint debug line");
  created_before->debug("coordinator debug line");
  Log("scheduler")->debug("scheduler debug line");
  Log("scheduler")->info("scheduler info line");
  Log("network")->warn("network warn line");
  Log("network")->error("network error line");
  Log("checkpointing")->debug("sibling name debug line");  // not below "checkpoint"

  std::string file = ProcessLogFile();
  EXPECT_EQ(LinesWith(file, "checkpoint debug line").size(), 1u);
  EXPECT_EQ(LinesWith(file, "coordinator debug line").size(), 1u);
  EXPECT_EQ(LinesWith(file, "scheduler debug line").size(), 0u);
  EXPECT_EQ(LinesWith(file, "scheduler info line").size(), 1u);
  EXPECT_EQ(LinesWith(file, "network warn line").size(), 0u);
  EXPECT_EQ(LinesWith(file, "network error line").size(), 1u);
  EXPECT_EQ(LinesWith(file, "sibling name debug line").size(), 0u);
}

TEST_F(LoggingTest, RootLevelAppliesToLoggersWithoutTheirOwn) {
  Configuration conf = Conf();
  conf.Set("rootLogger.level", "Warn").Set("logger.chatty.level", "TRACE");
  ASSERT_TRUE(InitProcessLogging(conf, "jobmanager").IsOk());
  Log("quiet")->info("quiet info line");
  Log("quiet")->warn("quiet warn line");
  Log("chatty")->trace("chatty trace line");
  EXPECT_EQ(LinesWith(ProcessLogFile(), "quiet info line").size(), 0u);
  EXPECT_EQ(LinesWith(ProcessLogFile(), "quiet warn line").size(), 1u);
  EXPECT_EQ(LinesWith(ProcessLogFile(), "chatty trace line").size(), 1u);

  conf.Set("rootLogger.level", "OFF").Set("logger.chatty.level", "OFF");
  ASSERT_TRUE(InitProcessLogging(conf, "jobmanager").IsOk());
  Log("quiet")->error("silenced line");
  EXPECT_EQ(LinesWith(ProcessLogFile(), "silenced line").size(), 0u);
}

TEST_F(LoggingTest, SpdlogDefaultLoggerWritesToTheProcessFile) {
  ASSERT_TRUE(InitProcessLogging(Conf(), "jobmanager").IsOk());
  spdlog::info("through spdlog's free function");
  std::vector<std::string> lines = LinesWith(ProcessLogFile(), "through spdlog's free function");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(" freshet - "), std::string::npos) << lines[0];
}

TEST_F(LoggingTest, BadLevelIsAnErrorNamingTheKeyAndChangesNothing) {
  ASSERT_TRUE(InitProcessLogging(Conf(), "before").IsOk());
  std::string before = ProcessLogFile();

  Configuration bad_root = Conf();
  bad_root.Set("rootLogger.level", "LOUD");
  Status s = InitProcessLogging(bad_root, "after");
  EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Message(),
            "rootLogger.level: 'LOUD' is not a log level (TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF or ALL)");

  Configuration bad_logger = Conf();
  bad_logger.Set("logger.rest.level", "verbose");
  s = InitProcessLogging(bad_logger, "after");
  EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.Message().find("logger.rest.level: 'verbose'"), std::string::npos) << s.Message();

  EXPECT_EQ(ProcessLogFile(), before);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(log_dir_) / "freshet-after.log"));
}

TEST_F(LoggingTest, UncreatableLogDirectoryIsAnErrorNamingIt) {
  // A directory cannot be made below a regular file, whoever runs the test.
  std::string file = dir_ / "plain-file";
  test_support::WriteFile(file, "x");
  Configuration conf;
  conf.Set("env.log.dir", file + "/log");
  Status s = InitProcessLogging(conf, "jobmanager");
  EXPECT_EQ(s.Code(), StatusCode::kIoError);
  EXPECT_NE(s.Message().find("cannot create log directory '" + file + "/log' (env.log.dir)"), std::string::npos)
      << s.Message();
  EXPECT_EQ(ProcessLogFile(), "");

  conf.Set("env.log.dir", file);
  s = InitProcessLogging(conf, "jobmanager");
  EXPECT_EQ(s.Code(), StatusCode::kIoError);
  EXPECT_NE(s.Message().find("'" + file + "'"), std::string::npos) << s.Message();
}

TEST_F(LoggingTest, ProcessNameMustBeAFileNamePart) {
  for (const char* name : {"", "..", "task/manager"}) {
    Status s = InitProcessLogging(Conf(), name);
    EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument) << name;
    EXPECT_NE(s.Message().find("process name '" + std::string(name) + "'"), std::string::npos) << s.Message();
  }
}

TEST_F(LoggingTest, ReinitialisingAppendsAndResetClosesTheFile) {
  ASSERT_TRUE(InitProcessLogging(Conf(), "jobmanager").IsOk());
  Log("a")->info("first run");
  ASSERT_TRUE(InitProcessLogging(Conf(), "jobmanager").IsOk());
  Log("a")->info("second run");
  EXPECT_EQ(LinesWith(ProcessLogFile(), "first run").size(), 1u);
  EXPECT_EQ(LinesWith(ProcessLogFile(), "second run").size(), 1u);

  std::string file = ProcessLogFile();
  ResetProcessLogging();
  EXPECT_EQ(ProcessLogFile(), "");
  Log("a")->info("after reset");
  EXPECT_EQ(LinesWith(file, "after reset").size(), 0u);
}

TEST_F(LoggingTest, ConcurrentLoggersAllReachTheFile) {
  ASSERT_TRUE(InitProcessLogging(Conf(), "jobmanager").IsOk());
  constexpr int kThreads = 4;
  constexpr int kLines = 100;
  std::vector<std::thread> threads;
  std::vector<std::shared_ptr<spdlog::logger>> seen(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &seen] {
      seen[t] = Log("shared");
      for (int i = 0; i < kLines; ++i) Log("worker" + std::to_string(t))->info("line {} of thread {}", i, t);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 1; t < kThreads; ++t) EXPECT_EQ(seen[t], seen[0]);
  std::set<std::string> distinct;
  for (const std::string& line : LinesWith(ProcessLogFile(), " of thread ")) {
    distinct.insert(line.substr(line.find(" - ")));
  }
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kThreads * kLines));
}

TEST(LogLevelTest, ParsesLog4jNamesInAnyCase) {
  EXPECT_EQ(ParseLogLevel("TRACE"), spdlog::level::trace);
  EXPECT_EQ(ParseLogLevel("debug"), spdlog::level::debug);
  EXPECT_EQ(ParseLogLevel("Info"), spdlog::level::info);
  EXPECT_EQ(ParseLogLevel("WARN"), spdlog::level::warn);
  EXPECT_EQ(ParseLogLevel("error"), spdlog::level::err);
  EXPECT_EQ(ParseLogLevel("FATAL"), spdlog::level::critical);
  EXPECT_EQ(ParseLogLevel("off"), spdlog::level::off);
  EXPECT_EQ(ParseLogLevel("ALL"), spdlog::level::trace);
  EXPECT_EQ(ParseLogLevel("WARNING"), std::nullopt);
  EXPECT_EQ(ParseLogLevel(""), std::nullopt);
}

}  // namespace
}  // namespace freshet::internal
