// Missing indexes: for statements that matter (by calls and total time), the columns they filter,
// join and sort on; the catalog says whether the table is large and unindexed on them, EXPLAIN of
// a real captured instance whether it is scanned sequentially, and, with hypopg, how much a
// hypothetical index would cut the cost. The same look EXPLAINs a SELECT's captured instance for
// the grading against the database standards (analyzer/standard.hpp): the class its plan gives
// goes to `plans`. Catalog work runs on a thread of its own over pglens'
// own connection (libpqxx): never through the pool, never analyzed, never on the analyzer thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "analyzer/event.hpp"
#include "analyzer/key_hash.hpp"
#include "analyzer/query_shape.hpp"
#include "analyzer/standard.hpp"
#include "rules/findings.hpp"
#include "rules/rule_settings.hpp"

namespace pglens::rules {

class MissingIndexRule {
 public:
  // libpq conninfo for pglens' own connection to a database as a user; empty when there is none.
  using Connector =
      std::function<std::string(const std::string& database, const std::string& user)>;

  // plans: where the classes of captured plans go; null: no plan is captured for grading.
  MissingIndexRule(const RuleSettings& settings, Connector connector, FindingStore& findings,
                   std::shared_ptr<analyzer::PlanClasses> plans = nullptr);
  ~MissingIndexRule();
  MissingIndexRule(const MissingIndexRule&) = delete;
  MissingIndexRule& operator=(const MissingIndexRule&) = delete;

  // Analyzer thread: accounting only.
  void consume(const analyzer::ExecutionEvent& event, const analyzer::StatementShape& shape);
  // Analyzer thread: hands statements due for a look to the worker.
  void tick(std::chrono::steady_clock::time_point now);

  struct Candidate {
    std::uint64_t fingerprint_id = 0;
    bool select = false;
    std::string fingerprint, normalized, database, user, application_name;
    std::string sql;  // a real instance, as run
    std::vector<std::optional<std::string>> parameters;
    std::uint64_t calls = 0;
    double total_ms = 0;
    std::chrono::steady_clock::time_point last_check{};
  };
  // The check itself (worker thread; public for tests that drive it directly).
  void check(const Candidate& candidate);

 private:
  void run();

  const RuleSettings& settings_;
  Connector connector_;
  FindingStore& findings_;
  std::shared_ptr<analyzer::PlanClasses> plans_;
  // By (fingerprint, Identity::database_user, database, user); analyzer thread only.
  std::unordered_map<std::tuple<std::uint64_t, std::uint64_t, std::string, std::string>, Candidate,
                     analyzer::KeyHash, analyzer::KeyEqual>
      candidates_;

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Candidate> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace pglens::rules
