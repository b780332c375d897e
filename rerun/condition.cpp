#include "rerun/condition.hpp"

#include "parsers/number.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <deque>
#include <system_error>
#include <tuple>

namespace interfaced::rerun {

struct condition::program {
  std::string source;
  std::vector<condition::instr_t> code;
  std::vector<value> consts;
  std::deque<std::string> strings;            // deque: addresses stay put while constants are added
  std::deque<std::vector<value>> lists;
  std::vector<variable> variables;
};

namespace {

using op = condition::op_t;

struct variable_name {
  std::string_view name;
  variable var;
};

// `flag` and `previous` are aliases: rerun.md writes `flag in ["HH","LL"]` and
// `abs(value - previous) > 5`, the configuration the backend syncs may use either spelling.
constexpr variable_name variable_names[] = {
    {"value", variable::value},
    {"text", variable::text},
    {"unit", variable::unit},
    {"flags", variable::flags},
    {"flag", variable::flags},
    {"status", variable::status},
    {"qc", variable::qc},
    {"range.low", variable::range_low},
    {"range.high", variable::range_high},
    {"previous.value", variable::previous_value},
    {"previous", variable::previous_value},
    {"previous.observed_at", variable::previous_observed_at},
    {"observed_at", variable::observed_at},
    {"device", variable::device},
    {"parameter", variable::parameter},
    {"sample_id", variable::sample_id},
    {"rerun_number", variable::rerun_number},
    {"qc_status", variable::qc_status},
};

value_type type_of(variable v) noexcept {
  switch (v) {
    case variable::value:
    case variable::range_low:
    case variable::range_high:
    case variable::previous_value:
    case variable::rerun_number:
      return value_type::number;
    case variable::flags:
      return value_type::string_list;
    case variable::qc:
      return value_type::boolean;
    case variable::previous_observed_at:
    case variable::observed_at:
    case variable::now:
      return value_type::time;
    case variable::text:
    case variable::unit:
    case variable::status:
    case variable::device:
    case variable::parameter:
    case variable::sample_id:
    case variable::qc_status:
      return value_type::string;
  }
  return value_type::null;
}

// ---- lexer -------------------------------------------------------------------------------------

enum class tok {
  end, number, string, name, lparen, rparen, lbracket, rbracket, comma,
  plus, minus, star, slash, eq, ne, lt, le, gt, ge,
  kw_and, kw_or, kw_not, kw_in, kw_true, kw_false, kw_null,
};

struct token {
  tok kind = tok::end;
  std::size_t offset = 0;
  std::string_view text;
  double number = 0;
  std::string str;  // decoded string literal
};

struct failure {
  std::size_t offset;
  std::string message;
};

bool name_start(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool name_char(char c) noexcept { return name_start(c) || (c >= '0' && c <= '9'); }
bool digit(char c) noexcept { return c >= '0' && c <= '9'; }

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

class lexer {
 public:
  explicit lexer(std::string_view src) : src_(src) {}

  token next() {
    while (pos_ < src_.size() &&
           (src_[pos_] == ' ' || src_[pos_] == '\t' || src_[pos_] == '\r' || src_[pos_] == '\n'))
      ++pos_;
    token t;
    t.offset = pos_;
    if (pos_ >= src_.size()) return t;
    const char c = src_[pos_];
    if (digit(c) || (c == '.' && pos_ + 1 < src_.size() && digit(src_[pos_ + 1]))) return lex_number(t);
    if (c == '"' || c == '\'') return lex_string(t, c);
    if (name_start(c)) return lex_name(t);
    auto one = [&](tok k, std::size_t n = 1) {
      t.kind = k;
      t.text = src_.substr(pos_, n);
      pos_ += n;
      return t;
    };
    const char d = pos_ + 1 < src_.size() ? src_[pos_ + 1] : '\0';
    switch (c) {
      case '(': return one(tok::lparen);
      case ')': return one(tok::rparen);
      case '[': return one(tok::lbracket);
      case ']': return one(tok::rbracket);
      case ',': return one(tok::comma);
      case '+': return one(tok::plus);
      case '-': return one(tok::minus);
      case '*': return one(tok::star);
      case '/': return one(tok::slash);
      case '<': return d == '=' ? one(tok::le, 2) : one(tok::lt);
      case '>': return d == '=' ? one(tok::ge, 2) : one(tok::gt);
      case '=':
        if (d == '=') return one(tok::eq, 2);
        throw failure{pos_, "'=' is not an operator: compare with '=='"};
      case '!':
        if (d == '=') return one(tok::ne, 2);
        throw failure{pos_, "'!' is not an operator: negate with 'not'"};
      case '&':
        throw failure{pos_, "'&' is not an operator: use 'and'"};
      case '|':
        throw failure{pos_, "'|' is not an operator: use 'or'"};
      default:
        break;
    }
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      throw failure{pos_, "unexpected character"};
    throw failure{pos_, "unexpected character '" + std::string(1, c) + "'"};
  }

 private:
  token lex_number(token& t) {
    const std::size_t start = pos_;
    while (pos_ < src_.size() && digit(src_[pos_])) ++pos_;
    if (pos_ < src_.size() && src_[pos_] == '.') {
      ++pos_;
      while (pos_ < src_.size() && digit(src_[pos_])) ++pos_;
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      std::size_t p = pos_ + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p < src_.size() && digit(src_[p])) {
        pos_ = p;
        while (pos_ < src_.size() && digit(src_[pos_])) ++pos_;
      }
    }
    if (pos_ < src_.size() && name_char(src_[pos_]))
      throw failure{start, "malformed number"};
    t.kind = tok::number;
    t.text = src_.substr(start, pos_ - start);
    const auto r = std::from_chars(t.text.data(), t.text.data() + t.text.size(), t.number);
    if (r.ec != std::errc{}) throw failure{start, "malformed number"};
    return t;
  }

  token lex_string(token& t, char quote) {
    const std::size_t start = pos_++;
    while (true) {
      if (pos_ >= src_.size()) throw failure{start, "unterminated string"};
      const char c = src_[pos_];
      if (c == quote) break;
      if (c == '\n') throw failure{start, "unterminated string"};
      if (c == '\\') {
        if (pos_ + 1 >= src_.size()) throw failure{start, "unterminated string"};
        const char e = src_[pos_ + 1];
        switch (e) {
          case '\\': t.str += '\\'; break;
          case '"': t.str += '"'; break;
          case '\'': t.str += '\''; break;
          case 'n': t.str += '\n'; break;
          case 't': t.str += '\t'; break;
          default: throw failure{pos_, "unknown escape '\\" + std::string(1, e) + "'"};
        }
        pos_ += 2;
        continue;
      }
      t.str += c;
      ++pos_;
    }
    ++pos_;
    t.kind = tok::string;
    t.text = src_.substr(start, pos_ - start);
    return t;
  }

  token lex_name(token& t) {
    const std::size_t start = pos_;
    while (true) {
      while (pos_ < src_.size() && name_char(src_[pos_])) ++pos_;
      // Dotted names (range.low, previous.value) are one token.
      if (pos_ + 1 < src_.size() && src_[pos_] == '.' && name_start(src_[pos_ + 1])) {
        ++pos_;
        continue;
      }
      break;
    }
    t.text = src_.substr(start, pos_ - start);
    t.kind = tok::name;
    if (t.text == "and") t.kind = tok::kw_and;
    else if (t.text == "or") t.kind = tok::kw_or;
    else if (t.text == "not") t.kind = tok::kw_not;
    else if (t.text == "in") t.kind = tok::kw_in;
    else if (t.text == "true") t.kind = tok::kw_true;
    else if (t.text == "false") t.kind = tok::kw_false;
    else if (t.text == "null") t.kind = tok::kw_null;
    return t;
  }

  std::string_view src_;
  std::size_t pos_ = 0;
};

// ---- syntax tree with types ---------------------------------------------------------------------

enum class node_kind { constant, load, unary, binary, and_, or_, call, null_test };

struct node {
  node_kind kind = node_kind::constant;
  value_type type = value_type::null;
  std::size_t offset = 0;  // where the node starts, for "the condition is a number" errors
  op code = op::push_const;
  std::uint32_t index = 0;             // constant index or variable slot
  std::vector<std::size_t> children;
};

enum class function { abs, min, max, between, is_numeric, hours_since };

}  // namespace

class compiler {
 public:
  explicit compiler(std::string_view src) : lex_(src), p_(std::make_shared<condition::program>()) {
    p_->source = std::string(src);
  }

