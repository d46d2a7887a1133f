// Bind values on their way from a proxy thread to the analyzer. The proxy thread copies the
// parameter part of a Bind message as it came, cut to an event's bounds; the analyzer's thread
// turns it into ExecutionEvent::parameters. Decoding every value into a string of its own on the
// forwarding thread cost it more than one copy of the bytes does.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pglens::analyzer {

// `rest`: a Bind message's body from its parameter format codes on. Fills `captured` with the
// format codes and the first kMaxParameters values, each cut to kMaxParameterBytes bytes, in the
// Bind's own layout (a single copy when nothing needs cutting). False, `captured` empty, when
// `rest` is malformed: the server rejects such a Bind, so no Execute of it runs.
bool capture_bind_values(std::span<const std::uint8_t> rest, std::string& captured);

// What capture_bind_values kept, as the event carries it: text values as they are, binary ones as
// \x and hex (of as many bytes as kMaxParameterBytes hex digits show), NULL as nullopt. The
// strings already in `parameters` are reused.
void decode_bind_values(std::string_view captured,
                        std::vector<std::optional<std::string>>& parameters);

}  // namespace pglens::analyzer
