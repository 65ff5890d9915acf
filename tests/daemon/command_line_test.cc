// pushdaemon's and pushdaemon-admin's command lines (CLI11): what is not a
// flag they know is a usage error, exit 2 and one line, before any database
// is touched; --section.key=value flags still reach the configuration.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "test_support.h"

namespace {

using leakscope::testing::Child;

struct CmdRun {
  int status = -1;
  std::string out, err;
};

CmdRun run(const std::string& binary, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {std::string(LEAKSCOPE_BIN_DIR) + "/" + binary};
  argv.insert(argv.end(), args.begin(), args.end());
  Child c(argv);
  CmdRun r;
  r.status = c.wait(10000);
  r.out = c.out();
  r.err = c.err();
  return r;
}

void expectUsageError(const CmdRun& r, const std::string& prefix, const std::string& says) {
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(r.err.rfind(prefix + ": ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(PushDaemonCommandLine, UnknownArgumentsAndMissingValuesExit2OnOneLine) {
  expectUsageError(run("pushdaemon", {"--bogus"}), "pushdaemon", "unknown argument '--bogus'");
  expectUsageError(run("pushdaemon", {"-x"}), "pushdaemon", "unknown argument '-x'");
  expectUsageError(run("pushdaemon", {"stray"}), "pushdaemon", "unknown argument 'stray'");
  expectUsageError(run("pushdaemon", {"--config"}), "pushdaemon", "--config");
}

TEST(PushDaemonCommandLine, SectionKeyFlagsReachTheConfiguration) {
  const CmdRun ok = run("pushdaemon", {"--check-config", "--database.host=db1", "--leak-drill"});
  EXPECT_EQ(ok.status, 0) << ok.err;
  EXPECT_EQ(ok.out, "config ok\n");
  // Checked against the keys by the configuration, as before.
  const CmdRun bad = run("pushdaemon", {"--check-config", "--database.port=abc"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("flag --database.port"), std::string::npos) << bad.err;
  const CmdRun config = run("pushdaemon", {"--check-config", "--config=/nonexistent/p.toml"});
  EXPECT_EQ(config.status, 2);
  EXPECT_NE(config.err.find("/nonexistent/p.toml: cannot open"), std::string::npos) << config.err;
}

TEST(PushDaemonCommandLine, HelpAndVersion) {
  const CmdRun help = run("pushdaemon", {"--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_EQ(help.out.rfind("usage: pushdaemon [--config FILE]", 0), 0u) << help.out;
  EXPECT_NE(help.out.find("--leak-drill"), std::string::npos);
  EXPECT_EQ(run("pushdaemon", {"-h"}).out, help.out);
  const CmdRun version = run("pushdaemon", {"--version"});
  EXPECT_EQ(version.status, 0);
  EXPECT_EQ(version.out.rfind("pushdaemon ", 0), 0u) << version.out;
}

// Port 1 on 127.0.0.1 refuses: a command line that got as far as connecting
// would fail with exit 1, so exit 2 shows it was refused before that.
TEST(AdminCommandLine, UsageErrorsExit2BeforeConnecting) {
  const std::string db = "--database.port=1";
  expectUsageError(run("pushdaemon-admin", {db}), "pushdaemon-admin", "no command");
  expectUsageError(run("pushdaemon-admin", {db, "frobnicate"}), "pushdaemon-admin",
                   "unknown command 'frobnicate'");
  expectUsageError(run("pushdaemon-admin", {db, "status"}), "pushdaemon-admin", "SCHEDULE_ID");
  expectUsageError(run("pushdaemon-admin", {db, "status", "x"}), "pushdaemon-admin", "SCHEDULE_ID");
  expectUsageError(run("pushdaemon-admin", {db, "status", "1", "2"}), "pushdaemon-admin",
                   "unexpected argument '2'");
  expectUsageError(run("pushdaemon-admin", {db, "add-app", "game", "--bogus", "v"}),
                   "pushdaemon-admin", "'--bogus'");
  expectUsageError(run("pushdaemon-admin", {db, "add-schedule", "1", "p.json", "--in", "soon"}),
                   "pushdaemon-admin", "--in");
  expectUsageError(run("pushdaemon-admin", {"--config"}), "pushdaemon-admin", "--config");
}

TEST(AdminCommandLine, FlagsAnywhereReachTheConnection) {
  // Before and after the command: both reach the connection (and fail there).
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--database.port=1", "status", "1"}, {"status", "1", "--database.port=1"}}) {
    const CmdRun r = run("pushdaemon-admin", args);
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("127.0.0.1:1/"), std::string::npos) << r.err;
  }
}

TEST(AdminCommandLine, HelpListsTheCommands) {
  const CmdRun help = run("pushdaemon-admin", {"--help"});
  EXPECT_EQ(help.status, 0);
  for (const char* cmd :
       {"migrate", "add-app", "load-tokens", "generate-tokens", "add-schedule", "status"}) {
    EXPECT_NE(help.out.find(cmd), std::string::npos) << cmd;
  }
  const CmdRun status = run("pushdaemon-admin", {"status", "--help"});
  EXPECT_EQ(status.status, 0);
  EXPECT_NE(status.out.find("SCHEDULE_ID"), std::string::npos) << status.out;
}

// What an engineer types first, with no database reachable (port 1
// refuses): nothing here may get as far as a connection. A connection
// error names the database ("database 127.0.0.1:1/pushdaemon: Can't
// connect ...").
void expectNoConnection(const CmdRun& r) {
  for (const std::string& s : {r.out, r.err}) {
    EXPECT_EQ(s.find("127.0.0.1:1"), std::string::npos) << s;
    EXPECT_EQ(s.find("Can't connect"), std::string::npos) << s;
  }
}

TEST(AdminCommandLine, HelpDashHAndHelpCommandListEveryCommandOnOneLineWithoutADatabase) {
  const std::string db = "--database.port=1";
  const CmdRun help = run("pushdaemon-admin", {db, "--help"});
  EXPECT_EQ(help.status, 0) << help.err;
  EXPECT_EQ(help.err, "");
  expectNoConnection(help);
  EXPECT_EQ(help.out.rfind("usage: pushdaemon-admin ", 0), 0u) << help.out;
  // One line per command, with its operands.
  for (const char* line : {"\n  migrate ", "\n  add-app NAME ", "\n  load-tokens APP_ID FILE ",
                           "\n  generate-tokens APP_ID PLATFORM COUNT [PREFIX] ",
                           "\n  add-schedule APP_ID PAYLOAD_FILE [--in S] ",
                           "\n  status SCHEDULE_ID ", "\n  help [COMMAND] "}) {
    EXPECT_NE(help.out.find(line), std::string::npos) << line << "\n" << help.out;
  }
  for (const std::vector<std::string>& same :
       {std::vector<std::string>{db, "-h"}, {db, "help"}, {"help", db}}) {
    const CmdRun r = run("pushdaemon-admin", same);
    EXPECT_EQ(r.status, 0) << same.back() << ": " << r.err;
    EXPECT_EQ(r.out, help.out) << same.back();
    expectNoConnection(r);
  }
  const CmdRun one = run("pushdaemon-admin", {db, "help", "status"});
  EXPECT_EQ(one.status, 0) << one.err;
  EXPECT_NE(one.out.find("Usage: pushdaemon-admin status [OPTIONS] SCHEDULE_ID"), std::string::npos)
      << one.out;
  expectNoConnection(one);
}

TEST(AdminCommandLine, BogusCommandsAndMissingIdsAreUsageErrorsWithoutADatabase) {
  const std::string db = "--database.port=1";
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{db, "bogus"}, {db, "status"}, {db, "help", "bogus"}}) {
    const CmdRun r = run("pushdaemon-admin", args);
    expectUsageError(
        r, "pushdaemon-admin",
        args.back() == "status" ? "SCHEDULE_ID is required" : "unknown command 'bogus'");
    expectNoConnection(r);
  }
}

}  // namespace
