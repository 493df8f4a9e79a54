// Job libraries: loading, refusing broken ones, embedded runs and plan mode
// (the graph a JobManager or TaskManager rebuilds from the library).

#include "cluster/job_library.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "deploy/deploy_env.h"
#include "rest/job_plan.h"

namespace freshet::internal {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using deploy_test::ExpectedSums;
using deploy_test::FinalSums;
using deploy_test::JobPath;
using deploy_test::Shell;

class JobLibraryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("job-library-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
};

TEST_F(JobLibraryTest, LoadsAndChecksumsTheLibrary) {
  auto library = JobLibrary::Load(JobPath("sum_job"));
  ASSERT_TRUE(library.IsOk()) << library.GetStatus().Message();
  auto [code, out] = Shell("sha256sum " + JobPath("sum_job"));
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ((*library)->Checksum(), out.substr(0, 64));
}

TEST_F(JobLibraryTest, RunsTheProgramEmbedded) {
  auto library = JobLibrary::Load(JobPath("sum_job"));
  ASSERT_TRUE(library.IsOk()) << library.GetStatus().Message();
  fs::path output = dir_ / "out";
  Configuration config;
  config.Set("parallelism.default", "3");
  auto code = (*library)->RunMain({"--count", "5000", "--keys", "7", "--output", output.string()}, config);
  ASSERT_TRUE(code.IsOk()) << code.GetStatus().Message();
  EXPECT_EQ(*code, 0);
  // Parallelism 3 from the host's configuration: the sink wrote one file per subtask.
  ASSERT_TRUE(fs::is_directory(output));
  EXPECT_EQ(std::distance(fs::directory_iterator(output), fs::directory_iterator()), 3);
  EXPECT_EQ(FinalSums(output), ExpectedSums(5000, 7));
}

TEST_F(JobLibraryTest, PlanModeRebuildsTheSameGraphWithoutRunningIt) {
  auto library = JobLibrary::Load(JobPath("sum_job"));
  ASSERT_TRUE(library.IsOk()) << library.GetStatus().Message();
  fs::path output = dir_ / "out";
  std::vector<std::string> args = {"--count", "100", "--output", output.string()};
  Configuration config;
  config.Set("parallelism.default", "2");
  auto first = (*library)->BuildPlan(args, config);
  ASSERT_TRUE(first.IsOk()) << first.GetStatus().Message();
  auto second = (*library)->BuildPlan(args, config);
  ASSERT_TRUE(second.IsOk()) << second.GetStatus().Message();
  EXPECT_FALSE(fs::exists(output)) << "plan mode must not run the job";
  EXPECT_EQ(first->job_name, "Sum Job");

  JobGraph a = BuildJobGraph(std::make_shared<const StreamGraph>(std::move(first).Value()), "job-a");
  JobGraph b = BuildJobGraph(std::make_shared<const StreamGraph>(std::move(second).Value()), "job-a");
  EXPECT_EQ(GraphFingerprint(a), GraphFingerprint(b));
  ASSERT_EQ(a.vertices.size(), 2u);  // source -> map chained; keyed sum -> sink chained
  for (const JobVertex& v : a.vertices) EXPECT_EQ(v.parallelism, 2);

  // The plan in Flink's JSON shape: the second vertex reads the first by hash.
  nlohmann::json plan = JobPlanJson(a);
  EXPECT_EQ(plan["jid"], "job-a");
  EXPECT_EQ(plan["name"], "Sum Job");
  ASSERT_EQ(plan["nodes"].size(), 2u);
  EXPECT_THAT(plan["nodes"][0]["description"].get<std::string>(), HasSubstr("Pair"));
  ASSERT_EQ(plan["nodes"][1]["inputs"].size(), 1u);
  EXPECT_EQ(plan["nodes"][1]["inputs"][0]["id"], plan["nodes"][0]["id"]);
  EXPECT_EQ(plan["nodes"][1]["inputs"][0]["ship_strategy"], "HASH");

  // Another parallelism is another graph; the program's own setting wins
  // over the host's default.
  config.Set("parallelism.default", "4");
  auto wider = (*library)->BuildPlan(args, config);
  ASSERT_TRUE(wider.IsOk());
  JobGraph c = BuildJobGraph(std::make_shared<const StreamGraph>(std::move(wider).Value()), "job-a");
  EXPECT_NE(GraphFingerprint(a), GraphFingerprint(c));
  std::vector<std::string> explicit_args = args;
  explicit_args.insert(explicit_args.end(), {"--parallelism", "2"});
  auto pinned = (*library)->BuildPlan(explicit_args, config);
  ASSERT_TRUE(pinned.IsOk());
  JobGraph d = BuildJobGraph(std::make_shared<const StreamGraph>(std::move(pinned).Value()), "job-a");
  EXPECT_EQ(GraphFingerprint(a), GraphFingerprint(d));
}

TEST_F(JobLibraryTest, RefusesBrokenLibrariesWithClearMessages) {
  auto abi = JobLibrary::Load(JobPath("abi_mismatch_job"));
  ASSERT_FALSE(abi.IsOk());
  EXPECT_THAT(abi.GetStatus().Message(), HasSubstr("freshet-job-abi 999"));
  EXPECT_THAT(abi.GetStatus().Message(), HasSubstr("rebuild the job"));

  auto no_entry = JobLibrary::Load(JobPath("no_entry_job"));
  ASSERT_FALSE(no_entry.IsOk());
  EXPECT_THAT(no_entry.GetStatus().Message(), HasSubstr("not a Freshet job library"));

  auto unresolved = JobLibrary::Load(JobPath("unresolved_job"));
  ASSERT_FALSE(unresolved.IsOk());
  EXPECT_THAT(unresolved.GetStatus().Message(), HasSubstr("freshet_function_that_does_not_exist"));

  fs::path text = dir_ / "text.so";
  std::ofstream(text) << "this is not a shared object\n";
  auto not_elf = JobLibrary::Load(text.string());
  ASSERT_FALSE(not_elf.IsOk());
  EXPECT_THAT(not_elf.GetStatus().Message(), HasSubstr(text.string()));
  EXPECT_THAT(not_elf.GetStatus().Message(), HasSubstr("not a loadable job library"));

  // A truncated copy of a good library.
  fs::path truncated = dir_ / "truncated.so";
  {
    std::ifstream in(JobPath("sum_job"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 3);
  }
  auto cut = JobLibrary::Load(truncated.string());
  ASSERT_FALSE(cut.IsOk());
  EXPECT_THAT(cut.GetStatus().Message(), HasSubstr("not a loadable job library"));

  auto missing = JobLibrary::Load((dir_ / "missing.so").string());
  ASSERT_FALSE(missing.IsOk());
  EXPECT_THAT(missing.GetStatus().Message(), HasSubstr("missing.so"));
}

TEST_F(JobLibraryTest, ReportsProgramsThatDoNotBuildAJob) {
  auto library = JobLibrary::Load(JobPath("misbehaving_job"));
  ASSERT_TRUE(library.IsOk()) << library.GetStatus().Message();
  auto thrown = (*library)->BuildPlan({"throw"}, {});
  ASSERT_FALSE(thrown.IsOk());
  EXPECT_THAT(thrown.GetStatus().Message(), HasSubstr("failed before Execute(): the input path does not exist"));
  auto returned = (*library)->BuildPlan({"return"}, {});
  ASSERT_FALSE(returned.IsOk());
  EXPECT_THAT(returned.GetStatus().Message(), HasSubstr("returned 3 without calling Execute()"));
  auto invalid = (*library)->BuildPlan({"invalid"}, {});
  ASSERT_FALSE(invalid.IsOk());
  EXPECT_THAT(invalid.GetStatus().Message(), HasSubstr("could not build its job"));
  EXPECT_THAT(invalid.GetStatus().Message(), HasSubstr("same"));
  auto run_thrown = (*library)->RunMain({"throw"}, {});
  ASSERT_FALSE(run_thrown.IsOk());
  EXPECT_THAT(run_thrown.GetStatus().Message(), HasSubstr("the input path does not exist"));
}

TEST_F(JobLibraryTest, CliRunsAndDescribesJobs) {
  std::string cli = FRESHET_CLI;
  fs::path output = dir_ / "out";
  auto [code, out] = Shell(cli + " run -p 2 " + JobPath("sum_job") + " --count 3000 --keys 5 --output " +
                           output.string());
  ASSERT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("sum job finished: 3000 records in, parallelism 2"));
  EXPECT_EQ(FinalSums(output), ExpectedSums(3000, 5));

  auto [info_code, info] = Shell(cli + " info -p 3 " + JobPath("sum_job") + " --output " + (dir_ / "x").string());
  ASSERT_EQ(info_code, 0) << info;
  nlohmann::json plan = nlohmann::json::parse(info.substr(info.find('{')));
  ASSERT_EQ(plan["nodes"].size(), 2u);
  EXPECT_EQ(plan["nodes"][0]["parallelism"], 3);
  EXPECT_FALSE(fs::exists(dir_ / "x"));

  auto [bad_p, bad_p_out] = Shell(cli + " run -p zero " + JobPath("sum_job"));
  EXPECT_EQ(bad_p, 1);
  EXPECT_THAT(bad_p_out, HasSubstr("-p must be a number from 1 to 32768, got 'zero'"));
  auto [bad_lib, bad_lib_out] = Shell(cli + " run " + JobPath("abi_mismatch_job"));
  EXPECT_EQ(bad_lib, 1);
  EXPECT_THAT(bad_lib_out, HasSubstr("rebuild the job"));
  auto [bad_d, bad_d_out] = Shell(cli + " run -D parallelism.default " + JobPath("sum_job"));
  EXPECT_EQ(bad_d, 1);
  EXPECT_THAT(bad_d_out, HasSubstr("-D expects <key>=<value>"));
  auto [no_action, no_action_out] = Shell(cli + " launch");
  EXPECT_EQ(no_action, 1);
  EXPECT_THAT(no_action_out, HasSubstr("unknown action 'launch'"));
}

}  // namespace
}  // namespace freshet::internal
