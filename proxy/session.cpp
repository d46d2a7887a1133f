#include "proxy/session.hpp"

#include <spdlog/spdlog.h>

#include <cctype>
#include <regex>

#include "proxy/admin_console.hpp"
#include "proxy/client_auth.hpp"
#include "proxy/client_parameters.hpp"
#include "proxy/execution_tracker.hpp"
#include "proxy/parking.hpp"
#include "proxy/proxy_server.hpp"
#include "proxy/request_ledger.hpp"

namespace pglens::proxy {

namespace {
using namespace asio::experimental::awaitable_operators;
using protocol::Bytes;
using protocol::ByteView;
using protocol::DecodeStatus;
using protocol::FrameKind;
using Handling = RequestLedger::Handling;

constexpr std::size_t kReadBufferSize = 64 * 1024;
// A Close of this name stands in for a Parse the server already has: closing a statement that
// does not exist is not an error, and its CloseComplete arrives exactly where ParseComplete would.
constexpr std::string_view kPlaceholderStatement = "pglens_placeholder";

std::int64_t wall_clock_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Every message forwarded passes through these two: plain range inserts into a buffer whose
// capacity stays from one batch to the next (no zero-filling, no reallocation once warm).
void append_header(Bytes& out, char type, std::uint32_t body_length) {
  std::uint32_t len = body_length + 4;
  const std::uint8_t header[5] = {
      static_cast<std::uint8_t>(type), static_cast<std::uint8_t>(len >> 24),
      static_cast<std::uint8_t>(len >> 16), static_cast<std::uint8_t>(len >> 8),
      static_cast<std::uint8_t>(len)};
  out.insert(out.end(), header, header + 5);
}

void append_message(Bytes& out, char type, ByteView body) {
  append_header(out, type, static_cast<std::uint32_t>(body.size()));
  out.insert(out.end(), body.begin(), body.end());
}

// `DEALLOCATE [PREPARE] name|ALL` as a whole simple query: the statement named, or "" for ALL.
std::optional<std::string> deallocate_target(std::string_view sql) {
  std::size_t i = 0;
  while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
  if (sql.size() - i < 10) return std::nullopt;
  std::string head(sql.substr(i, 10));
  for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (head != "deallocate") return std::nullopt;
  static const std::regex pattern(
      R"re(^\s*deallocate\s+(?:prepare\s+)?(?:"([^"]+)"|([A-Za-z_][A-Za-z0-9_$]*))\s*;?\s*$)re",
      std::regex::icase);
  std::cmatch m;
  if (!std::regex_match(sql.data(), sql.data() + sql.size(), m, pattern)) return std::nullopt;
  if (m[1].matched) return m[1].str();
  std::string name = m[2].str();
  std::string lower = name;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "all") return std::string();
  return lower;  // unquoted identifiers fold to lower case
}

// The same error at another severity: FATAL while logging in, ERROR once the client can go on.
void set_severity(protocol::ErrorResponse& e, std::string_view severity) {
  std::erase_if(e.fields, [](const auto& f) { return f.first == 'S' || f.first == 'V'; });
  e.fields.insert(e.fields.begin(), {{'S', std::string(severity)}, {'V', std::string(severity)}});
}

class ClientSession {
 public:
  ClientSession(tcp::socket client, ProxyServer& server, std::uint64_t id)
      : client_(std::move(client)),
        proxy_(server),
        id_(id),
        config_(server.config()),
        attached_(client_.get_executor()) {
    info_ = proxy_.clients().add(id_);
    error_code ec;
    auto remote = client_.remote_endpoint(ec);
    if (!ec) {
      info_->address = remote.address().to_string();
      info_->port = remote.port();
    }
    peer_ = info_->address + ":" + std::to_string(info_->port);
    client_.set_option(tcp::no_delay(true), ec);
  }

  awaitable<void> run() {
    auto started = Clock::now();
    co_await serve();
    co_await give_back_server();
    if (registered_) proxy_.cancels().remove_client(client_key_);
    proxy_.clients().remove(id_);
    error_code ignored;
    client_.shutdown(tcp::socket::shutdown_both, ignored);
    client_.close(ignored);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    spdlog::info("[c{}] disconnect {}: {} (after {} ms)", id_, peer_,
                 reason_.empty() ? "unknown" : reason_, ms);
  }

 private:
  // ---- startup and login ----

