// The dashboard and the alert rules against a real Prometheus (Debian's
// `prometheus`) scraping a real pushdaemon (real MariaDB, the mock push
// server, one schedule sent over both platforms). The daemon's scrape itself
// passes `promtool check metrics`.
//
// Prometheus runs dashboards/prometheus.yml with three things replaced: the
// target (the daemon's real address), the intervals (1 s) and the rule
// file's path (absolute). Then, through /api/v1/query:
//  - every `targets[].expr` of dashboards/pushdaemon.json, with the template
//    variables replaced by concrete values, parses and returns data;
//  - every query variable's selector (`label_values(<selector>, <label>)`)
//    returns series carrying that label;
//  - every alert rule Prometheus loaded (read back from /api/v1/rules, so a
//    rule Prometheus refused would be missing): the whole expression parses,
//    and every operand of its top-level comparison and set operators
//    (`and`, `or`, `unless`, `==`, `!=`, `>`, `<`, `>=`, `<=`) returns data.
//    A healthy daemon makes the whole expression empty, so its operands are
//    what shows that every series the alert watches exists and matches
//    (dashboards/alerts.yml is written so that they do, see its header).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "daemon_test_support.h"
#include "gtest/gtest.h"

namespace leakscope::testing {
namespace {

const std::string kDashboards = LEAKSCOPE_DASHBOARDS_DIR;

std::string readAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Replaces the one occurrence of `what`; false if it is not there exactly once.
bool replaceOnce(std::string& text, const std::string& what, const std::string& with) {
  const std::size_t at = text.find(what);
  if (at == std::string::npos || text.find(what, at + 1) != std::string::npos) return false;
  text.replace(at, what.size(), with);
  return true;
}

std::string urlEncode(const std::string& s) {
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

bool identChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\n");
  return s.substr(b, e - b + 1);
}

// Binary-operator modifiers that may start a right-hand operand:
// `bool`, `on (...)`, `ignoring (...)`, `group_left [(...)]`, `group_right [(...)]`.
std::string stripModifiers(std::string s) {
  for (bool again = true; again;) {
    again = false;
    s = trim(s);
    for (const char* m : {"bool", "on", "ignoring", "group_left", "group_right"}) {
      const std::size_t n = std::strlen(m);
      if (s.compare(0, n, m) != 0 || (s.size() > n && identChar(s[n]))) continue;
      s = trim(s.substr(n));
      if (!s.empty() && s[0] == '(') s = s.substr(s.find(')') + 1);
      again = true;
      break;
    }
  }
  return s;
}

// Splits `expr` at its top-level (outside (), [], {} and strings) binary
// operators of one precedence class: the set operators, or the comparisons.
std::vector<std::string> splitTopLevel(const std::string& expr, bool set_ops) {
  std::vector<std::string> parts;
  int depth = 0;
  char quote = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < expr.size(); ++i) {
    const char c = expr[i];
    if (quote != 0) {
      if (c == '\\' && quote != '`') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
      continue;
    }
    if (c == '"' || c == '\'' || c == '`') {
      quote = c;
    } else if (c == '(' || c == '[' || c == '{') {
      ++depth;
    } else if (c == ')' || c == ']' || c == '}') {
      --depth;
    } else if (depth == 0) {
      std::size_t len = 0;
      if (set_ops) {
        for (const char* w : {"and", "or", "unless"}) {
          const std::size_t n = std::strlen(w);
          if (expr.compare(i, n, w) == 0 && (i == 0 || !identChar(expr[i - 1])) &&
              (i + n == expr.size() || !identChar(expr[i + n]))) {
            len = n;
          }
        }
      } else if ((c == '=' || c == '!' || c == '>' || c == '<') && i + 1 < expr.size() &&
                 expr[i + 1] == '=') {
        len = 2;
      } else if (c == '>' || c == '<') {
        len = 1;
      }
      if (len > 0) {
        parts.push_back(expr.substr(start, i - start));
        start = i + len;
        i += len - 1;
      }
    }
  }
  parts.push_back(expr.substr(start));
  return parts;
}

// The operands of the top-level set operators and comparisons, modifiers
// removed ("a > on (x) b and c >= 2" -> "a", "b", "c", "2").
std::vector<std::string> operands(const std::string& expr) {
  std::vector<std::string> out;
  for (const std::string& side : splitTopLevel(expr, true)) {
    for (const std::string& operand : splitTopLevel(stripModifiers(side), false)) {
      out.push_back(stripModifiers(operand));
    }
  }
  return out;
}

TEST(PromqlOperands, SplitsAtTopLevelComparisonsAndSetOperatorsOnly) {
  EXPECT_EQ(operands("up == 0"), (std::vector<std::string>{"up", "0"}));
  EXPECT_EQ(operands("a / b > 0.8"), (std::vector<std::string>{"a / b", "0.8"}));
  EXPECT_EQ(operands("sum by (i) (x{k=~\"a>b\"}) * 3600 >= 1\nand on (i, j)\ny >= 2"),
            (std::vector<std::string>{"sum by (i) (x{k=~\"a>b\"}) * 3600", "1", "y", "2"}));
  EXPECT_EQ(operands("(a or b) > on (i, p) group_left c"),
            (std::vector<std::string>{"(a or b)", "c"}));
  EXPECT_EQ(operands("x > bool 3 unless order"), (std::vector<std::string>{"x", "3", "order"}));
}

// Template variables of the dashboard, replaced the way Grafana would.
std::string substitute(std::string expr, const std::string& instance) {
  const std::vector<std::pair<std::string, std::string>> vars = {
      {"${__rate_interval}", "10s"}, {"$__rate_interval", "10s"}, {"${__interval}", "5s"},
      {"$__interval", "5s"},         {"${__range}", "1m"},        {"$__range", "1m"},
      {"${instance}", instance},     {"$instance", instance},     {"${job}", "pushdaemon"},
      {"$job", "pushdaemon"}};
  for (const auto& [name, value] : vars) {
    for (std::size_t at; (at = expr.find(name)) != std::string::npos;) {
      expr.replace(at, name.size(), value);
    }
  }
  return expr;
}

class Prometheus {
 public:
  // Starts /usr/bin/prometheus on 127.0.0.1 with `config`; ready() once it
  // answers /-/ready.
  Prometheus(const std::string& dir, const std::string& config) {
    // Prometheus cannot bind port 0: take a free port, and another if it was
    // taken in between.
    for (int attempt = 0; attempt < 3 && !ready_; ++attempt) {
      address_ = "127.0.0.1:" + std::to_string(freePort());
      child_ = std::make_unique<Child>(
          std::vector<std::string>{LEAKSCOPE_PROMETHEUS, "--config.file=" + config,
                                   "--storage.tsdb.path=" + dir + "/data" + std::to_string(attempt),
                                   "--web.listen-address=" + address_, "--log.level=warn"});
      ready_ =
          eventually([&] { return !child_->alive() || httpGet(address_, "/-/ready"); }, 20000) &&
          child_->alive();
    }
  }
  ~Prometheus() {
    if (child_) child_->terminate();
  }
  bool ready() const { return ready_; }
  std::string log() const { return child_ ? child_->err() + child_->out() : ""; }