  compiled_condition run() {
    compiled_condition out;
    try {
      advance();
      if (cur_.kind == tok::end) throw failure{0, "empty condition"};
      const std::size_t root = parse_or();
      if (cur_.kind != tok::end) {
        if (is_comparison(cur_.kind))
          throw failure{cur_.offset, "comparisons cannot be chained: join them with 'and'"};
        throw failure{cur_.offset, "unexpected " + describe(cur_) + " after the end of the condition"};
      }
      if (nodes_[root].type != value_type::boolean)
        throw failure{nodes_[root].offset, std::string("a condition must be true or false; this is a ") +
                                               to_string(nodes_[root].type)};
      if (need(root) > condition::max_stack)
        throw failure{nodes_[root].offset, "condition too deeply nested"};
      emit(root);
      out.program = condition(std::shared_ptr<const condition::program>(std::move(p_)));
    } catch (const failure& f) {
      out.error.offset = f.offset;
      out.error.message = f.message;
      std::tie(out.error.line, out.error.column) = line_column(lex_src(), f.offset);
    }
    return out;
  }

 private:
  std::string_view lex_src() const { return p_ ? std::string_view(p_->source) : std::string_view(); }

  static bool is_comparison(tok k) noexcept {
    return k == tok::eq || k == tok::ne || k == tok::lt || k == tok::le || k == tok::gt ||
           k == tok::ge || k == tok::kw_in;
  }

