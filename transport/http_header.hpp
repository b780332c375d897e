#pragma once
// One HTTP header as plain data: what the backend client adds to a request and what the HTTP
// server shows its handler and adds to a reply. Names keep the spelling they were sent with;
// HTTP compares them case-insensitively (RFC 9110 5.1), so lookups must too.

#include <string>

namespace interfaced::transport {

struct http_header {
  std::string name;
  std::string value;
};

}  // namespace interfaced::transport
