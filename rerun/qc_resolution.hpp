#pragma once
// Resolutions of control results (../shared/spec/qc.md "Resolutions"): configured codes, one-step
// resolutions, two-step proposals and approvals, undo, and the conflict check (5.5). Pure: who,
// when (`at`, passed in) and why are data; nothing here reads a clock or a file. The book is
// rebuilt from its audit entries (the outbox's qc_audit table, schema 7), which are only ever
// appended: nothing is deleted, an undo is an entry of its own.
//
//   resolution_book book;
//   auto r = book.resolve({.result_id = id, .code = "RERUN_OK", .by = "ana", .reason = "...", .at = now},
//                         codes, conflicts);
//   if (!r.error.empty()) refuse(r.error); else persist(r.entries);

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace interfaced::rerun::qc {

// qc.resolution_codes: [{"code","excludes_from_westgard","skip","two_step"}].
struct resolution_code {
  std::string code;
  bool excludes_from_westgard = false;
  bool skip = false;      // the SKIP meta-code: rule processing bypassed at initial evaluation
  bool two_step = false;  // proposed first, approved by a different person
};

[[nodiscard]] const resolution_code* find_code(const std::vector<resolution_code>& codes, std::string_view code) noexcept;

// One audit entry: kind "resolution" (one-step, in effect), "proposal", "approval" (ref: the
// proposal, which then takes effect), "undo" (ref: the resolution or proposal undone) or
// "limits" (a limit change: result_id empty, detail the new limits as JSON text).
struct audit_entry {
  std::int64_t id = 0;
  std::string kind;
  std::string result_id;
  std::string device;
  std::string parameter;
  std::string code;
  std::string by;
  std::string reason;
  std::string at;     // ISO-8601 with offset
  std::int64_t ref = 0;
  std::string detail;  // free text / JSON: the outcome message of the re-evaluation it caused
};

// A resolution as it stands now, derived from the entries.
struct resolution {
  std::int64_t id = 0;  // the resolution's (or proposal's) entry id
  std::string result_id;
  std::string device;
  std::string parameter;
  std::string code;
  std::string by;         // who resolved (or proposed)
  std::string reason;
  std::string at;
  std::string approved_by;  // two-step: who approved
  std::string approved_at;
  enum class state : std::uint8_t { proposed, active, undone } st = state::proposed;
};
[[nodiscard]] std::string_view to_string(resolution::state s) noexcept;

struct request {
  std::string result_id;
  std::string device;     // the control result's device and parameter (the caller looks them up)
  std::string parameter;
  std::string code;
  std::string by;
  std::string reason;
  std::string at;
  bool propose = false;
};

struct decision {
  std::string error;                // non-empty: refused, nothing changed
  std::vector<audit_entry> entries;  // what to persist (ids assigned)
  std::optional<resolution> changed;  // the resolution that took effect or was undone
  bool takes_effect = false;         // the series' history changes (an exclusion or undo of one)
};

// The patient results (as "sample_id parameter" strings) whose status a resolution of a control
// result would change: the patients of that control's run.
using affected_fn = std::function<std::vector<std::string>(const std::string& result_id)>;

class resolution_book {
 public:
  // Rebuilds the state from entries in id order (the qc_audit table).
  void restore(const std::vector<audit_entry>& entries);

  // One-step code: a resolution in effect. Two-step code: refused unless propose (then a
  // proposal). Refused: unknown code, empty by / reason, an active or proposed resolution of the
  // same result, a conflict (5.5) with another control's proposal.
  [[nodiscard]] decision resolve(const request& r, const std::vector<resolution_code>& codes,
                                 const affected_fn& affected);
  // Approves a proposal; refused when by == the proposer, or it is not a pending proposal.
  [[nodiscard]] decision approve(std::int64_t proposal_id, const std::string& by, const std::string& at,
                                 const std::vector<resolution_code>& codes);
  // Undoes a resolution (active or proposed); the entry stays, marked undone.
  [[nodiscard]] decision undo(std::int64_t id, const std::string& by, const std::string& reason, const std::string& at,
                              const std::vector<resolution_code>& codes);
  // A limit change, kept with who, when and why.
  [[nodiscard]] audit_entry limits_changed(const std::string& device, const std::string& parameter,
                                           const std::string& by, const std::string& reason, const std::string& at,
                                           const std::string& detail);

  // Makes the decision's entries part of the book (after they were persisted, or at once when
  // the caller persists asynchronously in order).
  void apply(const decision& d);
  void append(const audit_entry& e);
  // The detail of entry `id` as its transaction stored it (the outcome message counts what was
  // decided there: re-tags that became corrections).
  void set_detail(std::int64_t id, const std::string& detail);

  // The active resolution of a result, if any.
  [[nodiscard]] const resolution* active_of(std::string_view result_id) const noexcept;
  [[nodiscard]] const resolution* find(std::int64_t id) const noexcept;
  [[nodiscard]] const std::vector<audit_entry>& entries() const noexcept { return entries_; }
  [[nodiscard]] const std::vector<resolution>& resolutions() const noexcept { return resolutions_; }

 private:
  std::int64_t next_id() const noexcept { return entries_.empty() ? 1 : entries_.back().id + 1; }
  resolution* find_mut(std::int64_t id) noexcept;
  std::vector<audit_entry> entries_;
  std::vector<resolution> resolutions_;
};

}  // namespace interfaced::rerun::qc
