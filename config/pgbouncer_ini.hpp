// PgBouncer's pgbouncer.ini read and turned into a pglens TOML file (pglens --from-pgbouncer).
// Pure: files are read through a callback, so tests hand the text over.
//
// The INI syntax is PgBouncer's (libusual's cfparser): `[section]`, `key = value` with the value
// running to the end of the line (no trailing comments), lines starting with `;` or `#` are
// comments, `%include FILE` reads another file in place (its name as written, so relative to the
// working directory, as PgBouncer opens it; ten levels at most), a key may be 'quoted'. Later
// settings override earlier ones. A [databases] value is a connection string of key=value pairs
// separated by spaces, a value 'quoted' with '' for a quote.
//
// The output sets every key PgBouncer would have used a value for, its defaults included (they
// differ from pglens': pool_mode session, max_client_conn 100, no overflow, ...), so the pglens it
// configures behaves as that PgBouncer did; each line says what it came from. A setting pglens
// cannot carry is a warning, listed in the output as a comment too.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace pglens::config {

// A file's text, or nullopt (with why in *error) when it cannot be read.
using ReadTextFile =
    std::function<std::optional<std::string>(const std::string& path, std::string* error)>;

struct IniSetting {
  std::string section;  // "pgbouncer", "databases", "users", ...
  std::string key;
  std::string value;
  std::string where;  // "FILE:LINE"
};

struct IniRead {
  std::vector<IniSetting> settings;  // in file order, includes expanded in place
  std::optional<std::string> error;  // "FILE:LINE: why": nothing is converted
};

IniRead read_pgbouncer_ini(const std::string& path, const ReadTextFile& read);

// A [databases] connection string: its key=value pairs in order, or nullopt with why.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_connstring(
    const std::string& text, std::string* error = nullptr);

struct PgBouncerConversion {
  std::string toml;                   // a pglens config file, warnings included as comments
  std::vector<std::string> warnings;  // "FILE:LINE: key = value: why it is not carried"
  std::optional<std::string> error;   // the INI could not be read: no toml
};

// working_dir: what a relative file name in the INI (auth_file, TLS files) is relative to for
// PgBouncer; they become absolute, since pglens reads them relative to its config file.
PgBouncerConversion convert_pgbouncer_ini(const std::string& path, const ReadTextFile& read,
                                          const std::string& working_dir);

}  // namespace pglens::config