  static std::string describe(const token& t) {
    switch (t.kind) {
      case tok::end: return "end of condition";
      case tok::number: return "number " + std::string(t.text);
      case tok::string: return "string " + std::string(t.text);
      case tok::name: return "name " + quoted(t.text);
      default: return quoted(t.text);
    }
  }

  void advance() { cur_ = lex_.next(); }

  void expect(tok k, const char* what) {
    if (cur_.kind != k) throw failure{cur_.offset, std::string("expected ") + what + ", found " + describe(cur_)};
    advance();
  }

  std::size_t add(node n) {
    nodes_.push_back(std::move(n));
    return nodes_.size() - 1;
  }

  const node& at(std::size_t i) const { return nodes_[i]; }

  std::uint32_t add_const(value v) {
    p_->consts.push_back(v);
    return static_cast<std::uint32_t>(p_->consts.size() - 1);
  }

  std::size_t constant(value v, value_type t, std::size_t offset) {
    node n;
    n.kind = node_kind::constant;
    n.type = t;
    n.offset = offset;
    n.index = add_const(v);
    return add(std::move(n));
  }

  std::size_t parse_or() {
    std::size_t l = parse_and();
    while (cur_.kind == tok::kw_or) {
      const std::size_t at_op = cur_.offset;
      advance();
      const std::size_t r = parse_and();
      l = logical(node_kind::or_, "or", l, r, at_op);
    }
    return l;
  }

  std::size_t parse_and() {
    std::size_t l = parse_not();
    while (cur_.kind == tok::kw_and) {
      const std::size_t at_op = cur_.offset;
      advance();
      const std::size_t r = parse_not();
      l = logical(node_kind::and_, "and", l, r, at_op);
    }
    return l;
  }

  std::size_t logical(node_kind k, const char* name, std::size_t l, std::size_t r, std::size_t at_op) {
    for (std::size_t side : {l, r}) {
      if (at(side).type != value_type::boolean)
        throw failure{at_op, std::string("'") + name + "' needs true/false on both sides; the " +
                                 (side == l ? "left" : "right") + " side is a " + to_string(at(side).type)};
    }
    node n;
    n.kind = k;
    n.type = value_type::boolean;
    n.offset = at(l).offset;
    n.children = {l, r};
    return add(std::move(n));
  }

  std::size_t parse_not() {
    if (cur_.kind == tok::kw_not) {
      const std::size_t at_op = cur_.offset;
      advance();
      const std::size_t c = parse_not();
      if (at(c).type != value_type::boolean)
        throw failure{at_op, std::string("'not' needs true/false; this is a ") + to_string(at(c).type)};
      node n;
      n.kind = node_kind::unary;
      n.code = op::not_;
      n.type = value_type::boolean;
      n.offset = at_op;
      n.children = {c};
      return add(std::move(n));
    }
    return parse_cmp();
  }

