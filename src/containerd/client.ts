/**
 * A containerd client over its gRPC API: content (Info, Read, Write with its status/offset
 * protocol, Update of labels), images (Get, List, Create, Update), leases and the version
 * service. The namespace travels in the `containerd-namespace` header, the lease in
 * `containerd-lease`. @grpc/grpc-js is loaded here only, on first connect (it is slow to load).
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type * as Grpc from '@grpc/grpc-js';
import { BerthError } from '../errors.js';
import type { OpOptions } from '../oci/content.js';
import type { Descriptor, Digest } from '../oci/types.js';
import { Content, decode, Diff, encode, Images, Leases, Snapshots, Version, WriteAction, type Schema } from './proto.js';

export const DEFAULT_CONTAINERD_ADDRESS = '/run/containerd/containerd.sock';
export const DEFAULT_NAMESPACE = 'default';

/** Where containerd listens: the option, else CONTAINERD_ADDRESS, else the standard socket. */
export function containerdAddress(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  const a = explicit || env.CONTAINERD_ADDRESS || DEFAULT_CONTAINERD_ADDRESS;
  return a.replace(/^unix:\/\//, '').replace(/^unix:/, '');
}

export interface ContentInfo {
  digest: Digest;
  size: number;
  labels: Record<string, string>;
}

export interface ImageRecord {
  name: string;
  labels: Record<string, string>;
  target: Descriptor;
}

/** A mount containerd hands out for a snapshot. */
export interface Mount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

interface WireDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations: Record<string, string>;
}

function fromWire(d: WireDescriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest as Digest, size: d.size, ...(Object.keys(d.annotations ?? {}).length ? { annotations: d.annotations } : {}) };
}

function toWire(d: Descriptor): WireDescriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, annotations: { ...(d.annotations ?? {}) } };
}

/** gRPC status codes berth tells apart. */
const Status = { CANCELLED: 1, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6, PERMISSION_DENIED: 7, FAILED_PRECONDITION: 9, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14 } as const;

function grpcCode(e: unknown): number | undefined {
  const c = (e as { code?: unknown })?.code;
  return typeof c === 'number' ? c : undefined;
}

let grpcModule: Promise<typeof Grpc> | undefined;
function loadGrpc(): Promise<typeof Grpc> {
  grpcModule ??= import('@grpc/grpc-js');
  return grpcModule;
}

/** Start loading the gRPC library now (it takes a while) so connect() finds it loaded. */
export function preloadGrpc(): void {
  loadGrpc().catch(() => {});
}

export interface ConnectOptions {
  /** Socket path (or unix:// address); default per containerdAddress(). */
  address?: string;
  namespace?: string;
  signal?: AbortSignal;
}

/** The shared channel of one or more namespace views. */
interface Channel {
  grpc: typeof Grpc;
  client: Grpc.Client;
  address: string;
}

/**
 * One connection to containerd, seen in one namespace. `inNamespace()` gives another view over
 * the same channel; `close()` closes the channel.
 */
export class ContainerdClient {
  #lease: string | undefined;

  private constructor(
    readonly channel: Channel,
    readonly namespace: string,
  ) {}

  get address(): string {
    return this.channel.address;
  }

  /**
   * Connect and make sure the socket is containerd (its version service answers). Errors: no
   * socket (NOT_FOUND), no permission (UNAUTHORIZED), not containerd or not answering
   * (UNAVAILABLE).
   */
  static async connect(opts: ConnectOptions = {}): Promise<ContainerdClient> {
    const address = containerdAddress(opts.address);
    const hint = 'start containerd or point berth at its socket with --containerd-address or CONTAINERD_ADDRESS';
    try {
      const st = await stat(address);
      if (!st.isSocket()) throw new BerthError('UNAVAILABLE', `containerd address ${address} is not a socket`, { hint });
      await access(address, constants.R_OK | constants.W_OK);
    } catch (e) {
      if (e instanceof BerthError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new BerthError('NOT_FOUND', `no containerd socket at ${address}`, { hint });
      if (code === 'EACCES' || code === 'EPERM') {
        throw new BerthError('UNAUTHORIZED', `permission denied on the containerd socket ${address}`, { hint: 'run berth as root or give your user access to the socket (see README, Copy)' });
      }
      throw new BerthError('UNAVAILABLE', `containerd socket ${address}: ${(e as Error).message}`, { cause: e });
    }
    const grpc = await loadGrpc();
    const client = new grpc.Client(`unix://${address}`, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': 32 << 20,
      'grpc.max_send_message_length': 32 << 20,
      'grpc.default_authority': 'localhost',
    });
    const c = new ContainerdClient({ grpc, client, address }, opts.namespace ?? DEFAULT_NAMESPACE);
    try {
      await c.version({ ...(opts.signal ? { signal: opts.signal } : {}) });
    } catch (e) {
      client.close();
      if (e instanceof BerthError && e.code === 'ABORTED') throw e;
      throw new BerthError('UNAVAILABLE', `${address} is not a containerd socket, or containerd does not answer (${(e as Error).message})`, { cause: e, hint });
    }
    return c;
  }

