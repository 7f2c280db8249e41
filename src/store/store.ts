import type { Hash } from 'node:crypto';
import { createReadStream, readFileSync, statSync, type ReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile, appendFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError, fromSystemError } from '../errors.js';
import type { ContentSource, ContentTarget, OpOptions } from '../oci/content.js';
import { digestHex, nodeCrypto, parseDigest, randomHex, verifyBytes } from '../oci/digest.js';
import { MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, parseJson, parseDescriptor } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatype.js';
import type { Descriptor, Digest, Index } from '../oci/types.js';
import { pidAlive, withLock } from './lock.js';

export const OCI_LAYOUT = '{"imageLayoutVersion":"1.0.0"}';

export interface Committed {
  digest: Digest;
  size: number;
}

/** Bytes being written into the store: hashed as they flow, visible only after commit. */
export class IngestWriter {
  #hash: Hash;
  #size: number;
  #fh: import('node:fs/promises').FileHandle;
  #done = false;
  readonly #store: ContentStore;
  readonly path: string;
  readonly #dir: string;
  readonly #resumable: boolean;

  /** @internal */
  constructor(store: ContentStore, dir: string, fh: import('node:fs/promises').FileHandle, hash: Hash, size: number, resumable: boolean) {
    this.#store = store;
    this.#dir = dir;
    this.path = join(dir, 'data');
    this.#fh = fh;
    this.#hash = hash;
    this.#size = size;
    this.#resumable = resumable;
  }

  /** Bytes already in the ingest (a resumed download continues from here). */
  get offset(): number {
    return this.#size;
  }

  /** Digest of the bytes written so far (the hash state is copied, not finished). */
  currentDigest(): Digest {
    return `sha256:${this.#hash.copy().digest('hex')}` as Digest;
  }