  std::size_t parse_cmp() {
    const std::size_t l = parse_sum();
    tok k = cur_.kind;
    const std::size_t at_op = cur_.offset;
    std::string op_text(cur_.text);
    bool negate_in = false;
    if (k == tok::kw_not) {
      // `x not in list`; a bare `not` here is a syntax error reported below.
      advance();
      if (cur_.kind != tok::kw_in)
        throw failure{at_op, "unexpected 'not' (did you mean 'not in'?)"};
      negate_in = true;
      k = tok::kw_in;
      op_text = "not in";
    } else if (!is_comparison(k)) {
      return l;
    }
    advance();
    const std::size_t r = parse_sum();
    std::size_t result = comparison(k, op_text, l, r, at_op);
    if (negate_in) {
      node n;
      n.kind = node_kind::unary;
      n.code = op::not_;
      n.type = value_type::boolean;
      n.offset = at(l).offset;
      n.children = {result};
      result = add(std::move(n));
    }
    if (is_comparison(cur_.kind))
      throw failure{cur_.offset, "comparisons cannot be chained: join them with 'and'"};
    return result;
  }

  std::size_t comparison(tok k, const std::string& op_text, std::size_t l, std::size_t r, std::size_t at_op) {
    const value_type lt = at(l).type, rt = at(r).type;
    node n;
    n.type = value_type::boolean;
    n.offset = at(l).offset;
    auto fail = [&](const std::string& why) { throw failure{at_op, why}; };
    if (k == tok::kw_in) {
      const bool ok = (lt == value_type::number && rt == value_type::number_list) ||
                      (lt == value_type::string && (rt == value_type::string_list || rt == value_type::string)) ||
                      (lt == value_type::string_list && rt == value_type::string_list);
      if (!ok)
        fail("'" + op_text + "' cannot test a " + to_string(lt) + " against a " + to_string(rt));
      n.kind = node_kind::binary;
      n.code = op::in;
      n.children = {l, r};
      return add(std::move(n));
    }
    const bool equality = k == tok::eq || k == tok::ne;
    if (equality && (lt == value_type::null || rt == value_type::null)) {
      // `x == null` / `x != null`: the explicit null tests (every other comparison with null is false).
      n.kind = node_kind::null_test;
      n.code = k == tok::eq ? op::is_null : op::not_null;
      n.children = {lt == value_type::null ? r : l};
      return add(std::move(n));
    }
    if (lt == value_type::null || rt == value_type::null)
      fail("'" + op_text + "' with null is always false; test for null with '== null'");
    if (lt != rt)
      fail("cannot compare a " + std::string(to_string(lt)) + " with a " + to_string(rt) + " using '" + op_text + "'");
    if (lt == value_type::number_list || lt == value_type::string_list)
      fail("cannot compare lists with '" + op_text + "'; use 'in'");
    if (!equality && lt == value_type::boolean)
      fail("'" + op_text + "' cannot order true/false values");
    n.kind = node_kind::binary;
    switch (k) {
      case tok::eq: n.code = op::eq; break;
      case tok::ne: n.code = op::ne; break;
      case tok::lt: n.code = op::lt; break;
      case tok::le: n.code = op::le; break;
      case tok::gt: n.code = op::gt; break;
      default: n.code = op::ge; break;
    }
    n.children = {l, r};
    return add(std::move(n));
  }

  std::size_t arithmetic(op code, std::string_view op_text, std::size_t l, std::size_t r, std::size_t at_op) {
    if (at(l).type != value_type::number || at(r).type != value_type::number)
      throw failure{at_op, "'" + std::string(op_text) + "' needs numbers; got a " + to_string(at(l).type) +
                               " and a " + to_string(at(r).type)};
    node n;
    n.kind = node_kind::binary;
    n.code = code;
    n.type = value_type::number;
    n.offset = at(l).offset;
    n.children = {l, r};
    return add(std::move(n));
  }

  std::size_t parse_sum() {
    std::size_t l = parse_product();
    while (cur_.kind == tok::plus || cur_.kind == tok::minus) {
      const op code = cur_.kind == tok::plus ? op::add : op::sub;
      const std::string_view text = cur_.text;
      const std::size_t at_op = cur_.offset;
      advance();
      const std::size_t r = parse_product();
      l = arithmetic(code, text, l, r, at_op);
    }
    return l;
  }

  std::size_t parse_product() {
    std::size_t l = parse_unary();
    while (cur_.kind == tok::star || cur_.kind == tok::slash) {
      const op code = cur_.kind == tok::star ? op::mul : op::div;
      const std::string_view text = cur_.text;
      const std::size_t at_op = cur_.offset;
      advance();
      const std::size_t r = parse_unary();
      l = arithmetic(code, text, l, r, at_op);
    }
    return l;
  }

