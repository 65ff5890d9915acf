#include "leakscope/core/signal_names.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace leakscope::core {
namespace {

TEST(SignalNames, TakesNamesWithOrWithoutSigAndNumbers) {
  EXPECT_EQ(signalNumber("USR2"), SIGUSR2);
  EXPECT_EQ(signalNumber("SIGUSR2"), SIGUSR2);
  EXPECT_EQ(signalNumber("usr2"), SIGUSR2);
  EXPECT_EQ(signalNumber("SigTerm"), SIGTERM);
  EXPECT_EQ(signalNumber("12"), 12);
  EXPECT_EQ(signalNumber("HUP"), SIGHUP);
  EXPECT_EQ(signalNumber("RTMIN+3"), SIGRTMIN + 3);
  EXPECT_EQ(signalNumber("sigrtmax-1"), SIGRTMAX - 1);
  EXPECT_EQ(signalNumber("RTMIN"), SIGRTMIN);
}

TEST(SignalNames, RefusesWhatIsNoSignal) {
  EXPECT_EQ(signalNumber(""), std::nullopt);
  EXPECT_EQ(signalNumber("SIG"), std::nullopt);
  EXPECT_EQ(signalNumber("FOO"), std::nullopt);
  EXPECT_EQ(signalNumber("0"), std::nullopt);  // only tests for a process
  EXPECT_EQ(signalNumber("-1"), std::nullopt);
  EXPECT_EQ(signalNumber("65"), std::nullopt);
  EXPECT_EQ(signalNumber("USR2 "), std::nullopt);
  EXPECT_EQ(signalNumber("RTMIN+999"), std::nullopt);
  EXPECT_EQ(signalNumber("RTMIN3"), std::nullopt);
}

TEST(SignalNames, SpellsThemForMessages) {
  EXPECT_EQ(signalName(SIGUSR2), "SIGUSR2");
  EXPECT_EQ(signalName(SIGRTMIN + 1), "SIGRTMIN+1");
  EXPECT_EQ(signalName(SIGRTMIN), "SIGRTMIN");
}

}  // namespace
}  // namespace leakscope::core
