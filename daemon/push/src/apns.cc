#include "leakscope/push/apns.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "client_core.h"
#include "pool.h"
#include "tls.h"

namespace leakscope::push {

using detail::Job;

namespace {

bool isHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

// 8-4-4-4-12 hex digits, as Apple requires for apns-id.
bool isUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !isHex(s.substr(i, 1))) return false;
  }
  return true;
}

constexpr std::array kPushTypes = {"alert", "background",   "location",
                                   "voip",  "complication", "fileprovider",
                                   "mdm",   "liveactivity", "pushtotalk"};

Outcome refused(std::string_view why) { return outcomeOf(OutcomeKind::kPermanent, why); }

}  // namespace

std::optional<Outcome> checkApnsNotification(const ApnsNotification& n, bool token_auth) {
  if (n.device_token.empty()) return refused("MissingDeviceToken");
  // Device tokens are hex strings (64 digits today; Apple says the length
  // may change, so only the alphabet and a sane bound are checked).
  if (!isHex(n.device_token) || n.device_token.size() > 200) {
    Outcome o = refused("BadDeviceToken");
    o.kind = OutcomeKind::kInvalidToken;
    return o;
  }
  if (token_auth && n.topic.empty()) return refused("MissingTopic");
  if (std::none_of(kPushTypes.begin(), kPushTypes.end(),
                   [&](const char* t) { return n.push_type == t; })) {
    return refused("InvalidPushType");
  }
  if (n.priority && *n.priority != 10 && *n.priority != 5 && *n.priority != 1) {
    return refused("BadPriority");
  }
  if (n.expiration && *n.expiration < 0) return refused("BadExpirationDate");
  if (n.collapse_id.size() > 64) return refused("BadCollapseId");
  if (!n.apns_id.empty() && !isUuid(n.apns_id)) return refused("BadMessageId");
  if (n.payload.empty()) return refused("PayloadEmpty");
  const std::size_t limit = n.push_type == "voip" ? kApnsMaxVoipPayloadBytes : kApnsMaxPayloadBytes;
  if (n.payload.size() > limit) return refused("PayloadTooLarge");
  return std::nullopt;
}

class ApnsClient::Impl final : public detail::ClientCore {
 public:
  Impl(EventLoop& loop, ApnsConfig config, std::shared_ptr<SSL_CTX> ctx,
       std::optional<ProviderTokenCache> tokens)
      : ClientCore(loop,
                   Settings{"apns", config.endpoint.host, config.retry, config.max_outstanding,
                            config.pool.instrument, config.metrics, config.clock}),
        tokens_(std::move(tokens)),
        pool_(std::make_unique<detail::Pool>(loop, "apns", config.endpoint, config.pool,
                                             std::move(ctx), upstreamShared(), *this,
                                             trackedId())) {}

  ~Impl() override = default;

  std::unique_ptr<Job> makeJob(ApnsNotification n, OutcomeCallback done) const {
    auto job = std::make_unique<Job>();
    job->done = std::move(done);
    job->precheck = checkApnsNotification(n, tokens_.has_value());
    if (job->precheck) return job;
    auto& r = job->request;
    r.path = "/3/device/" + n.device_token;
    r.headers.reserve(6);
    if (!n.topic.empty()) r.headers.push_back({"apns-topic", std::move(n.topic)});
    r.headers.push_back({"apns-push-type", n.push_type});
    if (n.priority) r.headers.push_back({"apns-priority", std::to_string(*n.priority)});
    if (n.expiration) r.headers.push_back({"apns-expiration", std::to_string(*n.expiration)});
    if (!n.collapse_id.empty()) r.headers.push_back({"apns-collapse-id", std::move(n.collapse_id)});
    if (!n.apns_id.empty()) r.headers.push_back({"apns-id", std::move(n.apns_id)});
    r.body = std::move(n.payload);
    return job;
  }

 protected:
  void dispatch(std::unique_ptr<Job> job) override {
    if (tokens_) {
      auto refreshed = tokens_->refresh();
      if (!refreshed) {
        // Signing failed (OpenSSL out of memory): nothing was sent.
        Outcome o;
        o.kind = OutcomeKind::kRetryable;
        o.reason = std::string(reason::kAuthFailed);
        o.attempts = job->attempts - 1;
        finish(std::move(job), std::move(o));
        return;
      }
      if (*refreshed != TokenRefresh::kNone || !bearer_) {
        if (upstream() && *refreshed != TokenRefresh::kNone) upstream()->jwtRefreshed(*refreshed);
        bearer_ = std::make_shared<const std::string>("bearer " + tokens_->jwt());
      }
      job->request.authorization = bearer_;
    }
    pool_->submit(std::move(job));
  }

