#include "analyzer/literal_skeleton.hpp"

#include <charconv>

namespace pglens::analyzer {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool ident_continue(char c) {
  return ident_start(c) || is_digit(c) || c == '$';
}

// End of a '...' string starting at i (the quote); '' inside is a quote. npos-like size() when
// unterminated.
std::size_t quoted_end(std::string_view s, std::size_t i, char quote) {
  for (++i; i < s.size(); ++i) {
    if (s[i] != quote) continue;
    if (i + 1 < s.size() && s[i + 1] == quote) {
      ++i;
      continue;
    }
    return i + 1;
  }
  return s.size();
}

// E'...' may hide a quote behind a backslash.
std::size_t escaped_end(std::string_view s, std::size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
      continue;
    }
    if (s[i] != '\'') continue;
    if (i + 1 < s.size() && s[i + 1] == '\'') {
      ++i;
      continue;
    }
    return i + 1;
  }
  return s.size();
}

// A dollar quote's opening tag at i ("$$" or "$tag$"): its length, 0 when there is none.
std::size_t dollar_tag(std::string_view s, std::size_t i) {
  std::size_t j = i + 1;
  if (j < s.size() && s[j] == '$') return 2;
  if (j >= s.size() || !ident_start(s[j])) return 0;
  while (j < s.size() && ident_continue(s[j]) && s[j] != '$') ++j;
  return j < s.size() && s[j] == '$' ? j - i + 1 : 0;
}

}  // namespace

void skeletonize(std::string_view s, Skeleton& out) {
  out.text.clear();
  out.literals.clear();
  std::size_t i = 0;
  auto keep = [&](std::size_t end) {
    out.text.append(s.substr(i, end - i));
    i = end;
  };
  while (i < s.size()) {
    char c = s[i];
    if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
      auto nl = s.find('\n', i);
      keep(nl == std::string_view::npos ? s.size() : nl);
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      std::size_t j = i + 2, depth = 1;  // comments nest
      while (j < s.size() && depth > 0) {
        if (s[j] == '/' && j + 1 < s.size() && s[j + 1] == '*') {
          ++depth;
          j += 2;
        } else if (s[j] == '*' && j + 1 < s.size() && s[j + 1] == '/') {
          --depth;
          j += 2;
        } else {
          ++j;
        }
      }
      keep(j);
    } else if (c == '"') {
      keep(quoted_end(s, i, '"'));
    } else if (c == '\'') {
      auto end = quoted_end(s, i, '\'');
      out.literals.push_back({static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(end),
                              LiteralToken::Kind::String});
      out.text.push_back(kStringMark);
      i = end;
    } else if (c == '$') {
      if (i + 1 < s.size() && is_digit(s[i + 1])) {  // a parameter
        std::size_t j = i + 1;
        while (j < s.size() && is_digit(s[j])) ++j;
        keep(j);
      } else if (auto tag = dollar_tag(s, i); tag != 0) {
        auto close = s.find(s.substr(i, tag), i + tag);
        keep(close == std::string_view::npos ? s.size() : close + tag);
      } else {
        keep(i + 1);
      }
    } else if (ident_start(c)) {
      std::size_t j = i;
      while (j < s.size() && ident_continue(s[j])) ++j;
      // A prefixed string: E'..', B'..', X'..', N'..', U&'..': kept whole.
      if (j == i + 1 && j < s.size() && s[j] == '\'') {
        char p = static_cast<char>(c | 0x20);
        if (p == 'e')
          j = escaped_end(s, j);
        else if (p == 'b' || p == 'x' || p == 'n')
          j = quoted_end(s, j, '\'');
      } else if (j == i + 1 && (c | 0x20) == 'u' && j + 1 < s.size() && s[j] == '&' &&
                 s[j + 1] == '\'') {
        j = quoted_end(s, j + 1, '\'');
      }
      keep(j);
    } else if (is_digit(c) || (c == '.' && i + 1 < s.size() && is_digit(s[i + 1]))) {
      std::size_t j = i;
      while (j < s.size() && is_digit(s[j])) ++j;
      if (j < s.size() && s[j] == '.' && !(j + 1 < s.size() && s[j + 1] == '.')) {
        ++j;
        while (j < s.size() && is_digit(s[j])) ++j;
      }
      if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
        std::size_t k = j + 1;
        if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
        if (k < s.size() && is_digit(s[k])) {
          while (k < s.size() && is_digit(s[k])) ++k;
          j = k;
        }
      }
      out.literals.push_back({static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j),
                              LiteralToken::Kind::Number});
      out.text.push_back(kNumberMark);
      i = j;
    } else {
      keep(i + 1);
    }
  }
}

void literal_value(std::string_view sql, const LiteralToken& token, bool negated,
                   std::string& out) {
  out.clear();
  auto text = sql.substr(token.begin, token.end - token.begin);
  if (token.kind == LiteralToken::Kind::String) {
    if (text.size() < 2) return;
    text = text.substr(1, text.size() - 2);
    for (std::size_t i = 0; i < text.size(); ++i) {
      out.push_back(text[i]);
      if (text[i] == '\'' && i + 1 < text.size() && text[i + 1] == '\'') ++i;
    }
    return;
  }
  bool digits_only = !text.empty();
  for (char c : text) digits_only = digits_only && is_digit(c);
  if (digits_only) {
    // scan.l: an integer that fits an int4 is an Integer node (printed back in decimal); a
    // larger one stays a Float with its text.
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc() && end == text.data() + text.size() && value <= 2147483647) {
      char buffer[24];
      auto [p, e] = std::to_chars(buffer, buffer + sizeof buffer, negated ? -value : value);
      out.assign(buffer, p);
      return;
    }
  }
  if (negated) out.push_back('-');
  out.append(text);
}

}  // namespace pglens::analyzer