  awaitable<void> serve() {
    asio::steady_timer login_timer(client_.get_executor(), config_->client_login_timeout);
    auto startup = co_await (read_startup() || login_timer.async_wait(use_nothrow));
    if (startup.index() == 1) {
      co_await send_fatal("08P01",
                          "pglens: client did not complete its startup within the login timeout");
      end("startup timeout");
      co_return;
    }
    auto packet = std::get<0>(std::move(startup));
    if (!packet) co_return;
    if (packet->kind == protocol::StartupPacket::Kind::CancelRequest) {
      co_await forward_cancel(*packet);
      co_return;
    }
    if (proxy_.clients().size() > static_cast<std::size_t>(config_->max_client_conn)) {
      co_await send_fatal("53300", "pglens: no more connections allowed (max_client_conn " +
                                       std::to_string(config_->max_client_conn) + ")");
      end("max_client_conn reached");
      co_return;
    }
    std::string user(packet->param("user"));
    std::string database(packet->param("database"));
    if (database.empty()) database = user;
    info_->user = user;
    info_->database = database;
    info_->application_name = packet->param("application_name");
    for (const auto& [k, v] : packet->params)
      if (auto name = tracked_parameter(k)) client_params_[*name] = v;

    auto auth = co_await authenticate_client(client_, *config_, user);
    if (!auth.ok) {
      co_await send_fatal(auth.sqlstate, auth.message);
      end("client authentication failed: " + auth.message);
      co_return;
    }
    if (database == "pglens" || database == "pgbouncer") {
      co_await admin_console();
      co_return;
    }
    if (!co_await login()) co_return;
    co_await (client_to_server() || server_to_client());
  }

  // Reads startup-phase packets, refusing encryption requests, until a StartupMessage or a
  // CancelRequest arrives.
  awaitable<std::optional<protocol::StartupPacket>> read_startup() {
    while (true) {
      auto r = protocol::decode_startup(startup_buffer_);
      if (r.status == DecodeStatus::Error) {
        co_await send_fatal("08P01", "pglens: " + r.error);
        end("bad startup packet: " + r.error);
        co_return std::nullopt;
      }
      if (r.status == DecodeStatus::Frame) {
        startup_buffer_.erase(startup_buffer_.begin(),
                              startup_buffer_.begin() + static_cast<std::ptrdiff_t>(r.consumed));
        using Kind = protocol::StartupPacket::Kind;
        if (r.packet.kind == Kind::SSLRequest || r.packet.kind == Kind::GSSENCRequest) {
          static const std::uint8_t no[] = {'N'};
          if (!co_await write_all(client_, no)) {
            end("client closed connection during startup");
            co_return std::nullopt;
          }
          continue;
        }
        co_return std::move(r.packet);
      }
      std::array<std::uint8_t, 1024> chunk{};
      auto [ec, n] = co_await client_.async_read_some(asio::buffer(chunk), use_nothrow);
      if (ec) {
        if (ec != asio::error::operation_aborted) end("client closed connection during startup");
        co_return std::nullopt;
      }
      startup_buffer_.insert(startup_buffer_.end(), chunk.begin(),
                             chunk.begin() + static_cast<std::ptrdiff_t>(n));
    }
  }

  awaitable<void> forward_cancel(const protocol::StartupPacket& packet) {
    auto target = proxy_.cancels().find({packet.process_id, packet.secret_key});
    if (!target) {
      end("cancel request for an unknown or idle client");
      co_return;
    }
    co_await send_cancel(target->endpoint, target->server_key);
    end("cancel request forwarded");
  }

  awaitable<bool> login() {
    auto route = config_->route_for(info_->database);
    mode_ = config_->pool_mode_for(route);
    if (proxy_.analyzer() != nullptr) {
      auto who = std::make_shared<analyzer::SessionInfo>();
      who->session_id = id_;
      who->database = info_->database;
      who->user = info_->user;
      who->application_name = info_->application_name;
      who->client_address = info_->address;
      tracker_.emplace(std::move(who), proxy_.analyzer()->queue());
    }
    pool_ = proxy_.pool_for(PoolKey{info_->database, info_->user}, route, *config_);
    spdlog::info("[c{}] login {} user={} database={} application_name={} pool_mode={}", id_, peer_,
                 info_->user, info_->database, info_->application_name, to_string(mode_));

    // A first server connection proves the login works upstream and tells what the server reports.
    if (!co_await attach()) {
      // The upstream's own reason (no such database, bad password) is the client's answer.
      Bytes out;
      set_severity(last_acquire_error_, "FATAL");
      last_acquire_error_.encode(out);
      co_await write_all(client_, out);
      end("upstream login failed: " + std::string(last_acquire_error_.message()));
      co_return false;
    }
    auto parameters = pool_->server_parameters();
    client_key_ = proxy_.cancels().add_client();
    registered_ = true;
    proxy_.cancels().set_target(client_key_, CancelTarget{server_->endpoint, server_->key});
    if (mode_ != pool::PoolMode::Session) detach();

    Bytes out;
    protocol::Authentication{}.encode(out);
    for (auto p : parameters) {
      // The client sees the values it asked for, which every server it gets will have.
      if (auto it = client_params_.find(p.name); it != client_params_.end()) p.value = it->second;
      p.encode(out);
    }
    client_key_.encode(out);
    protocol::ReadyForQuery{'I'}.encode(out);
    if (!co_await write_all(client_, out)) {
      end("client closed connection during login");
      co_return false;
    }
    info_->state = server_ ? ClientState::Active : ClientState::Idle;
    co_return true;
  }

