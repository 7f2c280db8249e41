import { Readable, Transform } from 'node:stream';
import { BerthError } from '../errors.js';
import type { ContentTarget, OpOptions, ResumableSource } from '../oci/content.js';
import { parseDigest, sha256, verifyBytes, VerifyingStream } from '../oci/digest.js';
import { detectDocumentType, MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, parseJson, parseManifestOrIndex } from '../oci/manifest.js';
import { isIndex, isManifest, isSchema1, MediaType } from '../oci/mediatype.js';
import { familiarString, parseReference, type Reference } from '../oci/reference.js';
import type { Descriptor, Digest } from '../oci/types.js';
import { Limiter } from '../oci/limit.js';
import { errorCode, FileBody, readCapped, statusError, Transport, type HttpResponse, type TransportOptions } from './http.js';

/** What a manifest GET accepts, in order of preference. */
export const MANIFEST_ACCEPT = [
  MediaType.OCI_INDEX,
  MediaType.OCI_MANIFEST,
  MediaType.DOCKER_MANIFEST_LIST,
  MediaType.DOCKER_MANIFEST,
  MediaType.DOCKER_MANIFEST_V1_SIGNED,
  MediaType.DOCKER_MANIFEST_V1,
].join(', ');

/** Something that can read a byte range of a blob again (chunked push retries). */
export interface RangeSource {
  fetchRange(desc: Descriptor, start: number, end: number): Promise<Readable>;
  /** The blob's file, when it is one: uploads then read it through reused buffers (FileBody). */
  filePath?(desc: Descriptor): string;
}

export interface RepositoryOptions {
  /** Ask for push access as well as pull. */
  push?: boolean;
  /** Blobs larger than this are uploaded in chunks of this size (default 64 MiB). */
  chunkSize?: number;
  /** Re-readable ranges of blobs being pushed (chunk retries); else chunks are buffered. */
  rangeSource?: RangeSource;
  /** Repositories of the same registry to try a cross-repository mount from, per blob digest. */
  mountFrom?: (digest: Digest) => readonly string[];
  /** When writing this root descriptor, put it under this tag as well (manifests last). */
  tagRoot?: { digest: Digest; tag: string };
  /**
   * Blob bodies uploaded at once (default: unbounded, i.e. the caller's concurrency). push()
   * runs more walk slots than this, so the HEAD and POST of the next blobs overlap the uploads.
   */
  transfers?: number;
}

/** A blob response for a pull: `start` is where the body begins in the blob (0, or a 206 offset). */
export interface BlobResponse {
  start: number;
  body: Readable;
}

