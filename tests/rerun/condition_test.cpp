// The rule language (rerun.md "Auto-rerun"; contract in rerun/condition.hpp): parsing, type
// checking with exact error positions, null safety, every operator.
#include <catch2/catch.hpp>

#include <string>

#include "rerun/condition.hpp"
#include "rerun/rules.hpp"

namespace interfaced::rerun {
namespace {

condition compile_ok(const std::string& src) {
  auto c = condition::compile(src);
  INFO(src << " -> " << c.error.message);
  REQUIRE(c);
  return *c.program;
}

condition_error compile_error(const std::string& src) {
  auto c = condition::compile(src);
  INFO(src);
  REQUIRE_FALSE(c);
  return c.error;
}

// A result as rules see it: value 12.5 g/dL, flags H, range 12-16, previous 10.0 two hours ago.
struct fixture {
  result r;
  std::optional<observation> prev;
  bindings b;
  fixture() {
    r.device = "sysmex-xn";
    r.sample_id = "S1";
    r.code = "HGB";
    r.value = "12.5";
    r.numeric = 12.5;
    r.unit = "g/dL";
    r.flags = {"H"};
    r.status = "F";
    r.reference_range = "12-16";
    r.observed_at = "20240301100000";
    prev = observation{"10.0", 10.0, "20240301080000", {}};
    rebind();
  }
  void rebind() {
    b = bind_result(r, "HGB", prev, nullptr, *parse_wall_time("2024-03-01T11:00:00"));
  }
  bool eval(const std::string& src) { return compile_ok(src).evaluate(b); }
};

}  // namespace

TEST_CASE("rerun.md examples evaluate as written", "[condition]") {
  fixture f;
  CHECK_FALSE(f.eval("value > 20 or value < 2"));
  f.r.numeric = 25;
  f.rebind();
  CHECK(f.eval("value > 20 or value < 2"));
  f.r.numeric = 1.5;
  f.rebind();
  CHECK(f.eval("value > 20 or value < 2"));

  CHECK_FALSE(f.eval("flag in [\"HH\",\"LL\"]"));
  f.r.flags = {"A", "LL"};
  f.rebind();
  CHECK(f.eval("flag in [\"HH\",\"LL\"]"));
  CHECK(f.eval("flags in [\"HH\",\"LL\"]"));  // flag and flags are one variable

  CHECK_FALSE(f.eval("not is_numeric"));
  f.r.numeric.reset();
  f.r.value = "HEMOLYSED";
  f.rebind();
  CHECK(f.eval("not is_numeric"));

  f.r.numeric = 16.0;  // previous 10.0
  f.rebind();
  CHECK(f.eval("abs(value - previous.value) > 5"));
  CHECK(f.eval("abs(value - previous) > 5"));  // rerun.md's spelling
  f.r.numeric = 14.0;
  f.rebind();
  CHECK_FALSE(f.eval("abs(value - previous.value) > 5"));
}

TEST_CASE("condition errors carry line, column and message", "[condition]") {
  SECTION("unknown variable at its first character") {
    auto e = compile_error("valeu > 20");
    CHECK(e.line == 1);
    CHECK(e.column == 1);
    CHECK(e.message == "unknown variable 'valeu'");
  }
  SECTION("type error at the operator") {
    auto e = compile_error("value > \"a\"");
    CHECK(e.column == 7);
    CHECK(e.message == "cannot compare a number with a string using '>'");
  }
  SECTION("unexpected end after the last character") {
    auto e = compile_error("value > 20 or");
    CHECK(e.column == 14);
    CHECK(e.message == "unexpected end of condition");
  }
  SECTION("second line") {
    auto e = compile_error("value > 2 and\n  foo < 3");
    CHECK(e.line == 2);
    CHECK(e.column == 3);
    CHECK(e.message == "unknown variable 'foo'");
  }
  SECTION("columns count characters, not bytes") {
    auto e = compile_error("unit == \"\xC2\xB5g\" and valu > 1");
    CHECK(e.column == 18);
    CHECK(e.offset == 18);
  }
  SECTION("single '=' is not equality") {
    auto e = compile_error("value = 3");
    CHECK(e.column == 7);
    CHECK(e.message == "'=' is not an operator: compare with '=='");
  }
  SECTION("unterminated string at its quote") {
    auto e = compile_error("status == \"F");
    CHECK(e.column == 11);
    CHECK(e.message == "unterminated string");
  }
  SECTION("a condition must be boolean") {
    auto e = compile_error("value + 1");
    CHECK(e.column == 1);
    CHECK(e.message == "a condition must be true or false; this is a number");
  }
  SECTION("function arity and argument types") {
    auto e = compile_error("abs(value, 2) > 1");
    CHECK(e.column == 1);
    CHECK(e.message == "abs takes 1 argument, got 2");
    auto e2 = compile_error("abs(\"x\") > 1");
    CHECK(e2.column == 5);
    CHECK(e2.message == "abs needs a number; this is a string");
    auto e3 = compile_error("hours_since(value) > 1");
    CHECK(e3.column == 13);
  }
  SECTION("unknown function") {
    auto e = compile_error("value > 1 and sqrt(value) > 2");
    CHECK(e.column == 15);
    CHECK(e.message == "unknown function 'sqrt'");
  }
  SECTION("chained comparison") {
    auto e = compile_error("2 < value < 3");
    CHECK(e.column == 11);
  }
  SECTION("lists") {
    CHECK(compile_error("value in [1, \"a\"]").column == 14);
    CHECK(compile_error("flags == [\"A\"]").column == 7);
    CHECK(compile_error("value in []").column == 10);
    CHECK(compile_error("value in [1, 2").column == 10);
    CHECK(compile_error("value in \"abc\"").column == 7);
  }
  SECTION("ordering against null") {
    auto e = compile_error("value > null");
    CHECK(e.column == 7);
  }
  SECTION("boolean operators need booleans") {
    CHECK(compile_error("not value").column == 1);
    auto e = compile_error("value > 1 and 2");
    CHECK(e.column == 11);
    CHECK(e.message == "'and' needs true/false on both sides; the right side is a number");
    CHECK(compile_error("qc or text").column == 4);
  }
  SECTION("trailing input") {
    auto e = compile_error("value > 1 value");
    CHECK(e.column == 11);
    CHECK(e.message == "unexpected name 'value' after the end of the condition");
  }
  SECTION("empty") { CHECK(compile_error("   ").message == "empty condition"); }
  SECTION("stray characters") {
    CHECK(compile_error("value > 1 && qc").column == 11);
    CHECK(compile_error("value > 1 # x").column == 11);
    CHECK(compile_error("1x > 2").column == 1);
  }
  SECTION("too deep") {
    std::string deep = "value";
    for (int i = 0; i < 40; ++i) deep = "min(1, " + deep + ")";
    CHECK(compile_error(deep + " > 1").message == "condition too deeply nested");
  }
}

TEST_CASE("format_error prints the line with a caret under the column", "[condition]") {
  const std::string src = "value > 2 and\n  foo < 3";
  auto e = compile_error(src);
  CHECK(format_error("rules.json: /rules/0/condition", src, e) ==
        "rules.json: /rules/0/condition: 2:3: unknown variable 'foo'\n"
        "    foo < 3\n"
        "    ^\n");
}

TEST_CASE("null never throws and compares false", "[condition]") {
  fixture f;
  f.r.numeric.reset();
  f.prev.reset();
  f.r.reference_range.clear();
  f.r.observed_at.clear();
  f.rebind();
  CHECK_FALSE(f.eval("value > 20"));
  CHECK_FALSE(f.eval("value < 20"));
  CHECK_FALSE(f.eval("value == 3"));
  CHECK_FALSE(f.eval("value != 3"));  // comparison with null is false, both ways
  CHECK(f.eval("value == null"));
  CHECK_FALSE(f.eval("value != null"));
  CHECK(f.eval("null == value"));
  CHECK_FALSE(f.eval("abs(value - previous.value) > 5"));
  CHECK_FALSE(f.eval("-value < 0"));
  CHECK_FALSE(f.eval("min(value, 3) < 5"));
  CHECK_FALSE(f.eval("max(1, value) > 0"));
  CHECK_FALSE(f.eval("between(value, 0, 100)"));
  CHECK_FALSE(f.eval("value in [1, 2]"));
  CHECK_FALSE(f.eval("value > range.high"));
  CHECK_FALSE(f.eval("hours_since(previous.observed_at) > 1"));
  CHECK_FALSE(f.eval("hours_since(observed_at) >= 0"));
  CHECK(f.eval("not (value > 20)"));  // the false comparison is negated like any other
  CHECK(f.eval("previous.observed_at == null and range.low == null"));
}

TEST_CASE("every operator", "[condition]") {
  fixture f;  // value 12.5, previous 10, unit g/dL, status F, flags [H], range 12-16
  SECTION("arithmetic") {
    CHECK(f.eval("value + 1 == 13.5"));
    CHECK(f.eval("value - 2.5 == 10"));
    CHECK(f.eval("value * 2 == 25"));
    CHECK(f.eval("value / 5 == 2.5"));
    CHECK(f.eval("-value == -12.5"));
    CHECK(f.eval("1 + 2 * 3 == 7"));
    CHECK(f.eval("(1 + 2) * 3 == 9"));
    CHECK(f.eval("10 - 4 - 3 == 3"));  // left associative
    CHECK(f.eval("value / 0 == null"));
    CHECK(f.eval("1e2 == 100 and .5 == 0.5"));
  }
  SECTION("comparisons on numbers") {
    CHECK(f.eval("value == 12.5"));
    CHECK(f.eval("value != 12"));
    CHECK(f.eval("value < 13"));
    CHECK_FALSE(f.eval("value < 12.5"));
    CHECK(f.eval("value <= 12.5"));
    CHECK(f.eval("value > 12"));
    CHECK_FALSE(f.eval("value > 12.5"));
    CHECK(f.eval("value >= 12.5"));
    CHECK(f.eval("rerun_number == 0"));
  }
  SECTION("comparisons on strings, booleans, times") {
    CHECK(f.eval("unit == \"g/dL\""));
    CHECK(f.eval("status != 'C'"));
    CHECK(f.eval("\"abc\" < \"abd\""));
    CHECK(f.eval("text == \"12.5\""));
    CHECK(f.eval("device == \"sysmex-xn\" and parameter == \"HGB\" and sample_id == \"S1\""));
    CHECK(f.eval("qc == false"));
    CHECK(f.eval("not qc"));
    CHECK(f.eval("previous.observed_at < observed_at"));
    CHECK(f.eval("'it\\'s' == \"it's\""));
  }
  SECTION("ranges") {
    CHECK(f.eval("range.low == 12 and range.high == 16"));
    CHECK(f.eval("between(value, range.low, range.high)"));
    CHECK_FALSE(f.eval("value > range.high or value < range.low"));
  }
  SECTION("in and not in") {
    CHECK(f.eval("\"H\" in flags"));
    CHECK_FALSE(f.eval("\"HH\" in flags"));
    CHECK(f.eval("\"HH\" not in flags"));
    CHECK(f.eval("flags in [\"H\", \"HH\"]"));
    CHECK_FALSE(f.eval("flags not in [\"H\", \"HH\"]"));
    CHECK(f.eval("value in [1, 12.5, 3]"));
    CHECK(f.eval("value not in [1, 2]"));
    CHECK(f.eval("status in [\"F\", \"C\"]"));
    CHECK(f.eval("\"dL\" in unit"));  // substring
    CHECK(f.eval("value in [-12.5, 12.5]"));
  }
  SECTION("and / or / not, precedence and short circuit") {
    CHECK(f.eval("true and true"));
    CHECK_FALSE(f.eval("true and false"));
    CHECK(f.eval("false or true"));
    CHECK_FALSE(f.eval("false or false"));
    CHECK(f.eval("not false"));
    CHECK(f.eval("not not true"));
    CHECK(f.eval("true or false and false"));   // and binds tighter
    CHECK_FALSE(f.eval("(true or false) and false"));
    CHECK(f.eval("not value > 20"));            // not binds looser than comparison
    CHECK(f.eval("false and value / 0 > 1 or true"));
  }
  SECTION("functions") {
    CHECK(f.eval("abs(-3) == 3"));
    CHECK(f.eval("abs(value - previous.value) == 2.5"));
    CHECK(f.eval("min(value, 3, 7) == 3"));
    CHECK(f.eval("max(value, 3, 7) == 12.5"));
    CHECK(f.eval("between(value, 12.5, 13)"));
    CHECK_FALSE(f.eval("between(value, 13, 14)"));
    CHECK(f.eval("is_numeric"));
    CHECK(f.eval("is_numeric(text)"));
    CHECK_FALSE(f.eval("is_numeric(unit)"));
    CHECK(f.eval("is_numeric(value)"));
    CHECK(f.eval("hours_since(previous.observed_at) == 3"));  // now 11:00, previous 08:00
    CHECK(f.eval("hours_since(observed_at) == 1"));
  }
}

TEST_CASE("a condition reports the variables it reads", "[condition]") {
  auto c = compile_ok("abs(value - previous.value) > 5 or flag in [\"HH\"] or hours_since(observed_at) > 2");
  REQUIRE(c.variables().size() == 5);
  CHECK(c.variables()[0] == variable::value);
  CHECK(c.variables()[1] == variable::previous_value);
  CHECK(c.variables()[2] == variable::flags);
  CHECK(c.variables()[3] == variable::observed_at);
  CHECK(c.variables()[4] == variable::now);
  // Copies share the program and evaluate alike.
  condition copy = c;
  fixture f;
  CHECK(copy.evaluate(f.b) == c.evaluate(f.b));
  CHECK(copy.source() == c.source());
}

}  // namespace interfaced::rerun
