// Configuration files, -D overrides, the key registry and ClusterOptions.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cluster/cluster_options.h"
#include "common/config_options.h"
#include "freshet/configuration.h"
#include "support/temp_dir.h"

namespace freshet {
namespace {

using internal::ClusterOptions;

class ConfigFileTest : public ::testing::Test {
 protected:
  // Writes `text` to a fresh file and returns its path.
  std::string Write(const std::string& text, const std::string& name = "freshet.yaml") {
    std::string path = dir_ / name;
    test_support::WriteFile(path, text);
    return path;
  }

  Result<Configuration> Load(const std::string& text) { return LoadConfigurationFile(Write(text)); }

  // Loads `text`, expects an InvalidArgument and returns its message.
  std::string LoadError(const std::string& text) {
    Result<Configuration> conf = Load(text);
    EXPECT_FALSE(conf.IsOk()) << "loaded without error:\n" << text;
    if (conf.IsOk()) return "";
    EXPECT_EQ(conf.GetStatus().Code(), StatusCode::kInvalidArgument) << conf.GetStatus().ToString();
    return conf.GetStatus().Message();
  }

  test_support::TempDir dir_{"freshet-config-file"};
};

std::string ShippedConfDir() {
  return (std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "conf").string();
}

TEST_F(ConfigFileTest, FlatAndNestedFilesGiveTheSameConfiguration) {
  Result<Configuration> flat = Load(
      "jobmanager.rpc.address: jm.example\n"
      "jobmanager.rpc.port: 7000\n"
      "taskmanager.numberOfTaskSlots: 4\n"
      "heartbeat.interval: 2 s\n"
      "logger.checkpoint.level: DEBUG\n"
      "myjob.input.path: /data/in\n");
  Result<Configuration> nested = Load(
      "jobmanager:\n"
      "  rpc:\n"
      "    address: jm.example\n"
      "    port: 7000\n"
      "taskmanager: {numberOfTaskSlots: 4}\n"
      "heartbeat:\n"
      "  interval: 2 s\n"
      "logger:\n"
      "  checkpoint:\n"
      "    level: DEBUG\n"
      "myjob:\n"
      "  input.path: /data/in\n");
  ASSERT_TRUE(flat.IsOk()) << flat.GetStatus().ToString();
  ASSERT_TRUE(nested.IsOk()) << nested.GetStatus().ToString();
  EXPECT_EQ(flat->Values(), nested->Values());
  EXPECT_EQ(flat->Values().size(), 6u);
  EXPECT_EQ(nested->Get("taskmanager.numberOfTaskSlots"), "4");
  EXPECT_EQ(nested->Get("heartbeat.interval"), "2 s");
  EXPECT_EQ(nested->Get("myjob.input.path"), "/data/in");
}

TEST_F(ConfigFileTest, FlatAndNestedKeysMayBeMixed) {
  Result<Configuration> conf = Load(
      "rest.port: 9001\n"
      "rest:\n"
      "  address: rest.example\n"
      "taskmanager.numberOfTaskSlots: 2\n");
  ASSERT_TRUE(conf.IsOk()) << conf.GetStatus().ToString();
  EXPECT_EQ(conf->Get("rest.port"), "9001");
  EXPECT_EQ(conf->Get("rest.address"), "rest.example");
  EXPECT_EQ(conf->Get("taskmanager.numberOfTaskSlots"), "2");
}

TEST_F(ConfigFileTest, ListsBecomeCommaSeparatedValues) {
  Result<Configuration> conf = Load(
      "myjob.hosts: [a.example, b.example, c.example]\n"
      "myjob.topics:\n"
      "  - clicks\n"
      "  - views\n"
      "myjob.empty: []\n");
  ASSERT_TRUE(conf.IsOk()) << conf.GetStatus().ToString();
  EXPECT_EQ(conf->Get("myjob.hosts"), "a.example,b.example,c.example");
  EXPECT_EQ(conf->Get("myjob.topics"), "clicks,views");
  EXPECT_EQ(conf->Get("myjob.empty"), "");
}

TEST_F(ConfigFileTest, ScalarsAreKeptAsWritten) {
  Result<Configuration> conf = Load(
      "myjob.ratio: 0.10\n"
      "myjob.quoted: \"007\"\n"
      "myjob.flag: yes\n"
      "state.backend.type: RocksDB\n");
  ASSERT_TRUE(conf.IsOk()) << conf.GetStatus().ToString();
  EXPECT_EQ(conf->Get("myjob.ratio"), "0.10");
  EXPECT_EQ(conf->Get("myjob.quoted"), "007");
  EXPECT_EQ(conf->Get("myjob.flag"), "yes");
  EXPECT_EQ(conf->Get("state.backend.type"), "RocksDB");
}

TEST_F(ConfigFileTest, EmptyAndCommentOnlyFilesSetNothing) {
  for (const char* text : {"", "# nothing here\n\n   # still nothing\n"}) {
    Result<Configuration> conf = Load(text);
    ASSERT_TRUE(conf.IsOk()) << conf.GetStatus().ToString();
    EXPECT_TRUE(conf->Values().empty());
  }
}

TEST_F(ConfigFileTest, ForeignFamilyKeysAreKeptWithoutChecks) {
  Result<Configuration> conf = Load(
      "kafka.bootstrap.servers: broker:9092\n"
      "myjob.window: not-a-duration-and-that-is-fine\n"
      "threshold: 17\n"
      "restaurant.port: eighty\n");  // starts like "rest" but is not "rest."
  ASSERT_TRUE(conf.IsOk()) << conf.GetStatus().ToString();
  EXPECT_EQ(conf->Get("kafka.bootstrap.servers"), "broker:9092");
  EXPECT_EQ(conf->Get("myjob.window"), "not-a-duration-and-that-is-fine");
  EXPECT_EQ(conf->Get("threshold"), "17");
  EXPECT_EQ(conf->Get("restaurant.port"), "eighty");
  // They are ignored by the job options too.
  ExecutionOptions options;
  EXPECT_TRUE(conf->ApplyTo(options).IsOk());
}

TEST_F(ConfigFileTest, MissingFileIsNotFoundNamingThePath) {
  std::string path = dir_ / "absent.yaml";
  Result<Configuration> conf = LoadConfigurationFile(path);
  ASSERT_FALSE(conf.IsOk());
  EXPECT_EQ(conf.GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_NE(conf.GetStatus().Message().find("'" + path + "'"), std::string::npos) << conf.GetStatus().Message();
  EXPECT_NE(conf.GetStatus().Message().find("No such file"), std::string::npos) << conf.GetStatus().Message();
}

TEST_F(ConfigFileTest, DirectoryIsAnIoErrorNamingThePath) {
  Result<Configuration> conf = LoadConfigurationFile(dir_.Path());
  ASSERT_FALSE(conf.IsOk());
  EXPECT_EQ(conf.GetStatus().Code(), StatusCode::kIoError);
  EXPECT_NE(conf.GetStatus().Message().find("'" + dir_.Path() + "'"), std::string::npos)
      << conf.GetStatus().Message();
}

TEST_F(ConfigFileTest, MalformedYamlNamesFileLineAndColumn) {
  std::string path = Write(
      "rest.port: 8081\n"
      "myjob.list: [1, 2\n"
      "rest.address: x\n");
  Result<Configuration> conf = LoadConfigurationFile(path);
  ASSERT_FALSE(conf.IsOk());
  const std::string& message = conf.GetStatus().Message();
  // yaml-cpp finds the unclosed list where the next mapping starts (line 3).
  EXPECT_EQ(message.rfind(path + ":3:", 0), 0u) << message;
  EXPECT_NE(message.find("malformed YAML"), std::string::npos) << message;

  std::string bad_indent = Write("rest:\n  port: 1\n   address: x\n", "indent.yaml");
  conf = LoadConfigurationFile(bad_indent);
  ASSERT_FALSE(conf.IsOk());
  EXPECT_EQ(conf.GetStatus().Message().rfind(bad_indent + ":3:", 0), 0u) << conf.GetStatus().Message();
}

TEST_F(ConfigFileTest, TopLevelMustBeAMap) {
  std::string path = Write("- rest.port\n- 8081\n");
  Result<Configuration> conf = LoadConfigurationFile(path);
  ASSERT_FALSE(conf.IsOk());
  EXPECT_EQ(conf.GetStatus().Message(), path + ":1: expected a map of keys to values at the top level");
}

TEST_F(ConfigFileTest, KeySetTwiceFlatAndNestedNamesBothLines) {
  std::string path = Write(
      "rest.port: 8081\n"
      "rest:\n"
      "  port: 9000\n");
  Result<Configuration> conf = LoadConfigurationFile(path);
  ASSERT_FALSE(conf.IsOk());
  EXPECT_EQ(conf.GetStatus().Message(), path + ":3: key 'rest.port' is set twice (first on line 1)");
}

TEST_F(ConfigFileTest, KeySetTwiceInOneMapIsAnError) {
  std::string path = Write("myjob.a: 1\nmyjob.b: 2\nmyjob.a: 3\n");
  Result<Configuration> conf = LoadConfigurationFile(path);
  ASSERT_FALSE(conf.IsOk());
  EXPECT_EQ(conf.GetStatus().Message(), path + ":3: key 'myjob.a' is set twice (first on line 1)");
}

TEST_F(ConfigFileTest, UnknownKeyOfAnOwnedFamilySuggestsTheClosestKey) {
  std::string path = Write("# ports\nrest.prot: 8081\n");
  Result<Configuration> conf = LoadConfigurationFile(path);
  ASSERT_FALSE(conf.IsOk());
  EXPECT_EQ(conf.GetStatus().Message(), path + ":2: unknown key 'rest.prot' (did you mean 'rest.port'?)");
}

TEST_F(ConfigFileTest, UnknownNestedKeyIsNamedInFullWithItsLine) {
  std::string path = Write("taskmanager:\n  host: localhost\n  numberOfTaskSlot: 4\n");
  Result<Configuration> conf = LoadConfigurationFile(path);
  ASSERT_FALSE(conf.IsOk());
  EXPECT_EQ(conf.GetStatus().Message(),
            path + ":3: unknown key 'taskmanager.numberOfTaskSlot' (did you mean 'taskmanager.numberOfTaskSlots'?)");
}

TEST_F(ConfigFileTest, MisspeltCaseIsCaughtAndSuggested) {
  EXPECT_NE(LoadError("RootLogger.level: INFO\n").find("did you mean 'rootLogger.level'?"), std::string::npos);
  EXPECT_NE(LoadError("taskmanager.numberoftaskslots: 2\n").find("did you mean 'taskmanager.numberOfTaskSlots'?"),
            std::string::npos);
}

TEST_F(ConfigFileTest, UnknownKeyWithNothingCloseHasNoSuggestion) {
  std::string message = LoadError("jobmanager.something.else.entirely: 1\n");
  EXPECT_NE(message.find(":1: unknown key 'jobmanager.something.else.entirely'"), std::string::npos) << message;
  EXPECT_EQ(message.find("did you mean"), std::string::npos) << message;
  // The bare family name is part of the family.
  EXPECT_NE(LoadError("rest: 8081\n").find(":1: unknown key 'rest'"), std::string::npos);
}

TEST_F(ConfigFileTest, MalformedValueNamesFileLineKeyAndValue) {
  std::string path = Write(
      "# Freshet\n"
      "jobmanager.rpc.address: localhost\n"
      "jobmanager.rpc.port: 6123\n"
      "\n"
      "# REST\n"
      "rest.address: localhost\n"
      "rest.port: eighty\n");
  Result<Configuration> conf = LoadConfigurationFile(path);
  ASSERT_FALSE(conf.IsOk());
  EXPECT_EQ(conf.GetStatus().Message(), path + ":7: rest.port: 'eighty' is not a port number (0-65535)");
}

TEST_F(ConfigFileTest, MissingValueIsAnError) {
  std::string path = Write("rest.address: localhost\nrest.port:\n");
  Result<Configuration> conf = LoadConfigurationFile(path);
  ASSERT_FALSE(conf.IsOk());
  EXPECT_NE(conf.GetStatus().Message().find(path + ":2: rest.port: no value"), std::string::npos)
      << conf.GetStatus().Message();
}

TEST_F(ConfigFileTest, ListOfMapsIsAnError) {
  std::string path = Write("myjob.sinks:\n  - name: a\n");
  Result<Configuration> conf = LoadConfigurationFile(path);
  ASSERT_FALSE(conf.IsOk());
  EXPECT_NE(conf.GetStatus().Message().find(path + ":1: myjob.sinks: a list may hold only plain values"),
            std::string::npos)
      << conf.GetStatus().Message();
}

// Every type's malformed values: the message names the key and the value
// and says what was expected.
TEST(ConfigOptionsTest, MalformedValuesOfEveryTypeAreRejected) {
  struct Case {
    const char* key;
    const char* value;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"rest.port", "70000", "is not a port number (0-65535)"},
      {"rest.port", "-1", "is not a port number (0-65535)"},
      {"taskmanager.rpc.port", "80.5", "is not a port number (0-65535)"},
      {"taskmanager.numberOfTaskSlots", "four", "is not an integer"},
      {"taskmanager.numberOfTaskSlots", "0", "is out of range (at least 1)"},
      {"pipeline.max-parallelism", "40000", "is out of range (1-32768)"},
      {"pipeline.operator-chaining", "yes", "is not true or false"},
      {"heartbeat.interval", "10 parsecs", "is not a duration"},
      {"heartbeat.timeout", "", "is not a duration"},
      {"state.backend.rocksdb.memory.fixed-per-slot", "lots", "is not a memory size"},
      {"taskmanager.memory.process.size", "big", "is not a memory size"},
      {"state.backend.type", "rocksdbx", "is not one of hashmap, rocksdb"},
      {"execution.checkpointing.mode", "twice", "is not one of EXACTLY_ONCE, AT_LEAST_ONCE"},
      {"restart-strategy.exponential-delay.jitter-factor", "a lot", "is not a number"},
      {"metrics.reporter.prom.port", "9260-9249", "is an empty port range"},
      {"metrics.reporter.prom.port", "9249-", "is not a port or port range"},
      {"metrics.reporter.prom.port", "prometheus", "is not a port or port range"},
      {"rootLogger.level", "LOUD", "is not one of TRACE, DEBUG, INFO, WARN, ERROR"},
      {"logger.checkpoint.level", "chatty", "is not one of TRACE"},
  };
  for (const Case& c : cases) {
    Status s = internal::CheckConfigEntry(c.key, c.value);
    ASSERT_FALSE(s.IsOk()) << c.key << " = '" << c.value << "' was accepted";
    std::string prefix = std::string(c.key) + ": '" + c.value + "' ";
    EXPECT_EQ(s.Message().rfind(prefix, 0), 0u) << s.Message();
    EXPECT_NE(s.Message().find(c.expected), std::string::npos) << s.Message();
  }
}

TEST(ConfigOptionsTest, WellFormedValuesOfEveryTypeAreAccepted) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      {"rest.port", "0"},
      {"rest.port", "65535"},
      {"taskmanager.numberOfTaskSlots", "64"},
      {"heartbeat.interval", "500ms"},
      {"heartbeat.timeout", "1 min"},
      {"heartbeat.timeout", "60000"},
      {"state.backend.rocksdb.memory.fixed-per-slot", "64 mb"},
      // Flink's default configuration file sizes the processes like this.
      {"jobmanager.memory.process.size", "1600m"},
      {"taskmanager.memory.process.size", "1728m"},
      {"taskmanager.memory.flink.size", "1280 mb"},
      {"state.backend.type", "ROCKSDB"},
      {"restart-strategy", "fixed-delay"},
      {"metrics.reporter.prom.port", "9249"},
      {"metrics.reporter.prom.port", "9249-9260"},
      {"rootLogger.level", "warn"},
      {"logger.org.example.level", "Debug"},
      {"execution.buffer-timeout", "-1"},
      {"restart-strategy.exponential-delay.backoff-multiplier", "1.5"},
  };
  for (const auto& [key, value] : cases) {
    Status s = internal::CheckConfigEntry(key, value);
    EXPECT_TRUE(s.IsOk()) << key << " = '" << value << "': " << s.ToString();
  }
}