  /** A view of the same connection in another namespace (no lease). */
  inNamespace(namespace: string): ContainerdClient {
    return new ContainerdClient(this.channel, namespace);
  }

  close(): void {
    this.channel.client.close();
  }

  #metadata(): Grpc.Metadata {
    const md = new this.channel.grpc.Metadata();
    md.set('containerd-namespace', this.namespace);
    if (this.#lease) md.set('containerd-lease', this.#lease);
    return md;
  }

  /** Turn a gRPC error into a BerthError about `what`. */
  error(e: unknown, what: string): BerthError {
    if (e instanceof BerthError) return e;
    const code = grpcCode(e);
    const detail = ((e as { details?: string }).details || (e as Error).message || String(e)).replace(/\s+/g, ' ');
    switch (code) {
      case Status.NOT_FOUND:
        return new BerthError('NOT_FOUND', `${what}: not found in containerd namespace ${this.namespace}`, { cause: e });
      case Status.ALREADY_EXISTS:
        return new BerthError('ALREADY_EXISTS', `${what}: ${detail}`, { cause: e });
      case Status.INVALID_ARGUMENT:
      case Status.FAILED_PRECONDITION:
        if (/namespace/i.test(detail)) return new BerthError('INVALID_ARGUMENT', `containerd rejects the namespace ${JSON.stringify(this.namespace)}: ${detail}`, { cause: e, hint: 'use letters, digits and . _ - (e.g. k8s.io)' });
        return new BerthError('INVALID_ARGUMENT', `${what}: containerd says: ${detail}`, { cause: e });
      case Status.PERMISSION_DENIED:
        return new BerthError('UNAUTHORIZED', `${what}: containerd says: ${detail}`, { cause: e });
      case Status.CANCELLED:
        return new BerthError('ABORTED', `${what}: cancelled`, { cause: e });
      case Status.UNIMPLEMENTED:
        return new BerthError('UNAVAILABLE', `${what}: ${this.address} does not implement containerd's API (${detail})`, { cause: e });
      default:
        return new BerthError('UNAVAILABLE', `${what}: containerd at ${this.address}: ${detail}`, { cause: e, hint: 'check that containerd is running; run the copy again: it continues where it stopped' });
    }
  }

