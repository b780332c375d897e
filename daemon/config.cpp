#include "daemon/config.hpp"


#include <arpa/inet.h>
#include <netinet/in.h>

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "rerun/qc_json.hpp"
#include <set>

#include "rerun/lab_time.hpp"

namespace interfaced::daemon {
namespace {

using json = nlohmann::json;

// Walks a JSON object, reading known keys with type checks and remembering every problem; keys it
// was not asked about are reported as unknown when the object is closed.
class walker {
 public:
  walker(std::vector<config_problem>& problems, const json& obj, std::string ptr)
      : problems_(problems), obj_(obj), ptr_(std::move(ptr)) {
    if (!obj_.is_object()) {
      problem(ptr_, std::string("expected an object, found ") + obj_.type_name());
    }
  }
  ~walker() {
    if (!obj_.is_object()) return;
    for (auto it = obj_.begin(); it != obj_.end(); ++it)
      if (!seen_.count(it.key()) && !it.key().starts_with("_"))
        problem(ptr_ + "/" + it.key(), "unknown key" + suggest(it.key()));
  }
  walker(const walker&) = delete;
  walker& operator=(const walker&) = delete;

  void problem(const std::string& ptr, const std::string& msg) { problems_.push_back({ptr, msg}); }
  [[nodiscard]] std::string at(const std::string& key) const { return ptr_ + "/" + key; }
  [[nodiscard]] const std::string& ptr() const noexcept { return ptr_; }
  [[nodiscard]] std::vector<config_problem>& problems() noexcept { return problems_; }
  // A nested object: returns nullptr when absent; the child walker checks its keys.
  const json* object(const std::string& key, bool required = false) { return get(key, required); }

  const json* get(const std::string& key, bool required = false) {
    known_.insert(key);
    seen_.insert(key);
    if (!obj_.is_object()) return nullptr;
    auto it = obj_.find(key);
    if (it == obj_.end()) {
      if (required) problem(at(key), "missing; this key is required");
      return nullptr;
    }
    return &*it;
  }

  void string(const std::string& key, std::string& out, bool required = false) {
    if (const json* v = get(key, required)) {
      if (v->is_string()) out = v->get<std::string>();
      else problem(at(key), std::string("expected a string, found ") + v->type_name());
    }
  }
  void boolean(const std::string& key, bool& out) {
    if (const json* v = get(key)) {
      if (v->is_boolean()) out = v->get<bool>();
      else problem(at(key), std::string("expected true or false, found ") + v->type_name());
    }
  }
  template <typename T>
  void number(const std::string& key, T& out, long long lo, long long hi, bool required = false) {
    if (const json* v = get(key, required)) {
      if (!v->is_number_integer()) {
        problem(at(key), std::string("expected a whole number, found ") + v->type_name());
        return;
      }
      const long long n = v->get<long long>();
      if (n < lo || n > hi)
        problem(at(key), "expected a number from " + std::to_string(lo) + " to " + std::to_string(hi) + ", found " + std::to_string(n));
      else out = static_cast<T>(n);
    }
  }
  void millis(const std::string& key, std::chrono::milliseconds& out, long long lo, long long hi) {
    long long v = out.count();
    number(key, v, lo, hi);
    out = std::chrono::milliseconds(v);
  }
  // A duration: whole seconds, or a string with a unit ("90s", "15m", "2h", "1d").
  void duration(const std::string& key, std::optional<std::chrono::seconds>& out, long long lo, long long hi) {
    const json* v = get(key);
    if (!v) return;
    long long secs = -1;
    if (v->is_number_integer()) {
      secs = v->get<long long>();
    } else if (v->is_string()) {
      const std::string t = v->get<std::string>();
      std::size_t digits = 0;
      while (digits < t.size() && t[digits] >= '0' && t[digits] <= '9') ++digits;
      const std::string unit = t.substr(digits);
      const long long mult = unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
      if (digits == 0 || digits > 9 || mult == 0) {
        problem(at(key), "expected seconds or a duration such as \"90s\", \"15m\", \"2h\", \"1d\", found \"" + t + "\"");
        return;
      }
      secs = std::stoll(t.substr(0, digits)) * mult;
    } else {
      problem(at(key), std::string("expected seconds or a duration string, found ") + v->type_name());
      return;
    }
    if (secs < lo || secs > hi) {
      problem(at(key), "expected seconds from " + std::to_string(lo) + " to " + std::to_string(hi) + ", found " +
                           std::to_string(secs));
      return;
    }
    out = std::chrono::seconds(secs);
  }
  void one_of(const std::string& key, std::string& out, std::initializer_list<const char*> allowed, bool required = false) {
    std::string v = out;
    const json* j = get(key, required);
    if (!j) return;
    seen_.insert(key);
    if (!j->is_string()) {
      problem(at(key), std::string("expected a string, found ") + j->type_name());
      return;
    }
    v = j->get<std::string>();
    if (std::find_if(allowed.begin(), allowed.end(), [&](const char* a) { return v == a; }) == allowed.end()) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string("\"") + a + "\"";
      problem(at(key), "expected one of " + list + ", found \"" + v + "\"");
      return;
    }
    out = v;
  }
  void strings(const std::string& key, std::vector<std::string>& out) {
    if (const json* v = get(key)) {
      if (!v->is_array()) {
        problem(at(key), std::string("expected an array of strings, found ") + v->type_name());
        return;
      }
      for (std::size_t i = 0; i < v->size(); ++i) {
        if ((*v)[i].is_string()) out.push_back((*v)[i].get<std::string>());
        else problem(at(key) + "/" + std::to_string(i), std::string("expected a string, found ") + (*v)[i].type_name());
      }
    }
  }