  // ---- server connections ----

  // Takes a server connection from the pool and brings its parameters in line with the client's.
  awaitable<bool> attach() {
    if (proxy_.paused()) co_await proxy_.wait_while_paused();
    info_->state = ClientState::Waiting;
    auto result = co_await pool_->acquire();
    pool_->traffic.wait_us += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(result.waited).count());
    proxy_.pool_wait_histogram().Observe(std::chrono::duration<double>(result.waited).count());
    if (!result.connection) {
      info_->state = ClientState::Idle;
      last_acquire_error_ = std::move(result.error);
      co_return false;
    }
    server_ = std::move(result.connection);
    if (tracker_) tracker_->add_pool_wait(result.waited);
    // Most of the time the backend already has exactly this client's values (clients of a pool
    // tend to share them): one map comparison, no SQL built.
    bool synced = server_->applied == client_params_;
    if (!synced) synced = co_await sync_parameters();
    if (!synced) {
      pool_->release(std::move(server_), false);
      info_->state = ClientState::Idle;
      co_return false;
    }
    info_->state = ClientState::Active;
    info_->server_id = server_->id;
    if (registered_)
      proxy_.cancels().set_target(client_key_, CancelTarget{server_->endpoint, server_->key});
    // Only now, with the parameters in place: a wake-up left over from an earlier attach may let
    // server_to_client look early, and it must not read while sync_parameters does.
    server_readable_ = true;
    attached_.wake();  // server_to_client reads from it now
    co_return true;
  }

  awaitable<bool> sync_parameters() {
    auto sql = parameter_sync_sql(client_params_, server_->applied, server_->parameters);
    if (sql.empty()) {  // what differs are server defaults the backend already has
      server_->applied = client_params_;
      co_return true;
    }
    Bytes out;
    protocol::Query{sql}.encode(out);
    if (!co_await write_all(server_->socket, out)) {
      last_acquire_error_ =
          protocol::make_error("08006", "pglens: server connection lost while applying parameters");
      co_return false;
    }
    MessageReader reader(protocol::Direction::Backend);
    std::optional<protocol::ErrorResponse> error;
    while (auto msg = co_await reader.read(server_->socket)) {
      if (msg->type == 'E') error = protocol::ErrorResponse::decode(msg->body);
      if (msg->type == 'Z') {
        if (!reader.pending().empty()) break;
        if (error) {
          last_acquire_error_ = *error;
          co_return false;
        }
        // The backend now has exactly the client's values.
        server_->applied = client_params_;
        co_return true;
      }
    }
    last_acquire_error_ =
        protocol::make_error("08006", "pglens: server connection lost while applying parameters");
    co_return false;
  }

  // Gives the server connection back to the pool (transaction and statement mode, between
  // transactions). Called only when nothing is in flight on it.
  void detach() {
    server_readable_ = false;
    info_->state = ClientState::Idle;
    info_->server_id = 0;
    if (registered_) proxy_.cancels().set_target(client_key_, std::nullopt);
    pool_->release(std::move(server_), true);
  }

  // At the end of the session: a clean connection goes back to the pool (after
  // server_reset_query in session mode); one left mid-transaction or mid-message is closed, so
  // no other client ever sees its state and its locks go at once.
  awaitable<void> give_back_server() {
    if (!server_ || !pool_) co_return;
    bool clean =
        !server_dirty_ && status_ == 'I' && ledger_.empty() && !unsynced_ && server_at_boundary_;
    if (clean && mode_ == pool::PoolMode::Session && !config_->server_reset_query.empty()) {
      Bytes out;
      protocol::Query{config_->server_reset_query}.encode(out);
      clean = co_await write_all(server_->socket, out);
      MessageReader reader(protocol::Direction::Backend);
      bool done = false;
      while (clean && !done) {
        auto msg = co_await reader.read(server_->socket);
        if (!msg || msg->type == 'E')
          clean = false;
        else if (msg->type == 'Z')
          done = reader.pending().empty();
      }
      if (clean) {
        server_->applied.clear();
        server_->statements.clear();
      }
    }
    if (!clean) {
      spdlog::info("[c{}] closing server connection s{}: left unclean", id_, server_->id);
      // A query still running there goes on, holding its locks, after its socket is closed:
      // cancel it, so they go now (best effort, without holding up the pool).
      if (request_started_ || !ledger_.empty())
        asio::co_spawn(client_.get_executor(), send_cancel(server_->endpoint, server_->key),
                       asio::detached);
    }
    info_->state = ClientState::Idle;
    server_readable_ = false;
    pool_->release(std::move(server_), clean);
  }

