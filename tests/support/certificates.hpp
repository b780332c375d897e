#pragma once
// TLS material for loopback servers in tests: a throwaway CA and a server certificate, made by
// the openssl command (Debian's openssl package, installed by .ci/deps).

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace interfaced::test {

// A test CA and a server certificate signed by it for 127.0.0.1 / localhost, written into `dir`:
// ca.pem (what a client trusts), server.pem and server.key (what a server serves).
inline void write_test_certificates(const std::filesystem::path& dir) {
  const std::string d = dir.string();
  const std::string cmd =
      "cd '" + d + "' && "
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem "
      "-days 2 -subj '/CN=interfaced test CA' -addext basicConstraints=critical,CA:TRUE "
      "-addext keyUsage=critical,keyCertSign,cRLSign && "
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr "
      "-subj '/CN=127.0.0.1' && "
      "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\n"
      "extendedKeyUsage=serverAuth\\n' > ext.cnf && "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 "
      "-extfile ext.cnf";
  REQUIRE(std::system(("(" + cmd + ") >'" + d + "/openssl.log' 2>&1").c_str()) == 0);
}

}  // namespace interfaced::test