  // GET /api/v1/<path>; the parsed answer, or null.
  nlohmann::json api(const std::string& path) const {
    auto body = httpGet(address_, "/api/v1/" + path);
    if (!body) return nullptr;
    return nlohmann::json::parse(*body, nullptr, false);
  }
  nlohmann::json query(const std::string& expr) const {
    return api("query?query=" + urlEncode(expr));
  }

 private:
  std::string address_;
  std::unique_ptr<Child> child_;
  bool ready_ = false;
};

bool hasData(const nlohmann::json& answer) {
  return answer.is_object() && answer.value("status", "") == "success" &&
         answer["data"]["result"].is_array() && !answer["data"]["result"].empty();
}

using DashboardsOnPrometheus = DaemonStackTest;

TEST_F(DashboardsOnPrometheus, EveryDashboardAndAlertExpressionReturnsDataFromARealScrape) {
  // A daemon that has sent one schedule over both platforms.
  const std::uint64_t app = createTestApp(*conn_, mock_, dir_.path() + "/app", "game");
  ASSERT_NE(app, 0u);
  insertTokens(*conn_, app, "apns", {deviceToken(1, "a0"), deviceToken(2, "a0")});
  insertTokens(*conn_, app, "fcm", {deviceToken(3, "f0"), deviceToken(4, "f0")});
  auto sid = pushdaemon::addSchedule(*conn_, app, bothPlatformsPayload(), -1);
  ASSERT_TRUE(sid.ok());
  DaemonProcess d(db_, mock_, dir_.path(),
                  {{"apns.max_connections", "3"}, {"fcm.max_connections", "2"}});
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_TRUE(waitForState(*conn_, *sid, "done")) << d.log();

  // The scrape Prometheus will read is clean for promtool, new gauges included.
  const std::string text = d.metrics();
  for (const char* family : {"pushdaemon_pool_max_connections", "leakscope_memory_limit_bytes"}) {
    EXPECT_NE(text.find(std::string("\n# TYPE ") + family + " gauge"), std::string::npos) << family;
  }
  const std::string scrape_file = dir_.path() + "/scrape.txt";
  std::ofstream(scrape_file) << text;
  Child promtool(
      {"/bin/sh", "-c", std::string(LEAKSCOPE_PROMTOOL) + " check metrics < " + scrape_file});
  EXPECT_EQ(promtool.wait(30000), 0) << promtool.out() << promtool.err();
  EXPECT_EQ(promtool.out() + promtool.err(), "") << "promtool lint findings";

  // dashboards/prometheus.yml aimed at this daemon.
  std::string config = readAll(kDashboards + "/prometheus.yml");
  ASSERT_TRUE(replaceOnce(config, "127.0.0.1:9477", d.http())) << config;
  ASSERT_TRUE(replaceOnce(config, "scrape_interval: 15s", "scrape_interval: 1s")) << config;
  ASSERT_TRUE(replaceOnce(config, "evaluation_interval: 15s", "evaluation_interval: 1s"));
  ASSERT_TRUE(replaceOnce(config, "- alerts.yml", "- " + kDashboards + "/alerts.yml"));
  const std::string config_file = dir_.path() + "/prometheus.yml";
  std::ofstream(config_file) << config;

  Prometheus prom(dir_.path(), config_file);
  ASSERT_TRUE(prom.ready()) << LEAKSCOPE_PROMETHEUS << " did not start:\n" << prom.log();
  // Samples: the target is up and scraped often enough for rate() and
  // deriv() (two samples in a window).
  ASSERT_TRUE(eventually(
      [&] {
        const auto a = prom.query("count_over_time(up{job=\"pushdaemon\"}[1m]) >= 3");
        return hasData(a) &&
               prom.query("up{job=\"pushdaemon\"} == 1")["data"]["result"].size() == 1;
      },
      30000))
      << prom.log();

  // ---- the dashboard -------------------------------------------------------
  const auto dash = nlohmann::json::parse(readAll(kDashboards + "/pushdaemon.json"));
  std::vector<std::pair<std::string, std::string>> exprs;  // panel title, expr
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& panels) {
    for (const auto& p : panels) {
      if (p.contains("panels")) walk(p["panels"]);
      for (const auto& t : p.value("targets", nlohmann::json::array())) {
        exprs.emplace_back(p.value("title", ""), t.value("expr", ""));
      }
    }
  };
  walk(dash["panels"]);
  ASSERT_GE(exprs.size(), 20u);
  const std::regex unreplaced(R"(\$[A-Za-z_{])");  // label_replace's "$1" is not a variable
  int checked = 0;
  for (const auto& [title, raw] : exprs) {
    const std::string expr = substitute(raw, d.http());
    EXPECT_FALSE(std::regex_search(expr, unreplaced)) << title << ": " << expr;
    nlohmann::json answer;
    // The series exist once scraped; a rate needs a second sample.
    const bool ok = eventually([&] { return hasData(answer = prom.query(expr)); }, 10000);
    EXPECT_TRUE(ok) << "panel '" << title << "': " << expr << "\n-> " << answer.dump();
    ++checked;
  }
  // Query variables: label_values(<selector>, <label>).
  const std::regex label_values(R"(^label_values\((.*),\s*(\w+)\)$)");
  int variables = 0;
  for (const auto& v : dash["templating"]["list"]) {
    if (v.value("type", "") != "query") continue;
    std::smatch m;
    const std::string def = v.value("definition", "");
    ASSERT_TRUE(std::regex_match(def, m, label_values)) << def;
    const auto answer = prom.query(substitute(m[1].str(), d.http()));
    ASSERT_TRUE(hasData(answer)) << def << " -> " << answer.dump();
    for (const auto& series : answer["data"]["result"]) {
      EXPECT_TRUE(series["metric"].contains(m[2].str())) << def << ": " << series.dump();
    }
    ++variables;
  }
  EXPECT_EQ(variables, 2);