  // ---- client → server ----

  awaitable<void> client_to_server() {
    protocol::MessageDecoder decoder(protocol::Direction::Frontend);
    std::vector<std::uint8_t> buffer(kReadBufferSize);
    // Bytes a client sent right behind its startup packet belong to the typed phase.
    std::size_t carried = std::min(startup_buffer_.size(), buffer.size());
    std::copy_n(startup_buffer_.begin(), carried, buffer.begin());
    startup_buffer_.clear();
    Bytes out;
    while (true) {
      std::size_t n = carried;
      carried = 0;
      if (n == 0) {
        auto [ec, got] = co_await client_.async_read_some(asio::buffer(buffer), use_nothrow);
        if (ec) {
          if (ec == asio::error::operation_aborted) co_return;  // the other direction ended first
          std::string why = ec == asio::error::eof ? "client closed connection"
                                                   : "client read error: " + ec.message();
          if (!decoder.at_boundary())
            why += " (mid-message)";
          else if (status_ != 'I' || !ledger_.empty())
            why += " (mid-transaction)";
          end(std::move(why));
          co_return;
        }
        n = got;
      }
      if (pool_) pool_->traffic.bytes_received += n;
      read_at_ = Clock::now();
      info_->request_time_us = wall_clock_us();
      ByteView input(buffer.data(), n);
      bool terminate = false;
      out.clear();
      // Session mode forwards what it read; the other modes rebuild the stream message by
      // message, since the server behind it changes between transactions.
      std::size_t verbatim = mode_ == pool::PoolMode::Session ? n : 0;
      while (!input.empty()) {
        auto r = decoder.next(input);
        if (r.status == DecodeStatus::Error) {
          co_await flush_to_server(out);
          co_await send_fatal("08P01", "pglens: protocol violation from client: " + r.error);
          end("protocol violation: " + r.error);
          server_dirty_ = true;
          co_return;
        }
        std::size_t before = n - input.size();
        input = input.subspan(r.consumed);
        if (r.status == DecodeStatus::NeedMore) break;
        const auto& f = r.frame;
        if (f.kind == FrameKind::Message && f.type == 'X') {
          terminate = true;
          std::size_t through = before + r.consumed;  // Terminate is 5 bytes, its end is here
          if (mode_ == pool::PoolMode::Session) verbatim = through >= 5 ? through - 5 : 0;
          break;
        }
        if (mode_ == pool::PoolMode::Session) {
          if (f.kind == FrameKind::Message) {
            note_request(f.type);
            auto tag = track_request(f);
            if (answered(f.type)) ledger_.push(f.type, Handling::Pass, {}, tag);
          }
          continue;
        }
        auto step = route(f, out);
        if (step == Step::NeedServer) {
          if (!co_await flush_to_server(out)) co_return;
          if (!co_await attach()) {
            if (!co_await refuse(f.type)) co_return;
            continue;
          }
          read_at_ = Clock::now();  // the request starts now: the pool wait is counted apart
          step = route(f, out);
        }
        if (step == Step::ReplyReady) {
          if (!co_await reply_ready()) co_return;
        }
      }
      if (mode_ == pool::PoolMode::Session) {
        if (verbatim > 0 && !co_await write_all(server_->socket, {buffer.data(), verbatim})) {
          end("server closed connection");
          co_return;
        }
      } else {
        if (!send_to_server_now(out)) co_return;
        if (!out.empty()) {  // the socket took only part of it: wait for the rest to go
          if (!co_await flush_to_server(out)) co_return;
        }
      }
      if (terminate) {
        end("client sent Terminate");
        co_return;
      }
    }
  }

  // What the caller must do (asynchronously) for a frame route() could not finish.
  enum class Step {
    Done,
    NeedServer,  // nothing done yet: attach a server connection, then route the frame again
    ReplyReady,  // the end of a batch refused after a failed acquire: send ReadyForQuery
  };

