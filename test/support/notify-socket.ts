// A stand-in for systemd's notify socket ($NOTIFY_SOCKET) for tests of the real systemd-notify:
// a python3 child binds the unix datagram socket, prints each message as "msg A=1|B=2", and closes
// the fd that systemd-notify sends with BARRIER=1 (as PID 1 does once it has read the message;
// systemd-notify waits for that close before it exits).
import { existsSync } from "node:fs";
import { killOnTeardown, type Spawned, spawnProcess } from "./spawn.js";

const PYTHON = "/usr/bin/python3";

/** Why the integration tests cannot run here, or false when they can (tap's `skip`). */
export const notifySocketSkip: string | false = !["/usr/bin/systemd-notify", "/bin/systemd-notify"].some((p) => existsSync(p))
  ? "systemd-notify is not installed (apt-get install systemd)"
  : !existsSync(PYTHON)
    ? "python3 is not installed (apt-get install python3-minimal): it plays the notify socket"
    : false;

const RECEIVER = `import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    data, anc, _flags, _addr = s.recvmsg(4096, socket.CMSG_SPACE(64))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            for i in range(0, len(payload) - len(payload) % 4, 4):
                os.close(int.from_bytes(payload[i:i + 4], sys.byteorder))
    print("msg " + data.decode().replace("\\n", "|"), flush=True)
`;

/** Binds a notify socket at `socketPath`; resolves once it listens. Killed at the test's end. */
export async function notifySocket(t: { teardown(fn: () => unknown): void }, socketPath: string): Promise<Spawned> {
  const receiver = spawnProcess(PYTHON, ["-u", "-c", RECEIVER, socketPath]);
  killOnTeardown(t, receiver);
  await receiver.waitFor("listening");
  return receiver;
}
