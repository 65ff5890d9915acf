// Captures (`leakscope capture PID`: a snapshot of a process's sockets, fds
// and memory from the outside) joined with V8 heap snapshots of the same
// process: the heap's socket objects next to the kernel's TCP sockets — "36
// TLSSocket alive in the heap, 36 ESTABLISHED sockets to 127.0.0.1:8443", the
// netstat step of a Node leak hunt, done for the user. Rules in
// docs/run-and-capture.md ("Joining captures with heap snapshots").
//
// JoinBuilder is fed the inputs of a series one at a time (any order) and
// keeps a few figures of each, never the snapshots. Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "leakscope/analysis/model.h"

namespace leakscope::analysis {

// A leakscope snapshot written by `leakscope capture` (trigger "capture").
bool isCapture(const Snapshot& s);

// The capture's TCP sockets of one group (remote name, as the socket view
// groups them) and state.
struct JoinSocketGroup {
  std::string name;
  std::string state;
  std::int64_t count = 0;
};

// One V8 heap snapshot and the capture of its pid nearest in time (to the
// second its Node file name gives, when it has one).
struct JoinPair {
  std::string heap_path;
  std::string capture_path;
  std::int64_t pid = 0;
  double seconds_apart = 0;  // capture time minus heap snapshot time (0 within its second)
  std::vector<HeapSocketClass> classes;  // socket objects by class, most first
  std::int64_t heap_connections = 0;     // distinct TCP handles they hold
  std::vector<JoinSocketGroup> groups;   // most sockets first
  std::int64_t kernel_connections = 0;   // the capture's TCP sockets, any state
  // "36 TLSSocket alive in the heap, 36 ESTABLISHED sockets to 127.0.0.1:8443"
  std::string line;
  // Where heap and kernel disagree, one sentence each.
  std::vector<std::string> disagreements;
};

struct JoinResult {
  std::vector<JoinPair> pairs;     // in the heap snapshots' time order
  std::vector<std::string> notes;  // heap snapshots that could not be paired, and why
};

class JoinBuilder {
 public:
  // Keeps what the join needs of a V8 heap snapshot or a capture; other
  // inputs are ignored.
  void add(const Snapshot& s);
  JoinResult finish() const;

 private:
  struct Heap {
    std::string path;
    std::int64_t pid = 0;
    std::int64_t taken_unix_ns = 0;
    std::int64_t resolution_ns = 0;  // its time is known to within this (a Node file name: 1 s)
    std::vector<HeapSocketClass> classes;
    std::int64_t tcp_handles = 0;
  };
  struct Capture {
    std::string path;
    std::int64_t pid = 0;
    std::int64_t taken_unix_ns = 0;
    std::string heap_file;  // the heap snapshot taken with it (trigger.heap_snapshot), if any
    std::vector<JoinSocketGroup> groups;
  };
  static std::int64_t distance(const Heap& h, const Capture& c);
  // The capture taken with `h` (it names h's file), else the nearest of its
  // pid that was not taken with another of the heap snapshots.
  const Capture* captureFor(const Heap& h, std::int64_t pid) const;
  const Capture* nearest(const Heap& h, std::int64_t pid) const;
  std::vector<Heap> heaps_;
  std::vector<Capture> captures_;
};

// "36 TLSSocket alive in the heap, 36 ESTABLISHED sockets to 127.0.0.1:8443"
std::string joinLine(const JoinPair& p);
// The sentences of JoinPair::disagreements.
std::vector<std::string> joinDisagreements(const JoinPair& p);

}  // namespace leakscope::analysis
