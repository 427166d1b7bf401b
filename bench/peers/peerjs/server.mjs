// The PeerJS server (npm `peer`) on a loopback port, for the signaling relay benchmark.
//
//   node server.mjs PORT      prints "peerjs ready on ws://127.0.0.1:PORT/peerjs" once listening
//
// Defaults as shipped (key "peerjs", path "/", concurrent_limit 5000), except that the port
// and host are given and discovery stays off. Stops on SIGTERM/SIGINT.
import { PeerServer } from "peer";

const port = Number.parseInt(process.argv[2] ?? "9000", 10);
const host = "127.0.0.1";

const server = PeerServer({ port, host, path: "/", key: "peerjs" }, (http) => {
  const bound = http.address();
  const shown = typeof bound === "object" && bound !== null ? bound.port : port;
  process.stdout.write(`peerjs ready on ws://${host}:${shown}/peerjs\n`);
});
server.on("error", (error) => {
  process.stderr.write(`peerjs: ${error}\n`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}
