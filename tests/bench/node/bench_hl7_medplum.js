// Peer for bench_hl7: @medplum/core's Hl7Message.parse over the same messages (written by
// `bench_hl7 --dump FILE`, 0x1C-separated), timed the same way, reading OBX-3/5/6 of every OBX
// (the daemon's work: every result's code, value and unit).
// Usage: node bench_hl7_medplum.js FILE [seconds=5]
// @medplum/core comes from the npm registry, installed only for the benchmark by
// tests/bench/hl7_peers.sh (package.json + package-lock.json here, node_modules out of tree).
'use strict';
const fs = require('fs');
const path = require('path');
const { Hl7Message } = require('@medplum/core');

// The installed version, for the printed line ('./package.json' is not in the package's exports).
function medplum_version() {
  for (let dir = path.dirname(require.resolve('@medplum/core')); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (!fs.existsSync(file)) continue;
    const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (pkg.name === '@medplum/core') return pkg.version;
  }
  return '?';
}

const raw = fs.readFileSync(process.argv[2]);
const seconds = process.argv.length > 3 ? Number(process.argv[3]) : 5;
const msgs = [];
for (let start = 0; start < raw.length; ) {
  let end = raw.indexOf(0x1c, start);
  if (end < 0) end = raw.length;
  if (end > start) msgs.push(raw.subarray(start, end));
  start = end + 1;
}
// Medplum splits segments on CR only: LF / CRLF ends made CR, as for the python peer.
const texts = msgs.map((m) => m.toString('latin1').replace(/\r\n/g, '\r').replace(/\n/g, '\r'));
let count = 0, nbytes = 0, obx = 0, sink = 0;
const start = process.hrtime.bigint();
let elapsed = 0;
for (;;) {
  for (let i = 0; i < texts.length; ++i) {
    const m = Hl7Message.parse(texts[i]);
    for (const seg of m.getAllSegments('OBX')) {
      sink += seg.getField(3).toString().length + seg.getField(5).toString().length + seg.getField(6).toString().length;
      ++obx;
    }
    ++count;
    nbytes += msgs[i].length;
  }
  elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  if (elapsed >= seconds) break;
}
console.log(`@medplum/core ${medplum_version()} Hl7Message.parse + OBX-3/5/6: ` +
  `${(count / elapsed).toFixed(0)} messages/s, ${(nbytes / elapsed / 1e6).toFixed(2)} MB/s, ` +
  `${(obx / elapsed).toFixed(0)} OBX/s (${msgs.length} messages, ${count} parsed in ${elapsed.toFixed(2)} s; sink ${sink % 10})`);
