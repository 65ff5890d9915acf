#include "tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace leakscope::push::detail {

using diag::Errc;
using diag::Error;

std::string sslErrorQueue() {
  std::string out;
  unsigned long e = 0;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no detail" : out;
}

diag::Result<std::shared_ptr<SSL_CTX>> makeClientContext(const TlsOptions& o) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return Error{Errc::kIo, "SSL_CTX_new: " + sslErrorQueue()};
  // HTTP/2 over TLS needs TLS 1.2 or later (RFC 9113 §9.2); no compression,
  // no renegotiation.
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // Partial writes: the write loop hands SSL_write what is buffered and keeps
  // the rest; the buffer may move between retries.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                  SSL_MODE_RELEASE_BUFFERS);
  // Verification is always on: a handshake with an untrusted or mismatched
  // certificate fails, and there is no switch to change that.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (o.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
      return Error{Errc::kIo, "cannot load the system's CA certificates: " + sslErrorQueue()};
    }
  } else if (SSL_CTX_load_verify_locations(ctx.get(), o.ca_file.c_str(), nullptr) != 1) {
    return Error{Errc::kIo, "cannot load CA file " + o.ca_file + ": " + sslErrorQueue()};
  }
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  if (SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof kAlpn) != 0) {
    return Error{Errc::kIo, "cannot set ALPN: " + sslErrorQueue()};
  }
  if (o.client_cert_file.empty() != o.client_key_file.empty()) {
    return Error{Errc::kInvalidArgument,
                 "client certificate and key must be given together (certificate auth)"};
  }
  if (!o.client_cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), o.client_cert_file.c_str()) != 1) {
      return Error{Errc::kIo,
                   "cannot load client certificate " + o.client_cert_file + ": " + sslErrorQueue()};
    }
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), o.client_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return Error{Errc::kIo,
                   "cannot load client key " + o.client_key_file + ": " + sslErrorQueue()};
    }
    if (SSL_CTX_check_private_key(ctx.get()) != 1) {
      return Error{Errc::kInvalidArgument, "client key " + o.client_key_file +
                                               " does not match certificate " + o.client_cert_file};
    }
  }
  return std::shared_ptr<SSL_CTX>(ctx.release(), SslCtxFree{});
}

diag::Result<SslPtr> makeClientSsl(SSL_CTX* ctx, const std::string& host, int fd) {
  SslPtr ssl(SSL_new(ctx));
  if (!ssl) return Error{Errc::kIo, "SSL_new: " + sslErrorQueue()};
  in6_addr a6{};
  in_addr a4{};
  const bool is_ip =
      inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
  if (is_ip) {
    // RFC 6066: no SNI for IP literals; the certificate must name the IP.
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) {
      return Error{Errc::kInvalidArgument, "cannot verify against IP " + host};
    }
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl.get(), host.c_str()) != 1 ||
        // SSL_set_tlsext_host_name() without its old-style cast.
        SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(host.c_str())) != 1) {
      return Error{Errc::kInvalidArgument, "cannot set host name " + host + " for TLS"};
    }
  }
  if (SSL_set_fd(ssl.get(), fd) != 1) return Error{Errc::kIo, "SSL_set_fd: " + sslErrorQueue()};
  SSL_set_connect_state(ssl.get());
  return ssl;
}

}  // namespace leakscope::push::detail
