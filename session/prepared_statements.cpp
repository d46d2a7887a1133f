#include "session/prepared_statements.hpp"

#include <openssl/evp.h>

#include <memory>

namespace pglens::session {

std::string server_statement_name(std::string_view query,
                                  const std::vector<std::uint32_t>& param_types) {
  // OpenSSL 3's EVP interface (the SHA256_* functions are deprecated there).
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx.get(), query.data(), query.size());
  for (auto t : param_types) {
    unsigned char b[4] = {static_cast<unsigned char>(t >> 24), static_cast<unsigned char>(t >> 16),
                          static_cast<unsigned char>(t >> 8), static_cast<unsigned char>(t)};
    EVP_DigestUpdate(ctx.get(), b, sizeof b);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  static constexpr char hex[] = "0123456789abcdef";
  std::string name = "pglens_";
  for (int i = 0; i < 16; ++i) {
    name.push_back(hex[digest[i] >> 4]);
    name.push_back(hex[digest[i] & 15]);
  }
  return name;
}

bool ServerStatementCache::touch(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) return false;
  order_.splice(order_.begin(), order_, it->second);
  return true;
}

std::optional<std::string> ServerStatementCache::insert(const std::string& name) {
  if (touch(name)) return std::nullopt;
  order_.push_front(name);
  index_[name] = order_.begin();
  if (order_.size() <= capacity_) return std::nullopt;
  std::string evicted = std::move(order_.back());
  order_.pop_back();
  index_.erase(evicted);
  return evicted;
}

void ServerStatementCache::erase(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) return;
  order_.erase(it->second);
  index_.erase(it);
}

void ServerStatementCache::clear() {
  order_.clear();
  index_.clear();
}

}  // namespace pglens::session
