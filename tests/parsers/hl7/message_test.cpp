#include <catch2/catch.hpp>

#include <string>

#include "hl7_test_helpers.hpp"
#include "parsers/hl7/message.hpp"
#include "support/files.hpp"

using namespace interfaced::hl7;

namespace {

message parsed(std::string_view text) {
  message m;
  const std::error_code ec = parse_message(text, m);
  INFO(ec.message());
  REQUIRE(!ec);
  return m;
}

const char* const hl7_captures[] = {
    "biosystems-ba400-oul-r22-single-result.hl7",
    "biosystems-ba400-oul-r22-three-tests-flag025.hl7",
    "biosystems-ba400-oul-r22-reexport-a.hl7",
    "biosystems-ba400-oul-r22-reexport-b.hl7",
    "biosystems-ba400-oul-r22-repeat-run-a.hl7",
    "biosystems-ba400-oul-r22-repeat-run-b.hl7",
    "biosystems-ba400-qbp-q11-lab27.hl7",
    "hmis-lims-ack-r22-to-ba400.hl7",
    "roche-cobaspure-oul-r22-lab29-mllp.hl7",
    "roche-cobaspure-esu-u01-status-mllp.hl7",
    "roche-cobaspure-host-ack-to-oul-r22-mllp.hl7",
    "roche-cobaspure-host-ack-u01-mllp.hl7",
};

}  // namespace

TEST_CASE("message: delimiters come from MSH-1 and MSH-2", "[hl7][message]") {
  delimiters d;
  REQUIRE(!detect_delimiters("MSH|^~\\&|A", d));
  CHECK(d.field == '|');
  CHECK(d.component == '^');
  CHECK(d.repetition == '~');
  CHECK(d.escape == '\\');
  CHECK(d.subcomponent == '&');

  // Unusual but legal delimiters are honoured everywhere.
  const message m = parsed("MSH#*@!%#APP#FAC\rOBX#1#NM#GLU*Glucose#a%b*c@d%e#!F!!S!x\r");
  CHECK(m.delims().field == '#');
  CHECK(m.delims().component == '*');
  CHECK(m.delims().repetition == '@');
  CHECK(m.delims().escape == '!');
  CHECK(m.delims().subcomponent == '%');
  const segment_view& obx = m.segment(1);
  CHECK(obx.name() == "OBX");
  CHECK(obx.field(3).component(2).raw() == "Glucose");
  CHECK(obx.field(4).repetition_count() == 2);
  CHECK(obx.field(4).repetition(1).raw() == "d%e");
  CHECK(obx.field(4).component(1).subcomponent(2).raw() == "b");
  CHECK(obx.field(4).component(2).raw() == "c");
  CHECK(obx.field(5).decode() == "#*x");
  CHECK(m.msh().field(3).raw() == "APP");
  CHECK(m.msh().field(1).raw() == "#");
  CHECK(m.msh().field(2).raw() == "*@!%");
}

TEST_CASE("message: a short MSH-2 leaves the missing delimiters undeclared", "[hl7][message]") {
  const message m = parsed("MSH|^~|A\rOBX|1|ST|X||a\\b&c\r");
  CHECK(m.delims().escape == '\0');
  CHECK(m.delims().subcomponent == '\0');
  const value_view v = m.segment(1).field(5);
  CHECK(v.decode() == "a\\b&c");  // no escape character: nothing is decoded
  CHECK(v.subcomponent_count() == 1);
  CHECK(v.subcomponent(1).raw() == "a\\b&c");
  // 2.7's fifth (truncation) character is accepted.
  message truncation;
  CHECK(!parse_message("MSH|^~\\&#|A\r", truncation));
}

TEST_CASE("message: bad delimiters and missing MSH are errors", "[hl7][message]") {
  message m;
  CHECK(parse_message("", m) == message_error::empty);
  CHECK(parse_message("\r\n\r\n", m) == message_error::empty);
  CHECK(parse_message("PID|1\rMSH|^~\\&\r", m) == message_error::no_msh);
  CHECK(parse_message("MSA|AA|1\r", m) == message_error::no_msh);
  CHECK(parse_message("MSH", m) == message_error::bad_delimiters);
  CHECK(parse_message("MSH|", m) == message_error::bad_delimiters);
  CHECK(parse_message("MSH||A", m) == message_error::bad_delimiters);       // no MSH-2
  CHECK(parse_message("MSH|^^\\&|A", m) == message_error::bad_delimiters);  // repeated
  CHECK(!parse_message("MSH|^~|&|A", m));                                   // short MSH-2
  CHECK(parse_message("MSHA^~\\&A", m) == message_error::bad_delimiters);   // alphanumeric
  CHECK(!parse_message("MSH|^~\\&\r|", m));
  CHECK(parse_message("MSH|^~\\&xyz|", m) == message_error::bad_delimiters);  // 6 characters
  CHECK(!parse_message("MSH|^|\\&|", m));  // MSH-2 is just "^"; "\\&" is MSH-3
  CHECK(make_error_code(message_error::no_msh).message().find("MSH") != std::string::npos);
}