  // Transaction and statement mode: one frame of the client's stream, rewritten into `out` for
  // the server connection it needs. Synchronous: the forwarding loop does the waiting.
  Step route(const protocol::Frame& f, Bytes& out) {
    if (f.kind == FrameKind::StreamChunk) {
      if (!skip_until_sync_ && server_) out.insert(out.end(), f.data.begin(), f.data.end());
      return Step::Done;
    }
    if (skip_until_sync_) {
      // After a failed acquire the client's batch is answered with one error and, at its Sync,
      // ReadyForQuery: as the server would after an error.
      if (f.type == 'S') {
        skip_until_sync_ = false;
        return Step::ReplyReady;
      }
      return Step::Done;
    }
    // A Flush outside an open batch asks for nothing, and COPY messages outside a COPY are
    // ignored by the server: forwarding them could only race a connection being given back.
    bool in_request = !ledger_.empty() || unsynced_;
    if ((f.type == 'H' && !unsynced_) ||
        ((f.type == 'd' || f.type == 'c' || f.type == 'f') && !in_request))
      return Step::Done;
    if (!server_) return Step::NeedServer;
    note_request(f.type);
    auto tag = track_request(f);
    if (f.kind == FrameKind::StreamStart) {  // a large CopyData
      append_header(out, f.type, f.body_length);
      return Step::Done;
    }
    switch (f.type) {
      case 'P':
        rewrite_parse(f.data, out);
        break;
      case 'B':
        rewrite_with_statement(f, out, true);
        break;
      case 'D':
        rewrite_with_statement(f, out, false);
        break;
      case 'C':
        rewrite_close(f.data, out);
        break;
      case 'Q':
        rewrite_query(f.data, out, tag);
        break;
      case 'E':
        ledger_.push('E', Handling::Pass, {}, tag);
        append_message(out, f.type, f.data);
        break;
      case 'S':
      case 'F':
        ledger_.push(f.type);
        append_message(out, f.type, f.data);
        break;
      default:  // Flush, CopyData, CopyDone, CopyFail: no answer of their own
        append_message(out, f.type, f.data);
        break;
    }
    return Step::Done;
  }

  // Book-keeping shared by every mode: when a round trip starts, whether the batch is open.
  void note_request(char type) {
    if (!request_started_) {
      request_started_ = true;
      request_start_ = read_at_;
      if (!transaction_started_) {
        transaction_started_ = true;
        transaction_start_ = request_start_;
      }
    }
    if (type == 'P' || type == 'B' || type == 'D' || type == 'E' || type == 'C') unsynced_ = true;
    if (type == 'S' || type == 'Q') unsynced_ = false;
  }

  // Requests the server answers (and the ledger records); Flush and COPY data are not.
  static bool answered(char type) {
    return type == 'P' || type == 'B' || type == 'D' || type == 'E' || type == 'C' || type == 'S' ||
           type == 'Q' || type == 'F';
  }

  // Feeds the analysis; returns the tag an Execute or Query goes by in the ledger.
  std::uint64_t track_request(const protocol::Frame& f) {
    if (!tracker_ || f.kind != FrameKind::Message) return 0;
    switch (f.type) {
      case 'P':
        tracker_->on_parse(f.data);
        return 0;
      case 'B':
        tracker_->on_bind(f.data);
        return 0;
      case 'C':
        tracker_->on_close(f.data);
        return 0;
      case 'S':
        tracker_->on_sync();
        return 0;
      case 'E':
        return tracker_->on_execute(f.data, read_at_);
      case 'Q':
        return tracker_->on_query(f.data, read_at_);
      default:
        return 0;
    }
  }

  void rewrite_parse(ByteView body, Bytes& out) {
    auto parse = protocol::Parse::decode(body);
    if (!parse || parse->statement.empty()) {  // malformed: the server will say so; unnamed: as is
      ledger_.push('P');
      append_message(out, 'P', body);
      return;
    }
    auto name = server_statement_name(parse->query, parse->param_types);
    client_statements_[parse->statement] = ClientStatement{parse->query, parse->param_types, name};
    if (server_->statements.touch(name)) {
      protocol::Close{'S', std::string(kPlaceholderStatement)}.encode(out);
      ledger_.push('C', Handling::CloseAsParseComplete);
      return;
    }
    prepare_on_server(name, parse->query, parse->param_types, Handling::Pass, out);
  }

  void prepare_on_server(const std::string& name, const std::string& query,
                         const std::vector<std::uint32_t>& types, Handling handling, Bytes& out) {
    if (auto evicted = server_->statements.insert(name)) {
      protocol::Close{'S', *evicted}.encode(out);
      ledger_.push('C', Handling::Skip);
    }
    protocol::Parse{name, query, types}.encode(out);
    ledger_.push('P', handling, name);
  }

