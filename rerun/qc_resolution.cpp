#include "rerun/qc_resolution.hpp"

#include <algorithm>

namespace interfaced::rerun::qc {

const resolution_code* find_code(const std::vector<resolution_code>& codes, std::string_view code) noexcept {
  for (const auto& c : codes)
    if (c.code == code) return &c;
  return nullptr;
}

std::string_view to_string(resolution::state s) noexcept {
  switch (s) {
    case resolution::state::proposed: return "proposed";
    case resolution::state::active: return "active";
    case resolution::state::undone: return "undone";
  }
  return "proposed";
}

void resolution_book::restore(const std::vector<audit_entry>& entries) {
  entries_.clear();
  resolutions_.clear();
  for (const auto& e : entries) append(e);
}

void resolution_book::append(const audit_entry& e) {
  entries_.push_back(e);
  if (e.kind == "resolution" || e.kind == "proposal") {
    resolution r;
    r.id = e.id;
    r.result_id = e.result_id;
    r.device = e.device;
    r.parameter = e.parameter;
    r.code = e.code;
    r.by = e.by;
    r.reason = e.reason;
    r.at = e.at;
    r.st = e.kind == "resolution" ? resolution::state::active : resolution::state::proposed;
    resolutions_.push_back(std::move(r));
  } else if (e.kind == "approval") {
    if (resolution* r = find_mut(e.ref)) {
      r->st = resolution::state::active;
      r->approved_by = e.by;
      r->approved_at = e.at;
    }
  } else if (e.kind == "undo") {
    if (resolution* r = find_mut(e.ref)) r->st = resolution::state::undone;
  }
}

void resolution_book::set_detail(std::int64_t id, const std::string& detail) {
  for (auto& e : entries_)
    if (e.id == id) e.detail = detail;
}

void resolution_book::apply(const decision& d) {
  for (const auto& e : d.entries) append(e);
}

resolution* resolution_book::find_mut(std::int64_t id) noexcept {
  for (auto& r : resolutions_)
    if (r.id == id) return &r;
  return nullptr;
}

const resolution* resolution_book::find(std::int64_t id) const noexcept {
  for (const auto& r : resolutions_)
    if (r.id == id) return &r;
  return nullptr;
}

const resolution* resolution_book::active_of(std::string_view result_id) const noexcept {
  for (const auto& r : resolutions_)
    if (r.result_id == result_id && r.st == resolution::state::active) return &r;
  return nullptr;
}

namespace {
audit_entry entry_of(std::int64_t id, std::string kind, const request& r) {
  return {id, std::move(kind), r.result_id, r.device, r.parameter, r.code, r.by, r.reason, r.at, 0, {}};
}
}  // namespace

decision resolution_book::resolve(const request& r, const std::vector<resolution_code>& codes,
                                  const affected_fn& affected) {
  decision d;
  const resolution_code* code = find_code(codes, r.code);
  if (code == nullptr) {
    std::string known;
    for (const auto& c : codes) known += (known.empty() ? "" : ", ") + c.code;
    d.error = "unknown resolution code \"" + r.code + "\" (qc.resolution_codes: " + (known.empty() ? "none configured" : known) + ")";
    return d;
  }
  if (r.by.empty() || r.reason.empty()) {
    d.error = "a resolution names who (--by) and why (--reason)";
    return d;
  }
  if (code->two_step && !r.propose) {
    d.error = "code " + code->code + " is two-step: propose it (--propose), then another person approves it";
    return d;
  }
  if (!code->two_step && r.propose) {
    d.error = "code " + code->code + " is one-step: resolve without --propose";
    return d;
  }
  for (const auto& x : resolutions_)
    if (x.result_id == r.result_id && x.st != resolution::state::undone) {
      d.error = "control result " + r.result_id + " already has resolution " + std::to_string(x.id) + " (" + x.code +
                ", " + std::string(to_string(x.st)) + "); undo it first";
      return d;
    }
  // Conflicts (5.5): the patient results this resolution would change must not have a pending
  // resolution from another control. Checked at proposal (two-step) or before saving (one-step).
  if (affected) {
    const auto mine = affected(r.result_id);
    for (const auto& x : resolutions_) {
      if (x.st != resolution::state::proposed || x.result_id == r.result_id) continue;
      const auto theirs = affected(x.result_id);
      std::vector<std::string> both;
      for (const auto& p : mine)
        if (std::find(theirs.begin(), theirs.end(), p) != theirs.end()) both.push_back(p);
      if (both.empty()) continue;
      std::string list;
      for (const auto& p : both) list += (list.empty() ? "" : ", ") + p;
      d.error = "conflict: control result " + x.result_id + " has a pending proposal " + std::to_string(x.id) + " (" +
                x.code + " by " + x.by + ") that changes the same patient results: " + list +
                "; approve or undo it first";
      return d;
    }
  }
  const audit_entry e = entry_of(next_id(), r.propose ? "proposal" : "resolution", r);
  d.entries.push_back(e);
  resolution res;
  res.id = e.id;
  res.result_id = r.result_id;
  res.device = r.device;
  res.parameter = r.parameter;
  res.code = r.code;
  res.by = r.by;
  res.reason = r.reason;
  res.at = r.at;
  res.st = r.propose ? resolution::state::proposed : resolution::state::active;
  d.changed = res;
  d.takes_effect = !r.propose;
  return d;
}

decision resolution_book::approve(std::int64_t proposal_id, const std::string& by, const std::string& at,
                                  const std::vector<resolution_code>& codes) {
  decision d;
  const resolution* p = find(proposal_id);
  if (p == nullptr || p->st != resolution::state::proposed) {
    d.error = "no pending proposal " + std::to_string(proposal_id);
    return d;
  }
  if (by.empty()) {
    d.error = "an approval names who approves (--by)";
    return d;
  }
  if (by == p->by) {
    d.error = "proposal " + std::to_string(proposal_id) + " was proposed by " + by +
              ": a two-step resolution is approved by a different person";
    return d;
  }
  (void)codes;
  audit_entry e{next_id(), "approval", p->result_id, p->device, p->parameter, p->code, by, {}, at, proposal_id, {}};
  d.entries.push_back(e);
  resolution res = *p;
  res.st = resolution::state::active;
  res.approved_by = by;
  res.approved_at = at;
  d.changed = res;
  d.takes_effect = true;
  return d;
}

decision resolution_book::undo(std::int64_t id, const std::string& by, const std::string& reason, const std::string& at,
                               const std::vector<resolution_code>& codes) {
  decision d;
  const resolution* p = find(id);
  if (p == nullptr || p->st == resolution::state::undone) {
    d.error = "no resolution or proposal " + std::to_string(id) + " in effect";
    return d;
  }
  if (by.empty()) {
    d.error = "an undo names who undoes it (--by)";
    return d;
  }
  (void)codes;
  audit_entry e{next_id(), "undo", p->result_id, p->device, p->parameter, p->code, by, reason, at, id, {}};
  d.entries.push_back(e);
  resolution res = *p;
  d.takes_effect = p->st == resolution::state::active;
  res.st = resolution::state::undone;
  d.changed = res;
  return d;
}

audit_entry resolution_book::limits_changed(const std::string& device, const std::string& parameter,
                                            const std::string& by, const std::string& reason, const std::string& at,
                                            const std::string& detail) {
  return {next_id(), "limits", {}, device, parameter, {}, by, reason, at, 0, detail};
}

}  // namespace interfaced::rerun::qc