  // ---- the alert rules, as Prometheus loaded them --------------------------
  const auto rules = prom.api("rules");
  ASSERT_EQ(rules.value("status", ""), "success") << rules.dump();
  std::set<std::string> names;
  int operand_count = 0;
  for (const auto& g : rules["data"]["groups"]) {
    for (const auto& r : g["rules"]) {
      if (r.value("type", "") != "alerting") continue;
      const std::string name = r["name"];
      names.insert(name);
      const std::string query = r["query"];
      std::string lower = name;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      EXPECT_EQ(r["annotations"].value("runbook_url", ""), "docs/runbook.md#" + lower) << name;
      EXPECT_FALSE(r["annotations"].value("summary", "").empty()) << name;
      EXPECT_FALSE(r["annotations"].value("description", "").empty()) << name;
      const auto whole = prom.query(query);
      EXPECT_EQ(whole.value("status", ""), "success") << name << ": " << query << whole.dump();
      ++checked;
      const auto parts = operands(query);
      EXPECT_GE(parts.size(), 2u) << name << ": not a comparison: " << query;
      for (const std::string& operand : parts) {
        nlohmann::json answer;
        const bool ok = eventually([&] { return hasData(answer = prom.query(operand)); }, 10000);
        EXPECT_TRUE(ok) << name << " operand: " << operand << "\n-> " << answer.dump();
        ++operand_count;
      }
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{"PushConnectionLeak", "PushConnectionsAbovePoolMax",
                                          "HeapGrowthWillHitMemoryLimit", "FdExhaustion",
                                          "CloseWaitAccumulating", "ScrapeDown"}));

