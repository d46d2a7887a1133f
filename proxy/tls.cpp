#include "proxy/tls.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <sstream>
#include <vector>

namespace pglens::proxy {

namespace {

constexpr std::string_view kAlpn = "postgresql";  // Postgres 17's protocol name

std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += (out.empty() ? "" : "; ") + std::string(buf);
  }
  return out;
}

// "secure", "all", "legacy" or a comma-separated list of tlsv1.0 ... tlsv1.3 → min and max.
bool protocol_range(const std::string& text, int& min, int& max, std::string& why) {
  if (text == "secure" || text == "default") {
    min = TLS1_2_VERSION;
    max = TLS1_3_VERSION;
    return true;
  }
  if (text == "all" || text == "legacy") {
    min = TLS1_VERSION;
    max = TLS1_3_VERSION;
    return true;
  }
  min = 0;
  max = 0;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    auto b = item.find_first_not_of(' '), e = item.find_last_not_of(' ');
    item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
    int v = item == "tlsv1.0"   ? TLS1_VERSION
            : item == "tlsv1.1" ? TLS1_1_VERSION
            : item == "tlsv1.2" ? TLS1_2_VERSION
            : item == "tlsv1.3" ? TLS1_3_VERSION
                                : 0;
    if (v == 0) {
      why = "unknown TLS version \"" + item + "\" (tlsv1.0 ... tlsv1.3, secure, all)";
      return false;
    }
    min = min == 0 ? v : std::min(min, v);
    max = std::max(max, v);
  }
  if (min == 0) {
    why = "names no TLS version";
    return false;
  }
  return true;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  // A client that offers ALPN must offer "postgresql" (as Postgres 17 requires); one that offers
  // none is fine (libpq before 17).
  for (unsigned int i = 0; i < inlen;) {
    unsigned int n = in[i];
    if (i + 1 + n > inlen) break;
    if (std::string_view(reinterpret_cast<const char*>(in + i + 1), n) == kAlpn) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(n);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + n;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// Settings both sides share; false with *error set.
bool configure(ssl::context& ctx, const config::TlsSettings& s, const std::string& side,
               std::string* error) {
  auto fail = [&](const std::string& key, const std::string& why) {
    *error = side + "_tls_" + key + ": " + why;
    return false;
  };
  int min = 0, max = 0;
  std::string why;
  if (!protocol_range(s.protocols, min, max, why)) return fail("protocols", why);
  SSL_CTX* native = ctx.native_handle();
  SSL_CTX_set_min_proto_version(native, min);
  SSL_CTX_set_max_proto_version(native, max);
  if (s.ciphers != "default" && !s.ciphers.empty() &&
      SSL_CTX_set_cipher_list(native, s.ciphers == "all" ? "ALL" : s.ciphers.c_str()) != 1)
    return fail("ciphers", "OpenSSL accepts none of \"" + s.ciphers + "\": " + openssl_errors());
  boost::system::error_code ec;
  if (!s.cert_file.empty()) {
    ctx.use_certificate_chain_file(s.cert_file, ec);
    if (ec) return fail("cert_file", s.cert_file + ": " + tls_error_text(ec));
  }
  if (!s.key_file.empty()) {
    ctx.use_private_key_file(s.key_file, ssl::context::pem, ec);
    if (ec) return fail("key_file", s.key_file + ": " + tls_error_text(ec));
    if (SSL_CTX_check_private_key(native) != 1)
      return fail("key_file", s.key_file + " does not match " + s.cert_file);
  }
  if (s.verifies()) {
    if (!s.ca_file.empty())
      ctx.load_verify_file(s.ca_file, ec);
    else
      ctx.set_default_verify_paths(ec);
    if (ec)
      return fail("ca_file",
                  (s.ca_file.empty() ? "system CAs" : s.ca_file) + ": " + tls_error_text(ec));
  }
  return true;
}

}  // namespace