TEST_CASE("message: MSH field numbering quirk", "[hl7][message]") {
  const message m = parsed("MSH|^~\\&|SAPP|SFAC|RAPP|RFAC|20230101||ORU^R01|ID1|P|2.3.1\r");
  const segment_view& msh = m.msh();
  CHECK(msh.field(0).raw() == "MSH");
  CHECK(msh.field(1).raw() == "|");
  CHECK(msh.field(2).raw() == "^~\\&");
  CHECK(msh.field(2).decode() == "^~\\&");     // literal, never decoded
  CHECK(msh.field(2).component_count() == 1);  // literal, never split
  CHECK(msh.field(3).raw() == "SAPP");
  CHECK(msh.field(7).raw() == "20230101");
  CHECK(msh.field(9).component(2).raw() == "R01");
  CHECK(msh.field(10).raw() == "ID1");
  CHECK(msh.field(12).raw() == "2.3.1");
  CHECK(msh.field(13).empty());
  CHECK(msh.field_count() == 12);
}

TEST_CASE("message: segment terminators CR, CRLF and LF", "[hl7][message]") {
  const std::string body[] = {"MSH|^~\\&|A", "PID|1||P1", "OBX|1|NM|X||1"};
  for (const std::string sep : {"\r", "\r\n", "\n"}) {
    const std::string text = body[0] + sep + body[1] + sep + body[2] + sep;
    const message m = parsed(text);
    INFO("separator size " << sep.size());
    REQUIRE(m.segment_count() == 3);
    for (std::size_t i = 0; i < 3; ++i) CHECK(m.segment(i).raw() == body[i]);
    CHECK(m.lf_terminated() == (sep == "\n"));
    CHECK(m.segment_offset(1) == body[0].size() + sep.size());
  }
  // A lone LF where the message uses CR is data, not a segment end.
  const message m = parsed("MSH|^~\\&|A\rOBX|1|TX|X||line1\nline2\r");
  REQUIRE(m.segment_count() == 2);
  CHECK(m.segment(1).field(5).raw() == "line1\nline2");
  // Empty lines and a missing final terminator are fine.
  const message e = parsed("\r\nMSH|^~\\&|A\r\r\nPID|1");
  REQUIRE(e.segment_count() == 2);
  CHECK(e.segment(1).raw() == "PID|1");
  CHECK(e.segment_offset(0) == 2);
}

TEST_CASE("message: repetitions, components, subcomponents, absent parts", "[hl7][message]") {
  const message m = parsed(
      "MSH|^~\\&|A\r"
      "OBX|1|CE|20130^20130^99ROC^^^IHELAW|1|^^99ROC|||N^^HL70078~H|||F|||||ADMIN~BATCH||"
      "c303^ROCHE~2272-02^ROCHE~1^ROCHE\r"
      "SPM|1|130578&BARCODE||SERPLAS^^99ROC|||||||P^^HL70369|||~~~~\r");
  const segment_view& obx = m.segment(1);
  CHECK(obx.field_count() == 18);
  CHECK(obx.field(3).component_count() == 6);
  CHECK(obx.field(3).component(6).raw() == "IHELAW");
  CHECK(obx.field(3).component(7).empty());
  CHECK(obx.field(3).component(0).empty());
  CHECK(obx.field(8).repetition_count() == 2);
  CHECK(obx.field(8).repetition(1).raw() == "H");
  CHECK(obx.field(8).repetition(2).empty());
  CHECK(obx.field(8).component(1).raw() == "N");  // of the first repetition
  CHECK(obx.field(18).repetition(1).component(1).raw() == "2272-02");
  CHECK(obx.field(40).empty());
  const segment_view& spm = m.segment(2);
  CHECK(spm.field(2).component(1).subcomponent(1).raw() == "130578");
  CHECK(spm.field(2).subcomponent(2).raw() == "BARCODE");
  CHECK(spm.field(2).subcomponent_count() == 2);
  CHECK(spm.field(14).repetition_count() == 5);
  CHECK(spm.field(11).component(1).raw() == "P");
  CHECK(m.find("SPM") == 2u);
  CHECK(m.find("SPM", 3) == std::nullopt);
  CHECK(m.find("OBX") == 1u);
}