TEST(ConfigOptionsTest, RegistryHasEachKeyOnceWithValidDefaults) {
  std::set<std::string_view> seen;
  for (const internal::ConfigOption& option : internal::AllConfigOptions()) {
    EXPECT_TRUE(seen.insert(option.key).second) << "registered twice: " << option.key;
    EXPECT_FALSE(option.description.empty()) << option.key;
    EXPECT_TRUE(internal::IsOwnedKey(option.key)) << option.key << " is outside the owned families";
    if (option.default_value.empty()) continue;
    Status s = internal::CheckOptionValue(option, std::string(option.key), std::string(option.default_value));
    EXPECT_TRUE(s.IsOk()) << s.ToString();
  }
  for (const char* key : {"jobmanager.rpc.address", "jobmanager.rpc.port", "jobmanager.bind-host", "rest.address",
                          "rest.port", "rest.bind-address", "taskmanager.numberOfTaskSlots", "taskmanager.host",
                          "taskmanager.bind-host", "taskmanager.rpc.port", "taskmanager.data.port",
                          "taskmanager.resource-id", "heartbeat.interval", "heartbeat.timeout",
                          "parallelism.default", "env.log.dir", "web.upload.dir", "blob.storage.directory",
                          "metrics.reporter.prom.port", "metrics.reporter.prom.host", "rootLogger.level",
                          "logger.anything.level"}) {
    EXPECT_NE(internal::FindConfigOption(key), nullptr) << key;
  }
  EXPECT_EQ(internal::FindConfigOption("logger..level"), nullptr);
  EXPECT_EQ(internal::FindConfigOption("myjob.key"), nullptr);
}

