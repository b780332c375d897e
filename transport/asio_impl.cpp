// Asio and Beast compiled once for the whole program (style.md: "Asio and Beast compiled once in a
// small static library"); every other translation unit sees only their declarations because
// interfaced_transport defines BOOST_ASIO_SEPARATE_COMPILATION / BOOST_BEAST_SEPARATE_COMPILATION.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
// Asio's OpenSSL glue (HTTPS in the backend client and in the HTTP server).
#include <boost/asio/ssl/impl/src.hpp>