  // The pool maximum is the managed clients' max_connections (one app), and
  // a healthy daemon keeps below it: that alert's expression is empty.
  auto value = [&](const std::string& expr) -> double {
    const auto a = prom.query(expr);
    if (!hasData(a)) return -1;
    return std::stod(a["data"]["result"][0]["value"][1].get<std::string>());
  };
  EXPECT_EQ(value("pushdaemon_pool_max_connections{platform=\"apns\"}"), 3);
  EXPECT_EQ(value("pushdaemon_pool_max_connections{platform=\"fcm\"}"), 2);
  for (const auto& g : rules["data"]["groups"]) {
    for (const auto& r : g["rules"]) {
      if (r.value("name", "") != "PushConnectionsAbovePoolMax") continue;
      const auto a = prom.query(r["query"].get<std::string>());
      EXPECT_TRUE(a["data"]["result"].empty()) << a.dump();
    }
  }
  std::cout << "checked " << checked << " expressions (" << exprs.size() << " dashboard, "
            << names.size() << " alerts) and " << operand_count << " alert operands, " << variables
            << " variable selectors\n";
  EXPECT_EQ(d.terminate(), 0);
}

// The gauge behind PushConnectionsAbovePoolMax follows the registry: the
// sum over the clients it manages, as they are made and replaced.
using PoolMaxGauge = DashboardsOnPrometheus;
TEST_F(PoolMaxGauge, IsTheSumOfMaxConnectionsOverTheManagedClients) {
  DaemonProcess d(db_, mock_, dir_.path(),
                  {{"apns.max_connections", "3"}, {"fcm.max_connections", "2"}});
  ASSERT_TRUE(d.start()) << d.log();
  // No client before the first schedule.
  EXPECT_EQ(d.metric(R"(pushdaemon_pool_max_connections{platform="apns"})"), 0.0);
  EXPECT_EQ(d.metric(R"(pushdaemon_pool_max_connections{platform="fcm"})"), 0.0);
  std::uint64_t n = 0;
  auto sendOne = [&](const std::string& name) {
    const std::uint64_t app = createTestApp(*conn_, mock_, dir_.path() + "/" + name, name);
    ASSERT_NE(app, 0u);
    insertTokens(*conn_, app, "apns", {deviceToken(++n, "a0")});
    insertTokens(*conn_, app, "fcm", {deviceToken(++n, "f0")});
    auto sid = pushdaemon::addSchedule(*conn_, app, bothPlatformsPayload(), -1);
    ASSERT_TRUE(sid.ok());
    ASSERT_TRUE(waitForState(*conn_, *sid, "done")) << d.log();
  };
  sendOne("game1");
  EXPECT_EQ(d.metric(R"(pushdaemon_pool_max_connections{platform="apns"})"), 3.0);
  EXPECT_EQ(d.metric(R"(pushdaemon_pool_max_connections{platform="fcm"})"), 2.0);
  sendOne("game2");  // a second app: a second client per platform
  EXPECT_EQ(d.metric(R"(pushdaemon_pool_max_connections{platform="apns"})"), 6.0);
  EXPECT_EQ(d.metric(R"(pushdaemon_pool_max_connections{platform="fcm"})"), 4.0);
  // A reload with a new APNs maximum replaces both APNs clients at once.
  d.writeConfig({{"apns.max_connections", "5"}});
  d.signal(SIGHUP);
  EXPECT_TRUE(eventually([&] {
    return d.metric(R"(pushdaemon_pool_max_connections{platform="apns"})") == 10.0;
  })) << d.log();
  EXPECT_EQ(d.metric(R"(pushdaemon_pool_max_connections{platform="fcm"})"), 4.0);
  EXPECT_EQ(d.metric(R"(pushdaemon_push_clients_replaced_total{platform="apns"})"), 2.0);
  EXPECT_EQ(d.terminate(), 0);
}

}  // namespace
}  // namespace leakscope::testing
