// libFuzzer target: E1394 record layer and text decoding (parsers/astm/records.hpp,
// parsers/text_codec.hpp). Properties, beyond "no crash, no sanitizer report":
//  - parse_message keeps offsets and records in step, and every view lies inside the input;
//  - split_messages returns increasing offsets of H records;
//  - to_utf8 always returns valid UTF-8 (re-validating it changes nothing and is not lossy);
//  - record_writer: any byte string written as a field value decodes back to itself.

#include "parsers/astm/records.hpp"
#include "parsers/text_codec.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using namespace interfaced;

void require(bool ok) {
  if (!ok) std::abort();  // libFuzzer reports the input
}

bool inside(std::string_view outer, std::string_view inner) {
  if (inner.empty()) return true;
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

void check_message(std::string_view text) {
  const auto m = astm::parse_message(text);
  require(m.offsets.size() == m.records.size());
  for (std::size_t i = 0; i < m.records.size(); ++i) {
    const auto& r = m.records[i];
    require(inside(text, r.raw()));
    require(static_cast<std::size_t>(r.raw().data() - text.data()) == m.offsets[i]);
    for (std::size_t f = 0; f <= r.field_count() + 1; ++f) {
      const auto fv = r.field(f);
      require(inside(r.raw(), fv.raw()));
      (void)fv.decode();
      for (std::size_t k = 0; k <= fv.repeat_count(); ++k) {
        const auto rep = fv.repeat(k);
        require(inside(fv.raw(), rep.raw()));
        (void)rep.decode();
        for (std::size_t c = 0; c <= rep.component_count() + 1; ++c) {
          const auto comp = rep.component(c);
          require(inside(rep.raw(), comp.raw()));
          (void)comp.decode();
        }
      }
    }
  }
  for (const auto& d : m.diagnostics) {
    require(d.record_index >= 1);
    require(d.byte_offset <= text.size());
  }
}

void check_codec(std::string_view bytes) {
  for (const auto enc : {text_encoding::latin1, text_encoding::utf8, text_encoding::windows1252}) {
    bool lossy = false;
    const auto u = to_utf8(bytes, enc, &lossy);
    bool relossy = false;
    require(to_utf8(u, text_encoding::utf8, &relossy) == u);
    require(!relossy);
    if (enc == text_encoding::latin1) require(!lossy);
    bool back_lossy = false;
    const auto back = from_utf8(u, enc, &back_lossy);
    if (!lossy && enc != text_encoding::utf8) {
      require(!back_lossy);
      require(back == bytes);  // Latin-1 / 1252 bytes survive a trip through UTF-8
    }
  }
}

// Delimiter sets seen in captures (astm-facts.md 4.2).
constexpr std::array<astm::delimiters, 4> delimiter_sets{{
    {'|', '\\', '^', '&'},
    {'|', '@', '^', '\\'},
    {'|', '`', '^', '&'},
    {'|', '\\', '!', '~'},
}};

void check_writer(std::string_view value, std::size_t set) {
  const auto& d = delimiter_sets[set % delimiter_sets.size()];
  astm::record_writer w{d};
  w.header({"", "", "fuzz"});
  w.begin('C').field("1").field(value).components({std::string(value), std::string(value)}).end();
  w.begin('L').field("1").field("N").end();
  const std::string text = w.text();
  const auto m = astm::parse_message(text);
  require(m.diagnostics.empty());
  require(m.records.size() == 3);
  require(m.records[1].field(3).decode() == value);
  require(m.records[1].field(4).component(1).decode() == value);
  if (!value.empty()) require(m.records[1].field(4).component(2).decode() == value);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);  // own buffer: exact bounds
  const std::string_view text(input);

  check_message(text);

  const auto starts = astm::split_messages(text);
  for (std::size_t i = 0; i < starts.size(); ++i) {
    require(starts[i] < text.size());
    require(text[starts[i]] == 'H' || text[starts[i]] == 'h');
    if (i > 0) require(starts[i] > starts[i - 1]);
    const auto end = i + 1 < starts.size() ? starts[i + 1] : text.size();
    check_message(text.substr(starts[i], end - starts[i]));
  }

  check_codec(text);
  check_writer(text, size == 0 ? 0 : static_cast<unsigned char>(text[0]));
  return 0;
}
