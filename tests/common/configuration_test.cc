#include "freshet/configuration.h"

#include <gtest/gtest.h>

#include <string>

namespace freshet {
namespace {

// Applies a single setting onto default options.
Status ApplyOne(const std::string& key, const std::string& value, ExecutionOptions& options) {
  Configuration config;
  config.Set(key, value);
  return config.ApplyTo(options);
}

void ExpectRejectedNaming(const std::string& key, const std::string& value) {
  ExecutionOptions options;
  Status s = ApplyOne(key, value, options);
  EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument) << key << " = '" << value << "': " << s.ToString();
  EXPECT_NE(s.Message().find(key), std::string::npos) << "message does not name the key: " << s.Message();
}

TEST(ConfigurationTest, GetReturnsSetValues) {
  Configuration config;
  EXPECT_EQ(config.Get("parallelism.default"), std::nullopt);
  config.Set("parallelism.default", "4").Set("custom.key", "x");
  EXPECT_EQ(config.Get("parallelism.default"), "4");
  EXPECT_EQ(config.Get("custom.key"), "x");
  config.Set("parallelism.default", "5");
  EXPECT_EQ(config.Get("parallelism.default"), "5");
  EXPECT_EQ(config.Values().size(), 2u);
}

TEST(ConfigurationTest, EmptyConfigurationKeepsDefaults) {
  ExecutionOptions options;
  ASSERT_TRUE(Configuration().ApplyTo(options).IsOk());
  ExecutionOptions defaults;
  EXPECT_EQ(options.parallelism, defaults.parallelism);
  EXPECT_EQ(options.max_parallelism, defaults.max_parallelism);
  EXPECT_EQ(options.buffer_timeout_ms, defaults.buffer_timeout_ms);
  EXPECT_EQ(options.chaining_enabled, defaults.chaining_enabled);
  EXPECT_EQ(options.segment_size, defaults.segment_size);
}

TEST(ConfigurationTest, AppliesEveryKnownKey) {
  Configuration config;
  config.Set("parallelism.default", "6")
      .Set("pipeline.max-parallelism", "256")
      .Set("execution.buffer-timeout", "25")
      .Set("pipeline.operator-chaining", "false")
      .Set("taskmanager.memory.segment-size", "4096")
      .Set("taskmanager.network.memory.buffers-per-channel", "3")
      .Set("taskmanager.network.memory.floating-buffers-per-gate", "0");
  ExecutionOptions options;
  Status s = config.ApplyTo(options);
  ASSERT_TRUE(s.IsOk()) << s.ToString();
  EXPECT_EQ(options.parallelism, 6);
  EXPECT_EQ(options.max_parallelism, 256);
  EXPECT_EQ(options.buffer_timeout_ms, 25);
  EXPECT_FALSE(options.chaining_enabled);
  EXPECT_EQ(options.segment_size, 4096);
  EXPECT_EQ(options.buffers_per_channel, 3);
  EXPECT_EQ(options.floating_buffers, 0);
}

TEST(ConfigurationTest, BufferTimeoutAcceptsMillisecondSuffixAndSpecialValues) {
  for (auto [text, expected] : {std::pair<const char*, int64_t>{"100ms", 100}, {"7 ms", 7}, {"0", 0}, {"-1", -1}}) {
    ExecutionOptions options;
    Status s = ApplyOne("execution.buffer-timeout", text, options);
    ASSERT_TRUE(s.IsOk()) << text << ": " << s.ToString();
    EXPECT_EQ(options.buffer_timeout_ms, expected) << text;
  }
}

TEST(ConfigurationTest, ChainingAcceptsTrueAndFalse) {
  ExecutionOptions options;
  options.chaining_enabled = false;
  ASSERT_TRUE(ApplyOne("pipeline.operator-chaining", "true", options).IsOk());
  EXPECT_TRUE(options.chaining_enabled);
  ASSERT_TRUE(ApplyOne("pipeline.operator-chaining", "false", options).IsOk());
  EXPECT_FALSE(options.chaining_enabled);
}

TEST(ConfigurationTest, KeysOutsideFreshetNamespacesAreIgnored) {
  Configuration config;
  config.Set("state.backend", "rocksdb").Set("my.own.key", "whatever").Set("parallelism.default", "2");
  ExecutionOptions options;
  ASSERT_TRUE(config.ApplyTo(options).IsOk());
  EXPECT_EQ(options.parallelism, 2);
}

TEST(ConfigurationTest, ParallelismZeroIsRejected) {
  ExpectRejectedNaming("parallelism.default", "0");
  ExpectRejectedNaming("parallelism.default", "-3");
}

TEST(ConfigurationTest, MaxParallelismBelowParallelismIsRejected) {
  Configuration config;
  config.Set("parallelism.default", "8").Set("pipeline.max-parallelism", "4");
  ExecutionOptions options;
  Status s = config.ApplyTo(options);
  EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.Message().find("pipeline.max-parallelism"), std::string::npos) << s.Message();
  EXPECT_NE(s.Message().find("parallelism.default"), std::string::npos) << s.Message();
}

TEST(ConfigurationTest, MaxParallelismOutOfRangeIsRejected) {
  ExpectRejectedNaming("pipeline.max-parallelism", "32769");
  ExpectRejectedNaming("pipeline.max-parallelism", "100000");
  ExpectRejectedNaming("pipeline.max-parallelism", "0");
  ExecutionOptions options;
  EXPECT_TRUE(ApplyOne("pipeline.max-parallelism", "32768", options).IsOk());
  EXPECT_EQ(options.max_parallelism, 32768);
}

