// E1394 / LIS02-A2 record layer (parsers/astm/records.hpp).
// Expected values come from the standard's text (../shared/spec/astm-facts.md 4.2) and from
// reading the capture files by eye (field positions counted with awk -F'|'), never from this
// code's output.

#include "parsers/astm/records.hpp"
#include "parsers/text_codec.hpp"
#include "support/files.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

using namespace interfaced::astm;

namespace {

const delimiters default_delims{};
const delimiters genexpert_delims{'|', '@', '^', '\\'};  // H|@^\ (Cepheid GeneXpert)
const delimiters erba_delims{'|', '`', '^', '&'};        // H|`^& (Erba XL-1000)
const delimiters dxh_delims{'|', '\\', '!', '~'};        // H|\!~ (Beckman DxH)

bool same(const delimiters& a, const delimiters& b) {
  return a.field == b.field && a.repeat == b.repeat && a.component == b.component &&
         a.escape == b.escape;
}

std::string types(const message& m) {
  std::string t;
  for (const auto& r : m.records) t.push_back(r.type());
  return t;
}

std::size_t count(const message& m, record_error e) {
  std::size_t n = 0;
  for (const auto& d : m.diagnostics) n += d.error == e ? 1U : 0U;
  return n;
}

std::string decode(std::string_view raw, const delimiters& d = default_delims) {
  return field_view{raw, d}.decode();
}

// Materialises every field, repeat and component: what a normaliser would do.
std::size_t touch_everything(const message& m) {
  std::size_t bytes = 0;
  for (const auto& r : m.records) {
    for (std::size_t f = 0; f <= r.field_count() + 1; ++f) {
      const auto fv = r.field(f);
      bytes += fv.decode().size();
      for (std::size_t k = 0; k <= fv.repeat_count(); ++k) {
        const auto rep = fv.repeat(k);
        for (std::size_t c = 0; c <= rep.component_count() + 1; ++c)
          bytes += rep.component(c).decode().size();
      }
    }
  }
  return bytes;
}

// Record text of raw E1381 frames: STX FN text ETB|ETX ... (checksums are the frame decoder's
// business and are not checked here). Only used for the framed captures with odd delimiters.
std::string frame_text(std::string_view raw) {
  std::string out;
  std::size_t i = 0;
  while ((i = raw.find('\x02', i)) != std::string_view::npos) {
    const auto j = raw.find_first_of("\x17\x03", i + 1);
    if (j == std::string_view::npos || j < i + 2) break;
    out.append(raw.substr(i + 2, j - i - 2));
    i = j + 1;
  }
  return out;
}

// Drops the `@send` / `@receive` directive lines of the Beckman scenario (not protocol data,
// captures/astm/SOURCES.md).
std::string without_directives(std::string_view text) {
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    end = end == std::string_view::npos ? text.size() : end + 1;
    const auto line = text.substr(pos, end - pos);
    if (line.empty() || line[0] != '@') out.append(line);
    pos = end;
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------- delimiters

TEST_CASE("delimiters are read from the H record", "[records][delimiters]") {
  delimiters d{'x', 'y', 'z', 'w'};
  CHECK_FALSE(detect_delimiters("H|\\^&|||LIS", d));
  CHECK(same(d, default_delims));
  CHECK_FALSE(detect_delimiters("H|@^\\|URM||", d));
  CHECK(same(d, genexpert_delims));
  CHECK_FALSE(detect_delimiters("H|`^&||||||||||P|E 1394-97|20200928132312", d));
  CHECK(same(d, erba_delims));
  CHECK_FALSE(detect_delimiters("H|\\!~|(0:0-144795890#123476669, 571)||DxH", d));
  CHECK(same(d, dxh_delims));
  CHECK_FALSE(detect_delimiters("h;~!$;x", d));  // type case-insensitive (LIS02 5.5), any chars
  CHECK(same(d, delimiters{';', '~', '!', '$'}));
  CHECK_FALSE(detect_delimiters("H|\\^&", d));  // bare header: nothing after H.2
  CHECK(same(d, default_delims));
}

TEST_CASE("bad delimiters are rejected and leave the output alone", "[records][delimiters]") {
  const delimiters sentinel{'1', '2', '3', '4'};
  const auto rejects = [&](std::string_view h, record_error e) {
    delimiters d = sentinel;
    INFO(h);
    CHECK(detect_delimiters(h, d) == make_error_code(e));
    CHECK(same(d, sentinel));
  };
  rejects("", record_error::no_header);
  rejects("P|1", record_error::no_header);
  rejects("|H|\\^&", record_error::no_header);
  rejects("H", record_error::bad_delimiters);
  rejects("H|\\^", record_error::bad_delimiters);
  rejects("H||^&|", record_error::bad_delimiters);     // field == repeat
  rejects("H|\\\\&|", record_error::bad_delimiters);   // repeat == component
  rejects("H|\\^^|", record_error::bad_delimiters);    // component == escape
  rejects("H|\\^||", record_error::bad_delimiters);    // escape == field
  rejects("H|\\^&x", record_error::bad_delimiters);    // H.2 not closed by the field delimiter
  rejects("HELLO|", record_error::bad_delimiters);     // letters are not delimiters
  rejects("H\r\\^&\r", record_error::bad_delimiters);  // CR may not be a delimiter
  rejects("H|\n^&|", record_error::bad_delimiters);
  rejects("H|\\\\^&|||", record_error::bad_delimiters);  // strict: the Yumizen H550 doubling

  CHECK(valid_delimiters(default_delims));
  CHECK(valid_delimiters(dxh_delims));
  CHECK_FALSE(valid_delimiters(delimiters{'|', '|', '^', '&'}));
  CHECK_FALSE(valid_delimiters(delimiters{'|', '\\', '^', '\n'}));
  CHECK_FALSE(valid_delimiters(delimiters{'\r', '\\', '^', '&'}));
  CHECK_FALSE(valid_delimiters(delimiters{'|', '\\', '^', 'X'}));  // letters would clash with codes
  CHECK_FALSE(valid_delimiters(delimiters{'|', '0', '^', '&'}));
}

TEST_CASE("doubled repeat delimiter leniency (Yumizen H550 capture)", "[records][delimiters]") {
  delimiters d{'1', '2', '3', '4'};
  bool doubled = false;
  CHECK_FALSE(detect_delimiters_lenient("H|\\\\^&|||H550", d, &doubled));
  CHECK(doubled);
  CHECK(same(d, default_delims));  // `\` must not end up as the component separator

  doubled = false;
  CHECK_FALSE(detect_delimiters_lenient("H|\\\\^&", d, &doubled));
  CHECK(doubled);

  // The lenient detector does not change anything that is already valid.
  doubled = false;
  CHECK_FALSE(detect_delimiters_lenient("H|\\^&|", d, &doubled));
  CHECK_FALSE(doubled);
  // Nor does it rescue other damage.
  CHECK(detect_delimiters_lenient("H|\\\\\\&|", d, &doubled) == record_error::bad_delimiters);
  CHECK(detect_delimiters_lenient("H|\\\\^^|", d, &doubled) == record_error::bad_delimiters);
  CHECK(detect_delimiters_lenient("H|\\\\^&x", d, &doubled) == record_error::bad_delimiters);
}

TEST_CASE("record levels follow LIS02", "[records]") {
  CHECK(record_level('H') == 0);
  CHECK(record_level('l') == 0);
  CHECK(record_level('P') == 1);
  CHECK(record_level('q') == 1);
  CHECK(record_level('S') == 1);
  CHECK(record_level('O') == 2);
  CHECK(record_level('r') == 3);
  CHECK(record_level('C') == -1);
  CHECK(record_level('M') == -1);
  CHECK(record_level('X') == -1);
}

TEST_CASE("error category names every code", "[records]") {
  CHECK(std::string(record_category().name()) == "astm.records");
  for (int e = 0; e <= static_cast<int>(record_error::lenient_delimiters); ++e) {
    CHECK_FALSE(make_error_code(static_cast<record_error>(e)).message().empty());
  }
  const std::error_code ec = record_error::not_text;  // is_error_code_enum
  CHECK(ec.category() == record_category());
}

// ---------------------------------------------------------------- escapes

TEST_CASE("escape sequences decode with the message's escape character", "[records][escape]") {
  CHECK(decode("a&F&b") == "a|b");
  CHECK(decode("&S&&R&&E&") == "^\\&");
  CHECK(decode("&X0D0A&") == "\r\n");
  CHECK(decode("&X41424344&") == "ABCD");
  CHECK(decode("&x41&") == "&x41&");  // codes are upper case
  CHECK(decode("&Xe9&") == "\xE9");   // hex digits in either case
  CHECK(decode("&XA&") == "\n");      // the standard's own example: one digit is LF
  CHECK(decode("&X123&") == std::string("\x01\x23", 2));
  CHECK(decode("&X00&") == std::string(1, '\0'));
  CHECK(decode("x&H&bold&N&y") == "xboldy");  // highlighting markers dropped
  CHECK(decode("&Zabc&x&Z&") == "x");         // manufacturer sequences dropped
  CHECK(decode("") == "");
  CHECK(decode("plain") == "plain");

  // Other devices' escape characters: & is then plain data.
  CHECK(decode("A\\F\\B\\S\\C\\R\\D\\E\\E&F&", genexpert_delims) == "A|B^C@D\\E&F&");
  CHECK(decode("x~S~10~R~9/L", dxh_delims) == "x!10\\9/L");
  CHECK(decode("a&R&b", erba_delims) == "a`b");
}

TEST_CASE("malformed escapes are kept literally", "[records][escape]") {
  CHECK(decode("a&F") == "a&F");  // unterminated
  CHECK(decode("&") == "&");
  CHECK(decode("&&") == "&&");    // empty sequence
  CHECK(decode("&Q&") == "&Q&");  // unknown code
  CHECK(decode("&FF&") == "&FF&");
  CHECK(decode("&X&") == "&X&");  // no hex digits
  CHECK(decode("&XG1&") == "&XG1&");
  CHECK(decode("Tom & Jerry") == "Tom & Jerry");
  // The closing escape of a bad sequence may open a good one.
  CHECK(decode("Tom & Jerry &F& x") == "Tom & Jerry | x");
  // No nesting (LIS02 5.4.5.1): "&X&" is bad, then "&F&" is read, the last "&" is unterminated.
  CHECK(decode("&X&F&&") == "&X|&");

  CHECK(has_bad_escape("Tom & Jerry", default_delims));
  CHECK(has_bad_escape("&Q&", default_delims));
  CHECK_FALSE(has_bad_escape("a&F&b&X0D&&H&c&N&", default_delims));
  CHECK_FALSE(has_bad_escape("Tom & Jerry", genexpert_delims));
}

// ---------------------------------------------------------------- repeats, components

TEST_CASE("repeats are 0-based, components 1-based", "[records][fields]") {
  const field_view f{"A^B^C\\D^E", default_delims};
  CHECK(f.repeat_count() == 2);
  CHECK(f.repeat(0).raw() == "A^B^C");
  CHECK(f.repeat(1).raw() == "D^E");
  CHECK(f.repeat(2).empty());
  CHECK(f.repeat(99).empty());
  CHECK(f.component_count() == 3);  // of the first repeat
  CHECK(f.component(0).empty());
  CHECK(f.component(1).raw() == "A");
  CHECK(f.component(3).raw() == "C");
  CHECK(f.component(4).empty());
  CHECK(f.repeat(1).component(2).raw() == "E");
  CHECK(f.repeat(1).component_count() == 2);

  const field_view empty{"", default_delims};
  CHECK(empty.repeat_count() == 1);
  CHECK(empty.component_count() == 1);
  CHECK(empty.component(1).empty());

  const field_view test_id{"^^^GLU", default_delims};
  CHECK(test_id.component_count() == 4);
  CHECK(test_id.component(4).raw() == "GLU");
  CHECK(test_id.component(1).empty());

  // An escaped delimiter does not split (it is not the raw character).
  const field_view esc{"a&S&b^c", default_delims};
  CHECK(esc.component_count() == 2);
  CHECK(esc.component(1).decode() == "a^b");

  // Beckman DxH: `!` splits components, `^` is data.
  const field_view dxh{"!!!WBC!33256-9", dxh_delims};
  CHECK(dxh.component(4).raw() == "WBC");
  CHECK(dxh.component(5).raw() == "33256-9");
  CHECK(field_view{"10^9/L", dxh_delims}.component_count() == 1);

  // The pointer constructor (source compatibility) copies the delimiters.
  const field_view compat{"a@b", &genexpert_delims};
  CHECK(compat.repeat_count() == 2);
  CHECK(field_view{"a\\b", nullptr}.repeat_count() == 2);
}

TEST_CASE("record_view fields are 1-based with the type as field 1", "[records][fields]") {
  const record_view r{"r|1|^^^GLU|5.5|mg/dL||N", default_delims};
  CHECK(r.type() == 'R');
  CHECK(r.field_count() == 7);
  CHECK(r.field(0).empty());
  CHECK(r.field(1).raw() == "r");
  CHECK(r.field(2).raw() == "1");
  CHECK(r.field(3).component(4).raw() == "GLU");
  CHECK(r.field(4).decode() == "5.5");
  CHECK(r.field(6).empty());
  CHECK(r.field(7).raw() == "N");
  CHECK(r.field(8).empty());  // trailing fields may be omitted (LIS02 5.4.7)
  CHECK(r.field(1000).empty());

  CHECK(record_view{}.type() == '\0');
  CHECK(record_view{}.field_count() == 0);
  CHECK(record_view{"L", default_delims}.field_count() == 1);
  CHECK(record_view{"L|", default_delims}.field_count() == 2);
}

// ---------------------------------------------------------------- parse_message

TEST_CASE("printable_ascii: only printable ASCII without escapes outside the defining H.2", "[records][message]") {
  // records.hpp: every record byte 0x20-0x7E, every type known, no escape character in a field
  // (the H.2 that gave the delimiters aside). Anything else: false.
  CHECK(parse_message("H|\\^&|||AN\rP|1\rO|1|S-1\rR|1|^^^GLU|5.0\rL|1|N\r").printable_ascii);
  CHECK(parse_message("H|\\^&\rL\r").printable_ascii);                                 // H.2 only
  CHECK(parse_message("H|\\^&|||A\nR|1|^^^GLU|5\r\n").printable_ascii);                  // LF, CR LF ends
  CHECK_FALSE(parse_message("H|\\^&|||A&X01&\rL\r").printable_ascii);                    // escape in H.5
  CHECK_FALSE(parse_message("H|\\^&\rR|1|^^^GLU|5&S&0\r").printable_ascii);              // escape in R.4
  CHECK_FALSE(parse_message("H|\\^&\rR|1|^^^GLU|5\t0\r").printable_ascii);              // TAB
  CHECK_FALSE(parse_message("H|\\^&\rR|1|^^^GLU|5\x7F\r").printable_ascii);             // DEL
  CHECK_FALSE(parse_message("H|\\^&\rP|1||M\xFCller\r").printable_ascii);               // Latin-1
  CHECK_FALSE(parse_message(std::string("H|\\^&\rR|1|^^^GLU|5\0.0\r", 22)).printable_ascii);  // NUL
  CHECK_FALSE(parse_message("H|\\^&\rRX|1|&X01&\r").printable_ascii);                    // unknown type
  CHECK_FALSE(parse_message("H|\\^&\r|1|&X01&\r").printable_ascii);                      // empty type
  // Delimiters not taken from H.2 (unusable, or no H first): H.2 is a field like any other.
  CHECK_FALSE(parse_message("H|AB&C|\rL\r").printable_ascii);
  CHECK_FALSE(parse_message("P|1|&X01&\rL\r").printable_ascii);
  // A second H record's H.2 is not where the delimiters came from.
  CHECK_FALSE(parse_message("H|\\^&\rH|\\^&\rL\r").printable_ascii);
}


TEST_CASE("field n and repeat i are the pieces a plain split gives, wherever the delimiters fall",
          "[records][fields]") {
  // Records of up to 40 bytes (fields are looked for eight bytes at a time: separators at every
  // position of a word, several in one word, none for more than a word), compared with a split
  // written out by hand. Bytes >= 0x80 and the delimiter's neighbours ('|' ^ 1) sit among them.
  const char picks[] = {'|', '|', 'a', '}', '\x7D', '\xFC', '\\', '\x80'};
  int wrong = 0;
  for (unsigned seed = 0; seed < 3000; ++seed) {
    unsigned x = seed * 2654435761U;
    std::string raw = "R";
    const std::size_t len = seed % 41;
    for (std::size_t i = 1; i < len; ++i) {
      raw += picks[(x >> 7) & 7U];
      x = x * 1103515245U + 12345U;
    }
    std::vector<std::string> pieces{""};
    for (const char c : raw) {
      if (c == '|') pieces.emplace_back();
      else pieces.back() += c;
    }
    const record_view r{raw, default_delims};
    for (std::size_t n = 1; n <= pieces.size() + 2; ++n) {
      const std::string want = n <= pieces.size() ? pieces[n - 1] : "";
      if (r.field(n).raw() != want) ++wrong;
    }
    // The same search on the repeat delimiter.
    const field_view f{raw, delimiters{'#', '|', '^', '&'}};
    for (std::size_t i = 0; i <= pieces.size() + 1; ++i) {
      const std::string want = i < pieces.size() ? pieces[i] : "";
      if (f.repeat(i).raw() != want) ++wrong;
    }
  }
  CHECK(wrong == 0);
}

TEST_CASE("a well-formed message parses without diagnostics", "[records][message]") {
  const std::string text =
      "H|\\^&|||LIS\rP|1\rO|1|S1||^^^GLU\rR|1|^^^GLU|5.5\rC|1|I|note\rM|1|x\rR|2|^^^NA|140\r"
      "O|2|S1\rR|1|^^^K|4\rP|2\rO|1|S2\rL|1|N\r";
  const auto m = parse_message(text);
  CHECK(types(m) == "HPORCMRORPOL");
  CHECK(m.diagnostics.empty());
  CHECK(m.has_terminator);
  CHECK(same(m.delims, default_delims));
  REQUIRE(m.offsets.size() == m.records.size());
  CHECK(m.offsets[0] == 0);
  CHECK(m.offsets[1] == text.find("P|1"));
  CHECK(m.offsets.back() == text.find("L|1|N"));
  CHECK(m.records.back().raw() == "L|1|N");  // the terminator is not part of the view
  for (std::size_t i = 0; i < m.records.size(); ++i) {
    CHECK(text.substr(m.offsets[i], m.records[i].raw().size()) == m.records[i].raw());
  }
}

TEST_CASE("records end at CR, LF or CR LF, blank lines are skipped", "[records][message]") {
  for (const std::string sep : {"\r", "\n", "\r\n", "\r\r\n\n"}) {
    const std::string text = "H|\\^&" + sep + "P|1" + sep + sep + "L|1|N" + sep;
    const auto m = parse_message(text);
    INFO("separator size " << sep.size());
    CHECK(types(m) == "HPL");
    CHECK(m.diagnostics.empty());
    CHECK(m.records[1].raw() == "P|1");
  }
  const auto mixed = parse_message("\r\n\nH|\\^&\nP|1\r\nO|1\rL");
  CHECK(types(mixed) == "HPOL");
  CHECK(mixed.diagnostics.empty());
  CHECK(mixed.offsets[0] == 3);

  const auto empty = parse_message("");
  CHECK(empty.records.empty());
  CHECK(empty.diagnostics.empty());
  CHECK_FALSE(empty.has_terminator);
  for (const char* blank : {"\r", "\n\n", "\r\n\r\n"}) {
    const auto b = parse_message(blank);
    CHECK(b.records.empty());
    CHECK(b.diagnostics.empty());
  }
}

TEST_CASE("record types are case-insensitive, L with or without a termination code",
          "[records][message]") {
  const auto m = parse_message("h|\\^&\rp|1\ro|1\rr|1\rc|1\rl");
  CHECK(types(m) == "HPORCL");
  CHECK(m.diagnostics.empty());
  CHECK(m.has_terminator);

  for (const char* l : {"L", "L|1", "L|1|N", "L|1|F", "L|1|N|extra|fields"}) {
    const std::string text = std::string("H|\\^&\r") + l + "\r";
    const auto t = parse_message(text);
    INFO(l);
    CHECK(t.diagnostics.empty());
    CHECK(t.has_terminator);
  }
  CHECK_FALSE(parse_message("H|\\^&\rP|1\r").has_terminator);
}

TEST_CASE("unknown extra fields are ignored", "[records][message]") {
  std::string r = "R|1|^^^GLU|5.5";
  for (int i = 0; i < 50; ++i) r += "|extra";
  const std::string text = "H|\\^&\rP|1\rO|1\r" + r + "\rL|1|N\r";  // outlives the views
  const auto m = parse_message(text);
  CHECK(m.diagnostics.empty());
  CHECK(m.records[3].field(4).decode() == "5.5");
  CHECK(m.records[3].field_count() == 54);
}

TEST_CASE("hierarchy violations are diagnostics and the record is kept", "[records][message]") {
  const auto check = [](const std::string& text, const std::string& expect_types,
                        std::size_t bad_index) {
    INFO(text);
    const auto m = parse_message(text);
    CHECK(types(m) == expect_types);
    REQUIRE(count(m, record_error::out_of_order) == 1);
    CHECK(m.diagnostics[0].record_index == bad_index);
    CHECK(m.diagnostics[0].byte_offset == m.offsets[bad_index - 1]);
    CHECK_FALSE(m.diagnostics[0].detail.empty());
  };
  check("H|\\^&\rP|1\rR|1\rL\r", "HPRL", 3);                    // R before any O
  check("H|\\^&\rO|1\rL\r", "HOL", 2);                          // O before any P
  check("H|\\^&\rP|1\rO|1\rR|1\rP|2\rR|1\rL\r", "HPORPRL", 6);  // a new P closes the O
  check("H|\\^&\rP|1\rL|1|N\rP|2\r", "HPLP", 4);                // after the terminator
  check("H|\\^&\rP|1\rH|\\^&\rL\r", "HPHL", 3);                 // second header: use split_messages
  check("H|\\^&\rQ|1|^S1||ALL\rO|1\rL\r", "HQOL", 3);           // O belongs under P, not Q

  // C and M attach to whatever precedes them, including H, P, O, R and another C.
  const auto ok =
      parse_message("H|\\^&\rC|1\rP|1\rC|1\rM|1\rO|1\rC|1\rR|1\rC|1\rC|2\rM|1\rR|2\rL\r");
  CHECK(ok.diagnostics.empty());
  // A query message: H Q L; scientific records sit at level 1 too.
  CHECK(parse_message("H|\\^&\rQ|1|^1068687||ALL||||||||O\rL|1|N\r").diagnostics.empty());
  CHECK(parse_message("H|\\^&\rS|1\rL\r").diagnostics.empty());
  CHECK(count(parse_message("H|\\^&\rL\rC|1\r"), record_error::out_of_order) == 1);
}

TEST_CASE("a message must start with H, otherwise defaults are used", "[records][message]") {
  const auto m = parse_message("P|1|a&F&b\rL\r");
  CHECK(types(m) == "PL");
  REQUIRE_FALSE(m.diagnostics.empty());
  CHECK(m.diagnostics[0].error == record_error::no_header);
  CHECK(m.diagnostics[0].record_index == 1);
  CHECK(same(m.delims, default_delims));
  CHECK(m.records[0].field(3).decode() == "a|b");

  const auto bad = parse_message("H||||\rP|1\rL\r");
  REQUIRE(bad.diagnostics.size() == 1);
  CHECK(bad.diagnostics[0].error == record_error::bad_delimiters);
  // With unusable delimiters the H record is still one record of type H, not "unknown".
  const auto odd = parse_message("H;;^&;x\rL\r");
  REQUIRE(odd.diagnostics.size() == 1);
  CHECK(odd.diagnostics[0].error == record_error::bad_delimiters);
  CHECK(types(odd) == "HL");
  const auto lenient = parse_message("\nH|\\\\^&|||x\rL\r");
  REQUIRE(lenient.diagnostics.size() == 1);
  CHECK(lenient.diagnostics[0].error == record_error::lenient_delimiters);
  CHECK(lenient.diagnostics[0].byte_offset == 4);  // the second backslash
  CHECK(lenient.records[0].field(5).decode() == "x");
  CHECK(same(bad.delims, default_delims));
  CHECK(types(bad) == "HPL");
}

TEST_CASE("empty and unknown record types are diagnostics, records kept", "[records][message]") {
  const auto m = parse_message("H|\\^&\r|1|\rX|1\rPR|1\r \rL\r");
  CHECK(types(m) == std::string("H|XP L"));
  REQUIRE(m.diagnostics.size() == 4);
  CHECK(m.diagnostics[0].error == record_error::empty_record);
  CHECK(m.diagnostics[0].record_index == 2);
  CHECK(m.diagnostics[1].error == record_error::unknown_record_type);
  CHECK(m.diagnostics[1].record_index == 3);
  CHECK(m.diagnostics[2].error == record_error::unknown_record_type);  // type field "PR"
  CHECK(m.diagnostics[2].record_index == 4);
  CHECK(m.diagnostics[3].error == record_error::unknown_record_type);  // " "
  CHECK(m.has_terminator);
}

TEST_CASE("disallowed bytes give not_text with record index and byte offset",
          "[records][message]") {
  const std::string text = std::string("H|\\^&\rP|1|A") + '\x01' + "B\x7F\rR|1|\xFF\rL\r";
  const auto m = parse_message(text);
  CHECK(types(m) == "HPRL");
  REQUIRE(count(m, record_error::not_text) == 2);
  CHECK(m.diagnostics[0].error == record_error::not_text);
  CHECK(m.diagnostics[0].record_index == 2);
  CHECK(m.diagnostics[0].byte_offset == text.find('\x01'));  // the first bad byte of the record
  CHECK(m.diagnostics[1].record_index == 3);
  CHECK(m.diagnostics[1].byte_offset == text.find('\xFF'));
  CHECK(m.records[1].field(3).raw() == std::string("A\x01"
                                                   "B\x7F"));

  for (int b : {0, 6, 8, 14, 31, 127, 255}) {
    const std::string t = std::string("H|\\^&\rP|") + static_cast<char>(b) + "\r";
    INFO("byte " << b);
    CHECK(count(parse_message(t), record_error::not_text) == 1);
  }
  // LIS02 5.1 allows 7, 9, 11, 12 and 128-254 (Latin-1 and UTF-8 text).
  for (int b : {7, 9, 11, 12, 32, 126, 128, 200, 254}) {
    const std::string t = std::string("H|\\^&\rP|") + static_cast<char>(b) + "\r";
    INFO("byte " << b);
    CHECK(parse_message(t).diagnostics.empty());
  }
}

TEST_CASE("bad escapes are reported once per record, H.2 is not an escape", "[records][message]") {
  const std::string text = "H|\\^&|||Tom & Jerry\rP|1|a&Q&b|c & d\rL\r";
  const auto m = parse_message(text);
  REQUIRE(count(m, record_error::bad_escape) == 2);
  CHECK(m.diagnostics[0].record_index == 1);
  CHECK(m.diagnostics[0].byte_offset == text.find("Tom"));
  CHECK(m.diagnostics[1].record_index == 2);
  CHECK(m.diagnostics[1].byte_offset == text.find("a&Q&"));
  CHECK(m.records[1].field(3).decode() == "a&Q&b");
  CHECK(parse_message("H|\\^&\rL\r").diagnostics.empty());
}

TEST_CASE("the record limit is a named error, not growth", "[records][message]") {
  message_limits lim;
  lim.max_records = 3;
  const auto m = parse_message("H|\\^&\rP|1\rO|1\rR|1\rL\r", lim);
  CHECK(m.records.size() == 3);
  REQUIRE(count(m, record_error::too_many_records) == 1);
  CHECK(m.diagnostics.back().record_index == 4);
  CHECK_FALSE(m.has_terminator);
  CHECK(parse_message("H|\\^&\rL\r", lim).diagnostics.empty());
  lim.max_records = 0;
  const auto none = parse_message("H|\\^&\rL\r", lim);
  CHECK(none.records.empty());
  REQUIRE(none.diagnostics.size() == 1);
  CHECK(none.diagnostics[0].error == record_error::too_many_records);
  CHECK(none.diagnostics[0].record_index == 1);
}

TEST_CASE("non-default delimiters are used for the whole message", "[records][message]") {
  const auto m =
      parse_message("H|\\!~|||DxH\rR|1|!!!HGB!718-7|146!  H |10^9/L||3.8 to 11.8|A\rL|1|N\r");
  CHECK(same(m.delims, dxh_delims));
  const auto& r = m.records[1];
  CHECK(r.delims().component == '!');
  CHECK(r.field(3).component(4).decode() == "HGB");
  CHECK(r.field(4).component(1).decode() == "146");
  CHECK(r.field(4).component(2).decode() == "  H ");
  CHECK(r.field(5).decode() == "10^9/L");
}

TEST_CASE("a message can be copied and the copy stays valid", "[records][message]") {
  const std::string text = "H|@^\\\rP|1||a@b^c\\F\\d\rL\r";
  message copy;
  {
    const auto original = parse_message(text);
    copy = original;  // the views hold the delimiters by value, not a pointer into `original`
  }
  CHECK(copy.records[1].field(4).repeat(1).component(2).decode() == "c|d");
  std::vector<message> many(3, copy);
  CHECK(many[2].records[1].field(4).repeat_count() == 2);
}

// ---------------------------------------------------------------- split_messages

TEST_CASE("split_messages finds each H record start", "[records][split]") {
  const std::string one = "H|\\^&\rQ|1|^A||ALL\rL|1|N\r";
  const std::string two = "h|\\!~\nP|1\nL\n";
  const auto text = one + two;
  CHECK(split_messages(text) == std::vector<std::size_t>{0, one.size()});
  CHECK(split_messages("").empty());
  CHECK(split_messages("P|1\rL\r").empty());
  CHECK(split_messages("noise\r\nH|\\^&\r") == std::vector<std::size_t>{7});
  CHECK(split_messages("P|1|xH|\\^&\rC|1|H\r").empty());  // only at a record start
  CHECK(split_messages("\n\nH") == std::vector<std::size_t>{2});

  const auto starts = split_messages(text);
  const auto m1 = parse_message(std::string_view(text).substr(starts[0], starts[1] - starts[0]));
  const auto m2 = parse_message(std::string_view(text).substr(starts[1]));
  CHECK(types(m1) == "HQL");
  CHECK(types(m2) == "HPL");
  CHECK(m1.diagnostics.empty());
  CHECK(m2.diagnostics.empty());
  CHECK(same(m2.delims, dxh_delims));
}

// ---------------------------------------------------------------- captures (records-only)

TEST_CASE("capture: Bio-Rad IH-1000 blood group", "[records][capture]") {
  const auto text = interfaced::test::capture("astm/biorad-ih1000-ihcom-bloodgroup-records.astm");
  if (!text) return;
  const auto m = parse_message(*text);
  CHECK(types(m) == "HPORCRCRCRCL");
  CHECK(m.diagnostics.empty());
  CHECK(m.has_terminator);
  CHECK(same(m.delims, default_delims));

  const auto& h = m.records[0];
  CHECK(h.field(5).decode() == "Bio-Rad");
  CHECK(h.field(6).decode() == "IH v5.2");
  CHECK(h.field(14).decode() == "20220315194227");

  const auto& p = m.records[1];
  CHECK(p.field(4).decode() == "1010868845");
  CHECK(p.field(6).component(1).decode() == "Testus");
  CHECK(p.field(6).component(2).decode() == "Test");
  CHECK(p.field(8).decode() == "19400607");
  CHECK(p.field(9).decode() == "M");

  const auto& o = m.records[2];
  CHECK(o.field(3).decode() == "1122206642");
  CHECK(o.field(4).repeat_count() == 2);  // repeated specimen ids
  CHECK(o.field(4).repeat(1).component(1).decode() == "1122206642");
  CHECK(o.field(5).component(4).decode() == "MO10");
  CHECK(o.field(5).component(6).decode() == "28343");
  CHECK(o.field(26).decode() == "P");

  const auto& r1 = m.records[3];
  CHECK(r1.field(3).component(4).decode() == "AntiA");
  CHECK(r1.field(3).component(6).decode() ==
        "Bloodgroup: A,B,D Confirmation for Patients (DiaClon) (5005)");
  CHECK(r1.field(4).component(1).decode() == "40");
  CHECK(r1.field(15).decode() == "IH-1000");

  const auto& c1 = m.records[4];
  CHECK(c1.field(3).repeat_count() == 2);
  CHECK(c1.field(3).repeat(0).component(1).decode() == "ID-Diluent 2");
  CHECK(c1.field(3).repeat(0).component(3).decode() == "05761.03.12");
  CHECK(c1.field(3).repeat(0).component(4).decode() == "20240131");
  CHECK(c1.field(4).component(5).decode() == "4");

  const auto& r4 = m.records[9];
  CHECK(r4.field(4).component_count() == 9);
  CHECK(r4.field(4).component(1).decode() == "A");
  CHECK(r4.field(4).component(4).decode() == "ccee");
  CHECK(r4.field(9).decode() == "S");
  CHECK(m.records[11].field(3).decode() == "N");
}

TEST_CASE("capture: Immucor Galileo/Echo result", "[records][capture]") {
  const auto text = interfaced::test::capture("astm/immucor-galileo-echo-result-records.astm");
  if (!text) return;
  const auto m = parse_message(*text);
  CHECK(types(m) == "HPORRRRRRRRRORRRRRL");
  CHECK(m.diagnostics.empty());
  CHECK(m.records[0].field(5).decode() == "Echo");
  CHECK(m.records[0].field(10).decode() == "LIS");
  CHECK(m.records[0].field(13).decode() == "LIS2-A2");
  CHECK(m.records[1].field(3).decode() == "1171984");
  CHECK(m.records[1].field(6).component(1).decode() == "Patient");
  CHECK(m.records[2].field(3).decode() == "0651439A");
  CHECK(m.records[2].field(5).component(4).decode() == "ABOD Full");
  CHECK(m.records[2].field(16).component(1).decode() == "Blood");  // O.16 specimen descriptor

  const auto& anti_b = m.records[5];
  CHECK(anti_b.field(3).component(4).decode() == "Anti-B");
  CHECK(anti_b.field(4).component(1).decode() == "3+");
  CHECK(anti_b.field(4).component(3).decode() == "45");
  CHECK(anti_b.field(9).decode() == "F");
  CHECK(anti_b.field(11).decode() == "brentp");
  CHECK(anti_b.field(13).decode() == "20060306164429");
  CHECK(anti_b.field(14).decode() == "M0002");
  CHECK(m.records[11].field(4).decode() == "B Pos");
  CHECK(m.records[12].field(5).component(4).decode() == "Screen");
  CHECK(m.records[17].field(4).decode() == "Pos");
}

TEST_CASE("capture: Immucor order download (trailing space, no final newline)",
          "[records][capture]") {
  const auto text =
      interfaced::test::capture("astm/immucor-galileo-echo-order-download-records.astm");
  if (!text) return;
  const auto m = parse_message(*text);
  CHECK(types(m) == "HPOCL");
  CHECK(m.diagnostics.empty());
  CHECK(m.has_terminator);
  CHECK(m.records[2].field(12).decode() == "N");  // O.12 action code: new
  CHECK(m.records[2].field(5).component(4).decode() == "Crossmatch");
  CHECK(m.records[3].field(3).decode() == "L");
  CHECK(m.records[3].field(4).component(1).decode() == "Donor");
  CHECK(m.records[3].field(4).component(2).decode() == "R02460");
  CHECK(m.records[4].raw() == "L|1|N ");
  CHECK(m.records[4].field(3).raw() == "N ");  // kept as sent; trimming is the normaliser's call
}

TEST_CASE("capture: EUROIMMUN Analyzer I, 20 patients in one message", "[records][capture]") {
  const auto text =
      interfaced::test::capture("astm/euroimmun-analyzer1-sarscov2-multipatient-records.astm");
  if (!text) return;
  const auto m = parse_message(*text);
  REQUIRE(m.records.size() == 62);
  std::string expect = "H";
  for (int i = 0; i < 20; ++i) expect += "POR";
  CHECK(types(m) == expect + "L");
  CHECK(m.diagnostics.empty());
  CHECK(m.records[0].raw() == "H|\\^&|||");
  CHECK(m.records[0].field_count() == 5);
  CHECK(m.records[1].field(4).decode() == "TEST-27-079-5-1");
  CHECK(m.records[2].field(5).component(4).decode() == "SARSCOV2IGA");
  CHECK(m.records[2].field(7).decode() == "20220218080737");
  CHECK(m.records[3].field(4).decode() == ">8");
  CHECK(m.records[3].field(5).decode() == "Ratio");
  CHECK(m.records[6].field(4).decode() == "7,41");                    // comma decimal, kept as sent
  CHECK(m.records[43].field(4).decode() == "TEST-27-026-5-1  57  ");  // P|15, spaces kept
  CHECK(m.records[60].field(4).decode() == "5,64");
}

TEST_CASE("capture: Yumizen H550 doubled backslash header", "[records][capture]") {
  const auto text = interfaced::test::capture("astm/horiba-yumizen_h550-qc-result-records.astm");
  if (!text) return;
  const auto m = parse_message(*text);
  CHECK(types(m) == "HPOMMMRRRRRRRRRRRRRRRRRRRRL");
  REQUIRE(m.diagnostics.size() == 1);
  CHECK(m.diagnostics[0].error == record_error::lenient_delimiters);
  CHECK(m.diagnostics[0].record_index == 1);
  CHECK(same(m.delims, default_delims));  // not `\` as component separator

  CHECK(m.records[0].field(5).component(1).decode() == "H550");
  CHECK(m.records[0].field(5).component(2).decode() == "909YAXH02732");
  CHECK(m.records[0].field(12).decode() == "Q");  // H.12 processing id: quality control
  CHECK(m.records[2].field(3).decode() == "PX449L");
  CHECK(m.records[2].field(16).component(3).decode() == "CTRLLOW");
  const auto& mcv = m.records[6];
  CHECK(mcv.field(3).component(4).decode() == "MCV");
  CHECK(mcv.field(3).component(5).decode() == "787-2");
  CHECK(mcv.field(4).decode() == "78.4");
  CHECK(mcv.field(5).decode() == "um3");
  CHECK(mcv.field(6).component(1).decode() == "73.5-83.5");
  CHECK(mcv.field(7).decode() == "N");
  CHECK(mcv.field(9).decode() == "F");
  // The doubling runs through the whole file (the M.4 reagent list reads
  // `CLEANER\\DILUENT\\LYSE`), so with `\` as repeat every other repeat is empty.
  const auto reagents = m.records[5].field(4);
  CHECK(reagents.repeat_count() == 5);
  CHECK(reagents.repeat(0).decode() == "CLEANER");
  CHECK(reagents.repeat(1).empty());
  CHECK(reagents.repeat(2).decode() == "DILUENT");
  CHECK(reagents.repeat(4).decode() == "LYSE");
  CHECK(m.records.back().raw() == "L|1|N");
}

TEST_CASE("capture: Ortho VISION uploads (bare L, trailing blank line)", "[records][capture]") {
  for (const char* file :
       {"astm/ortho-vision-upload-utf8.astm", "astm/ortho-vision-upload-windows1252.astm",
        "astm/ortho-vision-upload-iso8859-1.astm"}) {
    INFO(file);
    const auto text = interfaced::test::capture(file);
    if (!text) return;
    const auto m = parse_message(*text);
    CHECK(types(m) == "HPORRL");
    CHECK(m.diagnostics.empty());
    CHECK(m.has_terminator);
    CHECK(m.records[5].raw() == "L");
    CHECK(m.records[0].field(5).component(2).decode() == "VISION");
    CHECK(m.records[0].field(13).decode() == "LIS2-A");
    CHECK(m.records[1].field(3).decode() == "PID77677");
    CHECK(m.records[2].field(3).decode() == "SID999");
    CHECK(m.records[2].field(5).decode() == "ABO-D");
    CHECK(m.records[3].field(3).decode() == "ABO");
    CHECK(m.records[3].field(4).decode() == "A");
    CHECK(m.records[4].field(4).decode() == "NEG");
    // R.9 status: the UTF-8 file says F (final), the other two R (previously transmitted).
    const bool utf8 = std::string_view(file).find("utf8") != std::string_view::npos;
    CHECK(m.records[4].field(9).decode() == (utf8 ? "F" : "R"));
    CHECK(m.records[4].field(14).decode() == "J number");
  }
}

TEST_CASE("capture: Beckman DxH scenario holds nine H..L messages", "[records][capture][split]") {
  const auto raw = interfaced::test::capture("astm/beckman-dxh-query-order-result-scenario.txt");
  if (!raw) return;
  const auto text = without_directives(*raw);
  const auto starts = split_messages(text);
  REQUIRE(starts.size() == 9);
  const std::string_view all(text);
  std::vector<std::string> kinds;
  for (std::size_t i = 0; i < starts.size(); ++i) {
    const auto end = i + 1 < starts.size() ? starts[i + 1] : text.size();
    const auto m = parse_message(all.substr(starts[i], end - starts[i]));
    INFO("message " << i);
    CHECK(m.diagnostics.empty());
    CHECK(m.has_terminator);
    CHECK(same(m.delims, dxh_delims));
    kinds.push_back(types(m));
    if (i == 0) {
      CHECK(m.records[1].field(3).component(2).decode() == "000004287888");  // Q.3 specimen id
      CHECK(m.records[1].field(5).decode() == "ALL");
      CHECK(m.records[1].field(13).decode() == "O");
    }
    if (i == 3) {
      CHECK(m.records[1].field(8).component(2).decode() == "44");  // birth date ! age
      CHECK(m.records[2].field(5).component(4).decode() == "CD");
    }
    if (i == 6) {
      const auto& hgb = m.records[7];
      CHECK(hgb.field(3).component(4).decode() == "HGB");
      CHECK(hgb.field(3).component(5).decode() == "718-7");
      CHECK(hgb.field(4).component(1).decode() == "146");
      CHECK(hgb.field(4).component(2).decode() == "  H ");
      CHECK(hgb.field(5).decode() == "g/L");
      CHECK(hgb.field(7).decode() == "109 to 143");
      CHECK(m.records[4].field(5).decode() == "10^9/L");  // `^` is data with `!` components
    }
  }
  CHECK(kinds[0] == "HQL");
  CHECK(kinds[5] == "HPOL");
  CHECK(kinds[8].size() == 1 + 3 + 28 + 1);
}

TEST_CASE("capture: framed GeneXpert and Erba with their own delimiters", "[records][capture]") {
  const auto gx =
      interfaced::test::capture("astm/cepheid-genexpert-mtbrif-result-custom-delimiters.astm");
  if (!gx) return;
  const auto gtext = frame_text(*gx);
  const auto g = parse_message(gtext);
  CHECK(same(g.delims, genexpert_delims));
  CHECK(g.records.size() == 91);
  CHECK(g.diagnostics.empty());
  CHECK(g.records[0].field(5).component(2).decode() == "GeneXpert");
  CHECK(g.records[3].field(3).component(5).decode() == "Xpert MTB-RIF Ultra");
  CHECK(g.records[3].field(4).component(1).decode() == "NOT DETECTED");
  CHECK(g.records[4].type() == 'C');
  CHECK(g.records[4].field(4).component(1).decode() == "Notes");
  CHECK(g.records[4].field(4).component(3).decode() ==
        "Id# 118176 Sardani P Lantion CDU/Dr. A Marcil cp");

  const auto erba = interfaced::test::capture("astm/erba-xl1000-result-backtick-repeat.astm");
  if (!erba) return;
  const auto etext = frame_text(*erba);  // outlives the views
  const auto e = parse_message(etext);
  CHECK(same(e.delims, erba_delims));
  CHECK(types(e) == "HPORCL");
  CHECK(e.diagnostics.empty());
  CHECK(e.records[0].field(13).decode() == "E 1394-97");
  CHECK(e.records[3].field(3).component(4).decode() == "DBILL");
  CHECK(e.records[3].field(4).decode() == "0.3");
  CHECK(e.records[3].field(5).decode() == "mg/dl");
  CHECK(e.records[4].field(4).decode() == "Instrument Flag A");
}

// ---------------------------------------------------------------- robustness

TEST_CASE("every prefix of every records-only capture parses", "[records][prefix]") {
  std::vector<std::string> texts = {
      "H|\\^&\rP|1|a&F&b&X41&\\c^d&Q&\rO|1\rR|1\rL|1|N\r",
      "H|\\\\^&|||x\nP|1\nL",
      "H|@^\\|\rR|1|\\X0D0A\\@\\S\\\rL",
      std::string("H|\\^&\rP|\x01\xFF\r\n\r\nL"),
  };
  for (const char* file :
       {"astm/biorad-ih1000-ihcom-bloodgroup-records.astm",
        "astm/immucor-galileo-echo-result-records.astm",
        "astm/immucor-galileo-echo-order-download-records.astm",
        "astm/euroimmun-analyzer1-sarscov2-multipatient-records.astm",
        "astm/ortho-vision-upload-utf8.astm", "astm/ortho-vision-upload-windows1252.astm"}) {
    if (auto t = interfaced::test::capture(file)) texts.push_back(*t);
  }
  for (const auto& text : texts) {
    std::size_t previous_records = 0;
    for (std::size_t n = 0; n <= text.size(); ++n) {
      const std::string prefix = text.substr(0, n);  // own buffer, so ASan sees overreads
      const auto m = parse_message(prefix);
      (void)touch_everything(m);
      (void)split_messages(prefix);
      // A prefix never has fewer records than a shorter prefix.
      CHECK(m.records.size() >= previous_records);
      previous_records = m.records.size();
      REQUIRE(m.offsets.size() == m.records.size());
    }
  }
}

// ---------------------------------------------------------------- writer

TEST_CASE("writer escapes delimiter characters and disallowed bytes", "[records][writer]") {
  const record_writer w;
  CHECK(w.escape("a|b^c\\d&e") == "a&F&b&S&c&R&d&E&e");
  CHECK(w.escape("x\ry\nz") == "x&X0D&y&X0A&z");
  CHECK(w.escape(std::string("\x01\x7F\xFF", 3)) == "&X01&&X7F&&XFF&");
  CHECK(w.escape("\xE9\t") == "\xE9\t");  // allowed by LIS02 5.1, sent as is
  const record_writer g{genexpert_delims};
  CHECK(g.escape("a@b\\c&d|e^f") == "a\\R\\b\\E\\c&d\\F\\e\\S\\f");
}

TEST_CASE("writer builds an order message record by record", "[records][writer]") {
  record_writer w;
  w.header({"", "", "interfaced^LIS", "", "", "", "", "", "", "P", "LIS2-A2", "20240101120000"});
  w.begin('P')
      .field("1")
      .field("")
      .field("PID-1")
      .field("")
      .components({"Doe", "Jane", "", ""})
      .field("");
  w.begin('O')  // begin() ends the open P record
      .field("1")
      .field("S&1")
      .field("")
      .repeats({{"", "", "", "GLU"}, {"", "", "", "NA"}})
      .field("R")
      .field("")
      .field("")
      .end();
  w.begin('L').field("1").field("N").end();
  CHECK(w.text() ==
        "H|\\^&|||interfaced&S&LIS|||||||P|LIS2-A2|20240101120000\r"
        "P|1||PID-1||Doe^Jane\r"
        "O|1|S&E&1||^^^GLU\\^^^NA|R\r"
        "L|1|N\r");
  const auto m = parse_message(w.text());
  CHECK(types(m) == "HPOL");
  CHECK(m.diagnostics.empty());
  CHECK(m.records[0].field(5).decode() == "interfaced^LIS");
  CHECK(m.records[0].field(12).decode() == "P");  // H.12 processing id
  CHECK(m.records[0].field(14).decode() == "20240101120000");
  CHECK(m.records[2].field(3).decode() == "S&1");
  CHECK(m.records[2].field(5).repeat(1).component(4).decode() == "NA");

  CHECK(w.take().size() > 0);
  CHECK(w.text().empty());
  w.begin('L').end();
  CHECK(w.text() == "L\r");
  w.begin('P').field("").field("").end();  // all fields empty: only the type remains
  CHECK(w.text() == "L\rP\r");
  record_writer bare;
  bare.header({});
  CHECK(bare.text() == "H|\\^&\r");
  record_writer raw;
  raw.begin('R').field("1").raw_field("^^^GLU\\^^^NA").end();
  CHECK(raw.text() == "R|1|^^^GLU\\^^^NA\r");
}

TEST_CASE("writer builds a query answer with non-default delimiters", "[records][writer]") {
  // LIS02: an answer to Q is H P O... with O.26 report type Q, ended by L (L.3 F or I).
  record_writer w{dxh_delims};
  w.header({"", "", "LIS", "", "", "", "", "DxH", "", "P", "LIS2-A"});
  w.begin('P').field("1").field("").field("401791").end();
  w.begin('O').field("1").field("000004287888").field("").components({"", "", "", "CD"}).field("R");
  for (int i = 0; i < 19; ++i) w.field("");
  w.field("Q").end();
  w.begin('L').field("1").field("F").end();
  CHECK(w.text().substr(0, 6) == "H|\\!~|");
  const auto m = parse_message(w.text());
  CHECK(same(m.delims, dxh_delims));
  CHECK(types(m) == "HPOL");
  CHECK(m.diagnostics.empty());
  CHECK(m.records[2].field(5).raw() == "!!!CD");
  CHECK(m.records[2].field(26).decode() == "Q");
  CHECK(m.records[3].field(3).decode() == "F");
}

TEST_CASE("writer output round-trips through parse_message for every delimiter set",
          "[records][writer]") {
  const std::vector<std::string> values = {
      "plain",
      "a|b",
      "a^b",
      "a\\b",
      "a&b",
      "|^\\&",
      "&F&",
      "@`!~",
      "Tom & Jerry &F&",
      "x\ry\nz",
      std::string("\x00\x01\x7F\xFF", 4),
      "\xC5\xA0\xC4\x86",
      "  padded  ",
      "~S~",
      "\\F\\",
      "&",
      "",
      "trail&",
  };
  for (const auto& d : {default_delims, genexpert_delims, erba_delims, dxh_delims}) {
    record_writer w{d};
    w.header({"", "", "sender"});
    w.begin('P').field("1");
    for (const auto& v : values) w.field(v);
    w.end();
    w.begin('C').field("1");
    for (const auto& v : values) w.components({v, v});
    w.end();
    w.begin('M')
        .field("1")
        .repeats({{values[1], values[2]}, {values[3], values[4]}, {values[9]}})
        .end();
    w.begin('L').field("1").field("N").end();

    const auto m = parse_message(w.text());
    INFO("delimiters " << d.field << d.repeat << d.component << d.escape);
    REQUIRE(types(m) == "HPCML");
    CHECK(m.diagnostics.empty());
    CHECK(same(m.delims, d));
    for (std::size_t i = 0; i < values.size(); ++i) {
      INFO("value " << i);
      CHECK(m.records[1].field(i + 3).decode() == values[i]);
      CHECK(m.records[2].field(i + 3).component(1).decode() == values[i]);
      if (!values[i].empty()) CHECK(m.records[2].field(i + 3).component(2).decode() == values[i]);
    }
    const auto rep = m.records[3].field(3);
    CHECK(rep.repeat_count() == 3);
    CHECK(rep.repeat(0).component(2).decode() == values[2]);
    CHECK(rep.repeat(1).component(1).decode() == values[3]);
    CHECK(rep.repeat(2).decode() == values[9]);
  }
}

TEST_CASE("writer round-trip holds for every short string over the special bytes",
          "[records][writer]") {
  std::string alphabet = "|\\^&@`!~FSREXHNZ0Aa\r\n \x01\xFF";
  alphabet.push_back('\0');
  std::vector<std::string> strings{""};
  for (int len = 1; len <= 3; ++len) {
    std::vector<std::string> next;
    for (const auto& s : strings) {
      if (static_cast<int>(s.size()) != len - 1) continue;
      for (const char c : alphabet) next.push_back(s + c);
    }
    strings.insert(strings.end(), next.begin(), next.end());
  }
  for (const auto& d : {default_delims, genexpert_delims, dxh_delims}) {
    std::size_t failures = 0;
    for (const auto& s : strings) {
      record_writer w{d};
      w.header({});
      w.begin('C').field("1").field(s).end();
      const auto m = parse_message(w.text());
      if (m.records.size() != 2 || m.records[1].field(3).decode() != s || !m.diagnostics.empty())
        ++failures;
    }
    CHECK(failures == 0);
  }
}

TEST_CASE("writer and text codec: a UTF-8 name sent in the device's encoding comes back",
          "[records][writer]") {
  using interfaced::text_encoding;
  // "Žofia Šimková" in UTF-8 (bytes spelled out: the test must not depend on the file encoding).
  const std::string name =
      "\xC5\xBD"
      "ofia \xC5\xA0"
      "imkov\xC3\xA1";
  for (const auto enc : {text_encoding::windows1252, text_encoding::utf8}) {
    bool lossy = false;
    const auto bytes = interfaced::from_utf8(name, enc, &lossy);
    CHECK_FALSE(lossy);
    record_writer w;
    w.header({});
    w.begin('P').field("1").field("").field("PID").field("").components({bytes, "B"}).end();
    const auto m = parse_message(w.text());
    CHECK(m.diagnostics.empty());
    CHECK(interfaced::to_utf8(m.records[1].field(6).component(1).decode(), enc, &lossy) == name);
    CHECK_FALSE(lossy);
  }
  bool lossy = false;
  CHECK(interfaced::from_utf8(name, text_encoding::latin1, &lossy) == "?ofia ?imkov\xE1");
  CHECK(lossy);
}