  #unary<T>(method: string, reqSchema: Schema, resSchema: Schema, req: Record<string, unknown>, what: string, opts: OpOptions = {}, timeoutMs = 60_000): Promise<T> {
    opts.signal?.throwIfAborted();
    return new Promise<T>((resolve, reject) => {
      const call = this.channel.client.makeUnaryRequest<Record<string, unknown>, T>(
        method,
        (v) => encode(reqSchema, v),
        (b) => decode<T>(resSchema, b),
        req,
        this.#metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, res) => {
          opts.signal?.removeEventListener('abort', onAbort);
          if (err) reject(this.error(err, what));
          else resolve(res as T);
        },
      );
      const onAbort = () => call.cancel();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async version(opts: OpOptions = {}): Promise<{ version: string; revision: string }> {
    return this.#unary('/containerd.services.version.v1.Version/Version', Version.Empty, Version.VersionResponse, {}, 'containerd version', opts, 5000);
  }

  // ---- leases ----

  /**
   * Run `fn` holding a lease: everything written meanwhile (ingests, blobs) is kept from
   * containerd's gc until the lease is deleted. The lease expires by itself after `expireMs`
   * should berth die before deleting it, or the copy be interrupted (its ingests stay
   * resumable until then).
   */
  async withLease<T>(fn: () => Promise<T>, opts: OpOptions & { expireMs?: number } = {}): Promise<T> {
    if (this.#lease) return fn();
    const id = `berth-${process.pid}-${randomBytes(6).toString('hex')}`;
    const expire = new Date(Date.now() + (opts.expireMs ?? 24 * 3600_000)).toISOString().replace(/\.\d+Z$/, 'Z');
    await this.#unary(`/containerd.services.leases.v1.Leases/Create`, Leases.CreateRequest, Leases.CreateResponse, { id, labels: { 'containerd.io/gc.expire': expire } }, 'creating a lease', opts);
    this.#lease = id;
    let keep = false;
    try {
      return await fn();
    } catch (e) {
      // Interrupted (containerd went away, or the caller aborted): the lease stays until it
      // expires, so what was written so far (ingests included) is there for the next copy.
      keep = e instanceof BerthError && (e.code === 'UNAVAILABLE' || e.code === 'ABORTED');
      throw e;
    } finally {
      this.#lease = undefined;
      if (!keep) await this.#unary('/containerd.services.leases.v1.Leases/Delete', Leases.DeleteRequest, {}, { id }, 'deleting the lease').catch(() => {});
    }
  }

  // ---- content ----

  /** The committed blob's info, or undefined when containerd does not have it. */
  async info(digest: Digest, opts: OpOptions = {}): Promise<ContentInfo | undefined> {
    try {
      const r = await this.#unary<{ info: ContentInfo }>('/containerd.services.content.v1.Content/Info', Content.InfoRequest, Content.InfoResponse, { digest }, `blob ${digest}`, opts);
      return { digest: r.info.digest, size: r.info.size, labels: r.info.labels ?? {} };
    } catch (e) {
      if (e instanceof BerthError && e.code === 'NOT_FOUND') return undefined;
      throw e;
    }
  }

  /** Set labels on a committed blob (only these keys change). */
  async setLabels(digest: Digest, labels: Record<string, string>, opts: OpOptions = {}): Promise<void> {
    const paths = Object.keys(labels).map((k) => `labels.${k}`);
    if (paths.length === 0) return;
    await this.#unary('/containerd.services.content.v1.Content/Update', Content.UpdateRequest, Content.UpdateResponse, { info: { digest, labels }, updateMask: { paths } }, `labelling blob ${digest}`, opts);
  }

  /** The blob's bytes as a stream (unverified: wrap it in a VerifyingStream). */
  read(desc: Pick<Descriptor, 'digest'>, opts: OpOptions = {}): Readable {
    const call = this.channel.client.makeServerStreamRequest<Record<string, unknown>, { offset: number; data?: Buffer }>(
      '/containerd.services.content.v1.Content/Read',
      (v) => encode(Content.ReadContentRequest, v),
      (b) => decode(Content.ReadContentResponse, b),
      { digest: desc.digest },
      this.#metadata(),
    );
    const onAbort = () => call.cancel();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const self = this;
    return Readable.from(
      (async function* () {
        try {
          for await (const m of call as AsyncIterable<{ data?: Buffer }>) if (m.data && m.data.length) yield m.data;
        } catch (e) {
          throw self.error(e, `reading blob ${desc.digest}`);
        } finally {
          opts.signal?.removeEventListener('abort', onAbort);
        }
      })(),
      { objectMode: false, highWaterMark: 1 << 20 },
    );
  }

  /**
   * Write a blob through containerd's ingest protocol under `ref`: STAT first (a write that an
   * earlier, interrupted copy left is resumed from containerd's offset), then WRITE messages at
   * explicit offsets, then COMMIT with the expected size and digest (containerd verifies both).
   * The source is read whole (it verifies itself) and the first `offset` bytes are dropped.
   * Returns the bytes sent and whether containerd had the blob already.
   */
  async writeBlob(ref: string, desc: Descriptor, content: Buffer | (() => Promise<Readable>), opts: OpOptions & { labels?: Record<string, string> } = {}): Promise<{ sent: number; resumedFrom: number; existed: boolean }> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#writeOnce(ref, desc, content, opts, attempt > 0);
      } catch (e) {
        const err = e as BerthError;
        // The ref is still locked by a stream containerd has not yet seen die: wait a little.
        if (attempt < 20 && err.code === 'UNAVAILABLE' && /locked/i.test(err.message) && !opts.signal?.aborted) {
          await new Promise((r) => setTimeout(r, 250));
          continue;
        }
        // What was there did not add up to the digest: start over once.
        if (attempt === 0 && (err.code === 'INVALID_ARGUMENT' || err.code === 'DIGEST_MISMATCH') && /digest|size/i.test(err.message)) {
          await this.abortWrite(ref).catch(() => {});
          continue;
        }
        throw e;
      }
    }
  }

  /** Drop an ingest. */
  async abortWrite(ref: string, opts: OpOptions = {}): Promise<void> {
    await this.#unary('/containerd.services.content.v1.Content/Abort', Content.AbortRequest, {}, { ref }, `aborting ingest ${ref}`, opts);
  }

  async #writeOnce(ref: string, desc: Descriptor, content: Buffer | (() => Promise<Readable>), opts: OpOptions & { labels?: Record<string, string> }, fresh: boolean): Promise<{ sent: number; resumedFrom: number; existed: boolean }> {
    const what = `writing blob ${desc.digest} to containerd`;
    opts.signal?.throwIfAborted();
    type Res = { action: number; offset: number; total: number; digest: string };
    const call = this.channel.client.makeBidiStreamRequest<Record<string, unknown>, Res>(
      '/containerd.services.content.v1.Content/Write',
      (v) => encode(Content.WriteContentRequest, v),
      (b) => decode<Res>(Content.WriteContentResponse, b),
      this.#metadata(),
    );
    const queue: Res[] = [];
    let failure: BerthError | undefined;
    let wake: (() => void) | undefined;
    call.on('data', (r: Res) => {
      queue.push(r);
      wake?.();
    });
    call.on('error', (e) => {
      failure ??= this.error(e, what);
      wake?.();
    });
    call.on('end', () => {
      failure ??= new BerthError('UNAVAILABLE', `${what}: containerd closed the stream`);
      wake?.();
    });
    const onAbort = () => call.cancel();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    /** The next response, or the stream's failure. */
    const next = async (): Promise<Res> => {
      for (;;) {
        const r = queue.shift();
        if (r) return r;
        if (failure) throw failure;
        await new Promise<void>((w) => (wake = w));
        wake = undefined;
      }
    };
    const send = async (m: Record<string, unknown>) => {
      if (failure) throw failure;
      if (!call.write(m)) {
        // Until the stream drains, or a response or failure wakes us.
        await new Promise<void>((r) => {
          const done = () => {
            call.off('drain', done);
            wake = undefined;
            r();
          };
          call.on('drain', done);
          wake = done;
        });
        if (failure) throw failure;
      }
      // Keep the responses drained (one per message) so neither side stalls.
      const commits = queue.filter((r) => r.action === WriteAction.COMMIT);
      queue.splice(0, queue.length, ...commits);
    };
    try {
      call.write({ action: WriteAction.STAT, ref, total: desc.size, expected: desc.digest });
      let st: Res;
      try {
        st = await next();
      } catch (e) {
        if (e instanceof BerthError && e.code === 'ALREADY_EXISTS') return { sent: 0, resumedFrom: 0, existed: true };
        throw e;
      }
      let offset = fresh || st.offset > desc.size ? 0 : st.offset;
      const resumedFrom = offset;
      let sent = 0;
      if (offset < desc.size) {
        const src = Buffer.isBuffer(content) ? Readable.from([content]) : await content();
        let pos = 0; // position in the source
        let lastReport = 0;
        try {
          for await (const chunk of src as AsyncIterable<Buffer>) {
            opts.signal?.throwIfAborted();
            let c = chunk;
            if (pos + c.length <= offset) {
              pos += c.length;
              continue;
            }
            if (pos < offset) {
              c = c.subarray(offset - pos);
              pos = offset;
            }
            for (let i = 0; i < c.length; i += 1 << 20) {
              const piece = c.subarray(i, i + (1 << 20));
              // The offset of every write is explicit: offset 0 on a non-empty ingest truncates it.
              await send({ action: WriteAction.WRITE, ref, offset: pos, data: piece });
              pos += piece.length;
              sent += piece.length;
            }
            if (opts.onProgress && pos - lastReport >= 4 << 20) {
              lastReport = pos;
              opts.onProgress({ type: 'blob-progress', digest: desc.digest, done: pos, size: desc.size });
            }
          }
        } catch (e) {
          src.destroy();
          throw e;
        }
        offset = pos;
      }
      await send({ action: WriteAction.COMMIT, ref, offset, total: desc.size, expected: desc.digest, ...(opts.labels ? { labels: opts.labels } : {}) });
      for (;;) {
        let r: Res;
        try {
          r = await next();
        } catch (e) {
          if (e instanceof BerthError && e.code === 'ALREADY_EXISTS') return { sent, resumedFrom, existed: sent === 0 };
          throw e;
        }
        if (r.action === WriteAction.COMMIT) break;
      }
      call.end();
      return { sent, resumedFrom, existed: false };
    } catch (e) {
      call.cancel();
      throw e;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  // ---- snapshots and diffs (unpacking) ----

  /** Whether the snapshot `key` exists in `snapshotter`. */
  async hasSnapshot(snapshotter: string, key: string, opts: OpOptions = {}): Promise<boolean> {
    try {
      await this.#unary('/containerd.services.snapshots.v1.Snapshots/Stat', Snapshots.StatSnapshotRequest, Snapshots.StatSnapshotResponse, { snapshotter, key }, `snapshot ${key}`, opts);
      return true;
    } catch (e) {
      if (e instanceof BerthError && e.code === 'NOT_FOUND') return false;
      throw e;
    }
  }

  /** An active snapshot `key` on top of `parent`; its mounts. */
  async prepareSnapshot(snapshotter: string, key: string, parent: string, labels: Record<string, string>, opts: OpOptions = {}): Promise<Mount[]> {
    const r = await this.#unary<{ mounts: Mount[] }>('/containerd.services.snapshots.v1.Snapshots/Prepare', Snapshots.PrepareSnapshotRequest, Snapshots.PrepareSnapshotResponse, { snapshotter, key, parent, labels }, `preparing snapshot ${key}`, opts);
    return r.mounts;
  }

  async commitSnapshot(snapshotter: string, name: string, key: string, labels: Record<string, string>, opts: OpOptions = {}): Promise<void> {
    await this.#unary('/containerd.services.snapshots.v1.Snapshots/Commit', Snapshots.CommitSnapshotRequest, {}, { snapshotter, name, key, labels }, `committing snapshot ${name}`, opts);
  }

  async removeSnapshot(snapshotter: string, key: string, opts: OpOptions = {}): Promise<void> {
    await this.#unary('/containerd.services.snapshots.v1.Snapshots/Remove', Snapshots.RemoveSnapshotRequest, {}, { snapshotter, key }, `removing snapshot ${key}`, opts);
  }

  /** Apply the layer `desc` onto `mounts` (containerd decompresses and unpacks); the applied (uncompressed) descriptor. */
  async applyDiff(desc: Descriptor, mounts: Mount[], opts: OpOptions = {}): Promise<Descriptor> {
    const r = await this.#unary<{ applied: WireDescriptor }>('/containerd.services.diff.v1.Diff/Apply', Diff.ApplyRequest, Diff.ApplyResponse, { diff: toWire(desc), mounts }, `unpacking layer ${desc.digest}`, opts, 30 * 60_000);
    return fromWire(r.applied);
  }

  // ---- images ----

  async getImage(name: string, opts: OpOptions = {}): Promise<ImageRecord | undefined> {
    try {
      const r = await this.#unary<{ image: { name: string; labels: Record<string, string>; target: WireDescriptor } }>(
        '/containerd.services.images.v1.Images/Get',
        Images.GetImageRequest,
        Images.ImageResponse,
        { name },
        `image ${name}`,
        opts,
      );
      return { name: r.image.name, labels: r.image.labels, target: fromWire(r.image.target) };
    } catch (e) {
      if (e instanceof BerthError && e.code === 'NOT_FOUND') return undefined;
      throw e;
    }
  }

  async listImages(filters: readonly string[] = [], opts: OpOptions = {}): Promise<ImageRecord[]> {
    const r = await this.#unary<{ images: { name: string; labels: Record<string, string>; target: WireDescriptor }[] }>(
      '/containerd.services.images.v1.Images/List',
      Images.ListImagesRequest,
      Images.ListImagesResponse,
      { filters: [...filters] },
      'listing images',
      opts,
    );
    return r.images.map((i) => ({ name: i.name, labels: i.labels, target: fromWire(i.target) }));
  }

  /** Create the image record `name -> target`, or point the existing one at `target`. */
  async putImage(name: string, target: Descriptor, labels: Record<string, string> = {}, opts: OpOptions = {}): Promise<'created' | 'updated'> {
    const image = { name, labels, target: toWire(target) };
    const update = async () => {
      await this.#unary('/containerd.services.images.v1.Images/Update', Images.UpdateImageRequest, Images.ImageResponse, { image, updateMask: { paths: ['target', ...Object.keys(labels).map((k) => `labels.${k}`)] } }, `updating image ${name}`, opts);
      return 'updated' as const;
    };
    if (await this.getImage(name, opts)) return update();
    try {
      await this.#unary('/containerd.services.images.v1.Images/Create', Images.CreateImageRequest, Images.ImageResponse, { image }, `creating image ${name}`, opts);
      return 'created';
    } catch (e) {
      if (e instanceof BerthError && e.code === 'ALREADY_EXISTS') return update();
      throw e;
    }
  }
}
