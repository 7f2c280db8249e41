import { createReadStream, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import { createRequire } from 'node:module';
import type { Agent as UndiciAgent, Dispatcher } from 'undici';
import { BerthError } from '../errors.js';
import type { ProgressEvent } from '../oci/content.js';
import { basicHeader, parseWwwAuthenticate, type Challenge, type Credentials } from './auth.js';
import { apiHost, isPrivateAddress, plainHttpAllowed } from './hosts.js';

interface Undici {
  Agent: typeof UndiciAgent;
  request: (d: Dispatcher, o: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
}

let undiciCache: Undici | undefined;

/**
 * undici's Agent and request, loaded from their own modules on the first https request: the
 * package index also loads fetch, WebSocket, caches and more (~100-300 ms at every CLI start),
 * and even these two cost ~150 ms plus a WebAssembly compile, which a plain-http registry
 * (loopback, --insecure-registry) never pays: node:http serves those.
 */
function undici(): Undici {
  if (undiciCache) return undiciCache;
  const req = createRequire(import.meta.url);
  try {
    const Agent = req('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;
    const api = req('undici/lib/api/index.js') as { request: (this: Dispatcher, o: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData> };
    if (typeof Agent !== 'function' || typeof api.request !== 'function') throw new Error('layout');
    undiciCache = { Agent, request: (d, o) => api.request.call(d, o) };
  } catch {
    const u = req('undici') as typeof import('undici');
    undiciCache = { Agent: u.Agent, request: (d, o) => d.request(o) };
  }
  return undiciCache;
}

/** What both clients answer: status, lower-case headers, a body with dump() and text(). */
interface RawResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: HttpResponse['body'];
}

interface RawRequest {
  method: string;
  headers?: Record<string, string>;
  body?: Buffer | Readable | FileBody | null;
  signal?: AbortSignal;
  headersTimeout: number;
  bodyTimeout: number;
}

function timeoutError(code: string, what: string): Error {
  return Object.assign(new Error(`${what} timeout`), { code });
}

/** A plain-http request through node:http (keep-alive agent), shaped like undici's answer. */
function nodeHttpRequest(agent: HttpAgent, url: URL, o: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      agent,
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || 80,
      path: url.pathname + url.search,
      method: o.method,
      ...(o.headers ? { headers: o.headers } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    let res: IncomingMessage | undefined;
    req.setTimeout(o.headersTimeout, () => req.destroy(timeoutError('UND_ERR_HEADERS_TIMEOUT', 'headers')));
    req.on('error', (e) => (res ? res.destroy(e) : reject(e)));
    req.once('response', (r: IncomingMessage) => {
      res = r;
      r.setTimeout(o.bodyTimeout, () => r.destroy(timeoutError('UND_ERR_BODY_TIMEOUT', 'body')));
      const body = r as unknown as HttpResponse['body'];
      body.text = async () => {
        const chunks: Buffer[] = [];
        for await (const c of r) chunks.push(c as Buffer);
        return Buffer.concat(chunks).toString('utf8');
      };
      body.dump = async () => {
        // A small body is read to the end so the connection is reused; a large one is dropped.
        if (Number(r.headers['content-length'] ?? 0) > 256 * 1024) {
          r.destroy();
          return;
        }
        await new Promise<void>((done) => {
          r.once('end', done).once('close', done).once('error', () => done());
          r.resume();
        });
      };
      resolve({ statusCode: r.statusCode ?? 0, headers: r.headers, body });
    });
    const b = o.body;
    if (b === undefined || b === null) req.end();
    else if (Buffer.isBuffer(b)) req.end(b);
    else if (b instanceof FileBody) b.sendTo(req).catch((e: Error) => req.destroy(e));
    else {
      b.once('error', (e) => req.destroy(e));
      b.pipe(req);
    }
  });
}

export interface TransportOptions {
  /** Hosts (host or host:port) that may be reached over plain HTTP besides loopback. */
  insecureRegistries?: readonly string[];
  /** PEM files with extra CA certificates (in addition to the system roots). */
  caFiles?: readonly string[];
  /** Credentials per registry domain (default: none). */
  credentials?: (domain: string) => Promise<Credentials | undefined>;
  /** Retries after the first attempt on resets, 5xx and 429 (default 4). */
  retries?: number;
  /** First backoff step in ms (default 200); doubles each time, with jitter. */
  retryBaseMs?: number;
  /** Upper bound on a wait, also for Retry-After (default 20 s). */
  retryCapMs?: number;
  /** Connections per origin (default 16). */
  connections?: number;
  userAgent?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Bytes `[start, end)` of a file as a request body (a blob being pushed). Plain http sends it
 * through two reused buffers, each refilled once the socket took it (fresh buffers per chunk cost
 * ~2 s of page faults per GB here); https reads it as a stream. It can be sent again.
 */
export class FileBody {
  constructor(
    readonly path: string,
    readonly start: number,
    readonly end: number,
    /** Bytes sent so far (progress). */
    readonly onBytes?: (n: number) => void,
  ) {}

  /** The bytes as a stream (for undici); counted by a pass-through stage, not a 'data' listener. */
  stream(): Readable {
    const s = createReadStream(this.path, { start: this.start, end: this.end - 1, highWaterMark: 1 << 20 });
    const onBytes = this.onBytes;
    if (!onBytes) return s;
    let n = 0;
    const t = new Transform({
      transform(c: Buffer, _e, cb) {
        onBytes((n += c.length));
        cb(null, c);
      },
    });
    s.on('error', (e) => t.destroy(e));
    return s.pipe(t);
  }

  /** Write the bytes into `req` and end it. */
  async sendTo(req: ClientRequest): Promise<void> {
    const fh = await open(this.path, 'r');
    const bufs = [Buffer.allocUnsafeSlow(1 << 20), Buffer.allocUnsafeSlow(1 << 20)];
    let pending: Promise<void> | undefined;
    try {
      let pos = this.start;
      for (let i = 0; pos < this.end; i++) {
        const b = bufs[i & 1]!;
        const { bytesRead } = await fh.read(b, 0, Math.min(b.length, this.end - pos), pos);
        if (bytesRead === 0) throw Object.assign(new Error(`${this.path} ends at ${pos}, before ${this.end}`), { code: 'EBLOBSHORT' });
        await pending; // the other buffer is free once the socket took it
        pending = new Promise<void>((res, rej) => req.write(b.subarray(0, bytesRead), (e) => (e ? rej(e) : res())));
        pos += bytesRead;
        this.onBytes?.(pos - this.start);
      }
      await pending;
      req.end();
    } finally {
      await pending?.catch(() => {});
      await fh.close();
    }
  }
}

/** A request body: bytes, factories and file ranges can be sent again; a plain stream only once. */
export type RequestBody = Buffer | (() => Promise<Readable>) | Readable | FileBody;

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'PATCH' | 'POST' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: RequestBody;
  /** Token scopes (`repository:a/b:pull`) for a bearer challenge. */
  scope?: readonly string[];
  signal?: AbortSignal | undefined;
  /** What is being fetched, for messages. */
  what: string;
  onProgress?: ((e: ProgressEvent) => void) | undefined;
  /** Do not authenticate (token server requests). */
  noAuth?: boolean;
  /** Only try once. */
  noRetry?: boolean;
}

export interface HttpResponse {
  status: number;
  url: string;
  header(name: string): string | undefined;
  body: Readable & { dump(): Promise<void>; text(): Promise<string> };
}

interface DomainState {
  origin?: Promise<string>;
  challenge?: Challenge;
  creds?: Promise<Credentials | undefined>;
  tokens: Map<string, { token: string; expires: number }>;
  /** Extra scopes learned from insufficient_scope answers. */
  extraScopes: Set<string>;
}

const RETRY_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED', 'ECONNABORTED', 'EAI_AGAIN']);
const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ALTNAME/;

export function errorCode(e: unknown): string | undefined {
  const x = e as { code?: string; cause?: { code?: string } } | undefined;
  return x?.cause?.code ?? x?.code;
}

/** Turn a network failure into one clear line. */
export function networkError(e: unknown, host: string, what: string): BerthError {
  if (e instanceof BerthError) return e;
  const code = errorCode(e);
  if (code === 'ABORT_ERR' || (e as Error)?.name === 'AbortError') return new BerthError('ABORTED', `${what}: aborted`, { cause: e });
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') {
    return new BerthError('UNAVAILABLE', `cannot resolve registry host ${host}`, { cause: e, hint: 'check the image name and your DNS' });
  }
  if (code === 'ECONNREFUSED') return new BerthError('UNAVAILABLE', `connection refused by ${host}`, { cause: e, hint: 'is the registry running, and is the port right?' });
  if (code && TLS_CODES.test(code)) {
    return new BerthError('UNAVAILABLE', `TLS certificate of ${host} is not trusted (${code})`, { cause: e, hint: 'pass --ca FILE or set SSL_CERT_FILE for a private CA' });
  }
  return new BerthError('UNAVAILABLE', `${what}: network error talking to ${host} (${code ?? (e as Error)?.message ?? String(e)})`, { cause: e });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function parseRetryAfter(v: string | undefined): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

/** Read a response body up to `cap` bytes; more is an error. */
export async function readCapped(res: HttpResponse, cap: number, what: string): Promise<Buffer> {
  const len = Number(res.header('content-length'));
  if (Number.isFinite(len) && len > cap) {
    res.body.destroy();
    throw new BerthError('INVALID_ARGUMENT', `${what}: document of ${len} bytes is larger than the ${cap}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += (c as Buffer).length;
    if (n > cap) {
      res.body.destroy();
      throw new BerthError('INVALID_ARGUMENT', `${what}: document is larger than the ${cap}-byte limit`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The registry's error message from a JSON error body (`{"errors":[{"code","message"}]}`). */
async function registryMessage(res: HttpResponse): Promise<string> {
  try {
    const b = await readCapped(res, 64 * 1024, 'error body');
    const v = JSON.parse(b.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    const e = v.errors?.[0];
    if (e) return [e.code, e.message].filter(Boolean).join(': ').slice(0, 200);
  } catch {
    /* not JSON */
  }
  return '';
}

/** Throw one clear error for an unexpected status. */
export async function statusError(res: HttpResponse, what: string, host: string): Promise<BerthError> {
  const msg = await registryMessage(res);
  const detail = `${res.status}${msg ? ` ${msg}` : ''}`;
  switch (res.status) {
    case 401:
      return new BerthError('UNAUTHORIZED', `${what}: authentication required by ${host} (${detail})`, { hint: `run berth login ${host}` });
    case 403:
      return new BerthError('UNAUTHORIZED', `${what}: access denied by ${host} (${detail})`, { hint: `check your permissions, or berth login ${host}` });
    case 404:
      return new BerthError('NOT_FOUND', `${what}: not found on ${host} (${detail})`);
    case 429:
      return new BerthError('UNAVAILABLE', `${what}: ${host} is rate limiting requests (429)`, { hint: 'try again later' });
    default:
      if (res.status >= 500) return new BerthError('UNAVAILABLE', `${what}: ${host} answered ${detail}`, { hint: 'the registry is failing; try again later' });
      return new BerthError('INVALID_ARGUMENT', `${what}: ${host} answered ${detail}`);
  }
}

/**
 * HTTP for registries over undici: TLS verified (system roots plus --ca / SSL_CERT_FILE), plain
 * HTTP only for loopback and named insecure hosts, redirects followed by hand (Authorization
 * only to the host that asked for it; https -> http refused), bearer/basic auth from
 * WWW-Authenticate with a token cache, and retries with backoff and jitter on resets, 5xx and
 * 429 (Retry-After honoured, capped) for bodies that can be sent again.
 */
export class Transport {
  readonly insecure: readonly string[];
  readonly #opts: TransportOptions;
  readonly #domains = new Map<string, DomainState>();
  #undiciAgent: UndiciAgent | undefined;
  #httpAgent: HttpAgent | undefined;

  constructor(opts: TransportOptions = {}) {
    this.#opts = opts;
    this.insecure = opts.insecureRegistries ?? [];
    // A --ca that cannot be read is an error at once, not at the first https request.
    for (const f of opts.caFiles ?? []) this.#readCa(f, true);
  }

  #readCa(f: string, required: boolean): string | undefined {
    try {
      return readFileSync(f, 'utf8');
    } catch (e) {
      if (required) throw new BerthError('NOT_FOUND', `CA file ${f} cannot be read (${errorCode(e) ?? 'error'})`, { hint: 'check the --ca path' });
      return undefined;
    }
  }

  /** The https client (undici), made on first use with the system roots plus --ca / SSL_CERT_FILE. */
  get agent(): UndiciAgent {
    if (this.#undiciAgent) return this.#undiciAgent;
    const env = this.#opts.env ?? process.env;
    const extra: string[] = [];
    for (const f of [...(this.#opts.caFiles ?? []), env.SSL_CERT_FILE, env.NODE_EXTRA_CA_CERTS]) {
      const pem = f ? this.#readCa(f, this.#opts.caFiles?.includes(f) ?? false) : undefined;
      if (pem) extra.push(pem);
    }
    this.#undiciAgent = new (undici().Agent)({
      connections: this.#opts.connections ?? 16,
      keepAliveTimeout: 10_000,
      headersTimeout: 60_000,
      bodyTimeout: 120_000,
      // node:tls loads here, with undici: a plain-http pull never loads it.
      connect: { timeout: 15_000, ...(extra.length ? { ca: [...(createRequire(import.meta.url)('node:tls') as typeof import('node:tls')).rootCertificates, ...extra] } : {}) },
    });
    return this.#undiciAgent;
  }

  /** One request on the client for its scheme: node:http for plain http, undici for https. */
  #send(url: string, o: RawRequest): Promise<RawResponse> {
    const u = new URL(url);
    if (u.protocol === 'http:') {
      this.#httpAgent ??= new HttpAgent({ keepAlive: true, maxSockets: this.#opts.connections ?? 16, timeout: 15_000 });
      return nodeHttpRequest(this.#httpAgent, u, o);
    }
    const { signal, body, ...rest } = o;
    return undici().request(this.agent, {
      ...rest,
      body: body instanceof FileBody ? body.stream() : (body ?? null),
      origin: u.origin,
      path: u.pathname + u.search,
      ...(signal ? { signal } : {}),
    } as Dispatcher.RequestOptions) as unknown as Promise<RawResponse>;
  }

  async close(): Promise<void> {
    this.#httpAgent?.destroy();
    await this.#undiciAgent?.close().catch(() => {});
  }

  #state(domain: string): DomainState {
    let s = this.#domains.get(domain);
    if (!s) {
      s = { tokens: new Map(), extraScopes: new Set() };
      this.#domains.set(domain, s);
    }
    return s;
  }

  #creds(domain: string): Promise<Credentials | undefined> {
    const s = this.#state(domain);
    return (s.creds ??= this.#opts.credentials ? this.#opts.credentials(domain) : Promise.resolve(undefined));
  }

  /** Use these credentials for `domain` (login verifies before storing). */
  setCredentials(domain: string, c: Credentials | undefined): void {
    const s = this.#state(domain);
    s.creds = Promise.resolve(c);
    s.tokens.clear();
  }

  /**
   * `https://host` or, for hosts where plain HTTP is allowed, whichever the registry speaks
   * (https is tried first, as docker does).
   */
  origin(domain: string): Promise<string> {
    const host = apiHost(domain);
    const s = this.#state(domain);
    if (!plainHttpAllowed(domain, this.insecure)) return (s.origin ??= Promise.resolve(`https://${host}`));
    return (s.origin ??= (async () => {
      // Plain HTTP is asked first (a TLS server answers it at once, with 400 or a reset); a
      // TLS ClientHello sent to a plain server can hang until a timeout.
      try {
        const res = await this.#send(`http://${host}/v2/`, { method: 'GET', headersTimeout: 10_000, bodyTimeout: 10_000 });
        const body = (await res.body.text().catch(() => '')).slice(0, 1000);
        if (res.statusCode === 400 && /https|tls|ssl/i.test(body)) return `https://${host}`;
        return `http://${host}`;
      } catch (e) {
        const code = errorCode(e);
        if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
          s.origin = undefined;
          throw networkError(e, domain, `connecting to ${domain}`);
        }
        return `https://${host}`;
      }
    })());
  }

  async #bearer(domain: string, ch: Challenge, scopes: readonly string[], signal?: AbortSignal): Promise<string> {
    const s = this.#state(domain);
    const all = [...new Set([...scopes, ...s.extraScopes])].sort();
    const key = `${ch.params.realm}|${ch.params.service ?? ''}|${all.join(' ')}`;
    const hit = s.tokens.get(key);
    if (hit && hit.expires > Date.now()) return hit.token;
    const realm = new URL(ch.params.realm!);
    if (realm.protocol === 'http:' && !plainHttpAllowed(realm.host, this.insecure)) {
      throw new BerthError('UNAUTHORIZED', `registry ${domain} names a plain-http token realm ${realm.host}`, { hint: 'refusing to send credentials without TLS; use --insecure-registry only if you trust this network' });
    }
    if (!isPrivateAddress(domain) && !plainHttpAllowed(domain, this.insecure) && isPrivateAddress(realm.host)) {
      throw new BerthError('UNAUTHORIZED', `registry ${domain} names a token realm on a private address (${realm.host})`, { hint: 'refusing: a public registry should not send clients to local addresses' });
    }
    const creds = await this.#creds(domain);
    const u = new URL(realm.href);
    if (ch.params.service) u.searchParams.set('service', ch.params.service);
    for (const sc of all) u.searchParams.append('scope', sc);
    let res: HttpResponse;
    if (creds?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'berth', service: ch.params.service ?? '', scope: all.join(' ') });
      res = await this.request(domain, { method: 'POST', url: realm.href, body: Buffer.from(form.toString()), headers: { 'content-type': 'application/x-www-form-urlencoded' }, noAuth: true, what: `token for ${domain}`, signal });
    } else {
      const headers: Record<string, string> = creds?.username !== undefined ? { authorization: basicHeader(creds) } : {};
      res = await this.request(domain, { method: 'GET', url: u.href, headers, noAuth: true, what: `token for ${domain}`, signal });
    }
    if (res.status === 401 || res.status === 403) {
      await res.body.dump();
      throw new BerthError('UNAUTHORIZED', `${domain}: ${creds ? 'credentials rejected by the token server' : 'the token server requires credentials'} (${res.status})`, {
        hint: `run berth login ${domain}`,
      });
    }
    if (res.status !== 200) throw await statusError(res, `token for ${domain}`, realm.host);
    let v: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    try {
      v = JSON.parse((await readCapped(res, 1 << 20, `token from ${realm.host}`)).toString('utf8'));
    } catch (e) {
      if (e instanceof BerthError) throw e;
      throw new BerthError('UNAUTHORIZED', `token server ${realm.host} returned invalid JSON`);
    }
    const token = v.token ?? v.access_token;
    if (typeof token !== 'string' || token.length === 0) throw new BerthError('UNAUTHORIZED', `token server ${realm.host} returned no token`);
    const ttl = Math.max(60, typeof v.expires_in === 'number' ? v.expires_in : 60);
    s.tokens.set(key, { token, expires: Date.now() + (ttl - 10) * 1000 });
    return token;
  }

  async #authHeader(domain: string, scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    const s = this.#state(domain);
    const ch = s.challenge;
    if (!ch) return undefined;
    if (ch.scheme === 'basic') {
      const c = await this.#creds(domain);
      return c?.username !== undefined ? basicHeader(c) : undefined;
    }
    if (ch.scheme === 'bearer') return `Bearer ${await this.#bearer(domain, ch, scopes, signal)}`;
    return undefined;
  }

  /**
   * Send a request to registry `domain` (or a URL it handed out). The caller consumes or dumps
   * the body and checks the status (except 401, handled here).
   */
  async request(domain: string, req: HttpRequest): Promise<HttpResponse> {
    const retries = req.noRetry ? 0 : (this.#opts.retries ?? 4);
    const base = this.#opts.retryBaseMs ?? 200;
    const cap = this.#opts.retryCapMs ?? 20_000;
    const regHost = apiHost(domain);
    const replayable = req.body === undefined || Buffer.isBuffer(req.body) || typeof req.body === 'function' || req.body instanceof FileBody;
    let url = req.url;
    const origHost = new URL(req.url).host;
    let method = req.method;
    let body: RequestBody | undefined = req.body;
    let bodyUsed = false;
    let attempt = 0;
    let redirects = 0;
    let authTries = 0;
    let sentAuth = false;
    const scopes = [...(req.scope ?? [])];
    for (;;) {
      req.signal?.throwIfAborted();
      const u = new URL(url);
      const headers: Record<string, string> = { 'user-agent': this.#opts.userAgent ?? 'berth/0.1', ...(req.headers ?? {}) };
      // A caller's Authorization (token server) never follows a redirect to another host.
      if (u.host !== origHost) delete headers.authorization;
      sentAuth = false;
      if (!req.noAuth && u.host === regHost) {
        const a = await this.#authHeader(domain, scopes, req.signal);
        if (a) {
          headers.authorization = a;
          sentAuth = true;
        }
      }
      let sendBody: Buffer | Readable | FileBody | undefined;
      if (body !== undefined) {
        if (Buffer.isBuffer(body) || body instanceof FileBody) sendBody = body;
        else if (typeof body === 'function') sendBody = await body();
        else {
          if (bodyUsed) throw new BerthError('UNAVAILABLE', `${req.what}: request failed and its body cannot be sent again`);
          sendBody = body;
        }
        bodyUsed = true;
      }
      let res: HttpResponse;
      try {
        const r = await this.#send(url, { method, headers, body: sendBody ?? null, headersTimeout: 60_000, bodyTimeout: 120_000, ...(req.signal ? { signal: req.signal } : {}) });
        res = {
          status: r.statusCode,
          url,
          header: (n: string) => {
            const v = r.headers[n.toLowerCase()];
            return Array.isArray(v) ? v.join(', ') : v;
          },
          body: r.body as unknown as HttpResponse['body'],
        };
      } catch (e) {
        if (sendBody && !Buffer.isBuffer(sendBody) && !(sendBody instanceof FileBody)) sendBody.destroy();
        if (req.signal?.aborted) throw new BerthError('ABORTED', `${req.what}: aborted`, { cause: e });
        const code = errorCode(e);
        if (code && RETRY_CODES.has(code) && attempt < retries && replayable) {
          attempt++;
          const wait = Math.min(cap, base * 2 ** (attempt - 1) * (0.5 + Math.random()));
          req.onProgress?.({ type: 'message', text: `${req.what}: ${code} from ${u.host}, retrying in ${Math.round(wait)} ms (${attempt}/${retries})` });
          await sleep(wait, req.signal);
          continue;
        }
        throw networkError(e, u.host, req.what);
      }
      const st = res.status;
      if ([301, 302, 303, 307, 308].includes(st) && res.header('location')) {
        await res.body.dump();
        if (++redirects > 5) throw new BerthError('UNAVAILABLE', `${req.what}: too many redirects from ${u.host}`);
        const next = new URL(res.header('location')!, url);
        if (u.protocol === 'https:' && next.protocol !== 'https:') {
          throw new BerthError('UNAVAILABLE', `${req.what}: refusing redirect from https to ${next.protocol}//${next.host}`);
        }
        if (next.protocol === 'http:' && !plainHttpAllowed(next.host, this.insecure) && !plainHttpAllowed(regHost, this.insecure)) {
          throw new BerthError('UNAVAILABLE', `${req.what}: refusing redirect to plain http host ${next.host}`);
        }
        if (st === 303 || ((st === 301 || st === 302) && method !== 'GET' && method !== 'HEAD')) {
          method = 'GET';
          body = undefined;
        }
        url = next.href;
        continue;
      }
      if (st === 401 && !req.noAuth && u.host === regHost && authTries < 2) {
        const wa = res.header('www-authenticate');
        await res.body.dump();
        if (!wa) throw new BerthError('UNAUTHORIZED', `${req.what}: ${domain} answered 401 without a WWW-Authenticate challenge`);
        const ch = parseWwwAuthenticate(wa, domain);
        const s = this.#state(domain);
        const creds = await this.#creds(domain);
        if (authTries === 0) {
          s.challenge = ch;
          s.tokens.clear();
          if (ch.scheme === 'basic' && !creds) throw new BerthError('UNAUTHORIZED', `${req.what}: ${domain} requires authentication`, { hint: `run berth login ${domain}` });
          if (ch.scheme === 'bearer' && ch.params.scope) for (const sc of ch.params.scope.split(' ')) if (!scopes.includes(sc)) scopes.push(sc);
        } else if (ch.scheme === 'bearer' && ch.params.error === 'insufficient_scope' && ch.params.scope && ch.params.scope.split(' ').some((sc) => !scopes.includes(sc))) {
          for (const sc of ch.params.scope.split(' ')) if (!scopes.includes(sc)) scopes.push(sc);
          s.challenge = ch;
        } else {
          throw this.#denied(req.what, domain, creds, sentAuth);
        }
        if (!replayable && bodyUsed) throw this.#denied(req.what, domain, creds, sentAuth);
        authTries++;
        continue;
      }
      if (st === 401 && !req.noAuth && u.host === regHost) {
        await res.body.dump();
        throw this.#denied(req.what, domain, await this.#creds(domain), sentAuth);
      }
      if ((st === 429 || st === 500 || st === 502 || st === 503 || st === 504) && attempt < retries && replayable) {
        const ra = parseRetryAfter(res.header('retry-after'));
        await res.body.dump();
        attempt++;
        const wait = Math.min(cap, ra ?? base * 2 ** (attempt - 1) * (0.5 + Math.random()));
        req.onProgress?.({ type: 'message', text: `${req.what}: ${u.host} answered ${st}, retrying in ${Math.round(wait)} ms (${attempt}/${retries})` });
        await sleep(wait, req.signal);
        continue;
      }
      return res;
    }
  }

  #denied(what: string, domain: string, creds: Credentials | undefined, sent: boolean): BerthError {
    if (creds && sent) return new BerthError('UNAUTHORIZED', `${what}: ${domain} rejected the credentials (401)`, { hint: `check the user and password, then berth login ${domain}` });
    return new BerthError('UNAUTHORIZED', `${what}: ${domain} requires authentication (401)`, { hint: `run berth login ${domain}` });
  }
}
