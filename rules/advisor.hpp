// The rules (N+1, row by row, missing index, cache opportunity), hosted as one consumer of the
// analyzer's event stream, and their findings.
#pragma once

#include <memory>

#include "analyzer/analyzer.hpp"
#include "analyzer/standard.hpp"
#include "rules/cache_opportunity.hpp"
#include "rules/findings.hpp"
#include "rules/missing_index.hpp"
#include "rules/rule_settings.hpp"
#include "rules/session_rules.hpp"

namespace pglens::rules {

class Advisor : public analyzer::EventConsumer {
 public:
  Advisor(RuleSettings settings, MissingIndexRule::Connector connector,
          std::shared_ptr<prometheus::Registry> registry);

  void consume(const analyzer::ExecutionEvent& event,
               const analyzer::StatementShape& shape) override;
  void tick() override;

  FindingStore& findings() { return findings_; }
  // The classes captured plans gave fingerprints, for the grading (the Analyzer reads them).
  std::shared_ptr<const analyzer::PlanClasses> plans() const { return plans_; }

 private:
  RuleSettings settings_;
  FindingStore findings_;
  std::shared_ptr<analyzer::PlanClasses> plans_;
  NPlusOneRule n_plus_one_;
  RowByRowRule row_by_row_;
  MissingIndexRule missing_index_;
  CacheOpportunityRule cache_;
};

}  // namespace pglens::rules
