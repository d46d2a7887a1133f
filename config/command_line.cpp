#include "config/command_line.hpp"

#include <CLI/CLI.hpp>

#include "config/key_table.hpp"

namespace pglens::config {

namespace {
// The TOML value a flag's text spells: `--pool-timeout 2.5` is `pool_timeout = 2.5`; a text that
// is no number stays a string, so the reader's reason says what was given.
toml::table value_of(const ConfigKey& key, const std::string& text) {
  toml::table t;
  if (key.kind == ValueKind::Number) {
    try {
      auto parsed = toml::parse("v = " + text);
      if (parsed.size() == 1 && (parsed["v"].is_integer() || parsed["v"].is_floating_point())) {
        return parsed;
      }
    } catch (const toml::parse_error&) {
    }
  }
  t.insert("v", text);
  return t;
}
}  // namespace

CommandLine::CommandLine(CLI::App& app) {
  app.add_option("--config", config_path_, "TOML config file (see pglens.example.toml)")
      ->check(CLI::ExistingFile);
  const Config defaults;
  const auto& table = key_table();
  values_.resize(table.size());
  for (std::size_t i = 0; i < table.size(); ++i) {
    const auto& key = table[i].key;
    std::string doc(key.doc);
    auto shown = key.show(defaults);
    if (key.kind == ValueKind::Switch) {
      options_.push_back(app.add_flag(key.flag)->description(
          std::string(shown == "true" ? "turn off: " : "turn on: ") + doc));
    } else {
      options_.push_back(
          app.add_option(key.flag, values_[i], doc + " [" + (shown.empty() ? "\"\"" : shown) + "]")
              ->type_name(key.kind == ValueKind::Number ? "NUMBER" : "TEXT"));
    }
  }
}

bool CommandLine::given(std::string_view name) const {
  const auto& table = key_table();
  for (std::size_t i = 0; i < table.size(); ++i)
    if (table[i].key.name == name) return options_[i]->count() > 0;
  return false;
}

std::optional<ConfigError> CommandLine::apply(Config& c) const {
  const Config defaults;
  const auto& table = key_table();
  ValueReader reader;
  for (std::size_t i = 0; i < table.size(); ++i) {
    if (options_[i]->count() == 0) continue;
    const auto& row = table[i];
    toml::table value;
    if (row.key.kind == ValueKind::Switch)
      value.insert("v", row.key.show(defaults) != "true");  // the flag turns the default around
    else
      value = value_of(row.key, values_[i]);
    if (!row.read(reader, *value.get("v"), row.key.flag, c)) return reader.error();
  }
  if (auto error = finish_config(c)) {
    // Named by the flag when the flag set it.
    if (auto* key = find_config_key(error->key); key && given(key->name)) error->key = key->flag;
    return error;
  }
  return std::nullopt;
}

}  // namespace pglens::config
