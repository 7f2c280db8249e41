/**
 * An archive seen as a map from member names to blobs. A tar archive is read in one streaming
 * pass: small members are kept in memory, large ones stream into store ingests (hashed as
 * they flow, committed only when an image needs them); an OCI layout directory is read lazily.
 */
import { readFileHead } from './io.js';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, open, readFile, readlink, type FileHandle } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { readTarEntries, readTarFileEntries, type TarEntryHeader } from '../archive/tar.js';
import { BerthError, fromSystemError } from '../errors.js';
import type { OpOptions } from '../oci/content.js';
import { isDigest, sha256 } from '../oci/digest.js';
import { sniffCompression, type Compression } from '../oci/mediatype.js';
import type { Digest } from '../oci/types.js';
import type { ContentStore, IngestWriter } from '../store/store.js';
import { DiffHasher, diffIdOfStream, type DiffIdResult } from './diffid.js';

export interface Expect {
  digest: Digest;
  size: number;
  what: string;
}

export interface Member {
  readonly name: string;
  readonly kind: 'file' | 'symlink' | 'other';
  readonly size: number;
  /** Target of a symlink (relative to the member's directory) or hard link (archive path). */
  readonly linkname?: string;
  readonly hardlink?: boolean;
  /** The content digest when it is known without reading (hashed during the pass). */
  readonly knownDigest?: Digest;
  /** Whether the bytes are already in the store (skipped during the pass). */
  readonly inStore?: boolean;
  digest(): Promise<Digest>;
  /** First bytes (compression sniffing). */
  head(): Promise<Buffer>;
  /** Whole content, refusing more than `cap` bytes. */
  bytes(cap: number, what: string): Promise<Buffer>;
  /** Make the content a store blob; verified against `expect` before it becomes visible. */
  commit(store: ContentStore, expect: Expect, opts?: OpOptions): Promise<void>;
  /** Drop what the pass left in the ingest. */
  discard(): Promise<void>;
  /**
   * The digest of the content decompressed with `compression` (a layer's diff_id). Members of
   * a tar pass were decompressed and hashed while they streamed in; others are read again.
   */
  diffId(compression: Exclude<Compression, 'none'>, cap: number, what: string): Promise<DiffIdResult>;
}

export interface Archive {
  /** What to call the input in messages. */
  readonly what: string;
  /** The member stored under exactly this (normalised) name. */
  get(name: string): Promise<Member | undefined>;
  /** Release everything not committed. */
  discard(): Promise<void>;
}

function tooBig(what: string, size: number, cap: number): BerthError {
  return new BerthError('INVALID_ARGUMENT', `${what}: ${size} bytes is larger than the ${cap}-byte limit for this document`, {
    hint: 'the archive is corrupt or hostile',
  });
}

/** `./a/b` -> `a/b`; names are keys, never paths on disk. */
export function normalizeMemberName(name: string): string {
  let n = name;
  while (n.startsWith('./')) n = n.slice(2);
  while (n.endsWith('/')) n = n.slice(0, -1);
  return n;
}

/**
 * Validate a member name that a document (manifest.json, index.json) refers to: relative, no
 * `..`, no empty components.
 */
export function checkReferencedName(name: unknown, where: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 4096) {
    throw new BerthError('INVALID_ARGUMENT', `${where}: member name ${JSON.stringify(name)} is not a string`);
  }
  if (name.startsWith('/')) throw new BerthError('INVALID_ARGUMENT', `${where}: member ${JSON.stringify(name)} is an absolute path`, { hint: 'the archive is corrupt or hostile' });
  const n = normalizeMemberName(name);
  if (n.split('/').some((c) => c === '..' || c === '') || n.includes('\0')) {
    throw new BerthError('INVALID_ARGUMENT', `${where}: member ${JSON.stringify(name)} leaves the archive`, { hint: 'the archive is corrupt or hostile' });
  }
  return n;
}

/**
 * Find the regular-file member `name` refers to, following symlinks and hard links that stay
 * inside the archive (docker save links duplicate layers). Throws NOT_FOUND when it is absent.
 */
