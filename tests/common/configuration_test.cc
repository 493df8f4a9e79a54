#include "freshet/configuration.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <utility>
#include <vector>

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

// ---- checkpointing, restart strategy and restore settings --------------------

// A configuration that enables checkpointing validly, to add settings to.
Configuration CheckpointingConfig() {
  Configuration config;
  config.Set("execution.checkpointing.interval", "10 s").Set("state.checkpoints.dir", "/tmp/freshet-checkpoints");
  return config;
}

TEST(ConfigurationTest, CheckpointRestartAndRestoreDefaults) {
  ExecutionOptions options;
  ASSERT_TRUE(Configuration().ApplyTo(options).IsOk());
  EXPECT_FALSE(options.checkpoint.Enabled());
  EXPECT_EQ(options.checkpoint.interval_ms, 0);
  EXPECT_EQ(options.checkpoint.mode, CheckpointingMode::kExactlyOnce);
  EXPECT_FALSE(options.checkpoint.unaligned);
  EXPECT_EQ(options.checkpoint.timeout_ms, 600'000);
  EXPECT_EQ(options.checkpoint.max_concurrent, 1);
  EXPECT_EQ(options.checkpoint.num_retained, 1);
  EXPECT_TRUE(options.checkpoint.retain_on_cancellation);
  EXPECT_TRUE(options.checkpoint.directory.empty());
  EXPECT_FALSE(options.restart.kind.has_value());
  EXPECT_TRUE(options.restore.path.empty());
  EXPECT_FALSE(options.restore.allow_non_restored_state);
}

TEST(ConfigurationTest, AppliesEveryCheckpointKey) {
  Configuration config;
  config.Set("execution.checkpointing.interval", "30 s")
      .Set("execution.checkpointing.mode", "EXACTLY_ONCE")
      .Set("execution.checkpointing.unaligned.enabled", "true")
      .Set("execution.checkpointing.aligned-checkpoint-timeout", "2 s")
      .Set("execution.checkpointing.timeout", "5 min")
      .Set("execution.checkpointing.min-pause", "500 ms")
      .Set("execution.checkpointing.max-concurrent-checkpoints", "1")
      .Set("execution.checkpointing.tolerable-failed-checkpoints", "4")
      .Set("execution.checkpointing.externalized-checkpoint-retention", "DELETE_ON_CANCELLATION")
      .Set("state.checkpoints.num-retained", "5")
      .Set("state.checkpoints.dir", "/data/checkpoints");
  ExecutionOptions options;
  Status s = config.ApplyTo(options);
  ASSERT_TRUE(s.IsOk()) << s.ToString();
  const CheckpointOptions& c = options.checkpoint;
  EXPECT_TRUE(c.Enabled());
  EXPECT_EQ(c.interval_ms, 30'000);
  EXPECT_EQ(c.mode, CheckpointingMode::kExactlyOnce);
  EXPECT_TRUE(c.unaligned);
  EXPECT_EQ(c.aligned_checkpoint_timeout_ms, 2'000);
  EXPECT_EQ(c.timeout_ms, 300'000);
  EXPECT_EQ(c.min_pause_ms, 500);
  EXPECT_EQ(c.max_concurrent, 1);
  EXPECT_EQ(c.tolerable_failures, 4);
  EXPECT_FALSE(c.retain_on_cancellation);
  EXPECT_EQ(c.num_retained, 5);
  EXPECT_EQ(c.directory, "/data/checkpoints");

  // Concurrent checkpoints are aligned ones only.
  config.Set("execution.checkpointing.max-concurrent-checkpoints", "3");
  s = config.ApplyTo(options);
  ASSERT_FALSE(s.IsOk());
  EXPECT_NE(s.Message().find("max-concurrent-checkpoints"), std::string::npos) << s.ToString();
  config.Set("execution.checkpointing.unaligned.enabled", "false");
  ExecutionOptions aligned;
  s = config.ApplyTo(aligned);
  ASSERT_TRUE(s.IsOk()) << s.ToString();
  EXPECT_EQ(aligned.checkpoint.max_concurrent, 3);
}

TEST(ConfigurationTest, CheckpointingModeIsCaseInsensitive) {
  const std::pair<const char*, CheckpointingMode> cases[] = {
      {"AT_LEAST_ONCE", CheckpointingMode::kAtLeastOnce},
      {"at_least_once", CheckpointingMode::kAtLeastOnce},
      {"Exactly_Once", CheckpointingMode::kExactlyOnce},
      {"exactly_once", CheckpointingMode::kExactlyOnce},
  };
  for (auto [text, expected] : cases) {
    ExecutionOptions options;
    options.checkpoint.mode = expected == CheckpointingMode::kExactlyOnce ? CheckpointingMode::kAtLeastOnce
                                                                          : CheckpointingMode::kExactlyOnce;
    Status s = ApplyOne("execution.checkpointing.mode", text, options);
    ASSERT_TRUE(s.IsOk()) << text << ": " << s.ToString();
    EXPECT_EQ(options.checkpoint.mode, expected) << text;
  }
  for (const char* bad : {"", "EXACTLY-ONCE", "exactly once", "BATCH", " EXACTLY_ONCE"}) {
    ExpectRejectedNaming("execution.checkpointing.mode", bad);
  }
}

TEST(ConfigurationTest, UnalignedAcceptsBothKeysAndTheNewerWins) {
  ExecutionOptions options;
  ASSERT_TRUE(ApplyOne("execution.checkpointing.unaligned", "true", options).IsOk());
  EXPECT_TRUE(options.checkpoint.unaligned);
  ASSERT_TRUE(ApplyOne("execution.checkpointing.unaligned.enabled", "false", options).IsOk());
  EXPECT_FALSE(options.checkpoint.unaligned);

  Configuration both;
  both.Set("execution.checkpointing.unaligned", "true").Set("execution.checkpointing.unaligned.enabled", "false");
  ExecutionOptions from_both;
  ASSERT_TRUE(both.ApplyTo(from_both).IsOk());
  EXPECT_FALSE(from_both.checkpoint.unaligned);

  ExpectRejectedNaming("execution.checkpointing.unaligned", "yes");
  ExpectRejectedNaming("execution.checkpointing.unaligned.enabled", "1");
}

TEST(ConfigurationTest, ExternalizedRetentionValues) {
  for (auto [text, retain] : {std::pair<const char*, bool>{"RETAIN_ON_CANCELLATION", true},
                              {"DELETE_ON_CANCELLATION", false},
                              {"NO_EXTERNALIZED_CHECKPOINTS", false},
                              {"retain_on_cancellation", true}}) {
    ExecutionOptions options;
    options.checkpoint.retain_on_cancellation = !retain;
    Status s = ApplyOne("execution.checkpointing.externalized-checkpoint-retention", text, options);
    ASSERT_TRUE(s.IsOk()) << text << ": " << s.ToString();
    EXPECT_EQ(options.checkpoint.retain_on_cancellation, retain) << text;
  }
  ExpectRejectedNaming("execution.checkpointing.externalized-checkpoint-retention", "RETAIN");
  ExpectRejectedNaming("execution.checkpointing.externalized-checkpoint-retention", "");
}

TEST(ConfigurationTest, DurationForms) {
  const std::pair<const char*, int64_t> cases[] = {
      {"1", 1},
      {"1500", 1'500},
      {"500 ms", 500},
      {"500ms", 500},
      {"7 milli", 7},
      {"7 millis", 7},
      {"7 millisecond", 7},
      {"7 milliseconds", 7},
      {"10 s", 10'000},
      {"10s", 10'000},
      {"3 sec", 3'000},
      {"3 secs", 3'000},
      {"1 second", 1'000},
      {"2 seconds", 2'000},
      {"1 min", 60'000},
      {"1min", 60'000},
      {"2 m", 120'000},
      {"1 minute", 60'000},
      {"5 minutes", 300'000},
      {"2 h", 7'200'000},
      {"1 hour", 3'600'000},
      {"3 hours", 10'800'000},
      {"1 d", 86'400'000},
      {"1 day", 86'400'000},
      {"2 days", 172'800'000},
      {"10 S", 10'000},
      {"1 MIN", 60'000},
      {"10  s", 10'000},
  };
  for (auto [text, expected] : cases) {
    Configuration config = CheckpointingConfig();
    config.Set("execution.checkpointing.timeout", text);
    config.Set("execution.checkpointing.min-pause", text);
    ExecutionOptions options;
    Status s = config.ApplyTo(options);
    ASSERT_TRUE(s.IsOk()) << text << ": " << s.ToString();
    EXPECT_EQ(options.checkpoint.timeout_ms, expected) << text;
    EXPECT_EQ(options.checkpoint.min_pause_ms, expected) << text;
  }
}

TEST(ConfigurationTest, OlderDurationKeysAcceptTheSameForms) {
  ExecutionOptions options;
  ASSERT_TRUE(ApplyOne("execution.buffer-timeout", "1 s", options).IsOk());
  EXPECT_EQ(options.buffer_timeout_ms, 1'000);
  ASSERT_TRUE(ApplyOne("pipeline.auto-watermark-interval", "2s", options).IsOk());
  EXPECT_EQ(options.auto_watermark_interval_ms, 2'000);
}

TEST(ConfigurationTest, MalformedDurationsAreRejectedNamingKeyAndValue) {
  const char* duration_keys[] = {
      "execution.checkpointing.interval",
      "execution.checkpointing.aligned-checkpoint-timeout",
      "execution.checkpointing.timeout",
      "execution.checkpointing.min-pause",
      "restart-strategy.fixed-delay.delay",
      "restart-strategy.failure-rate.failure-rate-interval",
      "restart-strategy.failure-rate.delay",
      "restart-strategy.exponential-delay.initial-backoff",
      "restart-strategy.exponential-delay.max-backoff",
      "restart-strategy.exponential-delay.reset-backoff-threshold",
  };
  for (const char* key : duration_keys) {
    for (const char* bad : {"", "abc", "10 parsecs", "1.5 s", "s", " 10 s", "10 s ", "10 ", "1e3", "0x10", "10 s s",
                            "10 ms5", "99999999999999999999", "9223372036854775807 d"}) {
      ExecutionOptions options;
      Status s = ApplyOne(key, bad, options);
      EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument) << key << " = '" << bad << "'";
      EXPECT_NE(s.Message().find(key), std::string::npos) << s.Message();
      std::string quoted = std::string(1, '\'').append(bad).append(1, '\'');
      EXPECT_NE(s.Message().find(quoted), std::string::npos) << s.Message();
    }
  }
}

TEST(ConfigurationTest, BadCheckpointIntegersAreRejected) {
  for (const char* key : {"execution.checkpointing.max-concurrent-checkpoints",
                          "execution.checkpointing.tolerable-failed-checkpoints", "state.checkpoints.num-retained"}) {
    for (const char* bad : {"", "two", "2.5", "2 s", "4294967298"}) {
      ExpectRejectedNaming(key, bad);
    }
  }
}

TEST(ConfigurationTest, AppliesEveryRestartStrategyKey) {
  Configuration config;
  config.Set("restart-strategy.type", "exponential-delay")
      .Set("restart-strategy.fixed-delay.attempts", "7")
      .Set("restart-strategy.fixed-delay.delay", "3 s")
      .Set("restart-strategy.failure-rate.max-failures-per-interval", "4")
      .Set("restart-strategy.failure-rate.failure-rate-interval", "5 min")
      .Set("restart-strategy.failure-rate.delay", "20 s")
      .Set("restart-strategy.exponential-delay.initial-backoff", "100 ms")
      .Set("restart-strategy.exponential-delay.max-backoff", "2 min")
      .Set("restart-strategy.exponential-delay.backoff-multiplier", "1.5")
      .Set("restart-strategy.exponential-delay.reset-backoff-threshold", "1 h")
      .Set("restart-strategy.exponential-delay.jitter-factor", "0.25")
      .Set("restart-strategy.exponential-delay.attempts-before-reset-backoff", "9");
  ExecutionOptions options;
  Status s = config.ApplyTo(options);
  ASSERT_TRUE(s.IsOk()) << s.ToString();
  const RestartStrategyOptions& r = options.restart;
  EXPECT_EQ(r.kind, RestartStrategyOptions::Kind::kExponentialDelay);
  EXPECT_EQ(r.fixed_delay_attempts, 7);
  EXPECT_EQ(r.fixed_delay_ms, 3'000);
  EXPECT_EQ(r.failure_rate_max_failures, 4);
  EXPECT_EQ(r.failure_rate_interval_ms, 300'000);
  EXPECT_EQ(r.failure_rate_delay_ms, 20'000);
  EXPECT_EQ(r.exponential_initial_backoff_ms, 100);
  EXPECT_EQ(r.exponential_max_backoff_ms, 120'000);
  EXPECT_DOUBLE_EQ(r.exponential_multiplier, 1.5);
  EXPECT_EQ(r.exponential_reset_threshold_ms, 3'600'000);
  EXPECT_DOUBLE_EQ(r.exponential_jitter, 0.25);
  EXPECT_EQ(r.exponential_attempts, 9);
}

TEST(ConfigurationTest, RestartStrategyNamesAndAliases) {
  using Kind = RestartStrategyOptions::Kind;
  const std::pair<const char*, Kind> cases[] = {
      {"none", Kind::kNone},
      {"off", Kind::kNone},
      {"disable", Kind::kNone},
      {"fixed-delay", Kind::kFixedDelay},
      {"fixeddelay", Kind::kFixedDelay},
      {"failure-rate", Kind::kFailureRate},
      {"failurerate", Kind::kFailureRate},
      {"exponential-delay", Kind::kExponentialDelay},
      {"exponentialdelay", Kind::kExponentialDelay},
      {"Fixed-Delay", Kind::kFixedDelay},
  };
  for (const char* key : {"restart-strategy.type", "restart-strategy"}) {
    for (auto [text, expected] : cases) {
      ExecutionOptions options;
      Status s = ApplyOne(key, text, options);
      ASSERT_TRUE(s.IsOk()) << key << " = " << text << ": " << s.ToString();
      EXPECT_EQ(options.restart.kind, expected) << key << " = " << text;
    }
    for (const char* bad : {"", "fixed", "fixed_delay", "always", " none"}) {
      ExpectRejectedNaming(key, bad);
    }
  }
}

TEST(ConfigurationTest, NewerRestartStrategyKeyWinsOverTheOlder) {
  Configuration config;
  config.Set("restart-strategy", "none").Set("restart-strategy.type", "failure-rate");
  ExecutionOptions options;
  ASSERT_TRUE(config.ApplyTo(options).IsOk());
  EXPECT_EQ(options.restart.kind, RestartStrategyOptions::Kind::kFailureRate);
  // A malformed older key is still an error.
  config.Set("restart-strategy", "bogus");
  ExecutionOptions other;
  Status s = config.ApplyTo(other);
  EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.Message().find("'restart-strategy'"), std::string::npos) << s.Message();
}

TEST(ConfigurationTest, BadRestartNumbersAreRejected) {
  for (const char* key : {"restart-strategy.exponential-delay.backoff-multiplier",
                          "restart-strategy.exponential-delay.jitter-factor"}) {
    for (const char* bad : {"", "abc", "1,5", "1.5x", "inf", "nan", " 1", "1e2"}) {
      ExpectRejectedNaming(key, bad);
    }
  }
  for (const char* key :
       {"restart-strategy.fixed-delay.attempts", "restart-strategy.failure-rate.max-failures-per-interval",
        "restart-strategy.exponential-delay.attempts-before-reset-backoff"}) {
    for (const char* bad : {"", "three", "3.0", "3 s", "2147483648"}) {
      ExpectRejectedNaming(key, bad);
    }
  }
}

TEST(ConfigurationTest, AppliesSavepointKeys) {
  Configuration config;
  config.Set("execution.savepoint.path", "/savepoints/savepoint-1a2b")
      .Set("execution.savepoint.ignore-unclaimed-state", "true");
  ExecutionOptions options;
  ASSERT_TRUE(config.ApplyTo(options).IsOk());
  EXPECT_EQ(options.restore.path, "/savepoints/savepoint-1a2b");
  EXPECT_TRUE(options.restore.allow_non_restored_state);
  ExpectRejectedNaming("execution.savepoint.ignore-unclaimed-state", "maybe");
}

TEST(ConfigurationTest, UnknownCheckpointRestartAndSavepointKeysAreRejected) {
  ExpectRejectedNaming("execution.checkpointing.intervall", "10 s");
  ExpectRejectedNaming("execution.checkpointing.unaligned.enable", "true");
  ExpectRejectedNaming("restart-strategy.fixed-delay.attempt", "3");
  ExpectRejectedNaming("restart-strategy.types", "none");
  ExpectRejectedNaming("state.checkpoints.directory", "/tmp");
  ExpectRejectedNaming("execution.savepoint.paths", "/tmp");
  // Other state.* keys belong to other components.
  ExecutionOptions options;
  EXPECT_TRUE(ApplyOne("state.savepoints.dir", "/tmp", options).IsOk());
}

TEST(ConfigurationTest, CheckpointingWithoutDirectoryIsRejected) {
  Configuration config;
  config.Set("execution.checkpointing.interval", "1 min");
  ExecutionOptions options;
  Status s = config.ApplyTo(options);
  EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Message(), "checkpointing is enabled but state.checkpoints.dir is not set");
  ExecutionOptions valid;
  EXPECT_TRUE(CheckpointingConfig().ApplyTo(valid).IsOk());
}

TEST(ConfigurationTest, OutOfRangeCheckpointAndRestartValuesAreRejected) {
  const std::pair<const char*, const char*> cases[] = {
      {"execution.checkpointing.interval", "-1"},
      {"execution.checkpointing.timeout", "0"},
      {"execution.checkpointing.timeout", "-5 s"},
      {"execution.checkpointing.min-pause", "-1"},
      {"execution.checkpointing.aligned-checkpoint-timeout", "-1"},
      {"execution.checkpointing.max-concurrent-checkpoints", "0"},
      {"execution.checkpointing.tolerable-failed-checkpoints", "-1"},
      {"state.checkpoints.num-retained", "0"},
      {"restart-strategy.fixed-delay.attempts", "-1"},
      {"restart-strategy.fixed-delay.delay", "-1 s"},
      {"restart-strategy.failure-rate.max-failures-per-interval", "-1"},
      {"restart-strategy.failure-rate.failure-rate-interval", "0"},
      {"restart-strategy.failure-rate.delay", "-1"},
      {"restart-strategy.exponential-delay.initial-backoff", "-1"},
      {"restart-strategy.exponential-delay.max-backoff", "10 ms"},
      {"restart-strategy.exponential-delay.backoff-multiplier", "0.5"},
      {"restart-strategy.exponential-delay.reset-backoff-threshold", "-1"},
      {"restart-strategy.exponential-delay.jitter-factor", "1.5"},
      {"restart-strategy.exponential-delay.jitter-factor", "-0.1"},
      {"restart-strategy.exponential-delay.attempts-before-reset-backoff", "-1"},
  };
  for (auto [key, value] : cases) {
    Configuration config = CheckpointingConfig();
    config.Set(key, value);
    ExecutionOptions options;
    Status s = config.ApplyTo(options);
    EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument) << key << " = " << value;
    EXPECT_NE(s.Message().find(key), std::string::npos) << s.Message();
  }
}

TEST(ConfigurationTest, BoundaryCheckpointAndRestartValuesAreAccepted) {
  Configuration config = CheckpointingConfig();
  config.Set("execution.checkpointing.interval", "1")
      .Set("execution.checkpointing.timeout", "1")
      .Set("execution.checkpointing.min-pause", "0")
      .Set("execution.checkpointing.max-concurrent-checkpoints", "1")
      .Set("execution.checkpointing.tolerable-failed-checkpoints", "0")
      .Set("state.checkpoints.num-retained", "1")
      .Set("restart-strategy.fixed-delay.attempts", "0")
      .Set("restart-strategy.fixed-delay.delay", "0")
      .Set("restart-strategy.exponential-delay.initial-backoff", "1 min")
      .Set("restart-strategy.exponential-delay.max-backoff", "60 s")
      .Set("restart-strategy.exponential-delay.backoff-multiplier", "1")
      .Set("restart-strategy.exponential-delay.jitter-factor", "1.0")
      .Set("restart-strategy.exponential-delay.attempts-before-reset-backoff", "0");
  ExecutionOptions options;
  Status s = config.ApplyTo(options);
  EXPECT_TRUE(s.IsOk()) << s.ToString();
  config.Set("restart-strategy.exponential-delay.jitter-factor", "0");
  EXPECT_TRUE(config.ApplyTo(options).IsOk());
}

TEST(ExecutionOptionsTest, UnalignedRequiresExactlyOnce) {
  ExecutionOptions options;
  options.checkpoint.unaligned = true;
  EXPECT_TRUE(options.Validate().IsOk());
  options.checkpoint.mode = CheckpointingMode::kAtLeastOnce;
  Status s = options.Validate();
  EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.Message().find("execution.checkpointing.unaligned"), std::string::npos) << s.Message();
  EXPECT_NE(s.Message().find("execution.checkpointing.mode"), std::string::npos) << s.Message();

  Configuration config = CheckpointingConfig();
  config.Set("execution.checkpointing.unaligned", "true").Set("execution.checkpointing.mode", "AT_LEAST_ONCE");
  ExecutionOptions from_config;
  EXPECT_EQ(config.ApplyTo(from_config).Code(), StatusCode::kInvalidArgument);
}

TEST(ExecutionOptionsTest, ValidateNamesTheBadCheckpointOrRestartSetting) {
  struct Case {
    const char* key;
    void (*mutate)(ExecutionOptions&);
  };
  const Case cases[] = {
      {"execution.checkpointing.interval", [](ExecutionOptions& o) { o.checkpoint.interval_ms = -1; }},
      {"execution.checkpointing.timeout", [](ExecutionOptions& o) { o.checkpoint.timeout_ms = 0; }},
      {"execution.checkpointing.min-pause", [](ExecutionOptions& o) { o.checkpoint.min_pause_ms = -1; }},
      {"execution.checkpointing.max-concurrent-checkpoints",
       [](ExecutionOptions& o) { o.checkpoint.max_concurrent = 0; }},
      {"execution.checkpointing.tolerable-failed-checkpoints",
       [](ExecutionOptions& o) { o.checkpoint.tolerable_failures = -1; }},
      {"state.checkpoints.num-retained", [](ExecutionOptions& o) { o.checkpoint.num_retained = 0; }},
      {"state.backend.rocksdb.memory.fixed-per-slot",
       [](ExecutionOptions& o) { o.state_backend.rocksdb_memory_per_slot = 1000; }},
      {"state.checkpoints.dir", [](ExecutionOptions& o) { o.checkpoint.interval_ms = 1000; }},
      {"restart-strategy.fixed-delay.attempts", [](ExecutionOptions& o) { o.restart.fixed_delay_attempts = -1; }},
      {"restart-strategy.exponential-delay.backoff-multiplier",
       [](ExecutionOptions& o) { o.restart.exponential_multiplier = 0.99; }},
      {"restart-strategy.exponential-delay.backoff-multiplier",
       [](ExecutionOptions& o) { o.restart.exponential_multiplier = std::numeric_limits<double>::quiet_NaN(); }},
      {"restart-strategy.exponential-delay.jitter-factor",
       [](ExecutionOptions& o) { o.restart.exponential_jitter = 2; }},
      {"restart-strategy.exponential-delay.jitter-factor",
       [](ExecutionOptions& o) { o.restart.exponential_jitter = std::numeric_limits<double>::quiet_NaN(); }},
  };
  for (const Case& c : cases) {
    ExecutionOptions options;
    c.mutate(options);
    Status s = options.Validate();
    EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument) << c.key;
    EXPECT_NE(s.Message().find(c.key), std::string::npos) << s.Message();
  }
}

// state.backend.*: Flink's names for the backend (and the older ones),
// memory sizes with units, and clear errors for anything else.
TEST(ConfigurationTest, StateBackendSettings) {
  ExecutionOptions options;
  EXPECT_EQ(options.state_backend.type, StateBackendOptions::Type::kHeap);
  Configuration config;
  config.Set("state.backend.type", "RocksDB")
      .Set("state.backend.rocksdb.localdir", "/data/rocks")
      .Set("state.backend.rocksdb.memory.fixed-per-slot", "64 mb")
      .Set("state.backend.incremental", "true");
  ASSERT_TRUE(config.ApplyTo(options).IsOk());
  EXPECT_EQ(options.state_backend.type, StateBackendOptions::Type::kRocksDB);
  EXPECT_EQ(options.state_backend.rocksdb_local_dir, "/data/rocks");
  EXPECT_EQ(options.state_backend.rocksdb_memory_per_slot, uint64_t{64} << 20);
  EXPECT_TRUE(options.state_backend.incremental);

  for (const auto& [value, type] : std::vector<std::pair<std::string, StateBackendOptions::Type>>{
           {"hashmap", StateBackendOptions::Type::kHeap},
           {"filesystem", StateBackendOptions::Type::kHeap},
           {"jobmanager", StateBackendOptions::Type::kHeap},
           {"rocksdb", StateBackendOptions::Type::kRocksDB}}) {
    ExecutionOptions o;
    ASSERT_TRUE(ApplyOne("state.backend.type", value, o).IsOk()) << value;
    EXPECT_EQ(o.state_backend.type, type) << value;
  }
  // The older key `state.backend` is read when the newer one is absent.
  ExecutionOptions old_key;
  ASSERT_TRUE(ApplyOne("state.backend", "rocksdb", old_key).IsOk());
  EXPECT_EQ(old_key.state_backend.type, StateBackendOptions::Type::kRocksDB);
  ExecutionOptions both;
  Configuration both_config;
  both_config.Set("state.backend", "rocksdb").Set("state.backend.type", "hashmap");
  ASSERT_TRUE(both_config.ApplyTo(both).IsOk());
  EXPECT_EQ(both.state_backend.type, StateBackendOptions::Type::kHeap);

  for (const auto& [value, bytes] : std::vector<std::pair<std::string, uint64_t>>{
           {"1048576", uint64_t{1} << 20}, {"2mb", uint64_t{2} << 20}, {"1 GB", uint64_t{1} << 30},
           {"4096 kb", uint64_t{4} << 20}, {"3g", uint64_t{3} << 30}}) {
    ExecutionOptions o;
    ASSERT_TRUE(ApplyOne("state.backend.rocksdb.memory.fixed-per-slot", value, o).IsOk()) << value;
    EXPECT_EQ(o.state_backend.rocksdb_memory_per_slot, bytes) << value;
  }
  ExpectRejectedNaming("state.backend.type", "memory");
  ExpectRejectedNaming("state.backend.rocksdb.memory.fixed-per-slot", "lots");
  ExpectRejectedNaming("state.backend.rocksdb.memory.fixed-per-slot", "12 parsecs");
  ExpectRejectedNaming("state.backend.rocksdb.memory.fixed-per-slot", "-5 mb");
  ExpectRejectedNaming("state.backend.rocksdb.memory.fixed-per-slot", "99999999999 tb");
  ExpectRejectedNaming("state.backend.rocksdb.memory.fixed-per-slot", "1 kb");  // below the 1 mb minimum
  ExpectRejectedNaming("state.backend.incremental", "yes");
  ExpectRejectedNaming("state.backend.rocksdb.unknown-option", "1");
}

}  // namespace
}  // namespace freshet
