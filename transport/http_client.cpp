#include "transport/http_client.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <tuple>

#include <sys/stat.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "transport/sha256.hpp"


namespace interfaced::transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using boost::system::error_code;

http_client_options client_options(const backend_options& cfg, std::string token, event_log log) {
  http_client_options o;
  o.base_url = cfg.base_url;
  o.ca_file = cfg.ca_file;
  o.verify_tls = cfg.verify_tls;
  o.connect_timeout = cfg.connect_timeout;
  o.request_timeout = cfg.request_timeout;
  o.body_limit = cfg.max_response_bytes;
  o.token = std::move(token);
  o.log = std::move(log);
  return o;
}

namespace {

std::string trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

struct parsed_url {
  bool tls = false;
  std::string host;  // without IPv6 brackets
  std::string port;
  std::string prefix;  // "" or "/api" (no trailing slash)
};

parsed_url parse_base_url(const std::string& url) {
  parsed_url u;
  std::string_view rest = url;
  if (rest.starts_with("https://")) {
    u.tls = true;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    throw std::invalid_argument("backend base URL must start with http:// or https://: " + url);
  }
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) u.prefix = std::string(rest.substr(slash));
  while (!u.prefix.empty() && u.prefix.back() == '/') u.prefix.pop_back();
  if (authority.find('@') != std::string_view::npos) {
    // Credentials in a URL end up in logs; the token has its own file.
    throw std::invalid_argument("backend base URL must not carry credentials");
  }
  if (authority.starts_with("[")) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument("bad IPv6 host in base URL: " + url);
    u.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (authority.starts_with(":")) u.port = std::string(authority.substr(1));
  } else {
    const auto colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
  }
  if (u.host.empty()) throw std::invalid_argument("backend base URL has no host: " + url);
  if (u.port.empty()) u.port = u.tls ? "443" : "80";
  unsigned p = 0;
  auto [ptr, ec] = std::from_chars(u.port.data(), u.port.data() + u.port.size(), p);
  if (ec != std::errc{} || ptr != u.port.data() + u.port.size() || p == 0 || p > 65535) {
    throw std::invalid_argument("bad port in backend base URL: " + url);
  }
  return u;
}

bool is_timeout(const error_code& ec) { return ec == beast::error::timeout; }

// Sets a field as beast's fields::set does: any field of that name (case-insensitive) goes, the
// new one is appended.
void set_field(std::vector<http_header>& fields, std::string name, std::string value) {
  std::erase_if(fields, [&](const http_header& f) { return beast::iequals(f.name, name); });
  fields.push_back({std::move(name), std::move(value)});
}

// "METHOD target HTTP/1.1", the fields in order, the empty line.
std::string request_head(std::string_view method, std::string_view target, const std::vector<http_header>& fields) {
  std::size_t n = method.size() + target.size() + 16;
  for (const auto& f : fields) n += f.name.size() + f.value.size() + 4;
  std::string out;
  out.reserve(n);
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  for (const auto& f : fields) out.append(f.name).append(": ").append(f.value).append("\r\n");
  out.append("\r\n");
  return out;
}

// A kept-alive connection the server had already closed: the request never reached it.
bool stale_connection(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::eof || ec == ssl::error::stream_truncated;
}

}  // namespace

bool tls_verification_failed(const error_code& ec) noexcept {
  return ec.category() == asio::error::get_ssl_category() &&
         ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED;
}

std::string load_bearer_token(const backend_options& cfg) {
  if (!cfg.token_file.empty()) {
    std::ifstream in(cfg.token_file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read the backend token file " + cfg.token_file);
    std::string t = trim(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
    if (t.empty()) throw std::runtime_error("the backend token file " + cfg.token_file + " is empty");
    return t;
  }
  if (!cfg.token_env.empty()) {
    const char* v = std::getenv(cfg.token_env.c_str());
    std::string t = v ? trim(v) : std::string();
    if (t.empty()) throw std::runtime_error("the environment variable " + cfg.token_env + " is not set or empty");
    return t;
  }
  return {};
}

namespace {

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (exactly 29 characters).
std::optional<std::chrono::system_clock::time_point> parse_imf_fixdate(std::string_view v) noexcept {
  static constexpr std::string_view days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (v.size() != 29 || v.substr(3, 2) != ", " || v[7] != ' ' || v[11] != ' ' || v[16] != ' ' || v[19] != ':' ||
      v[22] != ':' || v.substr(25) != " GMT")
    return std::nullopt;
  if (std::find(std::begin(days), std::end(days), v.substr(0, 3)) == std::end(days)) return std::nullopt;
  const auto mon = std::find(std::begin(months), std::end(months), v.substr(8, 3));
  if (mon == std::end(months)) return std::nullopt;
  auto number = [&](std::size_t at, std::size_t len, unsigned& out) {
    auto [p, ec] = std::from_chars(v.data() + at, v.data() + at + len, out);
    return ec == std::errc{} && p == v.data() + at + len;
  };
  unsigned d = 0, y = 0, h = 0, mi = 0, s = 0;
  if (!number(5, 2, d) || !number(12, 4, y) || !number(17, 2, h) || !number(20, 2, mi) || !number(23, 2, s))
    return std::nullopt;
  using namespace std::chrono;
  const year_month_day ymd{year{static_cast<int>(y)}, month{static_cast<unsigned>(mon - std::begin(months) + 1)},
                           day{d}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60) return std::nullopt;
  return sys_days{ymd} + hours{h} + minutes{mi} + seconds{s};
}

}  // namespace

std::optional<std::chrono::seconds> parse_retry_after(std::string_view v,
                                                      std::chrono::system_clock::time_point now) noexcept {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  if (const auto at = parse_imf_fixdate(v)) {
    const auto wait = std::chrono::ceil<std::chrono::seconds>(*at - now);
    return std::max(wait, std::chrono::seconds(0));
  }
  std::uint32_t s = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), s);
  if (ec != std::errc{} || ptr != v.data() + v.size()) return std::nullopt;
  return std::chrono::seconds(s);
}