  std::size_t parse_unary() {
    if (cur_.kind == tok::minus) {
      const std::size_t at_op = cur_.offset;
      advance();
      const std::size_t c = parse_unary();
      if (at(c).type != value_type::number)
        throw failure{at_op, std::string("'-' needs a number; this is a ") + to_string(at(c).type)};
      node n;
      n.kind = node_kind::unary;
      n.code = op::neg;
      n.type = value_type::number;
      n.offset = at_op;
      n.children = {c};
      return add(std::move(n));
    }
    return parse_primary();
  }

  std::size_t parse_primary() {
    const token t = cur_;
    switch (t.kind) {
      case tok::number:
        advance();
        return constant(value::number(t.number), value_type::number, t.offset);
      case tok::string: {
        advance();
        p_->strings.push_back(t.str);
        return constant(value::string(p_->strings.back()), value_type::string, t.offset);
      }
      case tok::kw_true:
      case tok::kw_false:
        advance();
        return constant(value::boolean(t.kind == tok::kw_true), value_type::boolean, t.offset);
      case tok::kw_null:
        advance();
        return constant(value::null(), value_type::null, t.offset);
      case tok::lparen: {
        advance();
        const std::size_t inner = parse_or();
        expect(tok::rparen, "')'");
        return inner;
      }
      case tok::lbracket:
        return parse_list();
      case tok::name:
        return parse_name();
      case tok::end:
        throw failure{t.offset, "unexpected end of condition"};
      default:
        throw failure{t.offset, "unexpected " + describe(t)};
    }
  }

  std::size_t parse_list() {
    const std::size_t start = cur_.offset;
    advance();
    std::vector<value> items;
    value_type elem = value_type::null;
    while (cur_.kind != tok::rbracket) {
      if (cur_.kind == tok::end) throw failure{start, "unterminated list: expected ']'"};
      if (!items.empty()) expect(tok::comma, "',' or ']'");
      const std::size_t at_item = cur_.offset;
      value v;
      value_type t;
      bool negative = false;
      if (cur_.kind == tok::minus) {
        negative = true;
        advance();
        if (cur_.kind != tok::number) throw failure{at_item, "list elements must be numbers or strings"};
      }
      if (cur_.kind == tok::number) {
        v = value::number(negative ? -cur_.number : cur_.number);
        t = value_type::number;
      } else if (cur_.kind == tok::string) {
        p_->strings.push_back(cur_.str);
        v = value::string(p_->strings.back());
        t = value_type::string;
      } else if (cur_.kind == tok::end) {
        throw failure{start, "unterminated list: expected ']'"};
      } else {
        throw failure{at_item, "list elements must be number or string literals"};
      }
      if (elem != value_type::null && t != elem)
        throw failure{at_item, std::string("a list holds one type: this ") + to_string(t) +
                                   " follows a " + to_string(elem)};
      elem = t;
      items.push_back(v);
      advance();
    }
    advance();
    if (items.empty()) throw failure{start, "empty list"};
    p_->lists.push_back(std::move(items));
    const auto& stored = p_->lists.back();
    value lv;
    lv.k = value::kind::list;
    lv.count = static_cast<std::uint32_t>(stored.size());
    lv.items = stored.data();
    return constant(lv, elem == value_type::number ? value_type::number_list : value_type::string_list, start);
  }

  std::size_t load(variable v, std::size_t offset) {
    node n;
    n.kind = node_kind::load;
    n.type = type_of(v);
    n.offset = offset;
    n.index = static_cast<std::uint32_t>(v);
    return add(std::move(n));
  }