  // Bind and Describe name a statement: the client's name becomes the server-side one, prepared
  // first if the server this client has now does not have it.
  void rewrite_with_statement(const protocol::Frame& f, Bytes& out, bool is_bind) {
    protocol::Reader in(f.data);
    std::string_view portal;
    char target = 'S';
    if (is_bind)
      portal = in.cstring();
    else
      target = static_cast<char>(in.u8());
    auto statement = in.cstring();
    const ClientStatement* known = nullptr;
    if (!in.failed() && target == 'S' && !statement.empty()) {
      auto it = client_statements_.find(statement);
      if (it != client_statements_.end()) known = &it->second;
    }
    if (known == nullptr) {  // unnamed, a portal, unknown or malformed: the server decides
      ledger_.push(f.type);
      append_message(out, f.type, f.data);
      return;
    }
    if (!server_->statements.touch(known->server_name))
      prepare_on_server(known->server_name, known->query, known->param_types, Handling::Skip, out);
    ledger_.push(f.type);
    // The same message with the server-side name, written straight into `out`.
    auto rest = in.rest();
    const auto& name = known->server_name;
    std::size_t head = is_bind ? portal.size() + 1 : 1;
    append_header(out, f.type, static_cast<std::uint32_t>(head + name.size() + 1 + rest.size()));
    if (is_bind) {
      out.insert(out.end(), portal.begin(), portal.end());
      out.push_back(0);
    } else {
      out.push_back(static_cast<std::uint8_t>(target));
    }
    out.insert(out.end(), name.begin(), name.end());
    out.push_back(0);
    out.insert(out.end(), rest.begin(), rest.end());
  }

  void rewrite_close(ByteView body, Bytes& out) {
    auto close = protocol::Close::decode(body);
    if (close && close->target == 'S' && !close->name.empty() &&
        client_statements_.erase(close->name) > 0) {
      // The server-side statement stays for other clients; the client gets its CloseComplete.
      protocol::Close{'S', std::string(kPlaceholderStatement)}.encode(out);
      ledger_.push('C');
      return;
    }
    ledger_.push('C');
    append_message(out, 'C', body);
  }

  void rewrite_query(ByteView body, Bytes& out, std::uint64_t tag) {
    auto sql = protocol::as_chars(body.first(body.empty() ? 0 : body.size() - 1));
    if (auto target = deallocate_target(sql)) {
      if (target->empty()) {
        client_statements_.clear();
      } else {
        client_statements_.erase(*target);
      }
      protocol::Query{""}.encode(out);
      ledger_.push('Q', Handling::EmptyAsDeallocate, {}, tag);
      return;
    }
    ledger_.push('Q', Handling::Pass, {}, tag);
    append_message(out, 'Q', body);
  }

  // The client asked for something and no server connection could be had: it gets the reason
  // and stays connected.
  awaitable<bool> refuse(char type) {
    Bytes out;
    set_severity(last_acquire_error_, "ERROR");
    last_acquire_error_.encode(out);
    spdlog::warn("[c{}] {}", id_, last_acquire_error_.message());
    if (!co_await write_all(client_, out)) {
      end("client closed connection");
      co_return false;
    }
    if (type == 'Q' || type == 'S') {
      bool ok = co_await reply_ready();
      co_return ok;
    }
    skip_until_sync_ = true;
    co_return true;
  }

  awaitable<bool> reply_ready() {
    Bytes out;
    protocol::ReadyForQuery{'I'}.encode(out);
    if (!co_await write_all(client_, out)) {
      end("client closed connection");
      co_return false;
    }
    co_return true;
  }

  // Sends what the server's socket takes now and drops it from `out`; false when the server is
  // gone. The common case: everything goes, with no trip through the scheduler.
  bool send_to_server_now(Bytes& out) {
    if (out.empty()) return true;
    if (!server_) {
      out.clear();
      return true;
    }
    error_code ec;
    std::size_t sent = send_now(server_->socket, out, ec);
    if (ec) {
      out.clear();
      server_dirty_ = true;
      end("server closed connection");
      return false;
    }
    out.erase(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(sent));
    return true;
  }

  awaitable<bool> flush_to_server(Bytes& out) {
    if (out.empty()) co_return true;
    if (!server_) {
      out.clear();
      co_return true;
    }
    // Once every request in `out` has been answered the connection may go back to the pool: by
    // then the server has read all of it, so nothing of this write can reach another client.
    bool ok = co_await write_all(server_->socket, out);
    out.clear();
    if (!ok) {
      server_dirty_ = true;
      end("server closed connection");
    }
    co_return ok;
  }

  // ---- server → client ----

