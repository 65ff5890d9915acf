#include "leakscope/push/fcm.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "leakscope/push/secret.h"

#include "client_core.h"
#include "pool.h"
#include "tls.h"

namespace leakscope::push {

using detail::Job;
using diag::Errc;
using diag::Error;

namespace {

// Where OAuth2 tokens come from: the service account's token_uri, split.
struct TokenEndpoint {
  std::string token_host;
  std::uint16_t token_port = 443;
  std::string token_path;
  std::string token_uri;
};

// JSON whose every string (values, keys, the parser's own token buffer) is
// a SecretString: wiped when freed, so the private_key field leaves no copy.
using SecretJson = nlohmann::basic_json<std::map, std::vector, SecretString>;

// https://host[:port]/path
diag::Status parseHttpsUrl(const std::string& url, TokenEndpoint& sa) {
  constexpr std::string_view kScheme = "https://";
  if (url.rfind(kScheme, 0) != 0) {
    return Error{Errc::kInvalidArgument, "token_uri must be an https:// URL"};
  }
  const std::string rest = url.substr(kScheme.size());
  const std::size_t slash = rest.find('/');
  const std::string hostport = rest.substr(0, slash);
  sa.token_path = slash == std::string::npos ? "/" : rest.substr(slash);
  const std::size_t colon = hostport.rfind(':');
  if (colon != std::string::npos && hostport.find(']') == std::string::npos) {
    sa.token_host = hostport.substr(0, colon);
    const std::string port = hostport.substr(colon + 1);
    int p = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || p > 65535) {
        return Error{Errc::kInvalidArgument, "token_uri has a bad port"};
      }
      p = p * 10 + (c - '0');
    }
    if (p <= 0 || p > 65535) return Error{Errc::kInvalidArgument, "token_uri has a bad port"};
    sa.token_port = static_cast<std::uint16_t>(p);
  } else {
    sa.token_host = hostport;
  }
  if (sa.token_host.empty()) return Error{Errc::kInvalidArgument, "token_uri has no host"};
  sa.token_uri = url;
  return diag::Ok{};
}

bool isSafeProjectId(std::string_view id) {
  return !id.empty() && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || (c >= 'A' && c <= 'Z');
  });
}

}  // namespace

class FcmClient::Impl final : public detail::ClientCore {
 public:
  Impl(EventLoop& loop, FcmConfig config, std::shared_ptr<SSL_CTX> ctx, TokenEndpoint sa)
      : ClientCore(loop, Settings{"fcm", config.endpoint.host, config.retry, config.max_outstanding,
                                  config.pool.instrument, config.metrics, config.clock}),
        sa_(std::move(sa)),
        account_(std::move(*config.service_account)),
        path_("/v1/projects/" + config.project_id + "/messages:send"),
        oauth_handler_(*this),
        pool_(std::make_unique<detail::Pool>(loop, "fcm", config.endpoint, config.pool, ctx,
                                             upstreamShared(), *this, trackedId())),
        oauth_pool_(std::make_unique<detail::Pool>(
            loop, "oauth", Endpoint{sa_.token_host, sa_.token_port, config.oauth_connect_address},
            config.oauth_pool, ctx, config.pool.instrument ? metrics()->upstream("oauth") : nullptr,
            oauth_handler_, trackedId())) {}

  std::unique_ptr<Job> makeJob(FcmNotification n, OutcomeCallback done) const {
    auto job = std::make_unique<Job>();
    job->done = std::move(done);
    if (n.token.empty()) {
      job->precheck = outcomeOf(OutcomeKind::kInvalidToken, "UNREGISTERED");
      return job;
    }
    auto message = nlohmann::json::parse(n.message, nullptr, /*allow_exceptions=*/false);
    if (!message.is_object()) {
      job->precheck = outcomeOf(OutcomeKind::kPermanent, "INVALID_ARGUMENT");
      return job;
    }
    message["token"] = std::move(n.token);
    const nlohmann::json body = {{"message", std::move(message)}};
    job->request.body = body.dump();
    // FCM refuses messages over 4096 bytes (INVALID_ARGUMENT); the whole
    // message object, token included, is measured: a safe bound.
    constexpr std::size_t kEnvelope = sizeof(R"({"message":})") - 1;
    if (job->request.body.size() - kEnvelope > kFcmMaxMessageBytes) {
      job->request.body.clear();
      job->precheck = outcomeOf(OutcomeKind::kPermanent, "PayloadTooLarge");
      return job;
    }
    job->request.path = path_;
    job->request.headers.push_back({"content-type", "application/json; charset=utf-8"});
    return job;
  }