  Outcome interpret(Job& job, const detail::Response& r) override {
    std::string why;
    std::optional<std::int64_t> timestamp;
    if (r.status != 200 && !r.body.empty()) {
      const auto body = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
      if (body.is_object()) {
        if (const auto it = body.find("reason"); it != body.end() && it->is_string()) {
          why = it->get<std::string>();
        }
        if (const auto it = body.find("timestamp"); it != body.end() && it->is_number_integer()) {
          timestamp = it->get<std::int64_t>();
        }
      }
    }
    Outcome o = mapApnsResponse(r.status, why, timestamp);
    if (const std::string* id = r.header("apns-id")) o.id = *id;
    if (o.kind == OutcomeKind::kRetryable) {
      if (const std::string* ra = r.header("retry-after")) {
        if (auto d = parseRetryAfter(*ra, now())) o.retry_after = *d;
      }
    }
    (void)job;
    return o;
  }

  bool refreshCredential(Job& job, const Outcome& o) override {
    if (!tokens_ || !apnsNeedsNewProviderToken(o.reason)) return false;
    const auto& auth = job.request.authorization;
    if (auth && auth->size() > 7) tokens_->reject(std::string_view(*auth).substr(7));
    return true;
  }

  void shutdownPools(detail::SteadyTime deadline, std::function<void()> done) override {
    pool_->shutdown(deadline, std::move(done));
  }

  std::size_t openConnections() const override { return pool_->openConnections(); }
  std::size_t peakConnections() const override { return pool_->peakConnections(); }

 private:
  std::optional<ProviderTokenCache> tokens_;   // token auth; loop thread only
  std::shared_ptr<const std::string> bearer_;  // "bearer <jwt>", shared by requests
  std::unique_ptr<detail::Pool> pool_;
};

diag::Result<std::unique_ptr<ApnsClient>> ApnsClient::create(EventLoop& loop, ApnsConfig config) {
  std::optional<ProviderTokenCache> tokens;
  if (config.token_auth) {
    ProviderTokenCache::Options o;
    o.key_id = config.token_auth->key_id;
    o.team_id = config.token_auth->team_id;
    o.refresh_after = config.token_auth->refresh_after;
    o.clock = config.clock;
    auto cache = ProviderTokenCache::create(config.token_auth->key, std::move(o));
    if (!cache) return cache.error();
    tokens.emplace(std::move(*cache));
  } else if (config.tls.client_cert_file.empty()) {
    return diag::Error{diag::Errc::kInvalidArgument,
                       "APNs needs token auth (a .p8 key) or a client certificate"};
  }
  if (config.endpoint.host.empty()) {
    return diag::Error{diag::Errc::kInvalidArgument, "APNs endpoint host is empty"};
  }
  auto ctx = detail::makeClientContext(config.tls);
  if (!ctx) return ctx.error();
  auto impl = std::make_unique<Impl>(loop, std::move(config), std::move(*ctx), std::move(tokens));
  return std::make_unique<ApnsClient>(std::move(impl));
}

ApnsClient::ApnsClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ApnsClient::~ApnsClient() { detail::destroyCore(std::move(impl_)); }

Admission ApnsClient::send(ApnsNotification n, OutcomeCallback done) {
  return detail::sendVia(*impl_, std::move(n), std::move(done));
}

Admission ApnsClient::sendMany(std::vector<ApnsNotification> batch, BatchCallback done) {
  return detail::sendManyVia(*impl_, std::move(batch), std::move(done));
}

std::vector<Outcome> ApnsClient::sendBatch(std::vector<ApnsNotification> batch) {
  return detail::sendBatchVia(*impl_, std::move(batch));
}

diag::Status ApnsClient::shutdown(std::chrono::milliseconds grace) {
  return impl_->shutdown(grace);
}

ClientStats ApnsClient::stats() const { return impl_->stats(); }

std::shared_ptr<PushMetrics> ApnsClient::metrics() const { return impl_->metrics(); }

diag::ObjectId ApnsClient::trackedId() const { return impl_->trackedId(); }

void ApnsClient::setOwner(diag::ObjectId owner) { impl_->setTrackedOwner(owner); }

}  // namespace leakscope::push