export async function resolveMember(ar: Archive, name: string, where: string): Promise<Member> {
  let n = checkReferencedName(name, where);
  for (let hops = 0; hops < 16; hops++) {
    const m = await ar.get(n);
    if (!m) throw new BerthError('NOT_FOUND', `${where}: member ${JSON.stringify(n)} is missing from ${ar.what}`, { hint: 'the archive is incomplete' });
    if (m.kind === 'file') return m;
    if (m.kind === 'other') throw new BerthError('INVALID_ARGUMENT', `${where}: member ${JSON.stringify(n)} is not a regular file`);
    const link = m.linkname ?? '';
    if (link.startsWith('/')) {
      throw new BerthError('INVALID_ARGUMENT', `${where}: member ${JSON.stringify(n)} is a symlink to an absolute path ${JSON.stringify(link)}`, {
        hint: 'the archive is corrupt or hostile',
      });
    }
    const target = m.hardlink ? posix.normalize(link) : posix.normalize(posix.join(posix.dirname(n), link));
    if (target === '..' || target.startsWith('../') || target === '.') {
      throw new BerthError('INVALID_ARGUMENT', `${where}: member ${JSON.stringify(n)} is a symlink that leaves the archive (${JSON.stringify(link)})`, {
        hint: 'the archive is corrupt or hostile',
      });
    }
    n = target;
  }
  throw new BerthError('INVALID_ARGUMENT', `${where}: member ${JSON.stringify(name)}: too many levels of links`);
}

// ---- members of a tar read in one pass ----

class BufferMember implements Member {
  readonly kind = 'file' as const;
  readonly knownDigest: Digest;
  constructor(
    readonly name: string,
    readonly data: Buffer,
  ) {
    this.knownDigest = sha256(data);
  }
  get size(): number {
    return this.data.length;
  }
  async digest(): Promise<Digest> {
    return this.knownDigest;
  }
  async head(): Promise<Buffer> {
    return this.data.subarray(0, 8);
  }
  async bytes(cap: number, what: string): Promise<Buffer> {
    if (this.data.length > cap) throw tooBig(what, this.data.length, cap);
    return this.data;
  }
  async commit(store: ContentStore, expect: Expect): Promise<void> {
    await store.putBytes(this.data, { digest: expect.digest, what: expect.what });
  }
  async discard(): Promise<void> {}
  diffId(compression: Exclude<Compression, 'none'>, cap: number, what: string): Promise<DiffIdResult> {
    return diffIdOfStream(Readable.from([this.data]), compression, cap, what);
  }
}