 protected:
  void dispatch(std::unique_ptr<Job> job) override {
    if (tokenValid()) {
      authorize(*job);
      pool_->submit(std::move(job));
      return;
    }
    parked_.push_back(std::move(job));
    fetchToken();
  }

  Outcome interpret(Job&, const detail::Response& r) override {
    const auto body = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    if (r.status == 200) {
      Outcome o = mapFcmResponse(200, "");
      if (body.is_object() && body.contains("name") && body["name"].is_string()) {
        o.id = body["name"].get<std::string>();
      }
      return o;
    }
    // {"error":{"code":404,"status":"NOT_FOUND","details":[{"@type":
    //   "type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}
    std::string code;
    if (body.is_object() && body.contains("error") && body["error"].is_object()) {
      const auto& err = body["error"];
      if (err.contains("details") && err["details"].is_array()) {
        for (const auto& d : err["details"]) {
          if (d.is_object() && d.contains("errorCode") && d["errorCode"].is_string() &&
              d.value("@type", std::string()).find("FcmError") != std::string::npos) {
            code = d["errorCode"].get<std::string>();
          }
        }
      }
      if (code.empty() && err.contains("status") && err["status"].is_string()) {
        code = err["status"].get<std::string>();
      }
    }
    Outcome o = mapFcmResponse(r.status, code);
    if (const std::string* ra = r.header("retry-after")) {
      if (auto d = parseRetryAfter(*ra, now())) o.retry_after = *d;
    }
    return o;
  }

  bool refreshCredential(Job& job, const Outcome& o) override {
    if (!fcmNeedsNewAccessToken(o.status, o.reason)) return false;
    // Only if the rejected token is still the current one: a burst of 401s
    // for one token makes one new token.
    if (bearer_ && job.request.authorization == bearer_) {
      token_.reset();
      bearer_.reset();
      token_rejected_ = true;
    }
    return true;
  }

  void shutdownPools(detail::SteadyTime deadline, std::function<void()> done) override {
    // The token endpoint first: a token arriving within the grace still
    // sends the notifications waiting for it, so the FCM pool's own
    // shutdown starts only once no token can come.
    oauth_pool_->shutdown(deadline, [this, deadline, done = std::move(done)]() mutable {
      failParked(outcomeOf(OutcomeKind::kRetryable, reason::kShutdown));
      pool_->shutdown(deadline, std::move(done));
    });
  }

  std::size_t openConnections() const override {
    return pool_->openConnections() + oauth_pool_->openConnections();
  }
  std::size_t peakConnections() const override { return pool_->peakConnections(); }

 private:
  // The token endpoint's answers come here.
  class OAuthHandler final : public detail::ExchangeHandler {
   public:
    explicit OAuthHandler(Impl& impl) : impl_(impl) {}
    void onExchangeDone(std::unique_ptr<detail::Exchange> ex, detail::ExchangeResult r) override {
      impl_.onToken(*ex, r);
    }

   private:
    Impl& impl_;
  };

  bool tokenValid() const { return token_.has_value() && now() < token_refresh_at_; }

  void authorize(Job& job) {
    if (!bearer_) bearer_ = std::make_shared<const std::string>("Bearer " + *token_);
    job.request.authorization = bearer_;
  }

  void fetchToken() {
    if (fetching_) return;
    const auto t = now();
    auto assertion =
        makeGoogleAssertion(account_.key, account_.private_key_id, account_.client_email, kFcmScope,
                            sa_.token_uri, t, std::chrono::hours(1));
    if (!assertion) {
      failParked(outcomeOf(OutcomeKind::kRetryable, reason::kAuthFailed));
      return;
    }
    if (UpstreamStats* s = upstream()) {
      s->jwtRefreshed(!ever_fetched_    ? TokenRefresh::kInitial
                      : token_rejected_ ? TokenRefresh::kRejected
                                        : TokenRefresh::kAge);
    }
    token_rejected_ = false;
    ever_fetched_ = true;
    fetching_ = true;
    auto ex = std::make_unique<detail::Exchange>();
    ex->request.path = sa_.token_path;
    ex->request.headers.push_back({"content-type", "application/x-www-form-urlencoded"});
    // A JWT is base64url and dots: nothing to escape in a form body.
    ex->request.body =
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" + *assertion;
    oauth_pool_->submit(std::move(ex));
  }