// The registered defaults of the job keys are what ExecutionOptions holds
// by default, so a file spelling out every default changes nothing.
TEST(ConfigOptionsTest, JobKeyDefaultsMatchExecutionOptions) {
  Configuration defaults;
  for (const internal::ConfigOption& option : internal::AllConfigOptions()) {
    if (!option.default_value.empty() && option.key.find('*') == std::string_view::npos) {
      defaults.Set(std::string(option.key), std::string(option.default_value));
    }
  }
  ExecutionOptions applied;
  Status s = defaults.ApplyTo(applied);
  ASSERT_TRUE(s.IsOk()) << s.ToString();
  ExecutionOptions expected;
  EXPECT_EQ(applied.parallelism, expected.parallelism);
  EXPECT_EQ(applied.max_parallelism, expected.max_parallelism);
  EXPECT_EQ(applied.buffer_timeout_ms, expected.buffer_timeout_ms);
  EXPECT_EQ(applied.chaining_enabled, expected.chaining_enabled);
  EXPECT_EQ(applied.segment_size, expected.segment_size);
  EXPECT_EQ(applied.buffers_per_channel, expected.buffers_per_channel);
  EXPECT_EQ(applied.floating_buffers, expected.floating_buffers);
  EXPECT_EQ(applied.auto_watermark_interval_ms, expected.auto_watermark_interval_ms);
  EXPECT_EQ(applied.checkpoint.interval_ms, expected.checkpoint.interval_ms);
  EXPECT_EQ(applied.checkpoint.timeout_ms, expected.checkpoint.timeout_ms);
  EXPECT_EQ(applied.checkpoint.max_concurrent, expected.checkpoint.max_concurrent);
  EXPECT_EQ(applied.checkpoint.num_retained, expected.checkpoint.num_retained);
  EXPECT_EQ(applied.checkpoint.retain_on_cancellation, expected.checkpoint.retain_on_cancellation);
  EXPECT_EQ(applied.restart.fixed_delay_attempts, expected.restart.fixed_delay_attempts);
  EXPECT_EQ(applied.restart.fixed_delay_ms, expected.restart.fixed_delay_ms);
  EXPECT_EQ(applied.restart.failure_rate_interval_ms, expected.restart.failure_rate_interval_ms);
  EXPECT_EQ(applied.restart.exponential_max_backoff_ms, expected.restart.exponential_max_backoff_ms);
  EXPECT_EQ(applied.restart.exponential_multiplier, expected.restart.exponential_multiplier);
  EXPECT_EQ(applied.restart.exponential_reset_threshold_ms, expected.restart.exponential_reset_threshold_ms);
  EXPECT_EQ(applied.restart.exponential_jitter, expected.restart.exponential_jitter);
  EXPECT_EQ(applied.restart.exponential_attempts, expected.restart.exponential_attempts);
  EXPECT_EQ(applied.state_backend.type, expected.state_backend.type);
  EXPECT_EQ(applied.state_backend.rocksdb_memory_per_slot, expected.state_backend.rocksdb_memory_per_slot);
  EXPECT_EQ(applied.state_backend.rocksdb_timers, expected.state_backend.rocksdb_timers);

  Result<ClusterOptions> from_defaults = ClusterOptions::From(defaults);
  Result<ClusterOptions> from_empty = ClusterOptions::From(Configuration());
  ASSERT_TRUE(from_defaults.IsOk()) << from_defaults.GetStatus().ToString();
  ASSERT_TRUE(from_empty.IsOk()) << from_empty.GetStatus().ToString();
  EXPECT_EQ(from_defaults->rest_port, from_empty->rest_port);
  EXPECT_EQ(from_defaults->heartbeat_timeout, from_empty->heartbeat_timeout);
  EXPECT_EQ(from_defaults->prometheus_ports, from_empty->prometheus_ports);
}

