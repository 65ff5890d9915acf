#include "leakscope/core/agent_env.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <string>

namespace leakscope::core {
namespace {

using std::chrono::milliseconds;

// An environment of its own, as readAgentSettings reads it.
struct Env {
  std::map<std::string, std::string> vars;
  Result<AgentSettings> read() const {
    return readAgentSettings([this](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    });
  }
};

TEST(AgentEnv, NothingSetGivesTheDefaults) {
  const auto s = Env{}.read();
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->snapshot_dir, "");
  EXPECT_EQ(s->signal, SIGUSR2);
  EXPECT_EQ(s->interval, milliseconds(0));
  EXPECT_EQ(s->metrics, "");
  EXPECT_EQ(s->heap, "sampled");
  EXPECT_EQ(s->keep, 0u);
  EXPECT_EQ(s->max_bytes, 0u);
  EXPECT_FALSE(s->follow_exec);
}

TEST(AgentEnv, ReadsEachVariable) {
  const auto s = Env{
      {{"LEAKSCOPE_SNAPSHOT_DIR", "/var/lib/x/snaps"},
       {"LEAKSCOPE_SIGNAL", "RTMIN+3"},
       {"LEAKSCOPE_INTERVAL", "5m"},
       {"LEAKSCOPE_METRICS", "127.0.0.1:9477"},
       {"LEAKSCOPE_HEAP", "full"},
       {"LEAKSCOPE_KEEP", "12"},
       {"LEAKSCOPE_MAX_BYTES", "1000000"},
       {"LEAKSCOPE_FOLLOW_EXEC",
        "1"}}}.read();
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->snapshot_dir, "/var/lib/x/snaps");
  EXPECT_EQ(s->signal, SIGRTMIN + 3);
  EXPECT_EQ(s->interval, milliseconds(300'000));
  EXPECT_EQ(s->metrics, "127.0.0.1:9477");
  EXPECT_EQ(s->heap, "full");
  EXPECT_EQ(s->keep, 12u);
  EXPECT_EQ(s->max_bytes, 1'000'000u);
  EXPECT_TRUE(s->follow_exec);
}

TEST(AgentEnv, EmptyKeepsTheDefaultAndOnlyOneFollowsExec) {
  const auto s = Env{
      {{"LEAKSCOPE_SIGNAL", ""},
       {"LEAKSCOPE_INTERVAL", ""},
       {"LEAKSCOPE_HEAP", ""},
       {"LEAKSCOPE_KEEP", ""},
       {"LEAKSCOPE_FOLLOW_EXEC",
        "yes"}}}.read();
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->signal, SIGUSR2);
  EXPECT_EQ(s->interval, milliseconds(0));
  EXPECT_EQ(s->heap, "sampled");
  EXPECT_EQ(s->keep, 0u);
  EXPECT_FALSE(s->follow_exec);
}

TEST(AgentEnv, ABadValueIsAnErrorNamingTheVariableAndTheValue) {
  struct Bad {
    const char* var;
    const char* value;
    const char* says;
  };
  for (const Bad& b : {Bad{"LEAKSCOPE_SIGNAL", "USR9", "not a signal name"},
                       Bad{"LEAKSCOPE_SIGNAL", "KILL", "cannot be a snapshot signal"},
                       Bad{"LEAKSCOPE_SIGNAL", "SEGV", "cannot be a snapshot signal"},
                       Bad{"LEAKSCOPE_INTERVAL", "soon", "expected a number with ms, s, m or h"},
                       Bad{"LEAKSCOPE_INTERVAL", "-5s", "expected a number with ms, s, m or h"},
                       Bad{"LEAKSCOPE_KEEP", "ten", "expected a whole number"},
                       Bad{"LEAKSCOPE_KEEP", "-1", "expected a whole number"},
                       Bad{"LEAKSCOPE_MAX_BYTES", "1e6", "expected a whole number"},
                       Bad{"LEAKSCOPE_MAX_BYTES", "12 ", "expected a whole number"}}) {
    const auto s = Env{{{"LEAKSCOPE_SNAPSHOT_DIR", "/x"}, {b.var, b.value}}}.read();
    ASSERT_FALSE(s.ok()) << b.var << "=" << b.value;
    const std::string& m = s.error().message;
    EXPECT_TRUE(m.starts_with(std::string(b.var))) << m;
    EXPECT_NE(m.find(std::string("'") + b.value + "'"), std::string::npos) << m;
    EXPECT_NE(m.find(b.says), std::string::npos) << m;
  }
}

TEST(AgentEnv, DurationsTakeEachUnit) {
  EXPECT_EQ(*parseDuration("0"), milliseconds(0));
  EXPECT_EQ(*parseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(*parseDuration("30s"), milliseconds(30'000));
  EXPECT_EQ(*parseDuration("5m"), milliseconds(300'000));
  EXPECT_EQ(*parseDuration("1h"), milliseconds(3'600'000));
  for (const char* bad : {"", "5", "s", "1.5s", "5 m", "1d", "99999999999999h"}) {
    EXPECT_FALSE(parseDuration(bad).ok()) << bad;
  }
}

// What `leakscope run` writes is what the agent reads back.
TEST(AgentEnv, SettingsSurviveTheRoundTripThroughTheEnvironment) {
  AgentSettings in;
  in.snapshot_dir = "/srv/snaps";
  in.signal = SIGRTMIN + 5;
  in.interval = milliseconds(1500);
  in.metrics = "[::1]:9000";
  in.heap = "off";
  in.keep = 7;
  in.max_bytes = 1u << 30;
  in.follow_exec = true;
  for (const AgentSettings& s : {in, AgentSettings{}}) {
    Env env;
    for (const std::string& kv : agentEnvironment(s)) {
      const std::size_t eq = kv.find('=');
      ASSERT_NE(eq, std::string::npos) << kv;
      ASSERT_TRUE(kv.starts_with("LEAKSCOPE_")) << kv;
      env.vars[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    const auto out = env.read();
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_EQ(out->snapshot_dir, s.snapshot_dir);
    EXPECT_EQ(out->signal, s.signal);
    EXPECT_EQ(out->interval, s.interval);
    EXPECT_EQ(out->metrics, s.metrics);
    EXPECT_EQ(out->heap, s.heap);
    EXPECT_EQ(out->keep, s.keep);
    EXPECT_EQ(out->max_bytes, s.max_bytes);
    EXPECT_EQ(out->follow_exec, s.follow_exec);
  }
}

}  // namespace
}  // namespace leakscope::core
