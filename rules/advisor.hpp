// The rules, hosted as one consumer of the analyzer's event stream, and their findings.
#pragma once

#include <memory>

#include "analyzer/analyzer.hpp"
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

 private:
  RuleSettings settings_;
  FindingStore findings_;
  NPlusOneRule n_plus_one_;
  RowByRowRule row_by_row_;
  MissingIndexRule missing_index_;
};

}  // namespace pglens::rules