 private:
  std::string suggest(const std::string& key) const {
    // A near miss is nearly always a typo: name the key the user probably meant.
    for (const auto& k : known_) {
      if (k.size() + 2 < key.size() || key.size() + 2 < k.size()) continue;
      std::size_t common = 0;
      for (std::size_t i = 0; i < std::min(k.size(), key.size()); ++i) common += k[i] == key[i];
      if (common + 2 >= std::max(k.size(), key.size())) return " (did you mean \"" + k + "\"?)";
    }
    return "";
  }

  std::vector<config_problem>& problems_;
  const json& obj_;
  std::string ptr_;
  std::set<std::string> seen_;
  std::set<std::string> known_;
};

void read_keepalive(walker& parent, keepalive& ka) {
  const json* v = parent.object("keepalive");
  if (!v) return;
  walker w(parent.problems(), *v, parent.at("keepalive"));
  w.boolean("enabled", ka.enabled);
  w.number("idle_s", ka.idle_s, 1, 7200);
  w.number("interval_s", ka.interval_s, 1, 600);
  w.number("count", ka.count, 1, 50);
}

}  // namespace

bool valid_ip_address(const std::string& text) noexcept {
  in6_addr a6{};
  in_addr a4{};
  return ::inet_pton(AF_INET, text.c_str(), &a4) == 1 || ::inet_pton(AF_INET6, text.c_str(), &a6) == 1;
}

