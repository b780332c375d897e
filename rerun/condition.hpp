#pragma once
// The rule language of auto-rerun conditions (../shared/spec/rerun.md, "Auto-rerun"): a small,
// statically typed expression language, parsed and type-checked when rules are loaded and compiled
// to a flat bytecode evaluated over a fixed-size value stack. Evaluation never allocates, never
// throws and never reads a clock (`now` is a bound variable).
//
// Grammar (lowest precedence first):
//   expr    := or
//   or      := and ("or" and)*
//   and     := not ("and" not)*
//   not     := "not" not | cmp
//   cmp     := sum [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") sum]
//   sum     := product (("+" | "-") product)*
//   product := unary (("*" | "/") unary)*
//   unary   := "-" unary | primary
//   primary := number | string | true | false | null | "[" literals "]" | "(" expr ")"
//            | name ["(" args ")"]          names may be dotted: range.low, previous.value
// Types: bool, number, string, time, list of numbers, list of strings, and the literal null.
// Variables: value (number), text, unit, status, device, parameter, sample_id (strings),
//   qc_status (string: accepted, rejected, missed; empty without a `qc` section),
//   flags / flag (list of strings: the same variable, so `flag in ["HH","LL"]` reads as in rerun.md),
//   qc (bool), range.low, range.high, previous.value (alias previous), rerun_number (numbers),
//   previous.observed_at, observed_at (times).
// Functions: abs(n), min(n, n, ...), max(n, n, ...), between(x, low, high) (inclusive),
//   is_numeric (bare: the result's value is a number) or is_numeric(x), hours_since(time).
// Null safety: every variable but qc may be null at run time. Arithmetic with null gives null; a
//   comparison with a null operand is false (both == and !=); `x == null` / `x != null` are the
//   explicit null tests. So `abs(value - previous.value) > 5` is false when there is no previous.
// `in`: number in [numbers], string in [strings] (membership); string in string (substring);
//   list in list (the lists share an element) -- so `flags in ["HH","LL"]` holds when any flag is
//   HH or LL, and `"HH" in flags` when HH is one of the flags.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace interfaced::rerun {

// Static types of the language.
enum class value_type : std::uint8_t { null, boolean, number, string, time, number_list, string_list };

[[nodiscard]] const char* to_string(value_type t) noexcept;

// The variables a condition can name, bound per result by the caller.
enum class variable : std::uint8_t {
  value,
  text,
  unit,
  flags,
  status,
  qc,
  range_low,
  range_high,
  previous_value,
  previous_observed_at,
  observed_at,
  device,
  parameter,
  sample_id,
  rerun_number,
  // "accepted", "rejected", "missed" (qc.md: the patient result's QC run), "" without QC: a rule
  // a lab writes for results of a run whose QC failed (`qc_status == "rejected"`), which runs
  // again when a QC re-evaluation changes the status (qc.md 5.2.1).
  qc_status,
  now,  // not nameable: what hours_since measures against (rerun.md: `now` is a parameter)
};
inline constexpr std::size_t variable_count = static_cast<std::size_t>(variable::now) + 1;

// The name a condition uses for v ("range.low").
[[nodiscard]] const char* to_string(variable v) noexcept;

// A run-time value. Views only: strings and lists point into the bound result or the program's
// constants, which must outlive the evaluation. Trivially copyable so the value stack costs nothing
// to set up.
struct value {
  enum class kind : std::uint8_t { null, boolean, number, string, time, list, bound_list };
  kind k;
  std::uint32_t count;  // string length, list length
  union {
    bool b;
    double n;                  // number; time as seconds since the epoch on the lab's wall clock
    const char* s;             // string (count bytes)
    const value* items;        // list literal from the program's constants
    const std::string* strs;   // bound list of strings (the result's flags)
  };

  static value null() noexcept { value v; v.k = kind::null; v.count = 0; v.n = 0; return v; }
  static value boolean(bool x) noexcept { value v; v.k = kind::boolean; v.count = 0; v.n = 0; v.b = x; return v; }
  static value number(double x) noexcept { value v; v.k = kind::number; v.count = 0; v.n = x; return v; }
  static value number(std::optional<double> x) noexcept { return x ? number(*x) : null(); }
  static value time(double seconds) noexcept { value v; v.k = kind::time; v.count = 0; v.n = seconds; return v; }
  static value string(std::string_view x) noexcept {
    value v; v.k = kind::string; v.count = static_cast<std::uint32_t>(x.size()); v.s = x.data(); return v;
  }
  static value strings(const std::vector<std::string>& x) noexcept {
    value v; v.k = kind::bound_list; v.count = static_cast<std::uint32_t>(x.size()); v.strs = x.data(); return v;
  }
  [[nodiscard]] bool is_null() const noexcept { return k == kind::null; }
  [[nodiscard]] std::string_view str() const noexcept { return {s, count}; }
};

// The values of every variable for one result. Filled once per result, read by every rule.
struct bindings {
  std::array<value, variable_count> slots;
  bindings() noexcept { slots.fill(value::null()); }
  void set(variable var, value x) noexcept { slots[static_cast<std::size_t>(var)] = x; }
  [[nodiscard]] const value& get(variable var) const noexcept { return slots[static_cast<std::size_t>(var)]; }
};

// A load-time error: where in the condition text (1-based line and column, columns counted in
// characters) and what. Printed with format_error.
struct condition_error {
  std::size_t line = 1;
  std::size_t column = 1;
  std::size_t offset = 0;  // byte offset in the condition text
  std::string message;
};

// 1-based line and column (in characters) of a byte offset in text.
[[nodiscard]] std::pair<std::size_t, std::size_t> line_column(std::string_view text,
                                                              std::size_t offset) noexcept;

// "where: line:column: message", then the condition's line and a caret under the column.
[[nodiscard]] std::string format_error(std::string_view where, std::string_view source,
                                       const condition_error& e);

// compile_condition's answer: a program or an error, never both.
struct compiled_condition;

// One compiled condition. Copyable; owns its constants.
class condition {
 public:
  // The deepest value stack a condition may need; deeper expressions are a load-time error.
  static constexpr std::size_t max_stack = 32;

  [[nodiscard]] static compiled_condition compile(std::string_view source);

  // True when the condition holds for b. noexcept, allocation-free.
  [[nodiscard]] bool evaluate(const bindings& b) const noexcept;

  [[nodiscard]] const std::string& source() const noexcept;
  // The variables the condition reads, in first-use order (for explain traces and reasons).
  [[nodiscard]] const std::vector<variable>& variables() const noexcept;

  // Implementation detail: the bytecode (one flat array, jumps by index) and its program.
  enum class op_t : std::uint8_t {
    push_const, load, add, sub, mul, div, neg, eq, ne, lt, le, gt, ge, is_null, not_null, not_,
    and_jump, or_jump, in, abs, min, max, between, is_numeric, hours_since,
  };
  struct instr_t {
    op_t code;
    std::uint32_t arg;  // constant index, variable slot, jump target or argument count
  };
  struct program;  // bytecode and constants, immutable once compiled

 private:
  friend class compiler;
  explicit condition(std::shared_ptr<const program> p) : p_(std::move(p)) {}
  std::shared_ptr<const program> p_;  // shared: copies of a rule share one program
};

struct compiled_condition {
  std::optional<condition> program;
  condition_error error;  // meaningful when !program
  explicit operator bool() const noexcept { return program.has_value(); }
};

}  // namespace interfaced::rerun
