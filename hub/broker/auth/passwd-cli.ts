// `hub passwd FILE USER`: adds a user or changes a password (prompted twice without echo on a
// terminal, or one line from `--stdin`), `-D` deletes. Writes `$7$` (PBKDF2-SHA512) entries that
// mosquitto reads too. Other lines are kept byte for byte; the file is replaced atomically
// (temporary file, fsync, rename), so a power cut leaves the old file or the new one. The new file
// keeps the owner, group and mode of the one it replaces: `sudo hub passwd` must not leave a file
// the service user (`hub`, reading /etc/hub through its group) can no longer read.
import { closeSync, fchmodSync, fchownSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { DEFAULT_ITERATIONS, hashPassword, MAX_ITERATIONS, validUserName } from "./passwd.js";

export interface PasswdArgs {
  file: string;
  user: string;
  del: boolean;
  stdin: boolean;
  iterations?: string | undefined;
}

export interface PasswdIo {
  /** Whether stdin is a terminal (then the password is prompted for without echo). */
  isTTY: boolean;
  /** All of stdin (for --stdin). */
  readStdin(): Promise<string>;
  /** Prompts on the terminal without echo. */
  promptHidden(prompt: string): Promise<string>;
  out(s: string): void;
  err(s: string): void;
  pid: number;
}

export const EX_USAGE = 64;

/** The file's lines without the user's; `found` whether it had one. Line endings are kept. */
function withoutUser(text: string, user: string): { lines: string[]; found: boolean } {
  const lines = text === "" ? [] : text.split(/(?<=\n)/);
  const prefix = `${user}:`;
  const kept = lines.filter((l) => !l.startsWith(prefix));
  return { lines: kept, found: kept.length !== lines.length };
}

/**
 * Owner, group and mode of the file being written: those of the file it replaces. A new file is 0600,
 * or 0640 with the directory's group when that is a group other than ours (/etc/hub is root:hub
 * 0750: the password file becomes root:hub 0640, like config.yaml, readable by the service only).
 */
function setOwnership(fd: number, file: string): void {
  let old: ReturnType<typeof statSync> | undefined;
  try {
    old = statSync(file);
  } catch {
    // a new file
  }
  if (old !== undefined) {
    fchmodSync(fd, Number(old.mode) & 0o777);
    try {
      fchownSync(fd, Number(old.uid), Number(old.gid));
    } catch {
      // Not root: the file stays ours (we could write the directory, so it is ours to replace).
    }
    return;
  }
  const dirGid = Number(statSync(dirname(file)).gid);
  if (typeof process.getgid !== "function" || dirGid === process.getgid()) return;
  try {
    fchownSync(fd, process.getuid!(), dirGid);
    fchmodSync(fd, 0o640);
  } catch {
    // Not a member of that group: stays 0600 with our own group.
  }
}

function writeAtomically(file: string, text: string, pid: number): void {
  const tmp = `${file}.tmp-${pid}`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    setOwnership(fd, file);
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, file);
  // The rename itself is durable only once the directory is synced (ext4 on an SD card).
  try {
    const dfd = openSync(dirname(file), "r");
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Not every file system lets a directory be opened for fsync; the rename is still atomic.
  }
}

export async function passwdCommand(a: PasswdArgs, io: PasswdIo): Promise<number> {
  const bad = validUserName(a.user);
  if (bad) {
    io.err(`hub passwd: ${bad}\n`);
    return EX_USAGE;
  }
  let iterations = DEFAULT_ITERATIONS;
  if (a.iterations !== undefined) {
    iterations = Number(a.iterations);
    if (!Number.isInteger(iterations) || iterations < 1000 || iterations > MAX_ITERATIONS) {
      io.err(`hub passwd: --iterations must be an integer 1000..${MAX_ITERATIONS}\n`);
      return EX_USAGE;
    }
  }
  let text = "";
  try {
    text = readFileSync(a.file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" || a.del) {
      io.err(`hub passwd: cannot read ${a.file}: ${code ?? String(err)}\n`);
      return 1;
    }
  }
  const { lines, found } = withoutUser(text, a.user);
  if (a.del) {
    if (!found) {
      io.err(`hub passwd: no user ${JSON.stringify(a.user)} in ${a.file}\n`);
      return 1;
    }
    writeAtomically(a.file, lines.join(""), io.pid);
    io.out(`deleted user ${a.user} from ${a.file}; reload the hub (systemctl reload hub) to apply\n`);
    return 0;
  }

  let password: string;
  if (a.stdin) {
    const all = await io.readStdin();
    password = all.split("\n")[0]!.replace(/\r$/, "");
  } else if (io.isTTY) {
    try {
      password = await io.promptHidden("Password: ");
      const again = await io.promptHidden("Reenter password: ");
      if (again !== password) {
        io.err("hub passwd: the passwords do not match\n");
        return 1;
      }
    } catch {
      io.err("hub passwd: cancelled\n");
      return 1;
    }
  } else {
    io.err("hub passwd: stdin is not a terminal; give the password on stdin with --stdin\n");
    return EX_USAGE;
  }
  if (password === "") {
    io.err("hub passwd: the password is empty\n");
    return 1;
  }
  const entry = `${a.user}:${await hashPassword(password, iterations)}\n`;
  if (lines.length > 0 && !lines[lines.length - 1]!.endsWith("\n")) lines[lines.length - 1] += "\n";
  lines.push(entry);
  writeAtomically(a.file, lines.join(""), io.pid);
  io.out(`${found ? "changed the password of" : "added"} user ${a.user} in ${a.file}; reload the hub (systemctl reload hub) to apply\n`);
  return 0;
}

/** Reads one line from a terminal without echoing it (raw mode; Ctrl-C or Ctrl-D cancels). */
export function promptHidden(stdin: NodeJS.ReadStream, stderr: NodeJS.WriteStream, prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    stderr.write(prompt);
    let value = "";
    const wasRaw = stdin.isRaw;
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding("utf8");
    const done = (err?: Error) => {
      stdin.off("data", onData);
      stdin.setRawMode(wasRaw);
      stdin.pause();
      stderr.write("\n");
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === "\r" || ch === "\n") return done();
        if (ch === "\u0003" || (ch === "\u0004" && value === "")) return done(new Error("cancelled"));
        if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on("data", onData);
  });
}