bool is_loopback_address(const std::string& text) noexcept {
  in_addr a4{};
  if (::inet_pton(AF_INET, text.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  return text == "::1";
}

std::string load_admin_token(const health_config& h) {
  // The same rules as the backend's token file (one way to read a token).
  transport::backend_options as_token;
  as_token.token_file = h.admin_token_file;
  return transport::load_bearer_token(as_token);
}

bool valid_device_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 64 || id.front() == '.') return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

void read_device(walker& list_owner, const json& j, const std::string& ptr, device_config& d,
                 const devices::profile_catalog* catalog) {
  walker w(list_owner.problems(), j, ptr);
  w.string("id", d.id, true);
  if (const json* id = j.is_object() && j.contains("id") ? &j["id"] : nullptr; id && id->is_string() && d.id.empty())
    w.problem(w.at("id"), "expected a non-empty device id");
  else if (!d.id.empty() && !valid_device_id(d.id))
    w.problem(w.at("id"), "device id \"" + d.id + "\" is not allowed: it names the device's log file and metrics, so "
                          "use at most 64 letters, digits, '.', '_' or '-', not starting with '.'");
  w.one_of("protocol", d.protocol, {"astm", "hl7", "files"}, true);
  w.string("profile", d.profile);
  if (!d.profile.empty() && catalog && !catalog->find(d.profile))
    w.problem(w.at("profile"), "no profile \"" + d.profile + "\" in the profile folder");
  if (const json* e = w.get("encoding")) {
    if (!e->is_string()) w.problem(w.at("encoding"), "expected a string");
    else if (auto enc = parse_encoding(e->get<std::string>())) d.encoding = enc;
    else w.problem(w.at("encoding"), "expected \"latin1\", \"utf-8\" or \"windows-1252\", found \"" + e->get<std::string>() + "\"");
  }
  w.boolean("trace", d.trace);
  w.number("frame_text_size", d.frame_text_size, 16, 63993);
  w.duration("silent_after", d.silent_after, 1, 30LL * 86400);
  w.number("max_sessions", d.max_sessions, 1, 64);
  w.number("idle_timeout_s", d.idle_timeout_s, 0, 3600);
  w.number("max_buffered_bytes", d.max_buffered_bytes, 65536, 1LL << 30);
  if (const json* o = w.object("orders")) {
    // Order download (worklist push) for this analyser, overriding its profile's "orders".
    walker ow(w.problems(), *o, w.at("orders"));
    bool on = false;
    ow.boolean("download", on);
    if (o->is_object() && o->contains("download") && (*o)["download"].is_boolean()) d.order_download = on;
  }
  if (const json* f = w.object("files")) {
    walker fw(w.problems(), *f, w.at("files"));
    fw.string("root", d.files.root, true);
    if (!d.files.root.empty() && !std::filesystem::path(d.files.root).is_absolute())
      fw.problem(fw.at("root"), "expected an absolute folder path, found \"" + d.files.root + "\"");
    fw.number("settle_ms", d.files.settle_ms, 0, 3600000);
    fw.number("wait_s", d.files.wait_s, 1, 7LL * 86400);
    fw.number("max_bytes", d.files.max_bytes, 1, 1LL << 40);
    fw.strings("allowed_types", d.files.allowed_types);
    fw.one_of("mode", d.files.mode, {"presigned", "inline"});
  }
  const json* link = w.object("link", true);
  if (!link) return;
  if (d.max_sessions == 0) d.max_sessions = d.protocol == "hl7" ? 4 : 1;
  walker l(w.problems(), *link, w.at("link"));
  l.one_of("type", d.link_type, {"serial", "tcp-server", "tcp-client", "folder"}, true);
  if ((d.protocol == "files") != (d.link_type == "folder") && !d.link_type.empty())
    l.problem(l.at("type"), d.protocol == "files" ? "a \"files\" device reads a folder: expected \"folder\""
                                                  : "a folder link needs \"protocol\": \"files\"");
  if (d.link_type == "folder") {
    l.string("path", d.folder.path, true);
    if (!d.folder.path.empty() && !std::filesystem::path(d.folder.path).is_absolute())
      l.problem(l.at("path"), "expected an absolute folder path, found \"" + d.folder.path + "\"");
    l.string("pattern", d.folder.pattern);
    if (d.folder.pattern.empty() || d.folder.pattern.find('/') != std::string::npos)
      l.problem(l.at("pattern"), "expected a file name pattern such as \"*.pdf\" (no '/')");
    l.string("done", d.folder.done);
    l.string("failed", d.folder.failed);
    if (d.folder.done.empty()) l.problem(l.at("done"), "expected a folder name");
    if (d.folder.failed.empty()) l.problem(l.at("failed"), "expected a folder name");
    if (!d.folder.done.empty() && d.folder.done == d.folder.failed)
      l.problem(l.at("failed"), "expected a folder other than \"done\"");
    l.number("scan_s", d.folder.scan_s, 0, 86400);
    l.number("settle_ms", d.folder.settle_ms, 0, 3600000);
  } else if (d.link_type == "serial") {
    l.string("device", d.serial.device, true);
    l.number("baud", d.serial.baud, 1200, 115200);
    static const unsigned bauds[] = {1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200};
    if (std::find(std::begin(bauds), std::end(bauds), d.serial.baud) == std::end(bauds))
      l.problem(l.at("baud"), "expected a standard rate (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)");
    l.number("data_bits", d.serial.data_bits, 7, 8);
    l.one_of("parity", d.serial.parity, {"none", "even", "odd"});
    l.number("stop_bits", d.serial.stop_bits, 1, 2);
    l.one_of("flow_control", d.serial.flow_control, {"none", "rts-cts", "xon-xoff"});
    l.boolean("dtr", d.serial.dtr);
    l.boolean("rts", d.serial.rts);
  } else if (d.link_type == "tcp-server") {
    l.string("bind", d.server.bind);
    if (!d.server.bind.empty() && !valid_ip_address(d.server.bind))
      l.problem(l.at("bind"), "\"" + d.server.bind + "\" is not an IPv4 or IPv6 address (0.0.0.0 or :: for every interface)");
    l.number("port", d.server.port, 1, 65535, true);
    l.strings("allow", d.server.allow);
    for (std::size_t k = 0; k < d.server.allow.size(); ++k)
      if (!valid_ip_address(d.server.allow[k]))
        l.problem(l.at("allow") + "/" + std::to_string(k), "\"" + d.server.allow[k] + "\" is not an IPv4 or IPv6 address");
    read_keepalive(l, d.server.ka);
  } else if (d.link_type == "tcp-client") {
    l.string("host", d.client.host, true);
    l.number("port", d.client.port, 1, 65535, true);
    l.millis("reconnect_initial_ms", d.client.reconnect_initial, 100, 600000);
    l.millis("reconnect_max_ms", d.client.reconnect_max, 100, 3600000);
    read_keepalive(l, d.client.ka);
  } else {
    // Unknown link type: its other keys cannot be checked; mark them read so only `type` is reported.
    for (auto it = link->begin(); link->is_object() && it != link->end(); ++it) (void)l.get(it.key());
  }
  if (d.link_type != "tcp-server" && j.is_object() && j.contains("max_sessions"))
    w.problem(w.at("max_sessions"), "applies to tcp-server links only (a serial port or a tcp-client link is one session)");
  if (d.protocol != "hl7" && j.is_object() && j.contains("idle_timeout_s"))
    w.problem(w.at("idle_timeout_s"), "applies to hl7 devices only (ASTM has the LIS1-A receive timeout)");
}

}  // namespace

