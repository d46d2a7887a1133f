// pglens' command-line flags: one per key of the table (config_keys.hpp), plus --config. A flag
// given overrides the file, at start and at every reload.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace pglens::config {

class CommandLine {
 public:
  // Adds --config and the keys' flags to `app`, each described by its doc line and default.
  explicit CommandLine(CLI::App& app);

  // --config FILE, or "".
  const std::string& config_path() const { return config_path_; }
  // Applies the flags that were given over `c` (read through the same checks as the file's
  // values, then finish_config); nullopt, or the error naming the flag.
  std::optional<ConfigError> apply(Config& c) const;
  // Whether a key's flag was given (e.g. "upstream").
  bool given(std::string_view key) const;

 private:
  std::string config_path_;
  std::vector<std::string> values_;    // per key, in table order
  std::vector<CLI::Option*> options_;  // per key
};

}  // namespace pglens::config