TEST_CASE("message: empty and HL7 null are different", "[hl7][message]") {
  const message m = parsed("MSH|^~\\&|A\rOBR||\"\"||X|\"\"x\r");
  const segment_view& obr = m.segment(1);
  CHECK(obr.field(1).empty());
  CHECK(!obr.field(1).is_null());
  CHECK(!obr.field(1).has_value());
  CHECK(obr.field(2).is_null());
  CHECK(!obr.field(2).empty());
  CHECK(!obr.field(2).has_value());
  CHECK(obr.field(4).has_value());
  CHECK(!obr.field(5).is_null());  // `""x` is a value, not the null
  CHECK(obr.field(9).empty());     // absent
}

TEST_CASE("message: escapes are decoded on read, others passed through", "[hl7][message]") {
  const message m = parsed(
      "MSH|^~\\&|A\r"
      "OBX|1|ST|X||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f|mg\\Z01\\L|\\X0D0A\\|x\\.br\\y|\\H\\B\\N\\|"
      "bad\\Fescape|\\\\\r");
  const segment_view& obx = m.segment(1);
  CHECK(obx.field(5).raw() == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f");
  CHECK(obx.field(5).decode() == "a|b^c&d~e\\f");
  // Escaped delimiters do not split.
  CHECK(obx.field(5).component_count() == 1);
  CHECK(obx.field(6).decode() == "mg\\Z01\\L");
  CHECK(obx.field(7).decode() == "\\X0D0A\\");
  CHECK(obx.field(8).decode() == "x\\.br\\y");
  CHECK(obx.field(9).decode() == "\\H\\B\\N\\");
  CHECK(obx.field(10).decode() == "bad\\Fescape");  // no closing escape: literal
  CHECK(obx.field(11).decode() == "\\\\");
}

TEST_CASE("message: escape() round-trips through decode()", "[hl7][message]") {
  const delimiters d;
  const std::string nasty = "a|b^c&d~e\\f\rg\nh";
  const std::string esc = escape(nasty, d);
  CHECK(esc == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X0D\\g\\X0A\\h");
  const std::string text = "MSH|^~\\&|A\rNTE|1||" + esc + "\r";
  const message m = parsed(text);
  CHECK(m.segment(1).field(3).component_count() == 1);
  // \X..\ stays as sent (the receiver's charset business), the rest comes back.
  CHECK(m.segment(1).field(3).decode() == "a|b^c&d~e\\f\\X0D\\g\\X0A\\h");
}

TEST_CASE("message: too many segments is an error", "[hl7][message]") {
  std::string text = "MSH|^~\\&|A\r";
  for (int i = 0; i < 10; ++i) text += "NTE|1\r";
  message m;
  CHECK(parse_message(text, m, {.max_segments = 5}) == message_error::too_many_segments);
  CHECK(!parse_message(text, m, {.max_segments = 11}));
  CHECK(m.segment_count() == 11);
}

TEST_CASE("message captures: every .hl7 capture parses, segment counts",
          "[hl7][message][capture]") {
  struct expect {
    const char* file;
    std::size_t segments;
    const char* control_id;
  };
  // Counted by reading the captures (SOURCES.md: the cobas pure OUL has 79 segments).
  const expect cases[] = {
      {"biosystems-ba400-oul-r22-single-result.hl7", 5, "d601358d-e7f2-4660-88fc-18ae60380614"},
      {"biosystems-ba400-oul-r22-three-tests-flag025.hl7", 11,
       "f7c9b548-0a48-49c2-9223-9f488efbfdeb"},
      {"biosystems-ba400-qbp-q11-lab27.hl7", 3, "7e3fe271-b7af-415b-996e-a9e142014521"},
      {"hmis-lims-ack-r22-to-ba400.hl7", 2, "45801"},
      {"roche-cobaspure-oul-r22-lab29-mllp.hl7", 79, "3"},
      {"roche-cobaspure-esu-u01-status-mllp.hl7", 2, "4"},
      {"roche-cobaspure-host-ack-to-oul-r22-mllp.hl7", 2, "3"},
  };
  for (const expect& c : cases) {
    const auto bytes = interfaced::test::capture(std::string("hl7/") + c.file);
    if (!bytes) return;
    INFO(c.file);
    const std::string text = test::unframe(*bytes);
    const message m = parsed(text);
    CHECK(m.segment_count() == c.segments);
    CHECK(m.msh().field(10).raw() == c.control_id);
    CHECK(!m.lf_terminated());
  }
}

TEST_CASE("message captures: every incomplete prefix parses without crashing",
          "[hl7][message][capture]") {
  for (const char* name : hl7_captures) {
    const auto bytes = interfaced::test::capture(std::string("hl7/") + name);
    if (!bytes) return;
    const std::string text = test::unframe(*bytes);
    const message full = parsed(text);
    for (std::size_t n = 0; n <= text.size(); ++n) {
      // A copy of exactly n bytes, so ASan sees any read past the prefix.
      const std::string prefix = text.substr(0, n);
      message m;
      const std::error_code ec = parse_message(prefix, m);
      if (n >= 9) {  // "MSH|^~\&|" complete
        INFO(name << " prefix " << n);
        REQUIRE(!ec);
        REQUIRE(m.segment_count() >= 1);
        REQUIRE(m.segment_count() <= full.segment_count());
        // Every complete segment is the same as in the full message.
        for (std::size_t i = 0; i + 1 < m.segment_count(); ++i) {
          REQUIRE(m.segment(i).raw() == full.segment(i).raw());
        }
      }
      for (const segment_view& s : m.segments()) {
        for (std::size_t f = 0; f <= s.field_count() + 1; ++f) {
          const value_view v = s.field(f);
          (void)v.decode();
          (void)v.component(2).subcomponent(2).decode();
          (void)v.repetition(1).component(1);
        }
      }
    }
  }
}

TEST_CASE("message captures: MLLP split at every offset then parse gives the same message",
          "[hl7][message][mllp][capture]") {
  for (const char* name : hl7_captures) {
    const auto bytes = interfaced::test::capture(std::string("hl7/") + name);
    if (!bytes) return;
    INFO(name);
    const std::string text = test::unframe(*bytes);
    const message full = parsed(text);
    const std::string wire = mllp_wrap(text);
    const std::size_t step = wire.size() > 2000 ? 13 : 1;
    auto check = [&](const std::vector<test::owned_event>& events) {
      REQUIRE(events.size() == 1);
      const message m = parsed(events[0].message);
      REQUIRE(m.segment_count() == full.segment_count());
      for (std::size_t i = 0; i < m.segment_count(); ++i) {
        REQUIRE(m.segment(i).raw() == full.segment(i).raw());
      }
    };
    for (std::size_t cut = 0; cut <= wire.size(); cut += step) {
      mllp_decoder d;
      std::vector<test::owned_event> got;
      test::feed(d, std::string_view(wire).substr(0, cut), got);
      test::feed(d, std::string_view(wire).substr(cut), got);
      check(got);
    }
    mllp_decoder d;
    std::vector<test::owned_event> got;
    for (char c : wire) test::feed(d, std::string_view(&c, 1), got);
    check(got);
  }
}

TEST_CASE("message: split_unframed finds each MSH at a segment start", "[hl7][message]") {
  const std::string a = "MSH|^~\\&|A|||||ORU^R01|1|P|2.3.1\rOBX|1|ST|X||see MSH|x\r";
  const std::string b = "MSH|^~\\&|B|||||ORU^R01|2|P|2.3.1\r\n";
  const std::string c = "MSH|^~\\&|C|||||ORU^R01|3|P|2.3.1";
  const std::string text = "noise\r" + a + b + "\n" + c;
  const auto parts = split_unframed(text);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0] == a);
  CHECK(parts[1] == b + "\n");
  CHECK(parts[2] == c);
  CHECK(split_unframed("").empty());
  CHECK(split_unframed("MSH").empty());
  CHECK(split_unframed("xMSH|^~\\&|").empty());  // not at a segment start
}

TEST_CASE("message captures: split_unframed on a concatenation of captures",
          "[hl7][message][capture]") {
  std::string all;
  std::vector<std::string> texts;
  for (const char* name : hl7_captures) {
    const auto bytes = interfaced::test::capture(std::string("hl7/") + name);
    if (!bytes) return;
    texts.push_back(test::unframe(*bytes));
    all += texts.back();
    if (all.back() != '\r') all += '\r';  // the cobas host ACKs end without CR
  }
  const auto parts = split_unframed(all);
  REQUIRE(parts.size() == texts.size());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    CHECK(parts[i].substr(0, texts[i].size()) == texts[i]);
  }
}
