// node-smpp's client (npm `smpp`) as a peer of benchmarks/session.py, driven over stdin/stdout.
//
// Usage: node _nodesmpp.js MODULE_DIR PORT WINDOW WARMUP SEGMENTS SYSTEM_ID PASSWORD TEXT
// It binds a transceiver to 127.0.0.1:PORT, sends WARMUP submit_sm untimed, prints
// {"ready": true}, waits for the line "go", then sends SEGMENTS submit_sm and prints
// {"ok", "failed", "seconds", "cpu"} for that phase: wall seconds from the first send to the
// last response, this process's CPU seconds (user + system) over the same interval. The
// window is WINDOW senders, each sending its next submit_sm when its last is answered
// (node-smpp has no window of its own). Any failure prints {"error": "..."} and exits 1.
// The parent (benchmarks/session.py) bounds every wait and kills this process if need be.

"use strict";

const [moduleDir, port, window, warmup, segments, systemId, password, text] =
  process.argv.slice(2);
const smpp = require(require("path").join(moduleDir, "node_modules", "smpp"));

function say(payload) {
  process.stdout.write(JSON.stringify(payload) + "\n");
}

function fail(message) {
  say({ error: String(message).slice(0, 300) });
  process.exit(1);
}

const session = smpp.connect({ url: `smpp://127.0.0.1:${port}`, auto_enquire_link_period: 0 });
session.on("error", (error) => fail(`session error: ${error.message || error}`));
session.on("close", () => fail("the SMSC closed the connection"));
// No receipts are asked for; answer anything that comes anyway.
session.on("deliver_sm", (pdu) => session.send(pdu.response()));

function phase(count, done) {
  let claimed = 0;
  let answered = 0;
  let ok = 0;
  let failed = 0;
  const sender = () => {
    if (claimed >= count) return;
    claimed += 1;
    session.submit_sm(
      {
        source_addr_ton: 5,
        source_addr: "Acme",
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: "5511999990000",
        registered_delivery: 0,
        data_coding: 0,
        short_message: text,
      },
      (pdu) => {
        if (pdu.command_status === 0) ok += 1;
        else failed += 1;
        answered += 1;
        if (answered === count) done(ok, failed);
        else sender();
      },
    );
  };
  for (let i = 0; i < Number(window); i += 1) sender();
}

function timed() {
  const cpu0 = process.cpuUsage();
  const wall0 = process.hrtime.bigint();
  phase(Number(segments), (ok, failed) => {
    const seconds = Number(process.hrtime.bigint() - wall0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    say({ ok, failed, seconds, cpu: (cpu.user + cpu.system) / 1e6 });
    session.removeAllListeners("close");
    session.unbind(() => session.close());
    setTimeout(() => process.exit(0), 2000).unref();
  });
}

session.bind_transceiver({ system_id: systemId, password }, (pdu) => {
  if (pdu.command_status !== 0) fail(`bind refused with status ${pdu.command_status}`);
  phase(Number(warmup), (ok, failed) => {
    if (failed) fail(`${failed} submit_sm refused in the warm-up`);
    say({ ready: true });
    let input = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (chunk) => {
      input += chunk;
      if (input.includes("go\n")) {
        process.stdin.pause();
        timed();
      }
    });
    process.stdin.on("end", () => fail("the parent went away"));
  });
});
