// A memory cgroup a test creates with a hard limit (cgroup v2, or v1's
// memory controller where that is what the machine has): the OOM test runs
// the example into its limit, the capture test reads the limit from outside.
// Needs root; create() says why not otherwise.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace leakscope::testing {

// A memory cgroup of the test with a hard limit and no swap, removed by the
// destructor (after killing whatever is still in it), also when an assertion
// ends the test early.
class MemoryCgroup {
 public:
  // Null with the reason in `why` when this machine cannot give one.
  static std::unique_ptr<MemoryCgroup> create(std::uint64_t limit, std::string& why);
  ~MemoryCgroup();
  MemoryCgroup(const MemoryCgroup&) = delete;
  MemoryCgroup& operator=(const MemoryCgroup&) = delete;

  const std::string& dir() const { return dir_; }
  bool v2() const { return v2_; }
  // The kernel's count of OOM kills in this cgroup (v2 memory.events, v1
  // memory.oom_control).
  std::uint64_t oomKills() const;

 private:
  MemoryCgroup(std::string dir, bool v2) : dir_(std::move(dir)), v2_(v2) {}
  bool limit(std::uint64_t bytes, std::string& why) const;
  std::vector<int> pids() const;

  std::string dir_;
  bool v2_;
};

}  // namespace leakscope::testing
