// What the APNs and FCM clients have in common: how a notification is
// accepted (back-pressure), how its outcome comes back, and the figures a
// caller can read. See apns.h and fcm.h for the clients themselves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "leakscope/push/outcome.h"

namespace leakscope::push {

// Answer of send(): accepted notifications get exactly one outcome later.
enum class Admission {
  kAccepted,
  kQueueFull,  // max_outstanding notifications are in progress: slow down
  kShutDown,   // shutdown() has begun
};

// Runs on the client's event-loop thread. It may call send() again; it must
// not block, call shutdown() or destroy the client.
using OutcomeCallback = std::function<void(const Outcome&)>;
// For sendMany(): the index of the notification in its batch, and its outcome.
using BatchCallback = std::function<void(std::size_t index, const Outcome&)>;

struct ClientStats {
  std::size_t open_connections = 0;  // sockets the pool holds now
  std::size_t peak_connections = 0;  // most it ever held at once
  std::size_t outstanding = 0;       // accepted, outcome not yet delivered
};

}  // namespace leakscope::push