TEST(ConfigurationTest, IntegersOutsideIntRangeAreRejectedNotWrapped) {
  // 2^32 + 2 would wrap to 2 if narrowed to int.
  ExpectRejectedNaming("parallelism.default", "4294967298");
  ExpectRejectedNaming("pipeline.max-parallelism", "4294967424");
  ExpectRejectedNaming("taskmanager.memory.segment-size", "4294971392");
  ExpectRejectedNaming("taskmanager.network.memory.buffers-per-channel", "4294967297");
  ExpectRejectedNaming("parallelism.default", "99999999999999999999999");
}

TEST(ConfigurationTest, UnitSuffixIsOnlyForDurations) {
  ExpectRejectedNaming("parallelism.default", "4ms");
  ExpectRejectedNaming("taskmanager.memory.segment-size", "4096 ms");
  ExecutionOptions options;
  ASSERT_TRUE(ApplyOne("execution.buffer-timeout", "40ms", options).IsOk());
  EXPECT_EQ(options.buffer_timeout_ms, 40);
}

TEST(ConfigurationTest, LargestIntValuesAreAccepted) {
  ExecutionOptions options;
  Status s = ApplyOne("taskmanager.network.memory.floating-buffers-per-gate", "2147483647", options);
  ASSERT_TRUE(s.IsOk()) << s.ToString();
  EXPECT_EQ(options.floating_buffers, 2147483647);
  ExpectRejectedNaming("taskmanager.network.memory.floating-buffers-per-gate", "2147483648");
}

TEST(ConfigurationTest, MalformedIntegersAreRejected) {
  for (const char* bad : {"", "abc", "4x", "4.5", " 4", "0x10", "++1", "1e3", "ms"}) {
    ExpectRejectedNaming("parallelism.default", bad);
    ExpectRejectedNaming("pipeline.max-parallelism", bad);
    ExpectRejectedNaming("execution.buffer-timeout", bad);
    ExpectRejectedNaming("taskmanager.memory.segment-size", bad);
    ExpectRejectedNaming("taskmanager.network.memory.buffers-per-channel", bad);
    ExpectRejectedNaming("taskmanager.network.memory.floating-buffers-per-gate", bad);
  }
}

TEST(ConfigurationTest, UnknownKeysInFreshetNamespacesAreRejected) {
  ExpectRejectedNaming("pipeline.max-paralelism", "4");
  ExpectRejectedNaming("pipeline.auto-watermark-interval-typo", "1");
  ExpectRejectedNaming("execution.runtime-mode-typo", "BATCH");
  ExpectRejectedNaming("parallelism.defualt", "2");
}

TEST(ConfigurationTest, BadBooleansAreRejected) {
  for (const char* bad : {"yes", "1", "TRUE", "False", "", " true"}) {
    ExpectRejectedNaming("pipeline.operator-chaining", bad);
  }
}

TEST(ConfigurationTest, OtherOutOfRangeValuesAreRejected) {
  ExpectRejectedNaming("execution.buffer-timeout", "-2");
  ExpectRejectedNaming("taskmanager.memory.segment-size", "255");
  ExpectRejectedNaming("taskmanager.network.memory.buffers-per-channel", "0");
  ExpectRejectedNaming("taskmanager.network.memory.floating-buffers-per-gate", "-1");
}

TEST(ExecutionOptionsTest, DefaultsAreValid) { EXPECT_TRUE(ExecutionOptions().Validate().IsOk()); }

TEST(ExecutionOptionsTest, ValidateNamesTheBadSetting) {
  struct Case {
    const char* key;
    void (*mutate)(ExecutionOptions&);
  };
  const Case cases[] = {
      {"parallelism.default", [](ExecutionOptions& o) { o.parallelism = 0; }},
      {"pipeline.max-parallelism", [](ExecutionOptions& o) { o.max_parallelism = 32769; }},
      {"pipeline.max-parallelism", [](ExecutionOptions& o) { o.max_parallelism = 0; }},
      {"pipeline.max-parallelism",
       [](ExecutionOptions& o) {
         o.parallelism = 10;
         o.max_parallelism = 9;
       }},
      {"execution.buffer-timeout", [](ExecutionOptions& o) { o.buffer_timeout_ms = -5; }},
      {"taskmanager.memory.segment-size", [](ExecutionOptions& o) { o.segment_size = 100; }},
      {"taskmanager.network.memory.buffers-per-channel", [](ExecutionOptions& o) { o.buffers_per_channel = 0; }},
      {"taskmanager.network.memory.floating-buffers-per-gate", [](ExecutionOptions& o) { o.floating_buffers = -1; }},
  };
  for (const Case& c : cases) {
    ExecutionOptions options;
    c.mutate(options);
    Status s = options.Validate();
    EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument) << c.key;
    EXPECT_NE(s.Message().find(c.key), std::string::npos) << s.Message();
  }
}

TEST(ExecutionOptionsTest, BoundaryValuesAreValid) {
  ExecutionOptions options;
  options.parallelism = 32768;
  options.max_parallelism = 32768;
  options.buffer_timeout_ms = -1;
  options.segment_size = 256;
  options.buffers_per_channel = 1;
  options.floating_buffers = 0;
  EXPECT_TRUE(options.Validate().IsOk());
  options.max_parallelism = 1;
  options.parallelism = 1;
  EXPECT_TRUE(options.Validate().IsOk());
}

}  // namespace
}  // namespace freshet
