// The worker that runs one deployed function, one invocation at a time (a warm Lambda-like
// instance). Started by workers.py as `node --input-type=module --eval <this file>`, so the
// worker needs no read access to anything on disk: its bundle arrives over that socket.
//
// The last argument is the fd of a Unix socket to the gateway. Every message both ways is a frame:
//   u32 header length | u32 body length | header JSON | body bytes
// gateway -> worker: {t:"init", env, projectId, maxResponseBytes} + the bundle (ESM source)
//                    {t:"invoke", id, method, url, headers:[[k,v]...], kind, requestId} + request body
// worker -> gateway: {t:"ready"} | {t:"init_error", message}
//                    {t:"log", id, level, ts, message}
//                    {t:"result", id, status, headers:[[k,v]...], cookies:[...]} + response body
//                    {t:"fail", id, code, message}
// Console output and process.stdout/stderr writes become log frames of the invocation running.
import net from "node:net";
import { format } from "node:util";

const sock = new net.Socket({ fd: Number(process.argv[process.argv.length - 1]), readable: true, writable: true });
let pending = Buffer.alloc(0);
let mod = null;
let projectId = "";
let maxResponse = 6 * 1024 * 1024;
let current = null; // the id of the invocation running, for log frames

function send(header, body) {
  const h = Buffer.from(JSON.stringify(header));
  const b = body ? Buffer.from(body) : Buffer.alloc(0);
  const pre = Buffer.alloc(8);
  pre.writeUInt32BE(h.length, 0);
  pre.writeUInt32BE(b.length, 4);
  sock.write(Buffer.concat([pre, h, b]));
}

const LOG_LINE_MAX = 16 * 1024;
function log(level, message) {
  const text = message.length > LOG_LINE_MAX ? message.slice(0, LOG_LINE_MAX) + " …[truncated]" : message;
  send({ t: "log", id: current, level, ts: Date.now(), message: text });
}
for (const level of ["log", "info", "warn", "error", "debug", "trace"]) {
  console[level] = (...args) => log(level === "trace" ? "debug" : level, format(...args));
}
for (const [stream, level] of [[process.stdout, "info"], [process.stderr, "error"]]) {
  stream.write = (chunk, encoding, cb) => {
    const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    if (text.trim()) log(level, text.replace(/\n$/, ""));
    if (typeof encoding === "function") encoding();
    else if (typeof cb === "function") cb();
    return true;
  };
}
process.on("unhandledRejection", (reason) => {
  log("error", "Unhandled promise rejection: " + (reason && reason.stack ? reason.stack : String(reason)));
});
process.on("uncaughtException", (err) => {
  log("error", "Uncaught exception: " + (err && err.stack ? err.stack : String(err)));
  if (current !== null) send({ t: "fail", id: current, code: "FUNCTION_CRASHED", message: String(err && err.message || err) });
  sock.end(() => process.exit(1));
});

async function init(header, body) {
  for (const key of Object.keys(process.env)) delete process.env[key];
  Object.assign(process.env, header.env);
  projectId = header.projectId;
  maxResponse = header.maxResponseBytes || maxResponse;
  try {
    mod = await import("data:text/javascript;base64," + body.toString("base64"));
  } catch (err) {
    send({ t: "init_error", message: "The function module failed to load: " + (err && err.stack ? err.stack : String(err)) });
    return;
  }
  if (typeof mod.default !== "function") {
    send({ t: "init_error", message: "The function module has no default export (export default async (req) => new Response(...))" });
    return;
  }
  send({ t: "ready" });
}

async function readCapped(response) {
  if (!response.body) return Buffer.alloc(0);
  const chunks = [];
  let size = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxResponse) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }
  return Buffer.concat(chunks, size);
}

async function invoke(header, body) {
  current = header.id;
  const active = { value: true };
  try {
    const method = header.method.toUpperCase();
    const hasBody = method !== "GET" && method !== "HEAD" && body.length > 0;
    const request = new Request(header.url, {
      method,
      headers: new Headers(header.headers),
      body: hasBody ? body : undefined,
      duplex: "half",
    });
    const run = () => mod.default(request);
    const response = typeof mod.runWithContext === "function"
      ? await mod.runWithContext({
          request, projectId, requestId: header.requestId, active,
          invocationKind: header.kind === "routed" ? "routed_http" : "direct",
        }, run)
      : await run();
    if (!(response instanceof Response)) {
      send({ t: "fail", id: header.id, code: "FUNCTION_BAD_RESPONSE",
             message: "The handler must return a Response (got " + (response === null ? "null" : typeof response) + ")" });
      return;
    }
    const bytes = await readCapped(response);
    if (bytes === null) {
      send({ t: "fail", id: header.id, code: "ROUTED_RESPONSE_TOO_LARGE",
             message: `The function's response is larger than ${maxResponse} bytes` });
      return;
    }
    const headers = [];
    for (const [k, v] of response.headers) if (k !== "set-cookie") headers.push([k, v]);
    send({ t: "result", id: header.id, status: response.status, headers,
           cookies: response.headers.getSetCookie() }, bytes);
  } catch (err) {
    log("error", err && err.stack ? err.stack : String(err));
    send({ t: "fail", id: header.id, code: "FUNCTION_ERROR", message: String(err && err.message || err) });
  } finally {
    active.value = false;
    current = null;
  }
}

let queue = Promise.resolve();
sock.on("data", (chunk) => {
  pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
  for (;;) {
    if (pending.length < 8) return;
    const hl = pending.readUInt32BE(0);
    const bl = pending.readUInt32BE(4);
    if (pending.length < 8 + hl + bl) return;
    const header = JSON.parse(pending.subarray(8, 8 + hl).toString("utf8"));
    const body = Buffer.from(pending.subarray(8 + hl, 8 + hl + bl));
    pending = pending.subarray(8 + hl + bl);
    // One at a time, in order: the gateway sends the next invocation only after a result.
    queue = queue.then(() => (header.t === "init" ? init(header, body) : invoke(header, body)));
  }
});
sock.on("end", () => process.exit(0));
sock.on("error", () => process.exit(1));