  void onToken(const detail::Exchange& ex, const detail::ExchangeResult& r) {
    fetching_ = false;
    const auto& resp = ex.response;
    if (r.failure == detail::Failure::kNone && resp.status == 200) {
      const auto body = nlohmann::json::parse(resp.body, nullptr, /*allow_exceptions=*/false);
      if (body.is_object() && body.contains("access_token") && body["access_token"].is_string() &&
          body.contains("expires_in") && body["expires_in"].is_number_integer() &&
          body["expires_in"].get<std::int64_t>() > 0) {
        const auto lifetime = std::chrono::seconds(body["expires_in"].get<std::int64_t>());
        // Renew five minutes before expiry (half the lifetime if shorter),
        // so no request goes out with a token about to lapse.
        const auto margin = std::min<std::chrono::seconds>(std::chrono::minutes(5), lifetime / 2);
        token_ = body["access_token"].get<std::string>();
        bearer_.reset();
        token_refresh_at_ = now() + lifetime - margin;
        if (UpstreamStats* s = upstream()) s->accessTokenFetched(true);
        auto jobs = std::move(parked_);
        parked_.clear();
        for (auto& job : jobs) dispatch(std::move(job));
        return;
      }
    }
    if (UpstreamStats* s = upstream()) s->accessTokenFetched(false);
    // The token endpoint refusing our assertion (4xx but 429) is a
    // credential problem no retry fixes; anything else may pass.
    const bool refused = r.failure == detail::Failure::kNone && resp.status >= 400 &&
                         resp.status < 500 && resp.status != 429;
    pool_log("OAuth2 token request failed: " + (r.failure != detail::Failure::kNone
                                                    ? std::string(detail::failureReason(r.failure))
                                                    : "HTTP " + std::to_string(resp.status)));
    failParked(outcomeOf(refused ? OutcomeKind::kPermanent : OutcomeKind::kRetryable,
                         reason::kAuthFailed));
  }

  void failParked(const Outcome& o) {
    auto jobs = std::move(parked_);
    parked_.clear();
    for (auto& job : jobs) {
      Outcome out = o;
      out.attempts = job->attempts - 1;  // never sent
      finish(std::move(job), std::move(out));
    }
  }

  void pool_log(const std::string& line) { oauth_pool_->log("fcm: " + line); }

  TokenEndpoint sa_;
  FcmServiceAccount account_;  // the key (shared EVP_PKEY) and its ids
  std::string path_;
  std::optional<std::string> token_;           // the access token (loop thread only)
  std::shared_ptr<const std::string> bearer_;  // "Bearer <token>", shared by requests
  std::chrono::system_clock::time_point token_refresh_at_{};
  bool fetching_ = false;
  bool ever_fetched_ = false;
  bool token_rejected_ = false;               // the next fetch replaces a token FCM refused (401)
  std::vector<std::unique_ptr<Job>> parked_;  // waiting for a token
  OAuthHandler oauth_handler_;
  // Pools last: destroyed first, while the handler they call still exists.
  std::unique_ptr<detail::Pool> pool_;
  std::unique_ptr<detail::Pool> oauth_pool_;
};

