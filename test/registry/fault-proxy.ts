/**
 * A fault-injecting HTTP proxy in front of a real registry: resets mid-blob, 5xx, 429 with
 * Retry-After, a flipped byte, 200 instead of 206, a stall, and a redirect to a second origin
 * (on 127.0.0.2) that records every header it receives and serves the blob from the registry.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export type FaultAction =
  | { kind: 'status'; status: number; retryAfter?: string }
  | { kind: 'reset'; after: number }
  | { kind: 'flip'; at: number }
  | { kind: 'ignore-range' }
  | { kind: 'stall'; after: number }
  | { kind: 'redirect' }
  | { kind: 'body'; status: number; headers: Record<string, string>; body: Buffer };

export interface FaultRule {
  method?: string;
  /** Applies when the request path matches. */
  path: RegExp;
  action: FaultAction;
  /** How many times (default 1). */
  times?: number;
}

export interface LoggedRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface FaultProxy {
  host: string;
  url: string;
  rules: FaultRule[];
  /** Blob body bytes sent to clients (GET /v2/.../blobs/...), through the proxy and the second origin. */
  blobBytes: number;
  requests: LoggedRequest[];
  /** Every request the second origin (127.0.0.2) received, headers included. */
  secondOrigin: LoggedRequest[];
  stop(): Promise<void>;
}

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    });
  });
}

export async function startFaultProxy(upstream: string, opts: { upstreamAuth?: string } = {}): Promise<FaultProxy> {
  const up = new URL(upstream);
  const sockets = new Set<Socket>();
  const state: FaultProxy = { host: '', url: '', rules: [], blobBytes: 0, requests: [], secondOrigin: [], stop: async () => {} };

  const forward = (req: IncomingMessage, res: ServerResponse, path: string, headers: Record<string, string | string[] | undefined>, transform?: FaultAction) => {
    const isBlob = req.method === 'GET' && /\/blobs\/sha256:/.test(path);
    const preq = httpRequest({ host: up.hostname, port: up.port, method: req.method, path, headers }, (pres) => {
      res.writeHead(pres.statusCode ?? 502, pres.headers);
      let sent = 0;
      pres.on('data', (chunk: Buffer) => {
        let c = chunk;
        if (transform?.kind === 'flip' && sent <= transform.at && transform.at < sent + c.length) {
          c = Buffer.from(c);
          c[transform.at - sent] = c[transform.at - sent]! ^ 0xff;
        }
        if ((transform?.kind === 'reset' || transform?.kind === 'stall') && sent + c.length > transform.after) {
          const keep = c.subarray(0, Math.max(0, transform.after - sent));
          if (keep.length) {
            res.write(keep);
            if (isBlob) state.blobBytes += keep.length;
          }
          sent += keep.length;
          pres.destroy();
          if (transform.kind === 'reset') setTimeout(() => res.socket?.destroy(), 20);
          // a stall keeps the connection open without sending more
          return;
        }
        sent += c.length;
        if (isBlob) state.blobBytes += c.length;
        res.write(c);
      });
      pres.on('end', () => res.end());
    });
    preq.on('error', () => res.socket?.destroy());
    req.pipe(preq);
  };

  // The second origin: logs headers, serves blobs from the registry with its own credentials.
  const second = createServer((req, res) => {
    state.secondOrigin.push({ method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers } });
    const path = new URL(req.url ?? '/', 'http://x').searchParams.get('path') ?? '/';
    const headers: Record<string, string | string[] | undefined> = { ...req.headers, host: up.host };
    delete headers.authorization;
    if (opts.upstreamAuth) headers.authorization = opts.upstreamAuth;
    forward(req, res, path, headers);
  });
  second.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const secondPort = await listen(second, '127.0.0.2');

  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    state.requests.push({ method: req.method ?? '', url: path, headers: { ...req.headers } });
    const rule = state.rules.find((r) => (r.times ?? 1) > 0 && (!r.method || r.method === req.method) && r.path.test(path));
    if (rule) rule.times = (rule.times ?? 1) - 1;
    const a = rule?.action;
    if (a?.kind === 'status') {
      req.resume();
      res.writeHead(a.status, { 'content-type': 'application/json', ...(a.retryAfter ? { 'retry-after': a.retryAfter } : {}) });
      res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'injected fault' }] }));
      return;
    }
    if (a?.kind === 'body') {
      req.resume();
      res.writeHead(a.status, a.headers);
      res.end(a.body);
      return;
    }
    if (a?.kind === 'redirect') {
      req.resume();
      res.writeHead(307, { location: `http://127.0.0.2:${secondPort}/storage?path=${encodeURIComponent(path)}` });
      res.end();
      return;
    }
    const headers = { ...req.headers };
    if (a?.kind === 'ignore-range') delete headers.range;
    forward(req, res, path, headers, a);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server, '127.0.0.1');
  state.host = `127.0.0.1:${port}`;
  state.url = `http://127.0.0.1:${port}`;
  state.stop = async () => {
    for (const s of sockets) s.destroy();
    await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => second.close(r))]);
  };
  return state;
}