std::string url_encode(std::string_view v) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0x0F]);
    }
  }
  return out;
}

struct http_client::impl : std::enable_shared_from_this<http_client::impl> {
  impl(asio::any_io_executor e, http_client_options o)
      : ex(std::move(e)), opt(std::move(o)), url(parse_base_url(opt.base_url)), resolver(ex) {
    if (url.tls) {
      ctx.emplace(ssl::context::tls_client);
      ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      if (opt.verify_tls) {
        error_code ec;
        ctx->set_default_verify_paths(ec);  // no system store is not fatal when ca_file is given
        if (!opt.ca_file.empty()) {
          ctx->load_verify_file(opt.ca_file, ec);
          if (ec) throw std::invalid_argument("cannot load the backend CA file " + opt.ca_file + ": " + ec.message());
        }
        ctx->set_verify_mode(ssl::verify_peer);
      } else {
        ctx->set_verify_mode(ssl::verify_none);
        emit(opt.log, "backend TLS certificate verification is OFF (verify_tls=false): the backend's identity "
                      "is not checked [BACKEND-006]");
      }
    }
  }

  asio::any_io_executor ex;
  http_client_options opt;
  parsed_url url;
  tcp::resolver resolver;
  std::optional<ssl::context> ctx;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;

  [[nodiscard]] bool connected() const {
    if (plain) return plain->socket().is_open();
    if (tls) return beast::get_lowest_layer(*tls).socket().is_open();
    return false;
  }

  // From outside a request (stop, destructor): closes the descriptors only, so an operation in
  // progress ends with operation_aborted while its stream object stays valid.
  void close() noexcept {
    error_code ignored;
    resolver.cancel();
    if (plain) plain->socket().close(ignored);
    if (tls) beast::get_lowest_layer(*tls).socket().close(ignored);
  }

  // Inside a request, with nothing pending: drop the connection objects.
  void reset() noexcept {
    close();
    plain.reset();
    tls.reset();
    buffer.clear();
  }