diag::Result<FcmServiceAccount> FcmServiceAccount::fromJson(std::span<char> text,
                                                            std::string_view what) {
  // Wiped on every return path; the parsed strings wipe themselves.
  struct WipeText {
    std::span<char> t;
    ~WipeText() { secureWipe(t.data(), t.size()); }
  } wipe{text};
  const auto json = SecretJson::parse(text.begin(), text.end(), nullptr,
                                      /*allow_exceptions=*/false);
  const std::string src(what);
  if (!json.is_object()) return Error{Errc::kParse, src + " is not a JSON object"};
  auto field = [&](const char* name) -> const SecretString* {
    const auto it = json.find(name);
    return it != json.end() && it->is_string() ? &it->get_ref<const SecretString&>() : nullptr;
  };
  auto plain = [&](const char* name) {
    const SecretString* v = field(name);
    return v != nullptr ? std::string(v->data(), v->size()) : std::string();
  };
  if (plain("type") != "service_account") {
    return Error{Errc::kParse, src + ": \"type\" is not \"service_account\""};
  }
  const SecretString* pem = field("private_key");
  std::string email = plain("client_email");
  if (email.empty() || pem == nullptr || pem->empty()) {
    return Error{Errc::kParse, src + ": \"client_email\" and \"private_key\" are required"};
  }
  auto key = SigningKey::fromPem(*pem, SigningKey::Algorithm::kRS256, src);
  if (!key) return key.error();
  std::string token_uri = plain("token_uri");
  if (token_uri.empty()) token_uri = "https://oauth2.googleapis.com/token";
  TokenEndpoint check;
  if (auto st = parseHttpsUrl(token_uri, check); !st) {
    return Error{st.error().code, src + ": " + st.error().message};
  }
  return FcmServiceAccount{std::move(*key), plain("project_id"), plain("private_key_id"),
                           std::move(email), std::move(token_uri)};
}

diag::Result<FcmServiceAccount> FcmServiceAccount::fromFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error{errno == EACCES ? Errc::kPermission : Errc::kIo,
                 "cannot read service account file " + path + ": " + std::strerror(errno)};
  }
  auto text = readSecret(fd, "service account file " + path);
  ::close(fd);
  if (!text) return text.error();
  return fromJson(*text, "service account file " + path);
}

diag::Result<std::unique_ptr<FcmClient>> FcmClient::create(EventLoop& loop, FcmConfig config) {
  if (!config.service_account) {
    return Error{Errc::kInvalidArgument,
                 "FCM needs a service account (FcmConfig::service_account)"};
  }
  const FcmServiceAccount& account = *config.service_account;
  TokenEndpoint sa;
  if (auto st = parseHttpsUrl(account.token_uri, sa); !st) {
    return Error{st.error().code,
                 "service account " + account.client_email + ": " + st.error().message};
  }
  if (config.project_id.empty()) config.project_id = account.project_id;
  if (!isSafeProjectId(config.project_id)) {
    return Error{Errc::kInvalidArgument, "FCM project id is missing or malformed"};
  }
  if (config.endpoint.host.empty()) {
    return Error{Errc::kInvalidArgument, "FCM endpoint host is empty"};
  }
  if (!config.tls.client_cert_file.empty()) {
    return Error{Errc::kInvalidArgument, "FCM does not use client certificates"};
  }
  // The token endpoint is used about once an hour: do not keep its
  // connection open in between.
  if (config.oauth_pool.idle_timeout.count() == 0 ||
      config.oauth_pool.idle_timeout > std::chrono::seconds(60)) {
    config.oauth_pool.idle_timeout = std::chrono::seconds(60);
  }
  config.oauth_pool.max_connections = 1;
  config.oauth_pool.instrument = config.pool.instrument;
  if (!config.oauth_pool.log) config.oauth_pool.log = config.pool.log;
  auto ctx = detail::makeClientContext(config.tls);
  if (!ctx) return ctx.error();
  auto impl = std::make_unique<Impl>(loop, std::move(config), std::move(*ctx), std::move(sa));
  return std::make_unique<FcmClient>(std::move(impl));
}

FcmClient::FcmClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

FcmClient::~FcmClient() { detail::destroyCore(std::move(impl_)); }

Admission FcmClient::send(FcmNotification n, OutcomeCallback done) {
  return detail::sendVia(*impl_, std::move(n), std::move(done));
}

Admission FcmClient::sendMany(std::vector<FcmNotification> batch, BatchCallback done) {
  return detail::sendManyVia(*impl_, std::move(batch), std::move(done));
}

std::vector<Outcome> FcmClient::sendBatch(std::vector<FcmNotification> batch) {
  return detail::sendBatchVia(*impl_, std::move(batch));
}

diag::Status FcmClient::shutdown(std::chrono::milliseconds grace) { return impl_->shutdown(grace); }

ClientStats FcmClient::stats() const { return impl_->stats(); }

std::shared_ptr<PushMetrics> FcmClient::metrics() const { return impl_->metrics(); }

diag::ObjectId FcmClient::trackedId() const { return impl_->trackedId(); }

void FcmClient::setOwner(diag::ObjectId owner) { impl_->setTrackedOwner(owner); }

}  // namespace leakscope::push
