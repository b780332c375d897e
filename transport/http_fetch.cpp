#include "transport/http_fetch.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "transport/http_client.hpp"

namespace interfaced::transport {

fetch_result http_fetch(const std::string& host, unsigned port, const std::string& method, const std::string& target,
                        std::vector<http_header> headers, std::chrono::milliseconds timeout,
                        const std::string& body) {
  fetch_result out;
  boost::asio::io_context io;
  http_client_options o;
  o.base_url = "http://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  o.connect_timeout = timeout;
  o.request_timeout = timeout;
  try {
    http_client client(io.get_executor(), o);
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
          auto r = co_await client.request(method == "POST" ? http_method::post : http_method::get, target, body, std::move(headers));
          if (r.ec) {
            out.error = r.timed_out ? "no answer within " + std::to_string(timeout.count()) + " ms" : r.ec.message();
          } else {
            out.answered = true;
            out.status = r.status;
            out.body = std::move(r.body);
          }
        },
        boost::asio::detached);
    io.run();
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

}  // namespace interfaced::transport