  asio::awaitable<error_code> connect() {
    auto self = shared_from_this();
    reset();
    // The resolver has no deadline of its own: a timer cancels it.
    asio::steady_timer deadline(ex);
    deadline.expires_after(opt.connect_timeout);
    auto resolve_timed_out = std::make_shared<bool>(false);
    deadline.async_wait([this, self, resolve_timed_out](error_code ec) {
      if (!ec) {
        *resolve_timed_out = true;
        resolver.cancel();
      }
    });
    auto [rec, endpoints] = co_await resolver.async_resolve(url.host, url.port, asio::as_tuple(asio::use_awaitable));
    deadline.cancel();
    if (*resolve_timed_out) co_return error_code(beast::error::timeout);
    if (rec) co_return rec;

    beast::tcp_stream stream(ex);
    stream.expires_after(opt.connect_timeout);
    auto [cec, ep] = co_await stream.async_connect(endpoints, asio::as_tuple(asio::use_awaitable));
    if (cec) co_return cec;
    stream.socket().set_option(tcp::no_delay(true));

    if (!url.tls) {
      stream.expires_never();
      plain.emplace(std::move(stream));
      co_return error_code{};
    }
    tls.emplace(std::move(stream), *ctx);
    // SNI, and the name the certificate must carry (an IP address is checked as one).
    if (!SSL_set_tlsext_host_name(tls->native_handle(), url.host.c_str())) {
      error_code ec(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
      tls.reset();
      co_return ec;
    }
    if (opt.verify_tls) tls->set_verify_callback(ssl::host_name_verification(url.host));
    beast::get_lowest_layer(*tls).expires_after(opt.connect_timeout);
    auto [hec] = co_await tls->async_handshake(ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
    if (hec) {
      tls.reset();
      co_return hec;
    }
    beast::get_lowest_layer(*tls).expires_never();
    co_return error_code{};
  }

  template <class Stream>
  asio::awaitable<http_result> exchange(Stream& stream, const std::string& wire) {
    http_result r;
    beast::get_lowest_layer(stream).expires_after(opt.request_timeout);
    auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(wire), asio::as_tuple(asio::use_awaitable));
    if (wec) {
      r.ec = wec;
      co_return r;
    }
    bool keep_alive = false;
    r = co_await read_answer(stream, keep_alive);
    if (!r.ec && !keep_alive) reset();
    co_return r;
  }

  // The answer of one exchange (the request's deadline still running): status, Retry-After, body.
  template <class Stream>
  asio::awaitable<http_result> read_answer(Stream& stream, bool& keep_alive) {
    http_result r;
    http::response_parser<http::string_body> parser;
    parser.body_limit(opt.body_limit);
    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    beast::get_lowest_layer(stream).expires_never();
    if (rec) {
      r.ec = rec;
      co_return r;
    }
    auto res = parser.release();
    r.status = res.result_int();
    if (auto it = res.find(http::field::retry_after); it != res.end()) r.retry_after = parse_retry_after(it->value());
    r.body = std::move(res.body());
    keep_alive = res.keep_alive();
    co_return r;
  }

  // "host" or "host:port" as the Host header names it (IPv6 in brackets).
  [[nodiscard]] std::string host_field() const {
    const bool default_port = url.port == (url.tls ? "443" : "80");
    const std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
    return default_port ? host : host + ":" + url.port;
  }

  asio::awaitable<http_result> request(http_method method, std::string path, std::string body,
                                       std::vector<http_header> headers) {
    auto self = shared_from_this();
    // The request as it goes on the wire, head and body in one buffer (one send): the fields a
    // beast request would carry, a later field replacing an earlier one of the same name.
    std::vector<http_header> fields{{"Host", host_field()}, {"User-Agent", opt.user_agent}, {"Accept", "application/json"}};
    if (!opt.token.empty()) fields.push_back({"Authorization", "Bearer " + opt.token});
    for (auto& h : headers) set_field(fields, std::move(h.name), std::move(h.value));
    // POST always names its length (0 too); a GET without a body names none.
    if (method == http_method::post) set_field(fields, "Content-Length", std::to_string(body.size()));
    std::string wire = request_head(method == http_method::post ? "POST" : "GET", url.prefix + path, fields);
    if (method == http_method::post) wire += body;

    // Straight-line on purpose (no loop around the co_awaits): GCC 12 mis-destroys locals of a
    // loop body that spans co_await.
    const bool reused = connected();
    http_result r = co_await attempt(wire);
    if (r.ec && reused && !is_timeout(r.ec) && stale_connection(r.ec)) r = co_await attempt(wire);
    r.timed_out = is_timeout(r.ec);
    co_return r;
  }

  // The streamed exchange: the header and `head` in one write, the file in 256 KiB pieces (the
  // only buffer), `tail`, then the answer. Not kept alive afterwards: a store (S3) connection is
  // not the backend's.
  template <class Stream>
  asio::awaitable<http_result> exchange_streamed(Stream& stream, std::string header, streamed_body& body) {
    http_result r;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(body.file.c_str(), "rb"), &std::fclose);
    if (!f) {
      r.ec = std::make_error_code(std::errc::no_such_file_or_directory);
      r.source_changed = true;
      co_return r;
    }
    header += body.head;
    beast::get_lowest_layer(stream).expires_after(opt.request_timeout);
    error_code wec;
    std::size_t wn = 0;
    std::tie(wec, wn) = co_await asio::async_write(stream, asio::buffer(header), asio::as_tuple(asio::use_awaitable));
    if (wec) {
      r.ec = wec;
      co_return r;
    }
    std::vector<char> piece(256 * 1024);
    sha256 hash;
    std::uint64_t left = body.size;
    std::size_t n = 0;
    bool last = false;
    // One piece per turn; the body declares no locals across the co_await (GCC 12, see request()).
    while (left > 0) {
      n = std::fread(piece.data(), 1, static_cast<std::size_t>(std::min<std::uint64_t>(piece.size(), left)), f.get());
      if (n == 0) break;  // shorter than it was: changed
      hash.update(std::string_view(piece.data(), n));
      left -= n;
      last = left == 0;
      if (last && !source_intact(f.get(), hash, body)) {
        last = false;  // the last piece is never written
        break;
      }
      beast::get_lowest_layer(stream).expires_after(opt.request_timeout);
      std::tie(wec, wn) = co_await asio::async_write(stream, asio::buffer(piece.data(), n),
                                                     asio::as_tuple(asio::use_awaitable));
      if (wec) {
        r.ec = wec;
        co_return r;
      }
    }
    if (left > 0 || !last) {
      // The last piece was not written: the store has an incomplete body and drops it.
      r.source_changed = true;
      r.ec = std::make_error_code(std::errc::operation_canceled);
      reset();
      co_return r;
    }
    beast::get_lowest_layer(stream).expires_after(opt.request_timeout);
    std::tie(wec, wn) = co_await asio::async_write(stream, asio::buffer(body.tail), asio::as_tuple(asio::use_awaitable));
    if (wec) {
      r.ec = wec;
      co_return r;
    }
    bool keep_alive = false;
    r = co_await read_answer(stream, keep_alive);
    if (!r.ec) reset();  // never kept alive: a store connection is not the backend's
    co_return r;
  }