  std::size_t parse_name() {
    const token t = cur_;
    advance();
    if (cur_.kind != tok::lparen) {
      if (t.text == "is_numeric") {
        // Bare `is_numeric` (rerun.md: `not is_numeric`) asks about the result's own value.
        node n;
        n.kind = node_kind::call;
        n.code = op::is_numeric;
        n.type = value_type::boolean;
        n.offset = t.offset;
        n.index = 1;
        n.children = {load(variable::value, t.offset)};
        return add(std::move(n));
      }
      for (const auto& vn : variable_names)
        if (vn.name == t.text) return load(vn.var, t.offset);
      if (t.text == "abs" || t.text == "min" || t.text == "max" || t.text == "between" ||
          t.text == "hours_since")
        throw failure{t.offset, quoted(t.text) + " is a function: call it with '(...)'"};
      throw failure{t.offset, "unknown variable " + quoted(t.text)};
    }
    // A call.
    function f;
    if (t.text == "abs") f = function::abs;
    else if (t.text == "min") f = function::min;
    else if (t.text == "max") f = function::max;
    else if (t.text == "between") f = function::between;
    else if (t.text == "is_numeric") f = function::is_numeric;
    else if (t.text == "hours_since") f = function::hours_since;
    else {
      for (const auto& vn : variable_names)
        if (vn.name == t.text) throw failure{t.offset, quoted(t.text) + " is a variable, not a function"};
      throw failure{t.offset, "unknown function " + quoted(t.text)};
    }
    advance();
    std::vector<std::size_t> args;
    std::vector<std::size_t> arg_offsets;
    while (cur_.kind != tok::rparen) {
      if (!args.empty()) expect(tok::comma, "',' or ')'");
      arg_offsets.push_back(cur_.offset);
      args.push_back(parse_or());
    }
    advance();
    auto arity = [&](std::size_t lo, std::size_t hi, const char* text) {
      if (args.size() < lo || args.size() > hi)
        throw failure{t.offset, std::string(t.text) + " takes " + text + ", got " + std::to_string(args.size())};
    };
    auto want = [&](std::size_t i, std::initializer_list<value_type> ok, const char* text) {
      for (value_type v : ok)
        if (at(args[i]).type == v) return;
      throw failure{arg_offsets[i], std::string(t.text) + " needs " + text + "; this is a " +
                                        to_string(at(args[i]).type)};
    };
    node n;
    n.kind = node_kind::call;
    n.offset = t.offset;
    switch (f) {
      case function::abs:
        arity(1, 1, "1 argument");
        want(0, {value_type::number}, "a number");
        n.code = op::abs;
        n.type = value_type::number;
        break;
      case function::min:
      case function::max:
        arity(2, 16, "2 to 16 arguments");
        for (std::size_t i = 0; i < args.size(); ++i) want(i, {value_type::number}, "numbers");
        n.code = f == function::min ? op::min : op::max;
        n.type = value_type::number;
        break;
      case function::between:
        arity(3, 3, "3 arguments (x, low, high)");
        for (std::size_t i = 0; i < 3; ++i) want(i, {value_type::number}, "numbers");
        n.code = op::between;
        n.type = value_type::boolean;
        break;
      case function::is_numeric:
        arity(1, 1, "0 or 1 argument");
        want(0, {value_type::number, value_type::string}, "a number or a string");
        n.code = op::is_numeric;
        n.type = value_type::boolean;
        break;
      case function::hours_since:
        arity(1, 1, "1 argument");
        want(0, {value_type::time}, "a time (observed_at, previous.observed_at)");
        n.code = op::hours_since;
        n.type = value_type::number;
        break;
    }
    n.index = static_cast<std::uint32_t>(args.size());
    n.children = std::move(args);
    return add(std::move(n));
  }

  // The value-stack slots the node needs, counting its own result.
  std::size_t need(std::size_t i) const {
    const node& n = at(i);
    std::size_t m = 1;
    for (std::size_t c = 0; c < n.children.size(); ++c) m = std::max(m, c + need(n.children[c]));
    return m;
  }

  void emit_op(op code, std::uint32_t arg = 0) { p_->code.push_back({code, arg}); }

  void emit(std::size_t i) {
    const node& n = at(i);
    switch (n.kind) {
      case node_kind::constant:
        emit_op(op::push_const, n.index);
        return;
      case node_kind::load: {
        const auto v = static_cast<variable>(n.index);
        bool known = false;
        for (variable u : p_->variables) known = known || u == v;
        if (!known) p_->variables.push_back(v);
        emit_op(op::load, n.index);
        return;
      }
      case node_kind::and_:
      case node_kind::or_: {
        // Short circuit: the jump keeps the deciding value on the stack, otherwise pops it.
        emit(n.children[0]);
        const std::size_t jump = p_->code.size();
        emit_op(n.kind == node_kind::and_ ? op::and_jump : op::or_jump);
        emit(n.children[1]);
        p_->code[jump].arg = static_cast<std::uint32_t>(p_->code.size());
        return;
      }
      case node_kind::call:
        for (std::size_t c : n.children) emit(c);
        emit_op(n.code, n.index);
        if (n.code == op::hours_since) {
          bool known = false;
          for (variable u : p_->variables) known = known || u == variable::now;
          if (!known) p_->variables.push_back(variable::now);
        }
        return;
      case node_kind::unary:
      case node_kind::binary:
      case node_kind::null_test:
        for (std::size_t c : n.children) emit(c);
        emit_op(n.code, n.index);
        return;
    }
  }

