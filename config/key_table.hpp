// The key table with its readers: internal to config/ (it needs toml++, the public side does not).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config/config_keys.hpp"
#include "config/value_reader.hpp"

namespace pglens::config {

// Reads one value into the config; false with the reason in the reader. `key` names it in the
// reason: "pool_size" in a file, "--pool-size" on the command line.
using ReadValue =
    std::function<bool(ValueReader&, const toml::node&, const std::string& key, Config&)>;

struct KeyRow {
  ConfigKey key;
  ReadValue read;
};

const std::vector<KeyRow>& key_table();

}  // namespace pglens::config