  /** Write and hash `chunk`: the write runs on the thread pool while this thread hashes. */
  async write(chunk: Uint8Array): Promise<void> {
    this.#size += chunk.length;
    const first = this.#fh.write(chunk, 0, chunk.length);
    this.#hash.update(chunk);
    let off = (await first).bytesWritten;
    while (off < chunk.length) off += (await this.#fh.write(chunk, off, chunk.length - off)).bytesWritten;
  }

  /** A Writable that feeds this ingest (for stream.pipeline). */
  writable(limit?: { size?: number; what?: string }): Writable {
    return new Writable({
      highWaterMark: 1 << 20,
      writev: (chunks, cb) => {
        const bufs = chunks.map((c) => c.chunk as Buffer);
        const n = bufs.reduce((a, b) => a + b.length, 0);
        if (limit?.size !== undefined && this.#size + n > limit.size) {
          cb(new BerthError('DIGEST_MISMATCH', `${limit.what ?? 'blob'}: more bytes than the declared size ${limit.size}`));
          return;
        }
        this.#size += n;
        // The write runs on the thread pool while this thread hashes the same (unchanged) bytes.
        const written = this.#fh.writev(bufs);
        for (const b of bufs) this.#hash.update(b);
        written.then(() => cb(), cb);
      },
    });
  }

  /**
   * Check size and digest (when expected), fsync, and rename into blobs/. Returns what was
   * committed. On mismatch the ingest is discarded and DIGEST_MISMATCH thrown.
   */
  async commit(expect?: { digest?: Digest; size?: number; what?: string }): Promise<Committed> {
    const digest = `sha256:${this.#hash.digest('hex')}` as Digest;
    const size = this.#size;
    this.#done = true;
    const what = expect?.what ?? expect?.digest ?? 'blob';
    try {
      if (expect?.size !== undefined && expect.size !== size) {
        throw new BerthError('DIGEST_MISMATCH', `${what}: size ${size} does not match the declared size ${expect.size}`);
      }
      if (expect?.digest !== undefined && expect.digest !== digest) {
        throw new BerthError('DIGEST_MISMATCH', `${what}: content digest ${digest} does not match`);
      }
      await this.#fh.sync();
      await this.#fh.close();
      await this.#store._commitFile(this.path, digest);
      await rm(this.#dir, { recursive: true, force: true });
      return { digest, size };
    } catch (e) {
      await this.#fh.close().catch(() => {});
      await rm(this.#dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Stop writing. A resumable ingest keeps its bytes for the next run; others are removed. */
  async close(keep = this.#resumable): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    await this.#fh.close().catch(() => {});
    if (!keep) await rm(this.#dir, { recursive: true, force: true });
    else await unlink(join(this.#dir, 'lock')).catch(() => {});
  }
}

export interface IngestOptions {
  /** The digest the content should have: the ingest is keyed by it and resumable across runs. */
  expected?: Digest;
  /** Continue bytes left by an earlier run (default true when `expected` is given). */
  resume?: boolean;
}

export interface ImageRecord {
  /** Full normalised reference (`docker.io/library/alpine:latest`). */
  name: string;
  desc: Descriptor;
}

/**
 * The local content store: a plain OCI image layout at <root>/content, with writes going
 * through <root>/ingest (same filesystem) and index.json updated under a lock.
 */
export class ContentStore implements ContentSource, ContentTarget {
  readonly root: string;
  readonly contentDir: string;
  readonly blobsDir: string;
  readonly ingestDir: string;
  readonly locksDir: string;
  readonly leasesDir: string;
  readonly indexPath: string;
  #lease: string | undefined;

  private constructor(root: string) {
    this.root = root;
    this.contentDir = join(root, 'content');
    this.blobsDir = join(this.contentDir, 'blobs', 'sha256');
    this.ingestDir = join(root, 'ingest');
    this.locksDir = join(root, 'locks');
    this.leasesDir = join(root, 'leases');
    this.indexPath = join(this.contentDir, 'index.json');
  }

  /** Open (creating when needed) the store under `root`. */
  static async open(root: string): Promise<ContentStore> {
    const s = new ContentStore(root);
    // An existing store (nearly every call): six stat calls, synchronous as each takes
    // microseconds where the async path costs a thread-pool round trip per call (start time).
    if ([s.blobsDir, s.ingestDir, s.locksDir, s.leasesDir].every((d) => statSync(d, { throwIfNoEntry: false })?.isDirectory()) && [join(s.contentDir, 'oci-layout'), s.indexPath].every((f) => statSync(f, { throwIfNoEntry: false })?.isFile())) {
      return s;
    }
    try {
      for (const d of [s.blobsDir, s.ingestDir, s.locksDir, s.leasesDir]) await mkdirp(d);
      await writeFile(join(s.contentDir, 'oci-layout'), OCI_LAYOUT, { flag: 'wx' }).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
      await writeFile(s.indexPath, JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [] }), { flag: 'wx' }).catch(
        (e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
        },
      );
    } catch (e) {
      throw fromSystemError(e, `opening store at ${root}`);
    }
    return s;
  }

  blobPath(digest: Digest): string {
    return join(this.blobsDir, digestHex(parseDigest(digest)));
  }

  /** Size of a committed blob, or undefined. */
  async blobSize(digest: Digest): Promise<number | undefined> {
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fromSystemError(e, `reading blob ${digest}`);
    }
  }

  async has(desc: Pick<Descriptor, 'digest'>): Promise<boolean> {
    return (await this.blobSize(desc.digest)) !== undefined;
  }

  async exists(desc: Pick<Descriptor, 'digest' | 'size'>): Promise<boolean> {
    const size = await this.blobSize(desc.digest);
    return size !== undefined && size === desc.size;
  }

  /** Read a small document; checked against the descriptor (size and digest). */
  async fetchBytes(desc: Descriptor): Promise<Buffer> {
    const cap = desc.mediaType === MediaType.OCI_CONFIG || desc.mediaType === MediaType.DOCKER_CONFIG ? MAX_CONFIG_BYTES : MAX_MANIFEST_BYTES;
    if (desc.size > cap) throw new BerthError('INVALID_ARGUMENT', `${desc.digest}: document of ${desc.size} bytes is larger than the ${cap}-byte limit`);
    let data: Buffer;
    try {
      data = await readFile(this.blobPath(desc.digest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new BerthError('NOT_FOUND', `blob ${desc.digest} is not in the store`, { hint: 'pull or load the image again' });
      }
      throw fromSystemError(e, `reading blob ${desc.digest}`);
    }
    try {
      verifyBytes(data, { digest: desc.digest, size: desc.size, what: `store blob ${desc.digest}` });
    } catch (e) {
      throw new BerthError('DIGEST_MISMATCH', (e as Error).message, { hint: 'the store is damaged: run berth system check, then remove and pull or load the image again' });
    }
    return data;
  }

  /**
   * A stream of a committed blob. Blobs were verified when they were committed and are not
   * hashed again here (`system check` re-hashes); the size is checked.
   */
  async fetch(desc: Pick<Descriptor, 'digest' | 'size'>): Promise<Readable> {
    const size = await this.blobSize(desc.digest);
    if (size === undefined) throw new BerthError('NOT_FOUND', `blob ${desc.digest} is not in the store`, { hint: 'pull or load the image again' });
    if (size !== desc.size) {
      throw new BerthError('DIGEST_MISMATCH', `store blob ${desc.digest} has size ${size}, expected ${desc.size}`, { hint: 'run berth system check' });
    }
    return createReadStream(this.blobPath(desc.digest), { highWaterMark: 1 << 20 }) as ReadStream & Readable;
  }

  /** Start writing a blob. */
  async ingest(opts: IngestOptions = {}): Promise<IngestWriter> {
    const hash = nodeCrypto().createHash('sha256');
    const resumable = opts.expected !== undefined && opts.resume !== false;
    if (resumable) {
      const dir = join(this.ingestDir, digestHex(parseDigest(opts.expected)));
      await mkdir(dir).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw fromSystemError(e, `writing into ${this.ingestDir}`);
      });
      // One writer per ingest: a lock file naming the owner; a dead owner's lock is taken over.
      const got = await tryOwn(join(dir, 'lock'));
      if (got) {
        const data = join(dir, 'data');
        let fh;
        try {
          fh = await open(data, 'a+');
        } catch (e) {
          throw fromSystemError(e, `opening ingest ${data}`);
        }
        // Re-hash what an earlier run left (once) so the digest covers the whole blob.
        const size = (await fh.stat()).size;
        if (size > 0) {
          const buf = Buffer.allocUnsafe(Math.min(size, 1 << 20));
          for (let pos = 0; pos < size; ) {
            const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
            if (bytesRead === 0) break;
            hash.update(buf.subarray(0, bytesRead));
            pos += bytesRead;
          }
        }
        return new IngestWriter(this, dir, fh, hash, size, true);
      }
    }
    const dir = join(this.ingestDir, `tmp-${process.pid}-${randomHex(8)}`);
    try {
      await mkdir(dir);
      const fh = await open(join(dir, 'data'), 'w');
      return new IngestWriter(this, dir, fh, hash, 0, false);
    } catch (e) {
      throw fromSystemError(e, `writing into ${this.ingestDir}`);
    }
  }

  /** @internal Rename a verified ingest file into blobs/ (after noting it in the lease). */
  async _commitFile(path: string, digest: Digest): Promise<void> {
    if (this.#lease) await appendFile(this.#lease, digest + '\n');
    const dest = this.blobPath(digest);
    await rename(path, dest);
  }

  /** Write a stream as a blob; `expect` is checked before the blob becomes visible. */
  async putStream(stream: Readable, expect: { digest?: Digest; size?: number; what?: string } = {}, opts: OpOptions = {}): Promise<Committed> {
    if (expect.digest && expect.size !== undefined && (await this.exists({ digest: expect.digest, size: expect.size }))) {
      stream.destroy();
      return { digest: expect.digest, size: expect.size };
    }
    const w = await this.ingest({ resume: false });
    try {
      await pipeline(stream, w.writable({ size: expect.size, what: expect.what ?? expect.digest }), opts.signal ? { signal: opts.signal } : {});
    } catch (e) {
      await w.close(false);
      throw e instanceof BerthError ? e : fromSystemError(e, `writing ${expect.what ?? expect.digest ?? 'blob'}`);
    }
    return w.commit(expect);
  }

  async putBytes(data: Uint8Array, expect: { digest?: Digest; what?: string } = {}): Promise<Committed> {
    return this.putStream(Readable.from([Buffer.from(data)]), { ...expect, size: data.length });
  }

  /** ContentTarget.write: verified write of a descriptor's content. */
  async write(desc: Descriptor, content: Buffer | (() => Promise<Readable>), opts: OpOptions = {}): Promise<void> {
    if (await this.exists(desc)) return;
    const expect = { digest: desc.digest, size: desc.size, what: `blob ${desc.digest}` };
    if (Buffer.isBuffer(content)) await this.putBytes(content, expect);
    else await this.putStream(await content(), expect, opts);
  }

  // ---- index.json: names -> descriptors ----

  async readIndex(): Promise<Index> {
    let raw: Buffer;
    try {
      // Synchronously: every listing and lookup starts here, and one read of a small file beats a thread-pool trip.
      raw = readFileSync(this.indexPath);
    } catch (e) {
      throw fromSystemError(e, `reading ${this.indexPath}`);
    }
    const doc = parseJson(raw, this.indexPath, 64 * 1024 * 1024) as Index;
    if (!doc || !Array.isArray(doc.manifests)) throw new BerthError('INTERNAL', `${this.indexPath} is not an OCI index`, { hint: 'run berth system check' });
    return doc;
  }

  /** Read-modify-write index.json under the store lock, by temp file + fsync + rename. */
  async updateIndex<T>(fn: (manifests: Descriptor[]) => T | Promise<T>, opts: { signal?: AbortSignal } = {}): Promise<T> {
    return withLock(join(this.locksDir, 'index.lock'), async () => {
      const idx = await this.readIndex();
      const manifests = [...idx.manifests];
      const out = await fn(manifests);
      const tmp = `${this.indexPath}.tmp-${process.pid}-${randomHex(4)}`;
      try {
        const fh = await open(tmp, 'w', 0o644);
        await fh.writeFile(JSON.stringify({ ...idx, schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests }));
        await fh.sync();
        await fh.close();
        await rename(tmp, this.indexPath);
      } catch (e) {
        await unlink(tmp).catch(() => {});
        throw fromSystemError(e, `writing ${this.indexPath}`);
      }
      return out;
    }, opts.signal ? { signal: opts.signal } : {});
  }

  /** Run `fn` holding the index lock without rewriting index.json (gc). */
  async withIndexLock<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(join(this.locksDir, 'index.lock'), fn);
  }

  /** Every tagged image: index.json entries that carry a ref name. */
  async listImages(): Promise<ImageRecord[]> {
    const idx = await this.readIndex();
    const out: ImageRecord[] = [];
    idx.manifests.forEach((m, i) => {
      const d = parseDescriptor(m, `${this.indexPath} manifests[${i}]`);
      const name = d.annotations?.['io.containerd.image.name'] ?? d.annotations?.['org.opencontainers.image.ref.name'];
      if (name) out.push({ name, desc: d });
    });
    return out;
  }

  // ---- leases: blobs an in-flight operation holds against gc ----

  /** Run `fn` with a lease: blobs committed meanwhile are protected from a concurrent gc. */
  async withLease<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#lease) return fn();
    const path = join(this.leasesDir, `${process.pid}-${randomHex(6)}`);
    await writeFile(path, '');
    this.#lease = path;
    try {
      return await fn();
    } finally {
      this.#lease = undefined;
      await unlink(path).catch(() => {});
    }
  }

  /**
   * Hold an existing blob in the current lease (a no-op outside `withLease`): a build that takes
   * a layer from its cache keeps it from a concurrent gc until the image that uses it is tagged.
   */
  async hold(desc: Pick<Descriptor, 'digest'>): Promise<void> {
    if (this.#lease) await appendFile(this.#lease, desc.digest + '\n');
  }

  /** Digests held by leases of live processes; leases of dead ones are removed. */
  async leasedDigests(): Promise<Set<string>> {
    const held = new Set<string>();
    for (const f of await readdir(this.leasesDir).catch(() => [] as string[])) {
      const p = join(this.leasesDir, f);
      if (!pidAlive(Number(f.split('-')[0]))) {
        await unlink(p).catch(() => {});
        continue;
      }
      for (const line of (await readFile(p, 'utf8').catch(() => '')).split('\n')) if (line) held.add(line);
    }
    return held;
  }

  /** All committed blob digests. */
  async listBlobs(): Promise<Digest[]> {
    const names = await readdir(this.blobsDir).catch(() => [] as string[]);
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}` as Digest);
  }
}

/**
 * mkdir -p without `recursive: true`: Node 20's recursive mkdir spins forever on some paths
 * (a missing directory under /proc), so each missing parent is made in turn.
 */
export async function mkdirp(dir: string): Promise<void> {
  const missing: string[] = [];
  let d = dir;
  for (;;) {
    try {
      const st = await stat(d);
      if (!st.isDirectory()) throw Object.assign(new Error(`${d} is not a directory`), { code: 'ENOTDIR' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      missing.push(d);
      const parent = dirname(d);
      if (parent === d) break;
      d = parent;
    }
  }
  for (const m of missing.reverse()) {
    await mkdir(m).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }
}

async function tryOwn(lockPath: string): Promise<boolean> {
  for (let i = 0; i < 2; i++) {
    try {
      await writeFile(lockPath, String(process.pid), { flag: 'wx' });
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fromSystemError(e, `locking ${lockPath}`);
    }
    const pid = Number(await readFile(lockPath, 'utf8').catch(() => 'NaN'));
    if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) return false;
    await unlink(lockPath).catch(() => {});
  }
  return false;
}