  awaitable<void> server_to_client() {
    protocol::MessageDecoder decoder(protocol::Direction::Backend);
    std::vector<std::uint8_t> buffer(kReadBufferSize);
    Bytes out;
    while (true) {
      if (!server_readable_) {
        auto ec = co_await attached_.wait();
        if (ec || ended_) co_return;  // cancelled: the other direction ended
        if (!server_readable_) continue;
        decoder = protocol::MessageDecoder(protocol::Direction::Backend);
      }
      ServerConnection& server = *server_;
      auto [ec, n] = co_await server.socket.async_read_some(asio::buffer(buffer), use_nothrow);
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;  // the other direction ended first
        server_dirty_ = true;
        end(ec == asio::error::eof ? "server closed connection"
                                   : "server read error: " + ec.message());
        if (decoder.at_boundary())
          co_await send_fatal("08006", "pglens: the server connection was lost");
        co_return;
      }
      read_at_ = Clock::now();
      ByteView input(buffer.data(), n);
      out.clear();
      bool fatal = false;
      while (!input.empty()) {
        auto r = decoder.next(input);
        if (r.status == DecodeStatus::Error) {
          server_dirty_ = true;
          end("protocol violation from server: " + r.error);
          co_return;
        }
        input = input.subspan(r.consumed);
        if (r.status == DecodeStatus::NeedMore) break;
        if (!on_server_frame(r.frame, out)) {
          fatal = true;
          break;
        }
      }
      server_at_boundary_ = decoder.at_boundary();
      const Bytes& to_client = out;
      ByteView bytes =
          mode_ == pool::PoolMode::Session ? ByteView(buffer.data(), n) : ByteView(to_client);
      if (!bytes.empty()) {
        pool_->traffic.bytes_sent += bytes.size();
        // write_all does the same, but awaiting it costs a coroutine frame per answer.
        error_code ec;
        std::size_t sent = send_now(client_, bytes, ec);
        bool written = !ec;
        if (written && sent < bytes.size())
          written = co_await write_all(client_, bytes.subspan(sent));
        if (!written) {
          end("client closed connection");
          co_return;
        }
      }
      if (fatal) {
        server_dirty_ = true;
        co_await send_fatal("25001",
                            "pglens: transaction blocks are not allowed in statement pooling mode");
        end("transaction block in statement mode");
        co_return;
      }
      if (mode_ != pool::PoolMode::Session && server_at_boundary_ && ledger_.empty() &&
          status_ == 'I' && !unsynced_ && !skip_until_sync_) {
        detach();
      }
    }
  }

  // Observes (all modes) and, outside session mode, re-encodes one server frame for the client.
  // False when the session must end (a transaction block in statement mode).
  bool on_server_frame(const protocol::Frame& f, Bytes& out) {
    if (f.kind == FrameKind::StreamChunk) {
      if (mode_ != pool::PoolMode::Session) out.insert(out.end(), f.data.begin(), f.data.end());
      return true;
    }
    auto outcome = ledger_.on_response(f.type);
    if (tracker_) {
      tracker_->on_response(f, outcome, read_at_);
      if (ledger_.has_skipped_tags()) tracker_->on_skipped(ledger_.take_skipped_tags());
    }
    if (f.kind == FrameKind::Message) {
      if (f.type == 'Z' && f.data.size() == 1) {
        status_ = static_cast<char>(f.data[0]);
        info_->in_transaction = status_ != 'I';
        finish_round_trip();
        if (tracker_) {
          tracker_->on_ready(status_);
          if (ledger_.empty()) tracker_->on_all_answered();
        }
        if (mode_ == pool::PoolMode::Statement && status_ != 'I') return false;
      } else if (f.type == 'S') {
        // The client changed a parameter (SET application_name ...): it follows the client now.
        if (auto p = protocol::ParameterStatus::decode(f.data)) {
          if (auto name = tracked_parameter(p->name)) {
            client_params_[*name] = p->value;
            server_->applied[*name] = p->value;
          }
        }
      } else if (f.type == 'C' && f.data.size() >= 11 &&
                 protocol::as_chars(f.data).substr(0, 11) == "DISCARD ALL") {
        server_->statements.clear();
        server_->applied.clear();
      }
    }
    for (const auto& name : ledger_.take_unprepared()) server_->statements.erase(name);
    if (mode_ == pool::PoolMode::Session) return true;
    switch (outcome.verdict) {
      case RequestLedger::Verdict::Forward:
        if (f.kind == FrameKind::StreamStart)
          append_header(out, f.type, f.body_length);
        else
          append_message(out, f.type, f.data);
        break;
      case RequestLedger::Verdict::Drop:
        break;
      case RequestLedger::Verdict::AsParseComplete:
        protocol::ParseComplete{}.encode(out);
        break;
      case RequestLedger::Verdict::AsDeallocate:
        protocol::CommandComplete{"DEALLOCATE"}.encode(out);
        break;
    }
    return true;
  }

  // At ReadyForQuery: a round trip ended, and with status 'I' a transaction (implicit or not).
  void finish_round_trip() {
    if (!request_started_ || !pool_) return;
    request_started_ = false;
    auto now = read_at_;
    pool_->traffic.queries++;
    pool_->traffic.query_us += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(now - request_start_).count());
    if (status_ == 'I' && transaction_started_) {
      transaction_started_ = false;
      pool_->traffic.transactions++;
      pool_->traffic.transaction_us += static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(now - transaction_start_).count());
    }
  }

  // ---- admin console ----

  awaitable<void> admin_console() {
    auto cfg = config_;
    if (std::find(cfg->admin_users.begin(), cfg->admin_users.end(), info_->user) ==
        cfg->admin_users.end()) {
      co_await send_fatal("28000", "pglens: user \"" + info_->user + "\" is not in admin_users");
      end("admin console refused");
      co_return;
    }
    info_->state = ClientState::Idle;
    spdlog::info("[c{}] admin console login {} user={}", id_, peer_, info_->user);
    AdminConsole console(proxy_);
    Bytes out;
    protocol::Authentication{}.encode(out);
    for (auto& p : AdminConsole::parameters()) p.encode(out);
    protocol::BackendKeyData{0, 0}.encode(out);
    protocol::ReadyForQuery{'I'}.encode(out);
    if (!co_await write_all(client_, out)) co_return;
    MessageReader reader(protocol::Direction::Frontend);
    // Bytes after the startup packet were kept in startup_buffer_; the reader starts fresh, which
    // is fine since a client waits for ReadyForQuery before its first query.
    while (auto msg = co_await reader.read(client_)) {
      out.clear();
      if (msg->type == 'X') {
        end("client sent Terminate");
        co_return;
      }
      if (msg->type != 'Q') {
        protocol::make_error("08P01",
                             "pglens admin console: only the simple query protocol is supported")
            .encode(out);
        protocol::ReadyForQuery{'I'}.encode(out);
      } else {
        auto query = protocol::Query::decode(msg->body);
        auto result = console.execute(query ? query->sql : std::string());
        out = std::move(result.response);
        protocol::ReadyForQuery{'I'}.encode(out);
      }
      if (!co_await write_all(client_, out)) break;
    }
    end(reader.error().empty() ? "client closed connection" : reader.error());
  }

  // ---- helpers ----

  awaitable<void> send_fatal(std::string_view sqlstate, std::string_view message) {
    spdlog::warn("[c{}] {}: {}", id_, sqlstate, message);
    Bytes out;
    protocol::make_error(sqlstate, message, "FATAL").encode(out);
    co_await write_all(client_, out);
  }

  // Records why the session ends; the first reason wins.
  void end(std::string reason) {
    ended_ = true;
    if (reason_.empty()) reason_ = std::move(reason);
  }

  tcp::socket client_;
  ProxyServer& proxy_;
  std::uint64_t id_;
  std::shared_ptr<const config::Config> config_;
  std::shared_ptr<ClientInfo> info_;
  std::string peer_;
  std::string reason_;  // why the session ended; empty while it runs
  bool ended_ = false;
  Bytes startup_buffer_;
  pool::PoolMode mode_ = pool::PoolMode::Session;
  std::shared_ptr<ServerPool> pool_;
  std::unique_ptr<ServerConnection> server_;
  Parking attached_;              // woken when a server connection is attached
  bool server_readable_ = false;  // server_ is attached and synced: server_to_client reads it
  protocol::ErrorResponse last_acquire_error_;
  protocol::BackendKeyData client_key_;
  bool registered_ = false;
  std::map<std::string, std::string> client_params_;
  std::map<std::string, ClientStatement, std::less<>> client_statements_;
  RequestLedger ledger_;
  char status_ = 'I';             // from the last ReadyForQuery
  bool unsynced_ = false;         // extended-protocol messages sent since the last Sync
  bool skip_until_sync_ = false;  // a failed acquire in the middle of a batch
  bool server_dirty_ = false;
  bool server_at_boundary_ = true;
  bool request_started_ = false;
  Clock::time_point request_start_{};
  bool transaction_started_ = false;
  Clock::time_point transaction_start_{};
  // When the bytes being handled were read (either direction): every timestamp of a read's
  // messages, one clock read per read instead of one per message.
  Clock::time_point read_at_{};
  std::optional<ExecutionTracker> tracker_;  // set when analysis is on
};
}  // namespace

awaitable<void> serve_client(tcp::socket client, ProxyServer& server, std::uint64_t session_id) {
  ClientSession session(std::move(client), server, session_id);
  co_await session.run();
}

}  // namespace pglens::proxy
