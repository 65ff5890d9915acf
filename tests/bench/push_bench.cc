// Throughput of the APNs client against mock-push-server (scripts/bench.sh
// transport). Sends N notifications (after a warm-up that opens the
// connections) through one ApnsClient with C connections and at most M
// concurrent streams each, the caller feeding it batches (sendMany) as fast
// as back-pressure allows, and prints key=value lines:
//   notifications_per_second  N / wall time
//   succeeded                 notifications answered 200
//   connections               connections the pool opened
//
//   push_bench --port P --ca CA (--apns-key P8 [--key-id ID] [--team-id ID] |
//                                 --client-cert PEM --client-key PEM)
//              [--connections C] [--streams M] [--requests N] [--warmup W]
//              [--no-instrument] [--payload FILE]
//   push_bench --apns-key P8 [--key-id ID] [--team-id ID] --print-provider-token
// With --client-cert the client uses APNs certificate auth (no per-request
// authorization header). --print-provider-token prints an ES256 provider
// token made from the key, for h2load's authorization header (the bench's
// throwaway key; a real one never goes on a command line).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>

#include "leakscope/push/apns.h"
#include "leakscope/push/jwt.h"

namespace push = leakscope::push;

namespace {

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "push_bench: " << why << "\n";
  std::exit(2);
}

// Sends `n` notifications in batches of `chunk` (sendMany: one hand-off per
// batch), keeping the client full; returns seconds taken.
double run(push::ApnsClient& client, const push::ApnsNotification& note, int n, int chunk,
           int max_outstanding, std::atomic<int>& succeeded) {
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<int> done{0};
  // The feeder sleeps until `done` reaches `wake_at`; outcomes before that
  // do not wake it (one futex call per batch, not per outcome).
  std::atomic<int> wake_at{INT32_MAX};
  auto callback = [&](std::size_t, const push::Outcome& o) {
    if (o.kind == push::OutcomeKind::kSuccess) succeeded.fetch_add(1, std::memory_order_relaxed);
    const int d = done.fetch_add(1, std::memory_order_acq_rel) + 1;
    if (d >= wake_at.load(std::memory_order_acquire)) {
      wake_at.store(INT32_MAX, std::memory_order_release);
      const std::lock_guard lock(mu);
      cv.notify_one();
    }
  };
  auto waitFor = [&](int target) {
    std::unique_lock lock(mu);
    wake_at.store(target, std::memory_order_release);
    cv.wait_for(lock, std::chrono::milliseconds(2),
                [&] { return done.load(std::memory_order_acquire) >= target; });
  };
  const auto start = std::chrono::steady_clock::now();
  int sent = 0;
  while (sent < n) {
    const int k = std::min(chunk, n - sent);
    for (;;) {
      const auto a = client.sendMany(
          std::vector<push::ApnsNotification>(static_cast<std::size_t>(k), note), callback);
      if (a == push::Admission::kAccepted) break;
      if (a == push::Admission::kShutDown) usage("client shut down during the run");
      waitFor(sent + k - max_outstanding);  // full (back-pressure): until a batch fits
    }
    sent += k;
  }
  while (done.load(std::memory_order_acquire) < n) waitFor(n);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0, connections = 1, streams = 100, requests = 100000, warmup = 2000;
  bool instrument = true, print_token = false;
  std::string ca, key, key_id = "ABC123DEFG", team_id = "DEF123GHIJ", payload_file;
  std::string client_cert, client_key;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--port") {
      port = std::stoi(next());
    } else if (a == "--ca") {
      ca = next();
    } else if (a == "--apns-key") {
      key = next();
    } else if (a == "--key-id") {
      key_id = next();
    } else if (a == "--team-id") {
      team_id = next();
    } else if (a == "--connections") {
      connections = std::stoi(next());
    } else if (a == "--streams") {
      streams = std::stoi(next());
    } else if (a == "--requests") {
      requests = std::stoi(next());
    } else if (a == "--warmup") {
      warmup = std::stoi(next());
    } else if (a == "--client-cert") {
      client_cert = next();
    } else if (a == "--client-key") {
      client_key = next();
    } else if (a == "--payload") {
      payload_file = next();
    } else if (a == "--no-instrument") {
      instrument = false;
    } else if (a == "--print-provider-token") {
      print_token = true;
    } else {
      usage("unknown option " + a);
    }
  }
  if (print_token) {
    if (key.empty()) usage("--print-provider-token needs --apns-key");
    auto signing = push::SigningKey::fromPemFile(key, push::SigningKey::Algorithm::kES256);
    if (!signing) usage(signing.error().message);
    auto jwt =
        push::makeApnsProviderToken(*signing, key_id, team_id, std::chrono::system_clock::now());
    if (!jwt) usage(jwt.error().message);
    std::printf("%s\n", jwt->c_str());
    return 0;
  }
  if (port <= 0 || ca.empty() || (key.empty() == client_cert.empty())) {
    usage("--port, --ca and one of --apns-key / --client-cert are required");
  }

  push::ApnsNotification note;
  note.device_token = std::string(64, 'a');
  note.topic = "com.example.app";
  note.payload = R"({"aps":{"alert":{"title":"leakscope","body":"benchmark"}}})";
  if (!payload_file.empty()) {
    std::ifstream in(payload_file);
    std::stringstream ss;
    ss << in.rdbuf();
    note.payload = ss.str();
  }

  push::EventLoop loop;
  push::ApnsConfig config;
  config.endpoint = {"localhost", static_cast<std::uint16_t>(port), "127.0.0.1"};
  config.tls.ca_file = ca;
  if (!key.empty()) {
    auto signing = push::SigningKey::fromPemFile(key, push::SigningKey::Algorithm::kES256);
    if (!signing) usage(signing.error().message);
    config.token_auth = push::ApnsTokenAuth{*signing, key_id, team_id, std::chrono::minutes(50)};
  } else {
    config.tls.client_cert_file = client_cert;
    config.tls.client_key_file = client_key;
  }
  config.pool.max_connections = static_cast<std::size_t>(connections);
  config.pool.max_streams_per_connection = static_cast<std::uint32_t>(streams);
  config.pool.instrument = instrument;
  config.pool.request_timeout = std::chrono::seconds(30);
  // Enough queued work to keep every stream busy while the feeder waits.
  const int max_outstanding = connections * streams * 4;
  const int chunk = std::max(1, std::min(256, max_outstanding / 4));
  config.max_outstanding = static_cast<std::size_t>(max_outstanding);
  auto client = push::ApnsClient::create(loop, config);
  if (!client) usage(client.error().message);

  std::atomic<int> ok{0};
  run(**client, note, warmup, chunk, max_outstanding, ok);  // opens the connections
  ok = 0;
  const double secs = run(**client, note, requests, chunk, max_outstanding, ok);
  const auto stats = (*client)->stats();
  if (!(*client)->shutdown()) usage("shutdown failed");
  std::printf("notifications_per_second=%.0f\n", requests / secs);
  std::printf("succeeded=%d\n", ok.load());
  std::printf("connections=%zu\n", stats.peak_connections);
  return ok.load() == requests ? 0 : 1;
}
