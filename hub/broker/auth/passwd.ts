// mosquitto password files (`password_file`), so users migrating from mosquitto keep theirs.
// One `user:hash` per line; the hash formats are mosquitto's (lib/password_mosq.c, libcommon/password_common.c):
//   $6$<b64 salt>$<b64 SHA-512(password || salt)>                    (mosquitto ≤ 1.6 default; NOT crypt(3) sha512-crypt)
//   $7$<iterations>$<b64 salt>$<b64 PBKDF2-HMAC-SHA512(password, salt, iterations, 64 bytes)>   (2.x default)
// Salts are 12 bytes (mosquitto 2.0) or 64 (2.1); hashes are 64 bytes; base64 is standard with padding.
// A file that is not exactly this fails to load with file:line: a blank or malformed line once let
// clients in without a password (CVE-2018-12551, checklist G2).
import { createHash, pbkdf2, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Iterations written by `hub passwd`. mosquitto 2.0 writes 101, far too few for a file that may leak
 * from an SD card; OWASP (2023) recommends 210,000 for PBKDF2-HMAC-SHA512. Measured: ~160 ms per
 * verification on a 2-core x86 VM; verified credentials are cached, so a client pays it once.
 */
export const DEFAULT_ITERATIONS = 210_000;
/** Refuse absurd counts in a file: one verification must not occupy a thread for minutes. */
export const MAX_ITERATIONS = 10_000_000;
export const SALT_BYTES = 12;
const HASH_BYTES = 64;

export type PasswordEntry =
  | { readonly kind: "sha512"; readonly salt: Buffer; readonly hash: Buffer }
  | { readonly kind: "pbkdf2"; readonly iterations: number; readonly salt: Buffer; readonly hash: Buffer };

export interface LineProblem {
  /** 1-based line number. */
  line: number;
  /** 1-based column of what is wrong (the user name, or the hash after `:`). */
  col: number;
  /** "expected ..., found ..." */
  message: string;
}

export type PasswordFile = { ok: true; users: Map<string, PasswordEntry> } | { ok: false; problems: LineProblem[] };

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Strict base64: what mosquitto writes, nothing the lenient Buffer decoder would also accept. */
function b64(s: string): Buffer | undefined {
  if (!B64.test(s) || s.length % 4 !== 0) return undefined;
  const b = Buffer.from(s, "base64");
  return b.toString("base64") === s ? b : undefined;
}

/**
 * Parses the part after `user:`; a string is what is wrong with it ("expected ..., found ..."). The
 * hash itself is never quoted back (it is a secret's derivative).
 */
export function parseHash(s: string): PasswordEntry | string {
  if (s.startsWith("$argon2id$")) return "expected a $7$ or $6$ hash, found an argon2id hash (mosquitto 2.1 with libargon2, not supported): set the password again with hub passwd";
  if (!s.startsWith("$")) return `expected a hashed password made by hub passwd or mosquitto_passwd, found ${s === "" ? "nothing" : "plain text"}`;
  const parts = s.split("$"); // ["", "6", salt, hash] or ["", "7", iterations, salt, hash]
  let iterations: number | undefined;
  let rest: string[];
  if (parts[1] === "6" && parts.length === 4) rest = parts.slice(2);
  else if (parts[1] === "7" && parts.length === 5) {
    if (!/^[1-9][0-9]{0,9}$/.test(parts[2]!)) return `expected a positive iteration count after $7$, found ${JSON.stringify(parts[2])}`;
    iterations = Number(parts[2]);
    if (iterations > MAX_ITERATIONS) return `expected an iteration count up to ${MAX_ITERATIONS}, found ${iterations}`;
    rest = parts.slice(3);
  } else return `expected $6$salt$hash or $7$iterations$salt$hash (mosquitto_passwd format), found ${JSON.stringify(`$${parts[1] ?? ""}$`)} with ${parts.length - 2} fields`;
  const salt = b64(rest[0]!);
  if (!salt || salt.length < 8 || salt.length > 64) return "expected a salt of 8..64 bytes in base64, found something else";
  const hash = b64(rest[1]!);
  if (!hash || hash.length !== HASH_BYTES) return `expected a hash of ${HASH_BYTES} bytes in base64, found ${hash ? `${hash.length} bytes` : "something else"}`;
  return iterations === undefined ? { kind: "sha512", salt, hash } : { kind: "pbkdf2", iterations, salt, hash };
}

/**
 * Parses a whole file. `#` comment lines are skipped; a blank line, a line without `:`, an empty
 * user name, a duplicate user or a bad hash is a problem (all are reported, each with its line).
 */
export function parsePasswordFile(text: string): PasswordFile {
  const users = new Map<string, PasswordEntry>();
  const problems: LineProblem[] = [];
  const seen = new Map<string, number>();
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop(); // the final newline ends the last line; it is not a blank line
  lines.forEach((raw, i) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const at = i + 1;
    if (line.trim() === "") {
      problems.push({ line: at, col: 1, message: "expected user:hash, found a blank line (a password file has one user:hash per line; remove it)" });
      return;
    }
    if (line.startsWith("#")) return;
    const colon = line.indexOf(":");
    if (colon < 0) {
      problems.push({ line: at, col: 1, message: 'expected user:hash, found no ":"' });
      return;
    }
    const user = line.slice(0, colon);
    if (user === "") {
      problems.push({ line: at, col: 1, message: 'expected a user name before ":", found an empty user name' });
      return;
    }
    const first = seen.get(user);
    if (first !== undefined) {
      problems.push({ line: at, col: 1, message: `expected each user once, found user ${JSON.stringify(user)} again (also line ${first})` });
      return;
    }
    seen.set(user, at);
    const entry = parseHash(line.slice(colon + 1));
    if (typeof entry === "string") {
      problems.push({ line: at, col: colon + 2, message: `user ${JSON.stringify(user)}: ${entry}` });
      return;
    }
    users.set(user, entry);
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, users };
}

function pbkdf2Async(password: Buffer, salt: Buffer, iterations: number): Promise<Buffer> {
  // crypto.pbkdf2 runs on libuv's thread pool: the event loop keeps serving other clients meanwhile.
  return new Promise((resolve, reject) => {
    pbkdf2(password, salt, iterations, HASH_BYTES, "sha512", (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** mosquitto hashes the password as a C string: bytes up to the first NUL. */
function cString(p: Buffer): Buffer {
  const nul = p.indexOf(0);
  return nul < 0 ? p : p.subarray(0, nul);
}

/** Checks a password against an entry in constant time (per length). */
export async function verifyPassword(entry: PasswordEntry, password: Buffer): Promise<boolean> {
  const pw = cString(password);
  const got =
    entry.kind === "pbkdf2"
      ? await pbkdf2Async(pw, entry.salt, entry.iterations)
      : createHash("sha512").update(pw).update(entry.salt).digest(); // one SHA-512: microseconds
  return got.length === entry.hash.length && timingSafeEqual(got, entry.hash);
}

/** A `$7$` hash string as mosquitto_passwd writes it, with a fresh random salt. */
export async function hashPassword(password: Buffer | string, iterations = DEFAULT_ITERATIONS, salt = randomBytes(SALT_BYTES)): Promise<string> {
  const pw = cString(typeof password === "string" ? Buffer.from(password, "utf8") : password);
  const hash = await pbkdf2Async(pw, salt, iterations);
  return `$7$${iterations}$${salt.toString("base64")}$${hash.toString("base64")}`;
}

/** Is `user` a name a password file can hold (mosquitto_passwd refuses ':' and control characters). */
export function validUserName(user: string): string | undefined {
  if (user === "") return "the user name is empty";
  if (user.includes(":")) return "a user name cannot contain ':'";
  if (/[\u0000-\u001f\u007f]/.test(user)) return "a user name cannot contain control characters";
  if (user.startsWith("#")) return "a user name cannot start with '#' (that line would be a comment)";
  if (Buffer.byteLength(user) > 65535) return "the user name is longer than 65535 bytes";
  return undefined;
}
