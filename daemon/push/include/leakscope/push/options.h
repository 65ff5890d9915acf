// Settings shared by the APNs and FCM clients: where to connect, how to
// trust the server, and how the connection pool behaves.
//
// Server certificates and host names are always verified; there is no
// setting that turns that off. Tests point `TlsOptions::ca_file` at their own
// CA instead. Plain structs; copy freely.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "leakscope/push/backoff.h"

namespace leakscope::push {

struct Endpoint {
  // Name for TLS SNI, certificate verification and :authority.
  std::string host;
  std::uint16_t port = 443;
  // Connect to this IP literal instead of resolving `host` (like curl's
  // --connect-to). Verification still checks the certificate against `host`.
  std::string connect_address;
};

struct TlsOptions {
  // PEM file of trusted CA certificates; empty: the system's default store.
  std::string ca_file;
  // APNs certificate-based auth: client certificate (PEM, chain allowed) and
  // its private key (PEM). Both or neither. Read from files at start-up.
  std::string client_cert_file;
  std::string client_key_file;
};

// The pool: one per credential (docs/push.md, "Connection pool").
struct PoolOptions {
  // Cap on the connections that take new streams (connecting, ready, busy).
  // A connection draining after the server's GOAWAY takes none and does not
  // count, so new streams move to a fresh connection at once instead of
  // waiting for the old one's; draining ones are capped at the same number,
  // so the pool never holds more than 2 × max_connections sockets, and more
  // than max_connections only while a GOAWAY drain lasts (at most
  // request_timeout).
  std::size_t max_connections = 1;
  // Our own cap on concurrent streams per connection; the server's
  // SETTINGS_MAX_CONCURRENT_STREAMS lowers it, also mid-connection.
  std::uint32_t max_streams_per_connection = 1000;
  // Covers resolving, TCP, TLS and the server's first SETTINGS.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  // Per attempt, from entering the pool to the complete answer (queueing
  // included). An expired stream is reset (RST_STREAM CANCEL).
  std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
  // A connection without streams for this long is closed (0: never).
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
  // Health check: a connection that received nothing for `ping_interval`
  // is sent a PING; no ACK within `ping_timeout` closes it (0: no pings).
  std::chrono::milliseconds ping_interval{std::chrono::seconds(60)};
  std::chrono::milliseconds ping_timeout{std::chrono::seconds(10)};
  // Delay between failed connection attempts.
  BackoffOptions reconnect{};
  // After this many consecutive failed attempts, queued requests fail
  // (retryable, ConnectFailed) instead of waiting for their timeout. A
  // rejected certificate or ALPN fails them at once: waiting cannot help.
  int connect_failures_before_failing_queue = 3;
  // Requests the server provably did not process (REFUSED_STREAM, or above a
  // GOAWAY's last stream id) are moved to another connection this many
  // times before the caller gets `RefusedStream`.
  int max_unprocessed_retries = 2;
  // Tracked objects, nghttp2 memory accounting and metrics. Off only to
  // measure what they cost.
  bool instrument = true;
  // Where the transport reports connection events; default: stderr. Lines
  // name peers and reasons, never tokens or keys.
  std::function<void(std::string_view)> log;
};

// Retries of answers that say "try again" (429, 500, 503, FCM
// QUOTA_EXCEEDED/UNAVAILABLE/INTERNAL...). The wait is the larger of the
// back-off delay and the server's Retry-After; a Retry-After beyond
// `max_retry_after` is not waited for: the caller gets the outcome (with
// retry_after set) and decides.
struct RetryOptions {
  int max_attempts = 3;  // 1: never retry
  BackoffOptions backoff{std::chrono::milliseconds(200), std::chrono::seconds(10), 2.0};
  std::chrono::milliseconds max_retry_after{std::chrono::seconds(30)};
};

}  // namespace leakscope::push