  // Before the last piece goes: everything read hashes to the digest taken before presign, and
  // the file has not grown (a file still being written is not the one that was checked).
  static bool source_intact(std::FILE* f, const sha256& so_far, const streamed_body& body) {
    sha256 copy(so_far);
    if (copy.hex() != body.sha256) return false;
    struct stat st {};
    if (::fstat(::fileno(f), &st) != 0) return false;
    return static_cast<std::uint64_t>(st.st_size) == body.size;
  }

  asio::awaitable<http_result> upload(std::string path, streamed_body body, std::vector<http_header> headers) {
    auto self = shared_from_this();
    std::vector<http_header> fields{{"Host", host_field()},
                                    {"User-Agent", opt.user_agent},
                                    {"Content-Type", body.content_type},
                                    {"Content-Length", std::to_string(body.head.size() + body.size + body.tail.size())},
                                    {"Connection", "close"}};
    if (!opt.token.empty()) fields.push_back({"Authorization", "Bearer " + opt.token});
    for (auto& h : headers) fields.push_back(std::move(h));
    std::string header = request_head("POST", url.prefix + path, fields);
    // Named, then moved: GCC 12 destroys a prvalue argument of a coroutine's by-value parameter twice.
    auto streamed = [this, &header, &body](auto& stream) { return exchange_streamed(stream, std::move(header), body); };
    http_result r = co_await on_connection(std::move(streamed));
    r.timed_out = is_timeout(r.ec);
    co_return r;
  }

  // One exchange of a plain request (`wire`: head and body as sent).
  asio::awaitable<http_result> attempt(const std::string& wire) {
    auto plain_exchange = [this, &wire](auto& stream) { return exchange(stream, wire); };
    return on_connection(std::move(plain_exchange));  // named, then moved (GCC 12, see upload())
  }

  // Connects when needed, then `exchange(stream)` on the TLS or plain stream; the connection is
  // dropped after any failure. The one connect-and-answer step of request() and upload().
  template <class Exchange>
  asio::awaitable<http_result> on_connection(Exchange exchange) {
    http_result r;
    if (!connected()) {
      r.ec = co_await connect();
      if (r.ec) {
        reset();
        co_return r;
      }
    }
    if (tls) {
      r = co_await exchange(*tls);
    } else {
      r = co_await exchange(*plain);
    }
    if (r.ec) reset();
    co_return r;
  }
};

http_client::http_client(asio::any_io_executor ex, http_client_options options)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(options))) {}

http_client::~http_client() { impl_->close(); }

// Not coroutines on purpose: GCC 12 destroys a prvalue argument of a coroutine's by-value
// parameter twice; these take the arguments as named objects and move them into the coroutine.
asio::awaitable<http_result> http_client::request(http_method method, std::string path, std::string body,
                                                  std::vector<http_header> headers) {
  return impl_->request(method, std::move(path), std::move(body), std::move(headers));
}

asio::awaitable<http_result> http_client::upload(std::string path, streamed_body body,
                                                 std::vector<http_header> headers) {
  return impl_->upload(std::move(path), std::move(body), std::move(headers));
}

void http_client::close() noexcept { impl_->close(); }

asio::awaitable<http_result> fetch_waiting_list(http_client& client, const backend_options& cfg,
                                                std::string device) {
  std::string target = cfg.waiting_list_path + "?device=" + url_encode(device);
  return client.request(http_method::get, std::move(target), std::string());
}

asio::awaitable<http_result> fetch_parameters(http_client& client, const backend_options& cfg,
                                              std::string device) {
  std::string target = cfg.parameters_path + "?device=" + url_encode(device);
  return client.request(http_method::get, std::move(target), std::string());
}

asio::awaitable<http_result> fetch_qc_limits(http_client& client, const backend_options& cfg, std::string device) {
  std::string target = cfg.qc_limits_path + "?device=" + url_encode(device);
  return client.request(http_method::get, std::move(target), std::string());
}

}  // namespace interfaced::transport