TEST_F(ConfigFileTest, NestedJobKeysApplyToExecutionOptions) {
  Result<Configuration> conf = Load(
      "execution:\n"
      "  checkpointing:\n"
      "    interval: 10 s\n"
      "    mode: AT_LEAST_ONCE\n"
      "state:\n"
      "  checkpoints.dir: /tmp/freshet-checkpoints\n"
      "  backend:\n"
      "    type: rocksdb\n"
      "    rocksdb.memory.fixed-per-slot: 64 mb\n"
      "restart-strategy:\n"
      "  type: fixed-delay\n"
      "  fixed-delay: {attempts: 3, delay: 2 s}\n"
      "parallelism.default: 3\n");
  ASSERT_TRUE(conf.IsOk()) << conf.GetStatus().ToString();
  ExecutionOptions options;
  Status s = conf->ApplyTo(options);
  ASSERT_TRUE(s.IsOk()) << s.ToString();
  EXPECT_EQ(options.checkpoint.interval_ms, 10'000);
  EXPECT_EQ(options.checkpoint.mode, CheckpointingMode::kAtLeastOnce);
  EXPECT_EQ(options.checkpoint.directory, "/tmp/freshet-checkpoints");
  EXPECT_EQ(options.state_backend.type, StateBackendOptions::Type::kRocksDB);
  EXPECT_EQ(options.state_backend.rocksdb_memory_per_slot, uint64_t{64} << 20);
  EXPECT_EQ(options.restart.kind, RestartStrategyOptions::Kind::kFixedDelay);
  EXPECT_EQ(options.restart.fixed_delay_attempts, 3);
  EXPECT_EQ(options.restart.fixed_delay_ms, 2'000);
  EXPECT_EQ(options.parallelism, 3);
}

TEST(ConfigOptionsTest, SuggestionsComeFromExactKeysAndPatterns) {
  EXPECT_EQ(internal::SuggestKeys("jobmanager.rpc.prot"), std::vector<std::string>{"jobmanager.rpc.port"});
  EXPECT_EQ(internal::SuggestKeys("heartbeat.timout"), std::vector<std::string>{"heartbeat.timeout"});
  EXPECT_EQ(internal::SuggestKeys("logger.checkpoint.levle"), std::vector<std::string>{"logger.checkpoint.level"});
  EXPECT_TRUE(internal::SuggestKeys("rest.xyzzy").empty());
  Status s = internal::CheckConfigEntry("logger.checkpoint.levle", "DEBUG");
  EXPECT_EQ(s.Message(), "unknown key 'logger.checkpoint.levle' (did you mean 'logger.checkpoint.level'?)");
}

TEST(ConfigOptionsTest, OwnedFamiliesAreRecognisedWithoutCase) {
  for (const char* key : {"jobmanager.x", "TaskManager.x", "rest", "rest.x", "heartbeat.x", "parallelism.x",
                          "pipeline.x", "execution.x", "state.x", "restart-strategy.x", "metrics.x", "env.x",
                          "logger.x", "rootlogger.x", "web.x", "blob.x"}) {
    EXPECT_TRUE(internal::IsOwnedKey(key)) << key;
  }
  for (const char* key : {"myjob.x", "restaurant.port", "statement", "kafka.rest.port", "webhook.url"}) {
    EXPECT_FALSE(internal::IsOwnedKey(key)) << key;
  }
}

TEST_F(ConfigFileTest, DynamicPropertiesOverrideTheFileWhichOverridesDefaults) {
  Result<Configuration> loaded = Load("rest.port: 9000\ntaskmanager.numberOfTaskSlots: 4\n");
  ASSERT_TRUE(loaded.IsOk()) << loaded.GetStatus().ToString();
  Configuration conf = *loaded;
  ASSERT_TRUE(ApplyDynamicProperty(conf, "rest.port=9100").IsOk());
  ASSERT_TRUE(ApplyDynamicProperty(conf, "myjob.filter=a=b").IsOk());
  ASSERT_TRUE(ApplyDynamicProperty(conf, "heartbeat.interval=1 s").IsOk());
  Result<ClusterOptions> options = ClusterOptions::From(conf);
  ASSERT_TRUE(options.IsOk()) << options.GetStatus().ToString();
  EXPECT_EQ(options->rest_port, 9100);                                // -D over the file
  EXPECT_EQ(options->task_slots, 4);                                  // the file over the default
  EXPECT_EQ(options->jobmanager_rpc_port, 6123);                      // the default
  EXPECT_EQ(options->heartbeat_interval, std::chrono::seconds(1));    // -D over the default
  EXPECT_EQ(conf.Get("myjob.filter"), "a=b");  // the value is everything after the first '='
}

TEST(DynamicPropertyTest, MalformedArgumentsAreRejectedNamingTheArgument) {
  Configuration conf;
  conf.Set("rest.port", "8081");
  struct Case {
    const char* arg;
    const char* expected;
  };
  for (const Case& c : std::vector<Case>{
           {"rest.port", "-D 'rest.port': expected key=value (e.g. -D rest.port=8081)"},
           {"rest.port: 9000", "-D 'rest.port: 9000': expected key=value (e.g. -D rest.port=8081)"},
           {"=9000", "-D '=9000': the key before '=' is empty"},
           {"rest.port =9000", "-D 'rest.port =9000': the key 'rest.port ' contains white space"},
           {"rest.port=eighty", "-D rest.port=eighty: rest.port: 'eighty' is not a port number (0-65535)"},
           {"rest.prot=9000", "-D rest.prot=9000: unknown key 'rest.prot' (did you mean 'rest.port'?)"},
       }) {
    Status s = ApplyDynamicProperty(conf, c.arg);
    EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument) << c.arg;
    EXPECT_EQ(s.Message(), c.expected);
  }
  // A rejected argument leaves the configuration as it was.
  EXPECT_EQ(conf.Values().size(), 1u);
  EXPECT_EQ(conf.Get("rest.port"), "8081");
}

TEST(DynamicPropertyTest, ValidateConfigurationPrefixesTheOrigin) {
  Configuration conf;
  conf.Set("myjob.anything", "goes").Set("heartbeat.interval", "soon");
  Status s = ValidateConfiguration(conf, "-D");
  EXPECT_EQ(s.Message().rfind("-D: heartbeat.interval: 'soon' is not a duration", 0), 0u) << s.Message();
  conf.Set("heartbeat.interval", "3 s");
  EXPECT_TRUE(ValidateConfiguration(conf, "-D").IsOk());
  conf.Set("blob.storage.directroy", "/tmp/x");
  EXPECT_EQ(ValidateConfiguration(conf, "-D").Message(),
            "-D: unknown key 'blob.storage.directroy' (did you mean 'blob.storage.directory'?)");
}

TEST(ClusterOptionsTest, DefaultsAreFlinksWithLoopbackBindAddresses) {
  Result<ClusterOptions> o = ClusterOptions::From(Configuration());
  ASSERT_TRUE(o.IsOk()) << o.GetStatus().ToString();
  EXPECT_EQ(o->jobmanager_rpc_address, "localhost");
  EXPECT_EQ(o->jobmanager_rpc_port, 6123);
  EXPECT_EQ(o->jobmanager_bind_host, "127.0.0.1");
  EXPECT_EQ(o->rest_address, "localhost");
  EXPECT_EQ(o->rest_port, 8081);
  EXPECT_EQ(o->rest_bind_address, "127.0.0.1");
  EXPECT_EQ(o->task_slots, 1);
  EXPECT_EQ(o->taskmanager_bind_host, "127.0.0.1");
  EXPECT_EQ(o->taskmanager_rpc_port, 0);
  EXPECT_EQ(o->taskmanager_data_port, 0);
  EXPECT_EQ(o->taskmanager_resource_id, "");
  EXPECT_EQ(o->heartbeat_interval, std::chrono::seconds(10));
  EXPECT_EQ(o->heartbeat_timeout, std::chrono::seconds(50));
  EXPECT_EQ(o->log_dir, "./log");
  EXPECT_EQ(o->prometheus_ports, (internal::PortRange{9249, 9260}));
  EXPECT_EQ(o->prometheus_host, "127.0.0.1");
}

TEST(ClusterOptionsTest, ReadsEveryKey) {
  Configuration conf;
  conf.Set("jobmanager.rpc.address", "jm")
      .Set("jobmanager.rpc.port", "7123")
      .Set("jobmanager.bind-host", "0.0.0.0")
      .Set("rest.address", "web")
      .Set("rest.port", "0")
      .Set("rest.bind-address", "0.0.0.0")
      .Set("taskmanager.numberOfTaskSlots", "8")
      .Set("taskmanager.host", "tm1")
      .Set("taskmanager.bind-host", "10.1.2.3")
      .Set("taskmanager.rpc.port", "7001")
      .Set("taskmanager.data.port", "7002")
      .Set("taskmanager.resource-id", "tm-1")
      .Set("heartbeat.interval", "1 s")
      .Set("heartbeat.timeout", "1 min")
      .Set("env.log.dir", "/var/log/freshet")
      .Set("web.upload.dir", "/srv/uploads")
      .Set("blob.storage.directory", "/srv/blobs")
      .Set("metrics.reporter.prom.port", "9300")
      .Set("metrics.reporter.prom.host", "0.0.0.0");
  Result<ClusterOptions> o = ClusterOptions::From(conf);
  ASSERT_TRUE(o.IsOk()) << o.GetStatus().ToString();
  EXPECT_EQ(o->jobmanager_rpc_address, "jm");
  EXPECT_EQ(o->jobmanager_rpc_port, 7123);
  EXPECT_EQ(o->jobmanager_bind_host, "0.0.0.0");
  EXPECT_EQ(o->rest_address, "web");
  EXPECT_EQ(o->rest_port, 0);
  EXPECT_EQ(o->rest_bind_address, "0.0.0.0");
  EXPECT_EQ(o->task_slots, 8);
  EXPECT_EQ(o->taskmanager_host, "tm1");
  EXPECT_EQ(o->taskmanager_bind_host, "10.1.2.3");
  EXPECT_EQ(o->taskmanager_rpc_port, 7001);
  EXPECT_EQ(o->taskmanager_data_port, 7002);
  EXPECT_EQ(o->taskmanager_resource_id, "tm-1");
  EXPECT_EQ(o->heartbeat_interval, std::chrono::seconds(1));
  EXPECT_EQ(o->heartbeat_timeout, std::chrono::minutes(1));
  EXPECT_EQ(o->log_dir, "/var/log/freshet");
  EXPECT_EQ(o->upload_dir, "/srv/uploads");
  EXPECT_EQ(o->blob_dir, "/srv/blobs");
  EXPECT_EQ(o->prometheus_ports, (internal::PortRange{9300, 9300}));
  EXPECT_EQ(o->prometheus_host, "0.0.0.0");
}

TEST(ClusterOptionsTest, CrossKeyRulesNameTheKeys) {
  struct Case {
    std::vector<std::pair<const char*, const char*>> settings;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {{{"heartbeat.interval", "10 s"}, {"heartbeat.timeout", "10 s"}},
       "heartbeat.timeout (10000 ms) must exceed heartbeat.interval (10000 ms)"},
      {{{"heartbeat.timeout", "5 s"}}, "heartbeat.timeout (5000 ms) must exceed heartbeat.interval (10000 ms)"},
      {{{"heartbeat.interval", "0"}}, "heartbeat.interval must be positive, got 0 ms"},
      {{{"heartbeat.interval", "-5 s"}}, "heartbeat.interval must be positive, got -5000 ms"},
      {{{"rest.port", "6123"}}, "jobmanager.rpc.port and rest.port are both 6123"},
      {{{"taskmanager.rpc.port", "7000"}, {"taskmanager.data.port", "7000"}},
       "taskmanager.rpc.port and taskmanager.data.port are both 7000"},
      {{{"metrics.reporter.prom.port", "8081"}},
       "metrics.reporter.prom.port (8081) holds only ports taken by jobmanager.rpc.port or rest.port"},
      {{{"rest.address", ""}}, "rest.address must not be empty"},
      {{{"jobmanager.rpc.address", ""}}, "jobmanager.rpc.address must not be empty"},
      {{{"taskmanager.numberOfTaskSlots", "0"}}, "taskmanager.numberOfTaskSlots: '0' is out of range (at least 1)"},
      {{{"rest.port", "http"}}, "rest.port: 'http' is not a port number (0-65535)"},
      {{{"heartbeat.interval", "often"}}, "heartbeat.interval: 'often' is not a duration"},
      {{{"taskmanager.slots", "2"}}, "unknown key 'taskmanager.slots'"},
  };
  for (const Case& c : cases) {
    Configuration conf;
    for (const auto& [key, value] : c.settings) conf.Set(key, value);
    Result<ClusterOptions> o = ClusterOptions::From(conf);
    ASSERT_FALSE(o.IsOk()) << c.expected;
    EXPECT_EQ(o.GetStatus().Code(), StatusCode::kInvalidArgument);
    EXPECT_NE(o.GetStatus().Message().find(c.expected), std::string::npos) << o.GetStatus().Message();
  }
  // Port 0 (any free port) on both ends is no clash.
  Configuration any_ports;
  any_ports.Set("jobmanager.rpc.port", "0").Set("rest.port", "0");
  any_ports.Set("taskmanager.rpc.port", "0").Set("taskmanager.data.port", "0");
  EXPECT_TRUE(ClusterOptions::From(any_ports).IsOk());
  // A range that still has a free port is fine.
  Configuration range;
  range.Set("metrics.reporter.prom.port", "8081-8082");
  EXPECT_TRUE(ClusterOptions::From(range).IsOk());
}

TEST(ShippedConfigurationTest, ConfFreshetYamlLoadsAndHoldsTheDefaults) {
  std::string path = ShippedConfDir() + "/freshet.yaml";
  Result<Configuration> conf = LoadConfigurationFile(path);
  ASSERT_TRUE(conf.IsOk()) << conf.GetStatus().ToString();
  // Every active key of the shipped file is a registered key at its default.
  for (const auto& [key, value] : conf->Values()) {
    const internal::ConfigOption* option = internal::FindConfigOption(key);
    ASSERT_NE(option, nullptr) << key;
    EXPECT_EQ(value, option->default_value) << key;
  }
  EXPECT_GE(conf->Values().size(), 15u);
  Result<ClusterOptions> options = ClusterOptions::From(*conf);
  ASSERT_TRUE(options.IsOk()) << options.GetStatus().ToString();
  EXPECT_EQ(options->rest_bind_address, "127.0.0.1");
  EXPECT_EQ(options->jobmanager_bind_host, "127.0.0.1");
  EXPECT_EQ(options->taskmanager_bind_host, "127.0.0.1");
  EXPECT_EQ(options->prometheus_host, "127.0.0.1");
  ExecutionOptions job;
  EXPECT_TRUE(conf->ApplyTo(job).IsOk());

  EXPECT_EQ(test_support::ReadFile(ShippedConfDir() + "/workers"), "localhost\n");
}

}  // namespace
}  // namespace freshet
