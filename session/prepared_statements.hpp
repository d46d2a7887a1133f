// Named prepared statements in transaction mode: clients keep their own names; servers get one
// statement per distinct (query, parameter types), shared by every client that prepared it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pglens::session {

// A statement a client Parse'd under a name.
struct ClientStatement {
  std::string query;
  std::vector<std::uint32_t> param_types;
  std::string server_name;  // its name on every server connection
  std::string state_left;   // what running it leaves on a connection (session_state.hpp), or ""
};

// "pglens_" + 32 hex digits of SHA-256 over the query and parameter types: equal statements
// share a name, different ones never collide in practice, and it fits NAMEDATALEN.
std::string server_statement_name(std::string_view query,
                                  const std::vector<std::uint32_t>& param_types);

// The statements one server connection has prepared, least recently used evicted first.
class ServerStatementCache {
 public:
  explicit ServerStatementCache(std::size_t capacity = 200)
      : capacity_(capacity == 0 ? 1 : capacity) {}

  // True when the server has it; marks it used.
  bool touch(const std::string& name);
  // Records a statement the server now has; returns one to close when over capacity.
  std::optional<std::string> insert(const std::string& name);
  void erase(const std::string& name);
  void clear();
  std::size_t size() const { return order_.size(); }
  void set_capacity(std::size_t capacity) { capacity_ = capacity == 0 ? 1 : capacity; }

 private:
  std::size_t capacity_;
  std::list<std::string> order_;  // most recently used first
  std::unordered_map<std::string, std::list<std::string>::iterator> index_;
};

}  // namespace pglens::session
