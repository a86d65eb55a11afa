// sockjs-node (npm `sockjs`, pinned in package.json) serving the endpoints
// the client tests use, mirroring demo/conformance.py. Started by the
// `sockjs_node` fixture: listens on a free loopback port, prints
// {"port": N} on one line, and exits when its stdin closes.
"use strict";

const http = require("http");
const sockjs = require("sockjs");

// {"heartbeat_delay": ms, "disconnect_delay": ms}
const settings = JSON.parse(process.argv[2] || "{}");
const quiet = () => {};

function echo(conn) {
  conn.on("data", (message) => conn.write(message));
}

function goAway(conn) {
  conn.close(3000, "Go away!");
}

const endpoints = [
  ["/echo", echo, { response_limit: 4096 }],
  ["/disabled_websocket_echo", echo, { websocket: false }],
  ["/close", goAway, {}],
];

const server = http.createServer();
for (const [prefix, handler, options] of endpoints) {
  const endpoint = sockjs.createServer({ log: quiet, ...settings, ...options });
  endpoint.on("connection", handler);
  endpoint.installHandlers(server, { prefix });
}

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
