// A statement's text with its plain constants blanked: what is left when numbers and '...'
// strings are taken out. Texts that differ only in such constants (a simple-protocol client's
// "... WHERE id = 42" and "... WHERE id = 43") have one skeleton, and libpg_query tells the same
// about both but their literals: FingerprintCache analyses one, checks the rest would agree, and
// serves the others from that template with a scan of their text instead of a parse.
//
// The scan follows PostgreSQL 15's lexer (scan.l, standard_conforming_strings on) as far as it
// needs to: comments, "quoted identifiers", $n parameters, $tag$dollar quotes$tag$ and prefixed
// strings (E'', B'', X'', N'', U&'') are kept as they are; a number is digits with an optional
// fraction and exponent (or a fraction alone, ".5"), a string is '...' with '' inside.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pglens::analyzer {

struct LiteralToken {
  enum class Kind : std::uint8_t { Number, String };
  std::uint32_t begin = 0, end = 0;  // in the original text
  Kind kind = Kind::Number;
};

// The bytes that stand for a blanked literal in a skeleton (never in valid SQL outside a string).
inline constexpr char kNumberMark = '\x01';
inline constexpr char kStringMark = '\x02';

struct Skeleton {
  std::string text;                    // the statement with each literal replaced by its mark
  std::vector<LiteralToken> literals;  // in text order
};

// Fills `out` (its buffers are reused: no allocation once warm).
void skeletonize(std::string_view sql, Skeleton& out);

// What libpg_query's parse tree gives as a literal's value (A_Const's ival, fval or sval):
// an integer that fits 32 bits in decimal without leading zeros, a larger or fractional number
// as written, a string with '' undoubled. `negated`: a unary minus folded into the constant.
void literal_value(std::string_view sql, const LiteralToken& token, bool negated, std::string& out);

}  // namespace pglens::analyzer
