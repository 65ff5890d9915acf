// OpenSSL set-up for the push clients: one SSL_CTX per credential (TLS 1.2+,
// ALPN "h2", peer verification always on, optional client certificate) and
// one SSL per connection (SNI and host-name or IP verification).
// RAII owners for both. Not thread-safe to configure; an SSL_CTX may be
// shared by connections on one loop.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

#include "leakscope/diag/result.h"
#include "leakscope/push/options.h"

namespace leakscope::push::detail {

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

// Errors name the file and OpenSSL's reason.
diag::Result<std::shared_ptr<SSL_CTX>> makeClientContext(const TlsOptions& options);

// An SSL for `fd`, client mode, verifying `host` (DNS name or IP literal).
diag::Result<SslPtr> makeClientSsl(SSL_CTX* ctx, const std::string& host, int fd);

// OpenSSL's error queue as one line, cleared afterwards.
std::string sslErrorQueue();

}  // namespace leakscope::push::detail