std::optional<TlsContexts> make_tls_contexts(const config::Config& c, std::string* error) {
  TlsContexts out;
  if (c.client_tls.on()) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::single_dh_use);
    if (!configure(*ctx, c.client_tls, "client", error)) return std::nullopt;
    if (c.client_tls.verifies()) {
      ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
      // Which CAs a client may pick its certificate for.
      if (auto* names = SSL_load_client_CA_file(c.client_tls.ca_file.c_str()))
        SSL_CTX_set_client_CA_list(ctx->native_handle(), names);
    } else {
      ctx->set_verify_mode(ssl::verify_none);
    }
    SSL_CTX_set_alpn_select_cb(ctx->native_handle(), select_alpn, nullptr);
    out.for_clients = std::move(ctx);
  }
  if (c.server_tls.on()) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::default_workarounds);
    if (!configure(*ctx, c.server_tls, "server", error)) return std::nullopt;
    ctx->set_verify_mode(c.server_tls.verifies() ? ssl::verify_peer : ssl::verify_none);
    static const unsigned char alpn[] = "\x0apostgresql";
    SSL_CTX_set_alpn_protos(ctx->native_handle(), alpn, sizeof alpn - 1);
    out.for_servers = std::move(ctx);
  }
  return out;
}

std::string describe_tls(SSL* ssl) {
  if (!ssl) return {};
  return std::string(SSL_get_version(ssl)) + "/" + SSL_get_cipher_name(ssl);
}

std::string peer_common_name(SSL* ssl) {
  if (!ssl) return {};
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (!cert) return {};
  X509_NAME* subject = X509_get_subject_name(cert);
  int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (i < 0) return {};
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n < 0) return {};
  std::string cn(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
  OPENSSL_free(utf8);
  if (cn.find('\0') != std::string::npos) return {};  // an embedded NUL: not a name
  return cn;
}

namespace {
std::string end_point_of(X509* cert) {
  if (!cert) return {};
  int digest_nid = NID_undef;
  if (!OBJ_find_sigid_algs(X509_get_signature_nid(cert), &digest_nid, nullptr)) return {};
  const EVP_MD* md = digest_nid == NID_md5 || digest_nid == NID_sha1
                         ? EVP_sha256()
                         : EVP_get_digestbynid(digest_nid);
  if (!md) return {};
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, md, hash, &n) != 1) return {};
  return std::string(reinterpret_cast<char*>(hash), n);
}
}  // namespace

std::string server_end_point(SSL* ssl) {
  return ssl ? end_point_of(SSL_get0_peer_certificate(ssl)) : std::string();
}

std::string own_end_point(SSL* ssl) {
  return ssl ? end_point_of(SSL_get_certificate(ssl)) : std::string();
}

std::string negotiated_alpn(SSL* ssl) {
  if (!ssl) return {};
  const unsigned char* data = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(ssl, &data, &n);
  return data ? std::string(reinterpret_cast<const char*>(data), n) : std::string();
}

std::string tls_error_text(const boost::system::error_code& ec) {
  std::string queued = openssl_errors();
  if (ec.category() == boost::asio::error::get_ssl_category()) {
    char buf[256];
    ERR_error_string_n(static_cast<unsigned long>(ec.value()), buf, sizeof buf);
    // "error:0A000086:SSL routines::certificate verify failed" → the reason at the end.
    std::string text(buf);
    auto colon = text.rfind(':');
    std::string reason = colon == std::string::npos ? text : text.substr(colon + 1);
    return queued.empty() ? reason : reason + " (" + queued + ")";
  }
  return queued.empty() ? ec.message() : ec.message() + " (" + queued + ")";
}

std::string handshake_failure(const boost::system::error_code& ec, SSL* ssl) {
  std::string text = tls_error_text(ec);
  if (ssl) {
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) text += std::string(": ") + X509_verify_cert_error_string(verify);
  }
  return text;
}

}  // namespace pglens::proxy
