#pragma once
// The operator's commands besides replay: `outbox list|show|retry|purge`, `status`,
// `backend-sim`, `trace`. Each returns the process exit status (see README, "Exit statuses").

#include <iosfwd>
#include <string>
#include <vector>

namespace interfaced::daemon {

struct outbox_command {
  std::string config;        // the daemon's configuration (for outbox.path)
  std::string file;          // or the outbox file directly
  std::string action;        // list | show | retry | purge | set-aside
  std::string id;            // show / retry / set-aside
  bool dead = false;         // retry --dead: every dead letter
  bool all = false;          // list --all: delivered too
  std::string sample;        // list --sample ID
  std::string state;         // list --state pending|delivered|dead|set-aside
  std::string since;         // list --since DATE (UTC date or date-time)
  bool orphans = false;      // list --orphans: dead file reports whose object is stored
  std::string before;        // purge --delivered-before DATE
  std::string by;            // set-aside --by NAME
  std::string reason;        // set-aside --reason TEXT
  bool json = false;
};
int run_outbox_command(const outbox_command& c, std::ostream& out, std::ostream& err);

struct status_command {
  std::string config;
  bool json = false;
};
int run_status(const status_command& c, std::ostream& out, std::ostream& err);

struct trace_command {
  std::string config;
  std::string device;
  bool on = true;
};
int run_trace(const trace_command& c, std::ostream& out, std::ostream& err);

// `interfaced qc resolve|approve|undo|history` (issue #14): through the running daemon's local
// API (/api/qc/..., daemon/qc_admin.hpp), which applies the change to its charts. Exit 0 done;
// 1 refused (the daemon's reason on stderr); 69 no daemon answers; 75 not stored (the daemon's
// outbox could not commit it, nothing changed; or another change was being stored): try again;
// 78 no admin token configured.
struct qc_admin_command {
  std::string config;
  std::string action;  // resolve | approve | undo | history
  std::string id;      // RESULT_ID (resolve), PROPOSAL_ID (approve), RESOLUTION_ID (undo)
  std::string code;
  std::string by;
  std::string reason;
  bool propose = false;
  bool json = false;
};
int run_qc_admin(const qc_admin_command& c, std::ostream& out, std::ostream& err);

struct backend_sim_command {
  std::string listen = "127.0.0.1";
  unsigned port = 8080;
  std::string record;
  std::string data;
  std::vector<std::string> faults;
  std::string tls_cert;
  std::string tls_key;
  std::string token_env;
  std::string s3_url;          // --s3 URL: presign for this S3-compatible store
  std::string s3_bucket;       // --s3-bucket
  std::string s3_key;          // --s3-key (access key id)
  std::string s3_secret_file;  // --s3-secret-file (the secret key, never on the command line)
  std::string store;           // --store DIR: the simulator is the store
  unsigned presign_ttl_s = 900;  // --presign-ttl S
};
int run_backend_sim_command(const backend_sim_command& c, std::ostream& err);

}  // namespace interfaced::daemon