  lexer lex_;
  token cur_;
  std::vector<node> nodes_;
  std::shared_ptr<condition::program> p_;
};

compiled_condition condition::compile(std::string_view source) {
  // Token views point into `source`, which outlives the compiler; the program keeps its own copy.
  compiler c(source);
  return c.run();
}

const std::string& condition::source() const noexcept { return p_->source; }
const std::vector<variable>& condition::variables() const noexcept { return p_->variables; }

namespace {

// is_numeric(text) holds exactly when the parsers would have given the result a number.
bool parses_as_number(std::string_view s) noexcept { return parse_number(s, false).has_value(); }

bool same(const value& a, const value& b) noexcept {
  switch (a.k) {
    case value::kind::boolean: return a.b == b.b;
    case value::kind::number:
    case value::kind::time: return a.n == b.n;
    case value::kind::string: return a.str() == b.str();
    default: return false;
  }
}

// The i-th element of a list value as a value.
value element(const value& list, std::uint32_t i) noexcept {
  if (list.k == value::kind::bound_list) return value::string(list.strs[i]);
  return list.items[i];
}

bool contains(const value& list, const value& x) noexcept {
  for (std::uint32_t i = 0; i < list.count; ++i)
    if (same(element(list, i), x)) return true;
  return false;
}

}  // namespace

bool condition::evaluate(const bindings& b) const noexcept {
  value st[max_stack];  // trivially constructible: no per-evaluation set-up cost
  std::size_t sp = 0;
  const program& p = *p_;
  const instr_t* code = p.code.data();
  const std::size_t n = p.code.size();
  for (std::size_t pc = 0; pc < n; ++pc) {
    const instr_t in = code[pc];
    switch (in.code) {
      case op::push_const:
        st[sp++] = p.consts[in.arg];
        break;
      case op::load:
        st[sp++] = b.slots[in.arg];
        break;
      case op::add:
      case op::sub:
      case op::mul:
      case op::div: {
        const value r = st[--sp];
        value& l = st[sp - 1];
        if (l.is_null() || r.is_null()) {
          l = value::null();
        } else if (in.code == op::add) {
          l.n += r.n;
        } else if (in.code == op::sub) {
          l.n -= r.n;
        } else if (in.code == op::mul) {
          l.n *= r.n;
        } else {
          l = r.n == 0 ? value::null() : value::number(l.n / r.n);  // x/0 is unknown, not infinite
        }
        break;
      }
      case op::neg:
        if (!st[sp - 1].is_null()) st[sp - 1].n = -st[sp - 1].n;
        break;
      case op::eq:
      case op::ne:
      case op::lt:
      case op::le:
      case op::gt:
      case op::ge: {
        const value r = st[--sp];
        value& l = st[sp - 1];
        bool res = false;
        if (!l.is_null() && !r.is_null()) {
          int c = 0;  // three-way
          if (l.k == value::kind::string) {
            const int s = l.str().compare(r.str());
            c = s < 0 ? -1 : (s > 0 ? 1 : 0);
          } else if (l.k == value::kind::boolean) {
            c = l.b == r.b ? 0 : (l.b ? 1 : -1);
          } else {
            c = l.n < r.n ? -1 : (l.n > r.n ? 1 : (l.n == r.n ? 0 : 2));  // 2: NaN, unordered
          }
          switch (in.code) {
            case op::eq: res = c == 0; break;
            case op::ne: res = c != 0 && c != 2; break;
            case op::lt: res = c == -1; break;
            case op::le: res = c == -1 || c == 0; break;
            case op::gt: res = c == 1; break;
            default: res = c == 1 || c == 0; break;
          }
        }
        l = value::boolean(res);
        break;
      }
      case op::is_null:
        st[sp - 1] = value::boolean(st[sp - 1].is_null());
        break;
      case op::not_null:
        st[sp - 1] = value::boolean(!st[sp - 1].is_null());
        break;
      case op::not_:
        st[sp - 1].b = !st[sp - 1].b;
        break;
      case op::and_jump:
        if (!st[sp - 1].b) pc = in.arg - 1;
        else --sp;
        break;
      case op::or_jump:
        if (st[sp - 1].b) pc = in.arg - 1;
        else --sp;
        break;
      case op::in: {
        const value r = st[--sp];
        value& l = st[sp - 1];
        bool res = false;
        if (!l.is_null() && !r.is_null()) {
          if (r.k == value::kind::string) {
            res = r.str().find(l.str()) != std::string_view::npos;
          } else if (l.k == value::kind::list || l.k == value::kind::bound_list) {
            for (std::uint32_t i = 0; i < l.count && !res; ++i) res = contains(r, element(l, i));
          } else {
            res = contains(r, l);
          }
        }
        l = value::boolean(res);
        break;
      }
      case op::abs:
        if (!st[sp - 1].is_null()) st[sp - 1].n = std::fabs(st[sp - 1].n);
        break;
      case op::min:
      case op::max: {
        const std::size_t first = sp - in.arg;
        value acc = st[first];
        for (std::size_t i = first + 1; i < sp && !acc.is_null(); ++i) {
          if (st[i].is_null()) acc = value::null();
          else if (in.code == op::min ? st[i].n < acc.n : st[i].n > acc.n) acc.n = st[i].n;
        }
        sp = first;
        st[sp++] = acc;
        break;
      }
      case op::between: {
        sp -= 2;
        const value& x = st[sp - 1];
        const value& lo = st[sp];
        const value& hi = st[sp + 1];
        const bool res = !x.is_null() && !lo.is_null() && !hi.is_null() && lo.n <= x.n && x.n <= hi.n;
        st[sp - 1] = value::boolean(res);
        break;
      }
      case op::is_numeric: {
        const value& x = st[sp - 1];
        const bool res = x.k == value::kind::number || (x.k == value::kind::string && parses_as_number(x.str()));
        st[sp - 1] = value::boolean(res);
        break;
      }
      case op::hours_since: {
        const value& now = b.get(variable::now);
        value& t = st[sp - 1];
        t = (t.is_null() || now.is_null()) ? value::null() : value::number((now.n - t.n) / 3600.0);
        break;
      }
    }
  }
  return sp == 1 && st[0].k == value::kind::boolean && st[0].b;
}

const char* to_string(value_type t) noexcept {
  switch (t) {
    case value_type::null: return "null";
    case value_type::boolean: return "true/false value";
    case value_type::number: return "number";
    case value_type::string: return "string";
    case value_type::time: return "time";
    case value_type::number_list: return "list of numbers";
    case value_type::string_list: return "list of strings";
  }
  return "?";
}

const char* to_string(variable v) noexcept {
  switch (v) {
    case variable::value: return "value";
    case variable::text: return "text";
    case variable::unit: return "unit";
    case variable::flags: return "flags";
    case variable::status: return "status";
    case variable::qc: return "qc";
    case variable::range_low: return "range.low";
    case variable::range_high: return "range.high";
    case variable::previous_value: return "previous.value";
    case variable::previous_observed_at: return "previous.observed_at";
    case variable::observed_at: return "observed_at";
    case variable::device: return "device";
    case variable::parameter: return "parameter";
    case variable::sample_id: return "sample_id";
    case variable::rerun_number: return "rerun_number";
    case variable::qc_status: return "qc_status";
    case variable::now: return "now";
  }
  return "?";
}

std::pair<std::size_t, std::size_t> line_column(std::string_view text, std::size_t offset) noexcept {
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++column;  // count characters, not UTF-8 continuation bytes
    }
  }
  return {line, column};
}

std::string format_error(std::string_view where, std::string_view source, const condition_error& e) {
  std::string out;
  if (!where.empty()) out.append(where).append(": ");
  out.append(std::to_string(e.line)).append(":").append(std::to_string(e.column)).append(": ");
  out.append(e.message).append("\n");
  // The offending line, then a caret under the column (tabs copied so the caret lines up).
  std::size_t begin = 0;
  for (std::size_t l = 1; l < e.line; ++l) {
    const auto nl = source.find('\n', begin);
    if (nl == std::string_view::npos) break;
    begin = nl + 1;
  }
  std::size_t end = source.find('\n', begin);
  if (end == std::string_view::npos) end = source.size();
  const std::string_view line = source.substr(begin, end - begin);
  out.append("  ").append(line).append("\n  ");
  std::size_t col = 1;
  for (std::size_t i = 0; i < line.size() && col < e.column; ++i) {
    if ((static_cast<unsigned char>(line[i]) & 0xC0) == 0x80) continue;
    out += line[i] == '\t' ? '\t' : ' ';
    ++col;
  }
  for (; col < e.column; ++col) out += ' ';
  out.append("^\n");
  return out;
}

}  // namespace interfaced::rerun
