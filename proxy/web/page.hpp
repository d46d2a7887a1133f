// The HTML page pglens serves at / on its HTTP port (proxy/web/index.html, embedded at build time
// by proxy/web/embed.cmake): self-contained, it reads /api/fingerprints, /api/advice and
// /api/pools.
#pragma once

#include <string_view>

namespace pglens::proxy::web {

std::string_view index_html();

}  // namespace pglens::proxy::web