function enc(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

const NETWORK_BODY_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_ABORTED', 'UND_ERR_CLOSED', 'ECONNABORTED']);

/**
 * One repository of a registry, as a content source (pull) and a content target (push):
 * `copy(repo, store, root)` pulls and `copy(store, repo, root)` pushes.
 */
export class Repository implements ResumableSource, ContentTarget {
  readonly domain: string;
  readonly path: string;
  readonly transport: Transport;
  readonly opts: RepositoryOptions;
  readonly #docs = new Map<string, Buffer>();
  #uploadMode: 'chunked' | 'monolithic' | undefined;
  readonly #transfers: Limiter;

  constructor(transport: Transport, ref: Pick<Reference, 'domain' | 'path'>, opts: RepositoryOptions = {}) {
    this.transport = transport;
    this.domain = ref.domain;
    this.path = ref.path;
    this.opts = opts;
    this.#transfers = new Limiter(opts.transfers ?? Infinity);
  }

  /** `host/repo`, for messages. */
  get where(): string {
    return `${this.domain}/${this.path}`;
  }

  /** Whether a failure reading a blob body is a dropped connection worth resuming. */
  retryable(e: unknown): boolean {
    if (e instanceof BerthError) return e.code === 'UNAVAILABLE';
    const c = errorCode(e);
    return (c !== undefined && NETWORK_BODY_ERRORS.has(c)) || (e as Error)?.message === 'terminated';
  }

  get scope(): string[] {
    return [`repository:${this.path}:${this.opts.push ? 'pull,push' : 'pull'}`];
  }

  async #url(suffix: string): Promise<string> {
    return `${await this.transport.origin(this.domain)}/v2/${enc(this.path)}/${suffix}`;
  }

  #req(method: 'GET' | 'HEAD' | 'PUT' | 'PATCH' | 'POST' | 'DELETE', url: string, what: string, opts: OpOptions, extra: Partial<Parameters<Transport['request']>[1]> = {}): Promise<HttpResponse> {
    return this.transport.request(this.domain, { method, url, what, scope: this.scope, signal: opts.signal, onProgress: opts.onProgress, ...extra });
  }

  /**
   * Resolve a tag or digest to the root descriptor. The manifest bytes are fetched, capped,
   * hashed, checked against the digest asked for and against Docker-Content-Digest.
   */
  async resolve(refOrTag: string | Reference, opts: OpOptions = {}): Promise<Descriptor> {
    const ref = typeof refOrTag === 'string' ? (refOrTag.includes('/') || refOrTag.includes('@') ? parseReference(refOrTag) : { domain: this.domain, path: this.path, tag: refOrTag }) : refOrTag;
    const name = familiarString({ domain: this.domain, path: this.path, ...(ref.tag ? { tag: ref.tag } : {}), ...(ref.digest ? { digest: ref.digest } : {}) });
    const id = ref.digest ?? ref.tag ?? 'latest';
    const res = await this.#req('GET', await this.#url(`manifests/${encodeURIComponent(id)}`), `manifest ${name}`, opts, { headers: { accept: MANIFEST_ACCEPT } });
    if (res.status === 404) {
      await res.body.dump();
      throw new BerthError('NOT_FOUND', `manifest for ${name} not found on ${this.domain}`, { hint: 'check the name and tag' });
    }
    if (res.status !== 200) throw await statusError(res, `manifest ${name}`, this.domain);
    const bytes = await readCapped(res, MAX_MANIFEST_BYTES, `manifest ${name}`);
    const digest = sha256(bytes);
    if (ref.digest && ref.digest !== digest) throw new BerthError('DIGEST_MISMATCH', `manifest ${name}: registry returned content with digest ${digest}`);
    const dcd = res.header('docker-content-digest');
    if (dcd && dcd.startsWith('sha256:') && dcd !== digest) {
      throw new BerthError('DIGEST_MISMATCH', `manifest ${name}: Docker-Content-Digest ${dcd} does not match the content (${digest})`);
    }
    const ct = (res.header('content-type') ?? '').split(';')[0]!.trim();
    const doc = parseJson(bytes, `manifest ${name}`) as Record<string, unknown>;
    const actual = typeof doc === 'object' && doc !== null ? detectDocumentType(doc) : undefined;
    if (isSchema1(ct) || isSchema1(actual)) {
      throw new BerthError('UNSUPPORTED', `${name}: Docker schema 1 manifests are not supported`, { hint: 'push the image again with a current client (schema 2)' });
    }
    let mediaType = isIndex(ct) || isManifest(ct) ? ct : actual;
    if (!mediaType || !(isIndex(mediaType) || isManifest(mediaType))) {
      throw new BerthError('UNSUPPORTED', `${name}: unsupported manifest type ${JSON.stringify(ct || actual || 'unknown')}`);
    }
    // Rejects type confusion between the header and the content.
    const parsed = parseManifestOrIndex(bytes, { mediaType, digest }, `manifest ${name}`);
    mediaType = typeof doc.mediaType === 'string' ? doc.mediaType : mediaType;
    if (parsed.kind === 'index' && !isIndex(mediaType)) mediaType = MediaType.OCI_INDEX;
    this.#docs.set(digest, bytes);
    return { mediaType, digest, size: bytes.length };
  }

  async fetchBytes(desc: Descriptor, opts: OpOptions = {}): Promise<Buffer> {
    const cached = this.#docs.get(desc.digest);
    if (cached) {
      verifyBytes(cached, { digest: desc.digest, size: desc.size });
      return cached;
    }
    const doc = isIndex(desc.mediaType) || isManifest(desc.mediaType);
    const cap = doc ? MAX_MANIFEST_BYTES : MAX_CONFIG_BYTES;
    if (desc.size > cap) throw new BerthError('INVALID_ARGUMENT', `${desc.digest}: document of ${desc.size} bytes is larger than the ${cap}-byte limit`);
    const what = `${doc ? 'manifest' : 'blob'} ${desc.digest}`;
    const url = await this.#url(`${doc ? 'manifests' : 'blobs'}/${parseDigest(desc.digest)}`);
    const res = await this.#req('GET', url, what, opts, doc ? { headers: { accept: MANIFEST_ACCEPT } } : {});
    if (res.status !== 200) throw await statusError(res, what, this.domain);
    this.#checkDigestHeader(res, desc, what);
    const bytes = await readCapped(res, Math.min(cap, desc.size), what).catch((e: BerthError) => {
      throw new BerthError('DIGEST_MISMATCH', `${what}: more bytes than the declared size ${desc.size}`, { cause: e });
    });
    verifyBytes(bytes, { digest: desc.digest, size: desc.size, what: `${what} from ${this.domain}` });
    if (doc) this.#docs.set(desc.digest, bytes);
    return bytes;
  }

  #checkDigestHeader(res: HttpResponse, desc: Descriptor, what: string): void {
    const dcd = res.header('docker-content-digest');
    if (dcd && dcd.startsWith('sha256:') && dcd !== desc.digest) {
      res.body.destroy();
      throw new BerthError('DIGEST_MISMATCH', `${what}: registry ${this.domain} says Docker-Content-Digest ${dcd}`);
    }
  }

  /**
   * GET a blob from `offset` (Range). Returns where the body starts: a 206 whose Content-Range
   * begins at `offset` continues; anything else that is a 200 starts from 0.
   */
  async openBlob(desc: Descriptor, offset = 0, opts: OpOptions = {}): Promise<BlobResponse> {
    const what = `blob ${desc.digest}`;
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    const res = await this.#req('GET', await this.#url(`blobs/${parseDigest(desc.digest)}`), what, opts, { headers });
    if (res.status === 206 && offset > 0) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.header('content-range') ?? '');
      if (m && Number(m[1]) === offset && (m[3] === '*' || Number(m[3]) === desc.size)) return { start: offset, body: res.body };
      // A range we did not ask for: start over.
      res.body.destroy();
      return this.openBlob(desc, 0, opts);
    }
    if (res.status === 200) {
      this.#checkDigestHeader(res, desc, what);
      const len = res.header('content-length');
      if (len !== undefined && Number(len) !== desc.size) {
        res.body.destroy();
        throw new BerthError('DIGEST_MISMATCH', `${what}: registry ${this.domain} sends ${len} bytes, the manifest says ${desc.size}`);
      }
      return { start: 0, body: res.body };
    }
    if (res.status === 404) {
      await res.body.dump();
      throw new BerthError('NOT_FOUND', `${what} not found in ${this.domain}/${this.path}`);
    }
    throw await statusError(res, what, this.domain);
  }

  /** A verified stream of a blob (size and digest checked as it ends). */
  async fetch(desc: Descriptor, opts: OpOptions = {}): Promise<Readable> {
    const { body } = await this.openBlob(desc, 0, opts);
    const v = new VerifyingStream({ digest: desc.digest, size: desc.size, what: `blob ${desc.digest} from ${this.domain}` });
    body.on('error', (e) => v.destroy(e));
    return body.pipe(v);
  }

  async has(desc: Descriptor, opts: OpOptions = {}): Promise<boolean> {
    return this.exists(desc, opts);
  }

  async exists(desc: Descriptor, opts: OpOptions = {}): Promise<boolean> {
    const doc = isIndex(desc.mediaType) || isManifest(desc.mediaType);
    const what = `${doc ? 'manifest' : 'blob'} ${desc.digest}`;
    const url = await this.#url(`${doc ? 'manifests' : 'blobs'}/${parseDigest(desc.digest)}`);
    const res = await this.#req('HEAD', url, what, opts, doc ? { headers: { accept: MANIFEST_ACCEPT } } : {});
    await res.body.dump();
    if (res.status === 404) return false;
    if (res.status === 200) {
      const len = res.header('content-length');
      return len === undefined || Number(len) === desc.size;
    }
    throw await statusError(res, `checking ${what}`, this.domain);
  }

  /** ContentTarget.write: manifests by PUT, blobs by mount, monolithic or chunked upload. */
  async write(desc: Descriptor, content: Buffer | (() => Promise<Readable>), opts: OpOptions = {}): Promise<void> {
    if (isIndex(desc.mediaType) || isManifest(desc.mediaType)) {
      const bytes = Buffer.isBuffer(content) ? content : await streamToBuffer(await content(), MAX_MANIFEST_BYTES);
      verifyBytes(bytes, { digest: desc.digest, size: desc.size });
      const tag = this.opts.tagRoot?.digest === desc.digest ? this.opts.tagRoot.tag : undefined;
      await this.putManifest(desc, bytes, tag ?? desc.digest, opts);
      return;
    }
    await this.uploadBlob(desc, content, opts);
  }

  /** PUT a manifest under a tag or its digest; checks the digest the registry reports. */
  async putManifest(desc: Descriptor, bytes: Buffer, tagOrDigest: string, opts: OpOptions = {}): Promise<void> {
    const what = `manifest ${desc.digest}`;
    const res = await this.#req('PUT', await this.#url(`manifests/${encodeURIComponent(tagOrDigest)}`), what, opts, {
      body: bytes,
      headers: { 'content-type': desc.mediaType, 'content-length': String(bytes.length) },
    });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await statusError(res, `pushing ${what}`, this.domain);
    await res.body.dump();
    const dcd = res.header('docker-content-digest');
    if (dcd && dcd !== desc.digest) throw new BerthError('DIGEST_MISMATCH', `pushing ${what}: registry stored it as ${dcd}`);
  }

  async #startUpload(desc: Descriptor, opts: OpOptions): Promise<{ mounted: true } | { mounted: false; location: string }> {
    const what = `blob ${desc.digest}`;
    for (const from of this.opts.mountFrom?.(desc.digest) ?? []) {
      if (from === this.path) continue;
      const q = new URLSearchParams({ mount: desc.digest, from });
      const res = await this.transport.request(this.domain, {
        method: 'POST',
        url: await this.#url(`blobs/uploads/?${q}`),
        what: `mounting ${what} from ${from}`,
        scope: [...this.scope, `repository:${from}:pull`],
        signal: opts.signal,
        headers: { 'content-length': '0' },
      });
      await res.body.dump();
      if (res.status === 201) return { mounted: true };
      if (res.status === 202 && res.header('location')) return { mounted: false, location: new URL(res.header('location')!, res.url).href };
      // Anything else: fall through to a plain upload.
    }
    const res = await this.#req('POST', await this.#url('blobs/uploads/'), `starting upload of ${what}`, opts, { headers: { 'content-length': '0' } });
    if (res.status !== 202 || !res.header('location')) throw await statusError(res, `starting upload of ${what}`, this.domain);
    await res.body.dump();
    return { mounted: false, location: new URL(res.header('location')!, res.url).href };
  }

  /**
   * Upload a blob: cross-repository mount when possible, one PUT for blobs up to the chunk size,
   * else PATCH chunks with Content-Range, falling back to the other mode once when the registry
   * refuses one. Each attempt starts a fresh upload session.
   */
  async uploadBlob(desc: Descriptor, content: Buffer | (() => Promise<Readable>), opts: OpOptions = {}): Promise<void> {
    const chunk = this.opts.chunkSize ?? 64 * 1024 * 1024;
    let mode: 'chunked' | 'monolithic' = this.#uploadMode ?? (desc.size > chunk ? 'chunked' : 'monolithic');
    let switched = false;
    let failures = 0;
    for (;;) {
      const start = await this.#startUpload(desc, opts);
      if (start.mounted) {
        opts.onProgress?.({ type: 'message', text: `mounted ${desc.digest.slice(7, 19)}` });
        return;
      }
      try {
        const loc = start.location;
        if (mode === 'monolithic') await this.#transfers.run(() => this.#putWhole(desc, loc, content, opts));
        else await this.#transfers.run(() => this.#putChunks(desc, loc, content, chunk, opts));
        return;
      } catch (e) {
        const refused = e instanceof BerthError && (e as BerthError & { refusedMode?: boolean }).refusedMode;
        if (refused && !switched) {
          switched = true;
          mode = mode === 'chunked' ? 'monolithic' : 'chunked';
          this.#uploadMode = mode;
          opts.onProgress?.({ type: 'message', text: `${this.domain} refused a ${mode === 'chunked' ? 'monolithic' : 'chunked'} upload; using ${mode} uploads` });
          continue;
        }
        // A failed upload body is not replayed into the same session: start a fresh one.
        if (e instanceof BerthError && e.code === 'UNAVAILABLE' && failures < 3) {
          failures++;
          opts.onProgress?.({ type: 'message', text: `uploading ${desc.digest.slice(7, 19)} failed (${e.message}); starting a new upload (${failures}/3)` });
          await new Promise((r) => setTimeout(r, 200 * 2 ** failures * (0.5 + Math.random())));
          continue;
        }
        throw e;
      }
    }
  }

  async #finish(res: HttpResponse, desc: Descriptor, what: string): Promise<void> {
    if (res.status !== 201 && res.status !== 204 && res.status !== 200) {
      const err = await statusError(res, what, this.domain);
      if ([405, 413, 416, 400, 501].includes(res.status)) (err as BerthError & { refusedMode?: boolean }).refusedMode = true;
      throw err;
    }
    await res.body.dump();
    const dcd = res.header('docker-content-digest');
    if (dcd && dcd !== desc.digest) throw new BerthError('DIGEST_MISMATCH', `${what}: registry computed ${dcd}`);
  }

  #withDigest(location: string, digest: Digest): string {
    const u = new URL(location);
    u.searchParams.set('digest', digest);
    return u.href;
  }

  async #putWhole(desc: Descriptor, location: string, content: Buffer | (() => Promise<Readable>), opts: OpOptions): Promise<void> {
    const what = `uploading blob ${desc.digest}`;
    const file = this.opts.rangeSource?.filePath?.(desc);
    const body = Buffer.isBuffer(content) ? content : file ? new FileBody(file, 0, desc.size, progress(desc, opts)) : async () => counted(await content(), desc, opts);
    const res = await this.#req('PUT', this.#withDigest(location, desc.digest), what, opts, {
      body,
      noRetry: true,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
    });
    await this.#finish(res, desc, what);
  }

  async #putChunks(desc: Descriptor, location: string, content: Buffer | (() => Promise<Readable>), chunk: number, opts: OpOptions): Promise<void> {
    const what = `uploading blob ${desc.digest}`;
    let loc = location;
    let sent = 0;
    const parts = chunkSource(desc, content, chunk, this.opts.rangeSource);
    try {
      for (let off = 0; off < desc.size; off += chunk) {
        const end = Math.min(desc.size, off + chunk);
        const body = await parts.next(off, end);
        const res = await this.#req('PATCH', loc, what, opts, {
          body,
          noRetry: true,
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${off}-${end - 1}`, 'content-length': String(end - off) },
        });
        if (res.status !== 202) {
          const err = await statusError(res, what, this.domain);
          if ([405, 413, 416, 400, 501].includes(res.status) && off === 0) (err as BerthError & { refusedMode?: boolean }).refusedMode = true;
          throw err;
        }
        await res.body.dump();
        if (res.header('location')) loc = new URL(res.header('location')!, res.url).href;
        sent = end;
        opts.onProgress?.({ type: 'blob-progress', digest: desc.digest, done: sent, size: desc.size });
      }
    } finally {
      parts.close();
    }
    const res = await this.#req('PUT', this.#withDigest(loc, desc.digest), what, opts, { headers: { 'content-length': '0' } });
    await this.#finish(res, desc, what);
  }
}

/** Throttled blob-progress events for `desc` (undefined without a listener). */
function progress(desc: Descriptor, opts: OpOptions): ((done: number) => void) | undefined {
  if (!opts.onProgress) return undefined;
  let last = 0;
  return (done) => {
    const now = Date.now();
    if (now - last > 200 || done === desc.size) {
      last = now;
      opts.onProgress!({ type: 'blob-progress', digest: desc.digest, done, size: desc.size });
    }
  };
}

/**
 * Count bytes as a stream is uploaded (progress). A pass-through stage, not a 'data' listener: a
 * listener would switch the source into flowing mode before the uploader reads it, and chunks
 * already buffered in the source (a registry-to-registry copy) would be lost.
 */
function counted(s: Readable, desc: Descriptor, opts: OpOptions): Readable {
  const report = progress(desc, opts);
  if (!report) return s;
  let done = 0;
  const t = new Transform({
    transform(c: Buffer, _enc, cb) {
      report((done += c.length));
      cb(null, c);
    },
  });
  s.on('error', (e) => t.destroy(e));
  return s.pipe(t);
}

/** Chunks of a blob: re-readable ranges when the source offers them, else read in order into memory. */
function chunkSource(desc: Descriptor, content: Buffer | (() => Promise<Readable>), _chunk: number, ranges?: RangeSource) {
  if (Buffer.isBuffer(content)) return { next: async (a: number, b: number) => content.subarray(a, b), close() {} };
  const file = ranges?.filePath?.(desc);
  if (file) return { next: async (a: number, b: number) => new FileBody(file, a, b), close() {} };
  if (ranges) return { next: async (a: number, b: number) => () => ranges.fetchRange(desc, a, b), close() {} };
  let it: AsyncIterator<Buffer> | undefined;
  let stream: Readable | undefined;
  let pending: Buffer = Buffer.alloc(0);
  return {
    async next(a: number, b: number): Promise<Buffer> {
      if (!stream) {
        stream = await content();
        it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      }
      const want = b - a;
      const parts: Buffer[] = [pending];
      let have = pending.length;
      while (have < want) {
        const r = await it!.next();
        if (r.done) break;
        parts.push(r.value);
        have += r.value.length;
      }
      const all = Buffer.concat(parts);
      pending = all.subarray(want);
      return all.subarray(0, want);
    },
    close() {
      stream?.destroy();
    },
  };
}

async function streamToBuffer(s: Readable, cap: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of s) {
    n += (c as Buffer).length;
    if (n > cap) {
      s.destroy();
      throw new BerthError('INVALID_ARGUMENT', `document is larger than the ${cap}-byte limit`);
    }
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

export { Transport, type TransportOptions };
