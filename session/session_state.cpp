#include "session/session_state.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace pglens::session {

namespace {

// ASCII only, inline: this runs on every statement a client sends (the C library's are calls
// through the locale).
char lower(char c) {
  return static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
}
bool is_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}
bool is_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == y; });
}

// Whether `text` holds "advisory_lock" in any case. Found by its rare 'v' (memchr, a few
// instructions per 16 bytes): most statements have none.
bool mentions_advisory_lock(std::string_view text) {
  constexpr std::string_view kNeedle = "advisory_lock";
  for (char v : {'v', 'V'}) {
    for (std::size_t i = 2; i < text.size();) {  // "ad" before the 'v'

      const void* hit = std::memchr(text.data() + i, v, text.size() - i);
      if (!hit) break;
      i = static_cast<std::size_t>(static_cast<const char*>(hit) - text.data());
      if (iequals(text.substr(i - 2, kNeedle.size()), kNeedle)) return true;
      ++i;
    }
  }
  return false;
}

// Parameters that follow the client to every server connection: pglens tracks them and the
// server reports each change (ParameterStatus).
constexpr std::array<std::string_view, 6> kFollowing = {
    "application_name", "client_encoding", "datestyle",
    "intervalstyle",    "timezone",        "standard_conforming_strings"};

// Words of one statement after another, skipping whitespace, comments, quoted literals and
// dollar-quoted bodies.
class Scanner {
  // What may end a statement or begin a literal, a quoted name or a comment.
  static constexpr std::array<bool, 256> kSpecial = [] {
    std::array<bool, 256> t{};
    for (unsigned char c : std::string_view(";'\"$-/")) t[c] = true;
    return t;
  }();

 public:
  explicit Scanner(std::string_view sql) : s_(sql) {}

  bool at_end() {
    skip_blanks();
    return i_ >= s_.size();
  }

  // The next word of this statement (an identifier or keyword; a quoted identifier without its
  // quotes), or "" at the statement's end or before anything else (a literal, punctuation).
  std::string_view word() {
    skip_blanks();
    if (i_ >= s_.size() || s_[i_] == ';') return {};
    if (s_[i_] == '"') {
      std::size_t start = ++i_;
      while (i_ < s_.size() && s_[i_] != '"') ++i_;
      auto w = s_.substr(start, i_ - start);
      if (i_ < s_.size()) ++i_;
      return w;
    }
    std::size_t start = i_;
    while (i_ < s_.size() && is_word(s_[i_])) ++i_;
    return s_.substr(start, i_ - start);
  }

  // Past the ';' that ends this statement.
  void next_statement() {
    while (i_ < s_.size()) {
      while (i_ < s_.size() && !kSpecial[static_cast<unsigned char>(s_[i_])]) ++i_;
      if (i_ == s_.size()) return;
      char c = s_[i_];
      if (c == ';') {
        ++i_;
        return;
      }
      if (c == '\'' || c == '"') {
        skip_quoted(c);
      } else if (c == '$') {
        skip_dollar_quoted();
      } else if ((c != '-' && c != '/') || !skip_comment()) {
        ++i_;
      }
    }
  }

 private:
  void skip_blanks() {
    while (i_ < s_.size()) {
      if (is_space(s_[i_]))
        ++i_;
      else if (!skip_comment())
        return;
    }
  }
  bool skip_comment() {
    if (i_ + 1 >= s_.size()) return false;
    if (s_[i_] == '-' && s_[i_ + 1] == '-') {
      auto end = s_.find('\n', i_ + 2);
      i_ = end == std::string_view::npos ? s_.size() : end;
      return true;
    }
    if (s_[i_] == '/' && s_[i_ + 1] == '*') {
      auto end = s_.find("*/", i_ + 2);
      i_ = end == std::string_view::npos ? s_.size() : end + 2;
      return true;
    }
    return false;
  }
  void skip_quoted(char quote) {
    ++i_;
    while (i_ < s_.size()) {
      if (s_[i_] == quote) {
        if (i_ + 1 < s_.size() && s_[i_ + 1] == quote) {  // '' inside a literal
          i_ += 2;
          continue;
        }
        ++i_;
        return;
      }
      ++i_;
    }
  }
  void skip_dollar_quoted() {
    std::size_t tag_end = s_.find('$', i_ + 1);
    if (tag_end == std::string_view::npos) {
      ++i_;
      return;
    }
    auto tag = s_.substr(i_, tag_end - i_ + 1);  // "$$" or "$fn$"
    if (!std::all_of(tag.begin() + 1, tag.end() - 1, is_word)) {
      ++i_;  // a parameter like $1, not a quote
      return;
    }
    auto close = s_.find(tag, tag_end + 1);
    i_ = close == std::string_view::npos ? s_.size() : close + tag.size();
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

bool follows_the_client(std::string_view parameter) {
  return std::any_of(kFollowing.begin(), kFollowing.end(),
                     [&](std::string_view p) { return iequals(parameter, p); });
}

// "" when the SET leaves nothing behind the client would not carry along.
std::string set_leaves(Scanner& in) {
  auto w = in.word();
  if (iequals(w, "local") || iequals(w, "transaction") || iequals(w, "constraints")) return {};
  if (iequals(w, "role")) return "SET ROLE";
  if (iequals(w, "session")) {
    w = in.word();
    if (iequals(w, "authorization")) return "SET SESSION AUTHORIZATION";
    if (iequals(w, "characteristics")) return "SET SESSION CHARACTERISTICS";
  }
  if (iequals(w, "time") && iequals(in.word(), "zone")) return {};  // TimeZone: reported
  if (w.empty() || follows_the_client(w)) return {};
  return "SET " + std::string(w);
}

}  // namespace

std::string session_state_left_by(std::string_view sql) {
  // Session-level advisory locks outlive the transaction (pg_advisory_xact_lock does not match).
  if (mentions_advisory_lock(sql)) return "advisory lock";
  Scanner in(sql);
  while (!in.at_end()) {
    auto w = in.word();
    std::string found;
    if (iequals(w, "set")) {
      found = set_leaves(in);
    } else if (iequals(w, "prepare")) {
      found = "PREPARE";
    } else if (iequals(w, "listen")) {
      found = "LISTEN";
    } else if (iequals(w, "load")) {
      found = "LOAD";
    } else if (iequals(w, "create")) {
      for (int i = 0; i < 4 && found.empty(); ++i) {
        auto next = in.word();
        if (iequals(next, "temp") || iequals(next, "temporary")) found = "CREATE TEMP";
        if (next.empty()) break;
      }
    } else if (iequals(w, "declare")) {
      for (auto prev = in.word(), next = in.word(); !next.empty(); prev = next, next = in.word())
        if (iequals(prev, "with") && iequals(next, "hold")) found = "DECLARE ... WITH HOLD";
    }
    if (!found.empty()) return found;
    in.next_statement();
  }
  return {};
}

}  // namespace pglens::session
