// Every [pglens] key, once: its name, its command-line flag, its one-line doc, whether RELOAD
// applies it, how a value is read and how it is shown. The TOML reader, the command-line flags,
// --help and SHOW CONFIG are all made from this table (config_keys.cpp); pglens.example.toml
// documents exactly its keys (a unit test checks). Adding a key is one row there and the Config
// field it sets.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace pglens::config {

// What a value is, for turning a flag's text into the TOML value it spells.
enum class ValueKind {
  Number,  // an integer or a float: `--pool-timeout 2.5` is read as `pool_timeout = 2.5`
  Text,    // a string: `--listen 0.0.0.0:6432` is read as `listen = "0.0.0.0:6432"`
  Switch,  // true or false: a flag without a value sets the opposite of the default
};

struct ConfigKey {
  std::string_view name;
  std::string_view doc;
  bool reloadable;  // RELOAD and SIGHUP apply a changed value (SHOW CONFIG's "changeable")
  ValueKind kind;
  std::string flag;  // "--pool-size"; a switch that defaults to true is "--no-analysis"
  std::function<std::string(const Config&)> show;  // as SHOW CONFIG prints it
};

// In the order of pglens.example.toml.
std::span<const ConfigKey> config_keys();
const ConfigKey* find_config_key(std::string_view name);

}  // namespace pglens::config
