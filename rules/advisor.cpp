#include "rules/advisor.hpp"

namespace pglens::rules {

Advisor::Advisor(RuleSettings settings, MissingIndexRule::Connector connector,
                 std::shared_ptr<prometheus::Registry> registry)
    : settings_(settings),
      findings_(std::move(registry)),
      plans_(std::make_shared<analyzer::PlanClasses>()),
      n_plus_one_(settings_),
      row_by_row_(settings_),
      missing_index_(settings_, std::move(connector), findings_, plans_),
      cache_(settings_) {}

void Advisor::consume(const analyzer::ExecutionEvent& event,
                      const analyzer::StatementShape& shape) {
  auto now = std::chrono::steady_clock::now();
  bool n_plus_one_child = n_plus_one_.consume(event, shape, now, findings_);
  row_by_row_.consume(event, shape, now, findings_);
  missing_index_.consume(event, shape);
  // A lookup fed by the rows before it is an N+1's child: its fix is loading it with its parent,
  // and repeats of it (an ORM loading the same customer for each order) are no cache's to serve.
  if (!n_plus_one_child) cache_.consume(event, shape);
}

void Advisor::tick() {
  auto now = std::chrono::steady_clock::now();
  n_plus_one_.tick(now, findings_);
  row_by_row_.tick(now, findings_);
  missing_index_.tick(now);
  cache_.tick(findings_);
}

}  // namespace pglens::rules