class IngestMember implements Member {
  readonly kind = 'file' as const;
  #w: IngestWriter | undefined;
  constructor(
    readonly name: string,
    readonly size: number,
    readonly knownDigest: Digest,
    readonly headBytes: Buffer,
    w: IngestWriter,
    /** Decompressed digest computed during the pass (compressed members). */
    readonly diff?: { compression: Compression; result: DiffIdResult },
    /** The background flush of the ingest file (see BackgroundSync). */
    private readonly flushed: Promise<void> = Promise.resolve(),
  ) {
    this.#w = w;
  }
  async diffId(compression: Exclude<Compression, 'none'>, cap: number, what: string): Promise<DiffIdResult> {
    if (this.diff?.compression === compression) return this.diff.result;
    if (!this.#w) throw new BerthError('INTERNAL', `${what}: ingest already committed`);
    return diffIdOfStream(createReadStream(this.#w.path, { highWaterMark: 1 << 20 }), compression, cap, what);
  }
  async digest(): Promise<Digest> {
    return this.knownDigest;
  }
  async head(): Promise<Buffer> {
    return this.headBytes;
  }
  async bytes(cap: number, what: string): Promise<Buffer> {
    if (this.size > cap) throw tooBig(what, this.size, cap);
    if (!this.#w) throw new BerthError('INTERNAL', `${what}: ingest already committed`);
    return readFile(this.#w.path);
  }
  async commit(store: ContentStore, expect: Expect): Promise<void> {
    if (await store.exists(expect)) return;
    const w = this.#w;
    if (!w) return; // committed already under another name (hard link)
    this.#w = undefined;
    await this.flushed;
    await w.commit(expect);
  }
  async discard(): Promise<void> {
    const w = this.#w;
    this.#w = undefined;
    await this.flushed;
    await w?.close(false);
  }
}

/** A blob the pass skipped because the store already has it. */
class StoreMember implements Member {
  readonly kind = 'file' as const;
  readonly inStore = true;
  constructor(
    readonly name: string,
    readonly size: number,
    readonly knownDigest: Digest,
    private readonly store: ContentStore,
  ) {}
  async digest(): Promise<Digest> {
    return this.knownDigest;
  }
  async head(): Promise<Buffer> {
    return readFileHead(this.store.blobPath(this.knownDigest));
  }
  async bytes(cap: number, what: string): Promise<Buffer> {
    if (this.size > cap) throw tooBig(what, this.size, cap);
    return readFile(this.store.blobPath(this.knownDigest));
  }
  async commit(): Promise<void> {}
  async discard(): Promise<void> {}
  diffId(compression: Exclude<Compression, 'none'>, cap: number, what: string): Promise<DiffIdResult> {
    return diffIdOfStream(createReadStream(this.store.blobPath(this.knownDigest), { highWaterMark: 1 << 20 }), compression, cap, what);
  }
}

class LinkMember implements Member {
  constructor(
    readonly name: string,
    readonly kind: 'symlink' | 'other',
    readonly linkname?: string,
    readonly hardlink?: boolean,
  ) {}
  readonly size = 0;
  private no(): never {
    throw new BerthError('INTERNAL', `${this.name} is not a regular file`);
  }
  async digest(): Promise<Digest> {
    this.no();
  }
  async head(): Promise<Buffer> {
    this.no();
  }
  async bytes(): Promise<Buffer> {
    this.no();
  }
  async commit(): Promise<void> {
    this.no();
  }
  async diffId(): Promise<DiffIdResult> {
    this.no();
  }
  async discard(): Promise<void> {}
}

/** Limits of the streaming pass. */
export interface PassLimits {
  /** Largest member written to the ingest (a decompression bomb stops here). */
  maxMemberBytes: number;
  /** Members up to this size are kept in memory. */
  smallMemberBytes?: number;
  /** Total memory for small members. */
  memoryBudget?: number;
}

/** JSON documents at the top of an archive and their caps. */
const TOP_DOCS: Readonly<Record<string, number>> = {
  'manifest.json': 4 * 1024 * 1024,
  'index.json': 4 * 1024 * 1024,
  repositories: 1024 * 1024,
  'oci-layout': 64 * 1024,
};

class TarArchive implements Archive {
  readonly members = new Map<string, Member>();
  constructor(readonly what: string) {}
  async get(name: string): Promise<Member | undefined> {
    return this.members.get(name);
  }
  async discard(): Promise<void> {
    for (const m of this.members.values()) await m.discard().catch(() => {});
  }
}

/**
 * Flush an ingest file to disk while it is still being written (every `every` bytes, one
 * datasync at a time, through a second descriptor), and once more at its end, in the
 * background: the fsync that IngestWriter.commit does before the rename then finds (almost)
 * nothing dirty, so "durable before visible" costs little wall time. Errors are ignored here:
 * the commit's own fsync is the one that counts.
 */
class BackgroundSync {
  #fh: FileHandle | undefined;
  #busy: Promise<void> | undefined;
  #since = 0;
  constructor(
    private readonly path: string,
    private readonly every = 64 << 20,
  ) {}
  #sync(): Promise<void> {
    return (async () => {
      this.#fh ??= await open(this.path, 'r');
      await this.#fh.datasync();
    })().catch(() => {});
  }
  wrote(n: number): void {
    this.#since += n;
    if (this.#since < this.every || this.#busy) return;
    this.#since = 0;
    this.#busy = this.#sync().finally(() => {
      this.#busy = undefined;
    });
  }
  /** The final flush (started now, not awaited by the caller); closes the descriptor. */
  finish(): Promise<void> {
    return (async () => {
      await this.#busy;
      await this.#sync();
    })().finally(() => this.#fh?.close().catch(() => {}));
  }
}

/**
 * Counts a member's bytes, keeps the first few, reports progress, enforces a cap and, when the
 * first bytes say the member is gzip or zstd, tees it into a DiffHasher (the decompressed
 * digest is ready at the end). Chunks may live in a reused buffer: the tee gets copies.
 */
class Meter {
  n = 0;
  head = Buffer.alloc(0);
  #pending: Buffer[] | undefined = [];
  #last = 0;
  tee: DiffHasher | undefined;
  constructor(
    private readonly cap: number,
    private readonly what: string,
    private readonly onBytes?: (n: number) => void,
    private readonly flusher?: BackgroundSync,
  ) {}
  /** Decide on the tee once 8 bytes (or the end) are seen; replay what came before. */
  #decide(): Promise<void> | undefined {
    const pending = this.#pending!;
    this.#pending = undefined;
    const c = sniffCompression(this.head);
    if (c === 'none') return undefined;
    this.tee = new DiffHasher(c, this.cap, this.what);
    let wait: Promise<void> | undefined;
    for (const b of pending) wait = this.tee.write(b) ?? wait;
    return wait;
  }
  /** Account for a chunk (before it is written); the promise, when any, is the tee's backpressure. */
  feed(chunk: Buffer): Promise<void> | undefined {
    this.n += chunk.length;
    if (this.n > this.cap) {
      throw new BerthError('INVALID_ARGUMENT', `${this.what}: more than ${this.cap} bytes (decompression bomb?)`, { hint: 'raise BERTH_MAX_LAYER_BYTES if this layer is genuine' });
    }
    let wait: Promise<void> | undefined;
    if (this.#pending) {
      if (this.head.length < 8) this.head = Buffer.concat([this.head, chunk.subarray(0, 8 - this.head.length)]);
      if (this.head.length >= 8) {
        // Decided on this chunk: a plain member (most of them) is never copied; a compressed
        // one's tee gets this chunk after what came before.
        wait = this.#decide();
        if (this.tee) wait = this.tee.write(copyOf(chunk)) ?? wait;
      } else this.#pending.push(copyOf(chunk));
    } else if (this.tee) wait = this.tee.write(copyOf(chunk));
    this.flusher?.wrote(chunk.length);
    if (this.onBytes && this.n - this.#last >= 4 << 20) {
      this.#last = this.n;
      this.onBytes(this.n);
    }
    return wait;
  }
  /** The end of the member. */
  end(): Promise<void> | undefined {
    return this.#pending ? this.#decide() : undefined;
  }
}

/** A copy of a chunk that lives in a reused buffer (allocUnsafe: the new memory is not zero-filled before the copy). */
function copyOf(chunk: Buffer): Buffer {
  const b = Buffer.allocUnsafe(chunk.length);
  chunk.copy(b);
  return b;
}

const BLOB_RE = /^blobs\/sha256\/([a-f0-9]{64})$/;

/**
 * Read a (decompressed) tar stream, or an uncompressed tar file, once. Every member becomes an
 * entry of the returned archive; nothing is visible in the store until a member is committed.
 * A file is read without streams through reused buffers (readTarFileEntries).
 */
export async function readTarArchive(store: ContentStore, input: Readable | { path: string }, what: string, limits: PassLimits, opts: OpOptions = {}): Promise<TarArchive> {
  const ar = new TarArchive(what);
  const small = limits.smallMemberBytes ?? 1 << 20;
  let budget = limits.memoryBudget ?? 128 << 20;
  const put = async (m: Member) => {
    const old = ar.members.get(m.name);
    ar.members.set(m.name, m);
    if (old) await old.discard();
  };
  const read = (onEntry: (h: TarEntryHeader, body: AsyncIterable<Buffer>) => Promise<void>, o: { what: string; signal?: AbortSignal }) =>
    'path' in input && !(input instanceof Readable) ? readTarFileEntries(input.path, onEntry, o) : readTarEntries(input as Readable, onEntry, o);
  try {
    await read(
      async (h, body) => {
        opts.signal?.throwIfAborted();
        const name = normalizeMemberName(h.name);
        if (h.type === 'directory') return;
        if (h.type === 'symlink' || h.type === 'link') {
          await put(new LinkMember(name, 'symlink', h.linkname ?? '', h.type === 'link'));
          return;
        }
        if (h.type === 'other') {
          await put(new LinkMember(name, 'other'));
          return;
        }
        const docCap = TOP_DOCS[name];
        if (docCap !== undefined && h.size > docCap) throw tooBig(`${what}: ${name}`, h.size, docCap);
        if (h.size > limits.maxMemberBytes) {
          throw new BerthError('INVALID_ARGUMENT', `${what}: member ${JSON.stringify(name)} declares ${h.size} bytes, more than the ${limits.maxMemberBytes}-byte limit per layer`, {
            hint: 'raise BERTH_MAX_LAYER_BYTES if this layer is genuine',
          });
        }
        const blob = BLOB_RE.exec(name);
        if (blob && h.size > small) {
          const digest = `sha256:${blob[1]}` as Digest;
          if (await store.exists({ digest, size: h.size })) {
            // The unread body is skipped by the reader.
            opts.onProgress?.({ type: 'blob-done', digest, size: h.size, skipped: true, reason: 'exists' });
            await put(new StoreMember(name, h.size, digest, store));
            return;
          }
        }
        if (docCap !== undefined || (h.size <= small && h.size <= budget)) {
          const chunks: Buffer[] = [];
          for await (const c of body) chunks.push(Buffer.from(c));
          const data = Buffer.concat(chunks);
          budget -= data.length;
          await put(new BufferMember(name, data));
          return;
        }
        const id = blob ? `sha256:${blob[1]}` : name;
        // Read before the archive's manifests: a docker-save layer by its name, else not known yet.
        opts.onProgress?.({ type: 'blob-start', digest: id, size: h.size, mediaType: /(^|\/)layer\.tar$/.test(name) ? 'application/vnd.docker.image.rootfs.diff.tar' : 'application/octet-stream' });
        const w = await store.ingest({ resume: false });
        const flusher = new BackgroundSync(w.path);
        const meter = new Meter(
          limits.maxMemberBytes,
          `${what}: ${name}`,
          opts.onProgress ? (n) => opts.onProgress!({ type: 'blob-progress', digest: id, done: n, size: h.size }) : undefined,
          flusher,
        );
        let diff: { compression: Compression; result: DiffIdResult } | undefined;
        try {
          // One chunk at a time: hashed and written before the next is read (the file reader
          // reads ahead meanwhile; a stream buffers up to its high-water mark).
          for await (const c of body) {
            const wait = meter.feed(c);
            if (wait) await wait;
            await w.write(c);
          }
          const wait = meter.end();
          if (wait) await wait;
          if (meter.tee) diff = { compression: meter.tee.compression, result: await meter.tee.end() };
        } catch (e) {
          meter.tee?.abort();
          await flusher.finish();
          await w.close(false);
          throw e;
        }
        await put(new IngestMember(name, meter.n, w.currentDigest(), meter.head, w, diff, flusher.finish()));
        opts.onProgress?.({ type: 'blob-done', digest: id, size: h.size });
      },
      { what, ...(opts.signal ? { signal: opts.signal } : {}) },
    );
  } catch (e) {
    await ar.discard();
    throw e instanceof BerthError ? e : fromSystemError(e, what);
  }
  return ar;
}

// ---- an OCI layout (or extracted docker save) directory ----

class FileMember implements Member {
  readonly kind = 'file' as const;
  #digest: Promise<Digest> | undefined;
  readonly knownDigest?: Digest;
  constructor(
    readonly name: string,
    readonly size: number,
    readonly path: string,
  ) {}
  digest(): Promise<Digest> {
    this.#digest ??= (async () => {
      const h = createHash('sha256');
      await pipeline(createReadStream(this.path, { highWaterMark: 1 << 20 }), async function* (src: AsyncIterable<Buffer>) {
        for await (const c of src) h.update(c);
      });
      return `sha256:${h.digest('hex')}` as Digest;
    })();
    return this.#digest;
  }
  async head(): Promise<Buffer> {
    return readFileHead(this.path);
  }
  async bytes(cap: number, what: string): Promise<Buffer> {
    if (this.size > cap) throw tooBig(what, this.size, cap);
    return readFile(this.path);
  }
  async commit(store: ContentStore, expect: Expect, opts: OpOptions = {}): Promise<void> {
    await store.putStream(createReadStream(this.path, { highWaterMark: 1 << 20 }), expect, opts);
  }
  diffId(compression: Exclude<Compression, 'none'>, cap: number, what: string): Promise<DiffIdResult> {
    return diffIdOfStream(createReadStream(this.path, { highWaterMark: 1 << 20 }), compression, cap, what);
  }
  async discard(): Promise<void> {}
}

export class DirArchive implements Archive {
  readonly what: string;
  constructor(readonly dir: string) {
    this.what = `directory ${dir}`;
  }
  async get(name: string): Promise<Member | undefined> {
    const p = join(this.dir, name);
    try {
      const st = await lstat(p);
      if (st.isSymbolicLink()) return new LinkMember(name, 'symlink', await readlink(p));
      if (st.isFile()) return new FileMember(name, st.size, p);
      return new LinkMember(name, 'other');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw fromSystemError(e, `${this.what}: ${name}`);
    }
  }
  async discard(): Promise<void> {}
}

export function blobMemberName(d: Digest): string {
  if (!isDigest(d)) throw new BerthError('INVALID_ARGUMENT', `invalid digest ${d}`);
  return `blobs/sha256/${d.slice(7)}`;
}

