// SQL that leaves state on a server connection beyond its transaction, which the next client to
// get that connection in transaction mode would otherwise inherit: a SET of a parameter the
// server does not report back (search_path, statement_timeout, ...), SET ROLE / SESSION
// AUTHORIZATION, PREPARE, LISTEN, session-level advisory locks, temporary tables, WITH HOLD
// cursors, LOAD. Parameters the server reports (application_name, TimeZone, DateStyle, ...)
// are not on the list: they follow the client through ParameterStatus.
//
// A scan of the text, not a parse: statement-leading keywords (outside quotes, comments and
// dollar quoting) and the advisory-lock functions anywhere. It errs on the side of a reset: a
// false "yes" costs one DISCARD ALL, a false "no" another client's wrong state.
#pragma once

#include <string>
#include <string_view>

namespace pglens::session {

// What the first statement of `sql` that leaves state does ("SET search_path", "LISTEN",
// "advisory lock", ...), or "" for none.
std::string session_state_left_by(std::string_view sql);

}  // namespace pglens::session