std::string format_problem(const std::filesystem::path& file, const config_problem& p) {
  return file.string() + ": " + (p.pointer.empty() ? "/" : p.pointer) + ": " + p.message;
}

config_error::config_error(const std::filesystem::path& file, const std::vector<config_problem>& ps)
    : std::runtime_error([&] {
        std::string s;
        for (const auto& p : ps) s += format_problem(file, p) + "\n";
        return s;
      }()),
      problems(ps) {}

config_result parse_config(std::string_view text, bool check_devices) {
  config_result r;
  // JSON lets a key appear twice and the parser keeps the last value: a lab editing a long file
  // would never learn that its first setting is ignored. Each duplicate is a problem at its pointer.
  struct frame {
    bool array = false;
    std::string key;
    std::size_t index = 0;
    std::set<std::string> keys;
  };
  std::vector<frame> frames;
  const auto pointer_to = [&](const std::string& key) {
    std::string p;
    for (std::size_t i = 0; i + 1 < frames.size(); ++i)
      p += "/" + (frames[i].array ? std::to_string(frames[i].index) : frames[i].key);
    return p + "/" + key;
  };
  const auto element_done = [&] {
    if (!frames.empty() && frames.back().array) ++frames.back().index;
  };
  json::parser_callback_t track = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: frames.push_back({}); break;
      case json::parse_event_t::array_start: frames.push_back({true, {}, 0, {}}); break;
      case json::parse_event_t::key: {
        if (frames.empty() || !parsed.is_string()) break;
        const std::string key = parsed.get<std::string>();
        if (!frames.back().keys.insert(key).second)
          r.problems.push_back({pointer_to(key), "\"" + key + "\" appears twice in this object; only the last value would be used"});
        frames.back().key = key;
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!frames.empty()) frames.pop_back();
        element_done();
        break;
      case json::parse_event_t::value: element_done(); break;
    }
    return true;
  };
  json doc = json::parse(text, track, false, /*ignore_comments=*/true);
  if (doc.is_discarded()) {
    // Find the place nlohmann stops at, for a useful message.
    try {
      const json ignored = json::parse(text, nullptr, true, true);
      (void)ignored;
    } catch (const json::parse_error& e) {
      r.problems.push_back({"", std::string("not valid JSON: ") + e.what()});
      return r;
    }
    r.problems.push_back({"", "not valid JSON"});
    return r;
  }
  config& c = r.cfg;
  walker top(r.problems, doc, "");
  if (!doc.is_object()) return r;

  std::string profile_dir;
  top.string("profile_dir", profile_dir);
  c.profile_dir = profile_dir;
  devices::profile_catalog catalog;
  bool have_catalog = false;
  try {
    catalog = devices::profile_catalog::load_dir(profile_dir.empty() ? devices::profile_catalog::default_dir()
                                                                     : std::filesystem::path(profile_dir));
    have_catalog = true;
  } catch (const devices::profile_error& e) {
    r.problems.push_back({"/profile_dir", std::string("device profiles could not be loaded: ") + e.what()});
  }
  std::string rules;
  top.string("rules_file", rules);
  c.rules_file = rules;
  std::string control;
  top.string("control_socket", control);
  if (!control.empty()) c.control_socket = control;

  if (const json* devs = top.get("devices", true)) {
    if (!devs->is_array()) {
      top.problem("/devices", std::string("expected an array of devices, found ") + devs->type_name());
    } else {
      std::map<std::string, std::size_t> ids;
      std::map<std::uint16_t, std::size_t> ports;
      std::map<std::string, std::size_t> serials;
      for (std::size_t i = 0; i < devs->size(); ++i) {
        const std::string ptr = "/devices/" + std::to_string(i);
        device_config d;
        read_device(top, (*devs)[i], ptr, d, have_catalog ? &catalog : nullptr);
        if (!d.id.empty()) {
          auto [it, fresh] = ids.emplace(d.id, i);
          if (!fresh) r.problems.push_back({ptr + "/id", "device id \"" + d.id + "\" already used by /devices/" + std::to_string(it->second)});
        }
        if (d.link_type == "tcp-server" && d.server.port != 0) {
          auto [it, fresh] = ports.emplace(d.server.port, i);
          if (!fresh)
            r.problems.push_back({ptr + "/link/port", "port " + std::to_string(d.server.port) + " is already used by /devices/" + std::to_string(it->second)});
        }
        if (d.link_type == "serial" && !d.serial.device.empty()) {
          auto [it, fresh] = serials.emplace(d.serial.device, i);
          if (!fresh)
            r.problems.push_back({ptr + "/link/device", d.serial.device + " is already used by /devices/" + std::to_string(it->second)});
          else if (check_devices && ::access(d.serial.device.c_str(), R_OK | W_OK) != 0)
            r.warnings.push_back({ptr + "/link/device", "cannot open " + d.serial.device + " for reading and writing (missing, or the service user is not in group dialout); the service starts without it, raises LINK-001 and opens it when it appears"});
        }
        c.devices.push_back(std::move(d));
      }
    }
  }

  if (const json* b = top.object("backend")) {
    walker w(r.problems, *b, "/backend");
    w.string("base_url", c.backend.base_url);
    if (!c.backend.base_url.empty() && !c.backend.base_url.starts_with("http://") && !c.backend.base_url.starts_with("https://"))
      w.problem("/backend/base_url", "expected a URL starting with http:// or https://");
    w.string("token_file", c.backend.token_file);
    w.string("token_env", c.backend.token_env);
    if (w.get("token")) w.problem("/backend/token", "a token is never written in the configuration: use token_file or token_env");
    // The package does not invent a secret: a token file that is not there yet is what a fresh
    // install looks like. Said exactly, as a warning; the daemon holds delivery until it exists.
    if (check_devices && !c.backend.token_file.empty() && ::access(c.backend.token_file.c_str(), F_OK) != 0)
      r.warnings.push_back({"/backend/token_file", c.backend.token_file + " does not exist: results are kept in the outbox "
                            "(never posted without the token) until it does. Create it with the backend's API token: "
                            "install -m 0640 -o root -g interfaced /dev/stdin " + c.backend.token_file + " <<< 'TOKEN'"});
    else if (check_devices && !c.backend.token_file.empty() && ::access(c.backend.token_file.c_str(), R_OK) != 0)
      r.warnings.push_back({"/backend/token_file", c.backend.token_file + " is not readable by this user: the service "
                            "user (group interfaced) must be able to read it (chgrp interfaced, chmod 0640)"});
    w.string("ca_file", c.backend.ca_file);
    w.boolean("verify_tls", c.backend.verify_tls);
    w.boolean("allow_insecure_http", c.backend.allow_insecure_http);
    if (c.backend.base_url.starts_with("http://") && (!c.backend.token_file.empty() || !c.backend.token_env.empty()) &&
        !c.backend.allow_insecure_http)
      w.problem("/backend/base_url", "the bearer token would be sent in clear over http://: use https://, or set "
                                     "/backend/allow_insecure_http to true for a closed network");
    w.millis("connect_timeout_ms", c.backend.connect_timeout, 100, 600000);
    w.millis("request_timeout_ms", c.backend.request_timeout, 100, 600000);
    w.number("max_response_bytes", c.backend.max_response_bytes, 4096, 1LL << 30);
    long long poll = c.backend.waiting_list_poll.count();
    w.number("waiting_list_poll_s", poll, 1, 86400);
    c.backend.waiting_list_poll = std::chrono::seconds(poll);
    if (const json* e = w.object("endpoints")) {
      walker ew(r.problems, *e, "/backend/endpoints");
      ew.string("results", c.backend.results_path);
      ew.string("rerun_values", c.backend.rerun_values_path);
      ew.string("rerun_request", c.backend.rerun_request_path);
      ew.string("waiting_list", c.backend.waiting_list_path);
      ew.string("parameters", c.backend.parameters_path);
      ew.string("qc_results", c.backend.qc_results_path);
      ew.string("qc_runs", c.backend.qc_runs_path);
      ew.string("qc_limits", c.backend.qc_limits_path);
      ew.string("reflex", c.backend.reflex_path);
    }
  }
  if (const json* o = top.object("outbox")) {
    walker w(r.problems, *o, "/outbox");
    std::string path;
    w.string("path", path);
    if (!path.empty()) c.outbox.path = path;
    w.number("max_messages", c.outbox.max_messages, 100, 100000000);
    w.number("history_days", c.outbox.history_days, 1, 3650);
    w.number("keep_delivered_days", c.outbox.keep_delivered_days, 0, 36500);
  }
  if (const json* d = top.object("delivery")) {
    walker w(r.problems, *d, "/delivery");
    std::optional<std::chrono::seconds> stuck, unreachable;
    w.duration("stuck_after", stuck, 1, 30LL * 86400);
    w.duration("unreachable_after", unreachable, 1, 30LL * 86400);
    if (stuck) c.delivery.stuck_after = *stuck;
    if (unreachable) c.delivery.unreachable_after = *unreachable;
  }
  if (const json* l = top.object("logging")) {
    walker w(r.problems, *l, "/logging");
    std::string dir;
    w.string("dir", dir);
    if (!dir.empty()) c.logging.dir = dir;
    w.one_of("level", c.logging.level, {"trace", "debug", "info", "warn", "error"});
    w.number("device_file_size", c.logging.device_file_size, 4096, 1LL << 32);
    w.number("device_file_count", c.logging.device_file_count, 1, 100);
  }
  if (const json* l = top.object("links")) {
    walker w(r.problems, *l, "/links");
    w.number("max_buffered_bytes", c.links.max_buffered_bytes, 65536, 1LL << 32);
  }
  if (const json* q = top.object("qc")) {
    try {
      c.qc = rerun::qc::qc_config_from_json(*q, "/qc");
    } catch (const rerun::json_error& e) {
      r.problems.push_back({e.pointer(), std::string(e.what()).substr(e.pointer().size() + 2)});
    }
  }
  if (const json* l = top.object("lab")) {
    walker w(r.problems, *l, "/lab");
    w.string("timezone", c.lab.timezone);
    // "" is the machine's zone, as when the key is absent.
    if (!c.lab.timezone.empty() && !rerun::lab_zone::find(c.lab.timezone))
      w.problem("/lab/timezone", "unknown time zone \"" + c.lab.timezone +
                                     "\": expected an IANA name of the tz database, such as \"Europe/Berlin\" or "
                                     "\"Asia/Kolkata\" (timedatectl list-timezones)");
  }
  if (const json* h = top.object("help")) {
    walker w(r.problems, *h, "/help");
    std::string items = c.help.items_file.string();
    w.string("items_file", items);
    c.help.items_file = items;
  }
  if (const json* h = top.object("health")) {
    walker w(r.problems, *h, "/health");
    w.string("bind", c.health.bind);
    if (!valid_ip_address(c.health.bind))
      w.problem("/health/bind", "\"" + c.health.bind + "\" is not an IPv4 or IPv6 address (127.0.0.1 or ::1 keep it on this machine)");
    w.number("port", c.health.port, 0, 65535);
    w.string("admin_token_file", c.health.admin_token_file);
    if (valid_ip_address(c.health.bind) && !is_loopback_address(c.health.bind) && c.health.admin_token_file.empty())
      w.problem("/health/bind", c.health.bind + " makes the health endpoint reachable from the network: set "
                                "/health/admin_token_file first (routes that change anything need its token), or bind to 127.0.0.1");
    for (const auto& d : c.devices)
      if (d.link_type == "tcp-server" && d.server.port == c.health.port && c.health.port != 0)
        w.problem("/health/port", "port " + std::to_string(c.health.port) + " is also a device's port");
  }
  return r;
}

config_result load_config(const std::filesystem::path& path, bool check_devices) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    config_result r;
    r.problems.push_back({"", "cannot read the file"});
    return r;
  }
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  return parse_config(text, check_devices);
}

}  // namespace interfaced::daemon
