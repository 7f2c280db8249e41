/**
 * The front door: `openBerth()` returns a `Berth`, one object with docker's verbs over one root.
 *
 *   const berth = await openBerth({ root: '/var/lib/berth' });
 *   try {
 *     await berth.load('busybox.tar');
 *     const r = await berth.run('busybox', ['echo', 'hi'], { rm: true });   // r.stdout === 'hi\n'
 *   } finally {
 *     await berth.close();                       // or `await using berth = await openBerth()`
 *   }
 *
 * Start time is a feature: this module imports no room at load time (only types and errors).
 * Each room (store, registry, archive readers, runc, snapshots) is loaded with `import()` the
 * first time a verb needs it, so `await openBerth()` costs about as much as starting node.
 *
 * Every long call takes `{ signal, onProgress }`. Errors are `BerthError` with a stable `code`
 * (`isBerthError(e, 'NOT_FOUND')`). The library never prints and never exits.
 */
import type { Readable, Writable } from 'node:stream';
import { BerthError, isBerthError } from './errors.js';
import type { OpOptions, ProgressEvent } from './oci/content.js';
import type { Descriptor, Digest, ImageConfig, Platform } from './oci/types.js';
import type { ContentStore } from './store/store.js';
import type { ImageView } from './store/images.js';
import type { GcResult, CheckResult } from './store/gc.js';
import type { BuildCachePruneResult, DiskUsage, SystemInfo, ImageSummary, ImageListOptions, RemoveImagesResult, HistoryEntry as ImageHistoryRow, PruneResult as ContentPruneResult } from './system.js';
import type { LoadResult as ArchiveLoadResult, LoadedImage as ArchiveImage } from './import/load.js';
import type { SaveResult, SaveFormat } from './import/save.js';
import type { ImportResult } from './import/rootfs.js';
import type { Transport, Credentials } from './registry/index.js';
import type { PullResult } from './pull.js';
import type { PushResult } from './push.js';
import type { CopyImageOptions, CopyImageResult } from './transports/index.js';
import type { BuildRequest, BuildResult, BuildEvent, BuildStep, OutputSpec, SecretSpec } from './build/builder.js';
import type { BuildOptions as BuilderSelection, ReproducibleResult, ReproducibleDifference } from './build/index.js';
import type { CommitOptions, CommitResult, ContainerChange } from './commit.js';
import type { Containers, ContainerInfo, ContainerRecord, LogEntry, SuperviseIO } from './run/containers.js';

export type { CopyImageOptions, CopyImageResult, BuildRequest, BuildResult, BuildEvent, BuildStep, OutputSpec, SecretSpec };

/** `berth.build(context, opts)`: docker build's options; every list defaults to empty. */
export type BuildOptions = Partial<Omit<BuildRequest, 'context'>> & Omit<BuilderSelection, 'root'>;
export type { ImageHistoryRow, ContentPruneResult, BuildCachePruneResult, ReproducibleResult, ReproducibleDifference, ContainerChange, CommitResult };

/** `commit` options; `epoch` may be given as SOURCE_DATE_EPOCH's text (checked: INVALID_ARGUMENT). */
export type ContainerCommitOptions = Omit<CommitOptions, 'epoch'> & { epoch?: number | string };
export type { ProgressEvent, OpOptions, ImageSummary, ImageListOptions, RemoveImagesResult, ImageView, GcResult, CheckResult, DiskUsage, SystemInfo, SaveResult, SaveFormat, ImportResult, PullResult, PushResult, ContainerInfo, ContainerRecord, LogEntry, Credentials };

// ---- options ----

/** How to reach registries (pull, push, login, and `run` when it pulls). */
export interface RegistrySettings {
  /** Hosts that may be reached over plain HTTP (loopback always may). */
  insecureRegistries?: readonly string[];
  /** Extra PEM CA files trusted for registry TLS. */
  caFiles?: readonly string[];
  /** Where credentials come from (default: docker's config.json under DOCKER_CONFIG). */
  credentials?: (domain: string) => Promise<Credentials | undefined>;
}

export interface OpenOptions {
  /** The berth root; else BERTH_ROOT, else /var/lib/berth as root, else $XDG_DATA_HOME/berth. */
  root?: string;
  registry?: RegistrySettings;
  /** The runc binary (default: BERTH_RUNC, else `runc` on PATH). */
  runc?: string;
  /** Snapshot driver for new containers (default: overlay when it works, else copy; or BERTH_SNAPSHOTTER). */
  snapshotter?: 'overlay' | 'copy';
}

/** Where a process's output goes: collected (`pipe`, the default), ours, dropped, or a stream. */
export type Output = 'pipe' | 'inherit' | 'ignore' | Writable;

/** When `run`/`create` pull the image: when it is absent (default), never, or every time. */
export type PullPolicy = 'missing' | 'never' | 'always';

export interface ContainerOptions extends OpOptions {
  name?: string;
  /** Replaces the image's Entrypoint (one word, as docker's --entrypoint). */
  entrypoint?: string;
  /** `KEY=VALUE` strings (a bare `KEY` takes the value from this process's environment), or a record. */
  env?: readonly string[] | Readonly<Record<string, string>>;
  /** docker --env-file files (read here, same syntax as docker). */
  envFiles?: readonly string[];
  workdir?: string;
  /** name|uid[:group|gid], resolved through the image's /etc/passwd and /etc/group. */
  user?: string;
  /** Bind mounts `/host:/ctr[:ro]`. */
  volumes?: readonly string[];
  /** tmpfs mounts `/path[:options]`. */
  tmpfs?: readonly string[];
  readOnly?: boolean;
  /** private (default: own namespace, loopback only), host, or none. */
  network?: 'private' | 'host' | 'none';
  hostname?: string;
  /** Memory limit in bytes, or a docker size (`512m`). */
  memory?: number | string;
  cpus?: number;
  pidsLimit?: number;
  capAdd?: readonly string[];
  capDrop?: readonly string[];
  privileged?: boolean;
  /** Run the host's tini as PID 1. */
  init?: boolean;
  /** Remove the container (record, rootfs, log) once its process exited. */
  rm?: boolean;
  /** Give the process a terminal (this process's, which must be a TTY): stdout/stderr are then 'inherit'. */
  tty?: boolean;
  /** Keep stdin open: 'inherit' gives the container this process's stdin. Default 'ignore'. */
  stdin?: 'inherit' | 'ignore';
  pull?: PullPolicy;
  /** Platform of the image to pull: a Platform or `os/arch[/variant]` (default: this host's). */
  platform?: Platform | string;
  /** Told what the user should hear about but that does not stop the call (an old runc: the first time this root sees it, once per Berth). */
  onWarning?: (message: string) => void;
}

/**
 * Called once runc was spawned, before the process starts, with a function that hands runc a
 * signal, which runc forwards to the process (runc's own SIGKILL cannot be forwarded). A CLI
 * in the foreground passes on SIGINT, SIGTERM, SIGHUP... with it, as docker's attached run does.
 */
export type ForwardSignals = (forward: (signal: NodeJS.Signals) => void) => void;

export interface RunOptions extends ContainerOptions {
  /** Default 'pipe': the output is collected and returned as a string ('inherit' with tty). */
  stdout?: Output;
  /** Default 'pipe'. */
  stderr?: Output;
  /**
   * Called once the container's process runs, with a function that sends its init a signal
   * (default SIGKILL, through `runc kill`). A CLI uses it to forward SIGINT/SIGTERM.
   */
  onStart?: (started: { containerId: string; pid: number; kill: (signal?: NodeJS.Signals) => void }) => void;
  forwardSignals?: ForwardSignals;
}

/**
 * What `run` and `exec` resolve to. A non-zero exit status resolves (it does not reject, like
 * execa with `reject: false`): check `exitCode`. Only failures to start reject: an image that
 * cannot be found or pulled, a command that is not found (BerthError PROCESS, exitCode 127) or
 * not executable (126), an aborted `signal` (ABORTED).
 */
export interface ProcessResult {
  exitCode: number;
  /** With stdout 'pipe': everything the process wrote, as it wrote it (no newline stripped). */
  stdout?: string;
  stderr?: string;
}

export interface RunResult extends ProcessResult {
  containerId: string;
}

export interface ExecOptions {
  env?: readonly string[] | Readonly<Record<string, string>>;
  /** docker --env-file files (read here, same syntax as docker), before `env`. */
  envFiles?: readonly string[];
  workdir?: string;
  user?: string;
  tty?: boolean;
  stdin?: 'inherit' | 'ignore';
  stdout?: Output;
  stderr?: Output;
  /** Aborting sends the exec'd process SIGTERM (runc forwards it), SIGKILL to runc 2 s later, and rejects with ABORTED. */
  signal?: AbortSignal;
  /** Called once the process was spawned, with a function that sends it a signal (default SIGTERM; runc forwards it). */
  onStart?: (started: { kill: (signal?: NodeJS.Signals) => void }) => void;
  forwardSignals?: ForwardSignals;
}

export interface RegistryCallOptions extends OpOptions, RegistrySettings {
  /** Blobs transferred at once (default 4). */
  concurrency?: number;
}

export interface PullOptions extends RegistryCallOptions {
  /** Which image of a multi-platform index: a Platform or `os/arch[/variant]` (default: this host's). */
  platform?: Platform | string;
  allPlatforms?: boolean;
}

/** `copy` options: skopeo's (a platform as `os/arch[/variant]` or a Platform), containerd's address and unpack, registry settings. */
export type CopyOptions = Omit<CopyImageOptions, 'store' | 'platform'> & RegistrySettings & { platform?: Platform | string };

export interface PushOptions extends RegistryCallOptions {
  allPlatforms?: boolean;
  /** Upload blobs above this size in PATCH chunks of it (default 64 MiB). */
  chunkSize?: number;
  /** Uncompressed layers go up compressed (default gzip, as docker does); 'none' sends them as stored. */
  compression?: 'gzip' | 'zstd' | 'none';
  compressionLevel?: number;
  /** Push the local image `source` under the pushed name (default: the same name). */
  source?: string;
}

/** An archive: a file path, a readable stream, or an OCI layout directory. */
export type LoadInput = string | Readable | { path: string } | { stream: Readable } | { dir: string };

export interface LoadOptions extends OpOptions {
  /** How errors name the input (default: the path, or "the input stream"). */
  what?: string;
  /** Load only this platform of multi-platform images: a Platform or `os/arch[/variant]`. */
  platform?: Platform | string;
  allPlatforms?: boolean;
}

/** An image `load` stored: its full names and, as docker prints them, its familiar ones. */
export interface LoadedImage extends ArchiveImage {
  /** `names` as docker shows them (`busybox:latest` for `docker.io/library/busybox:latest`). */
  familiarNames: string[];
}

/** What `load` stored (images), left out (skipped) and wrote. */
export interface LoadResult extends Omit<ArchiveLoadResult, 'images'> {
  images: LoadedImage[];
}

/** Compress plain layers (gzip or zstd, at `compressionLevel`: gzip 1-9, zstd 1-19). */
export interface CompressionOptions {
  compress?: 'gzip' | 'zstd';
  compressionLevel?: number;
}

export interface SaveOptions extends OpOptions, CompressionOptions {
  /** docker (default: the docker-save dual format) or oci (an oci-archive). */
  format?: SaveFormat;
  /** Save only this platform of multi-platform images: a Platform or `os/arch[/variant]`. */
  platform?: Platform | string;
}

export interface ImportOptions extends OpOptions, CompressionOptions {
  /** How errors name the input (default: the path, or "the input stream"). */
  what?: string;
  /** NAME[:TAG] to tag the image with. */
  name?: string;
  /** docker --change instructions (CMD, ENTRYPOINT, ENV, ...). */
  changes?: readonly string[];
  message?: string;
  /** The image's platform: a Platform or `os/arch[/variant]` (default: this host's). */
  platform?: Platform | string;
}

export interface PruneOptions extends OpOptions {
  /** Remove containers that are not running first (default false). */
  containers?: boolean;
  /** Remove blobs no tag and no container reaches (default true). */
  content?: boolean;
  /** Remove unpacked layers no tagged image and no container uses (default true). */
  snapshots?: boolean;
  /** Report what would be removed; nothing is (content only). */
  dryRun?: boolean;
}

export interface PruneResult {
  /** Containers removed. */
  containers: string[];
  /** Blobs removed (or, with dryRun, that would be). */
  blobs: Digest[];
  /** Bytes of those blobs. */
  bytes: number;
  /** Unpacked layers (chain ids) removed. */
  snapshots: string[];
}

/** A container as `containers()` lists it. */
export interface ContainerSummary extends ContainerInfo {
  /** Its image as docker's ps shows it: the familiar name (`busybox:latest`), or a short ID when it was given by ID or digest. */
  image: string;
}

// ---- handles ----

/** An image in the store, found by name, ID (config digest or a 12+ hex prefix) or digest. */
export interface ImageHandle {
  /** The full normalised name when found by a name (or the first tag of it). */
  readonly name: string | undefined;
  /** What the name points at: a manifest or an index. */
  readonly digest: Digest;
  /** The root descriptor. */
  readonly descriptor: Descriptor;
  /** The image for this host (or `platform`): manifest, config and their descriptors. */
  inspect(opts?: { platform?: Platform }): Promise<ImageView>;
  /** The image config (docker's ID is its digest: `(await inspect()).configDesc.digest`). */
  config(opts?: { platform?: Platform }): Promise<ImageConfig>;
  /** Add (or move) the tag NAME[:TAG] to this image; the full normalised name. */
  tag(name: string): Promise<string>;
  /**
   * Remove what the handle was found by: one tag for a name, every tag for an ID or digest (that
   * needs `force` when there are several). Refused while a container uses it, unless `force`.
   * The content goes with the next `prune`.
   */
  remove(opts?: { force?: boolean }): Promise<RemoveImagesResult>;
}

/** A container, found by full ID, name or a unique ID prefix. */
export interface ContainerHandle {
  readonly id: string;
  readonly name: string;
  /** Record, state and status (running, exited, created, or dead: its monitor died). */
  info(): Promise<ContainerInfo>;
  /** Start it in the background (a monitor process owns it); resolves once runc started it. */
  start(): Promise<{ pid: number }>;
  /** Wait until it is no longer running; its exit status. */
  wait(opts?: { signal?: AbortSignal }): Promise<number>;
  /** Run a command in the running container. A non-zero exit resolves (see ProcessResult). */
  exec(cmd: readonly string[], opts?: ExecOptions): Promise<ProcessResult>;
  /** Its log entries ({ log, stream, time }); with `follow`, new ones until it stops. */
  logs(opts?: { follow?: boolean; tail?: number; signal?: AbortSignal }): AsyncIterable<LogEntry>;
  /** The image's stop signal (or `stopSignal`), then SIGKILL after `timeout` seconds (default 10). */
  stop(opts?: { timeout?: number; stopSignal?: string }): Promise<number | undefined>;
  /** Send a signal (default SIGKILL) to its init; `all` to every process. */
  kill(signal?: string | number, opts?: { all?: boolean }): Promise<void>;
  /** Remove it; `force` kills a running one first and clears what a crash left. */
  remove(opts?: { force?: boolean }): Promise<void>;
  /** docker's `container inspect` document (Id, Name, State, Config, …). */
  inspect(): Promise<Record<string, unknown>>;
  /** docker's `diff`: what changed in its filesystem (A added, C changed, D deleted), sorted by path. */
  diff(opts?: { signal?: AbortSignal }): Promise<ContainerChange[]>;
  /** docker's `commit`: its changes as a new layer on its image, tagged `opts.name` when given. */
  commit(opts?: ContainerCommitOptions): Promise<CommitResult>;
}

/** `versions()`: what `berth version` prints. */
export interface Versions {
  berth: string;
  node: string;
  /** runc's version, or null when it is not found. */
  runc: string | null;
  /** buildctl's version line, or null when it is not found. */
  buildctl: string | null;
}

// ---- the facade ----

/** Open berth on a root. Cheap: nothing is read or loaded until a verb needs it. */
export async function openBerth(opts: OpenOptions = {}): Promise<Berth> {
  const { resolveRoot } = await import('./store/root.js');
  return new Berth(resolveRoot(opts.root), opts);
}

/** One berth root: images, containers and registries. Close it (or `await using`) when done. */
export class Berth implements AsyncDisposable {
  /** The absolute root directory. */
  readonly root: string;
  readonly #opts: OpenOptions;
  #closed = false;
  #store: Promise<ContentStore> | undefined;
  #containers: Promise<Containers> | undefined;
  #transport: Promise<Transport> | undefined;
  #runcWarned = false;

  /** @internal use openBerth() */
  constructor(root: string, opts: OpenOptions) {
    this.root = root;
    this.#opts = opts;
  }

  // ---- lazily opened rooms ----

  #check(): void {
    if (this.#closed) throw new BerthError('INVALID_ARGUMENT', 'this Berth is closed', { hint: 'open another with openBerth()' });
  }

  /** The content store (opened, and created when needed, on first use). */
  store(): Promise<ContentStore> {
    this.#check();
    return (this.#store ??= import('./store/store.js').then((m) => m.ContentStore.open(this.root)));
  }

  /**
   * The run room's container set. Every use of `Containers` in the facade goes through the
   * methods below this one (create, supervise, startDetached, wait, kill, stop, remove, exec,
   * logs, list, find, info), so a reshaped run room changes one place.
   */
  #runtime(): Promise<Containers> {
    this.#check();
    return (this.#containers ??= (async () => {
      const [{ Containers }, { Runc }, { join }] = await Promise.all([import('./run/containers.js'), import('./run/runc.js'), import('node:path')]);
      return Containers.open(this.root, {
        ...(this.#opts.runc ? { runc: new Runc({ binary: this.#opts.runc, root: join(this.root, 'runc') }) } : {}),
        ...(this.#opts.snapshotter ? { snapshotter: this.#opts.snapshotter } : {}),
      });
    })());
  }

  /** One registry transport for this Berth (connections and tokens reused), closed by close(). */
  #registry(o: RegistrySettings): Promise<{ transport?: Transport } & RegistrySettings> {
    const base = this.#opts.registry ?? {};
    // Per-call settings that differ from the Berth's get a transport of their own.
    if (o.insecureRegistries || o.caFiles || o.credentials) {
      return Promise.resolve({
        insecureRegistries: [...(base.insecureRegistries ?? []), ...(o.insecureRegistries ?? [])],
        caFiles: [...(base.caFiles ?? []), ...(o.caFiles ?? [])],
        ...(o.credentials ?? base.credentials ? { credentials: o.credentials ?? base.credentials } : {}),
      });
    }
    this.#transport ??= import('./registry/client.js').then((m) => m.openTransport(base).transport);
    return this.#transport.then((transport) => ({ transport }));
  }

  // ---- images ----

  /** Pull NAME[:TAG|@DIGEST] from its registry into the store. */
  async pull(ref: string, opts: PullOptions = {}): Promise<PullResult> {
    const store = await this.store();
    const { pull } = await import('./pull.js');
    const { concurrency, platform: wanted, allPlatforms, signal, onProgress, ...reg } = opts;
    const platform = await this.#platform(wanted);
    return pull(store, ref, {
      ...(await this.#registry(reg)),
      ...(concurrency !== undefined ? { concurrency } : {}),
      ...(platform ? { platform } : {}),
      ...(allPlatforms ? { allPlatforms } : {}),
      ...op({ signal, onProgress }),
    });
  }

  /** Push a stored image NAME[:TAG] to its registry. */
  async push(ref: string, opts: PushOptions = {}): Promise<PushResult> {
    if (ref.startsWith('containerd:')) {
      // `push containerd:[NS/]NAME`: the stored NAME copied into containerd (only missing blobs sent).
      const { parseLocation } = await import('./transports/index.js');
      const loc = parseLocation(ref);
      const name = loc.transport === 'containerd' ? loc.ref : undefined;
      if (!name) throw new BerthError('INVALID_ARGUMENT', `push ${JSON.stringify(ref)}: give an image name after the namespace`, { hint: 'e.g. berth push containerd:k8s.io/myapp:dev' });
      const { concurrency, allPlatforms, signal, onProgress } = opts;
      const r = await this.copy(name, ref, { ...(concurrency !== undefined ? { concurrency } : {}), ...(allPlatforms ? { allPlatforms } : {}), ...op({ signal, onProgress }) });
      return { name: r.name ?? name, digest: r.root.digest, root: r.root, copied: r.sent.blobs, existing: r.existing.blobs };
    }
    const store = await this.store();
    const { push } = await import('./push.js');
    const { concurrency, allPlatforms, chunkSize, compression, compressionLevel, source, signal, onProgress, ...reg } = opts;
    return push(store, ref, {
      ...(compression ? { compression } : {}),
      ...(compressionLevel !== undefined ? { compressionLevel } : {}),
      ...(source ? { source } : {}),
      ...(await this.#registry(reg)),
      ...(concurrency !== undefined ? { concurrency } : {}),
      ...(allPlatforms ? { allPlatforms } : {}),
      ...(chunkSize !== undefined ? { chunkSize } : {}),
      ...op({ signal, onProgress }),
    });
  }

  /**
   * Build a Dockerfile: `context` is a directory or a tar stream. `builder: 'auto'` (the default)
   * uses BuildKit when a daemon answers (or a private one can be started) and the built-in
   * builder otherwise; the result is tagged in this store unless other outputs are asked for.
   */
  async build(context: string | Readable, opts: BuildOptions = {}): Promise<BuildResult> {
    const { build } = await import('./build/index.js');
    return build(...this.#buildArgs(context, opts));
  }

  /**
   * `build --check-reproducible`: build twice without cache with one SOURCE_DATE_EPOCH (the build
   * arg, else the environment, else 0) and compare; the first difference (layer, file, what) or
   * equal digests. The first build is tagged.
   */
  async checkReproducible(context: string | Readable, opts: BuildOptions = {}): Promise<ReproducibleResult> {
    const { checkReproducible } = await import('./build/index.js');
    return checkReproducible(...this.#buildArgs(context, opts));
  }

  #buildArgs(context: string | Readable, opts: BuildOptions): [BuildRequest, BuilderSelection] {
    const { builder, addr, buildctl, tls, keepDaemon, ...req } = opts;
    return [
      { tags: [], buildArgs: {}, labels: {}, secrets: [], ssh: [], cacheFrom: [], cacheTo: [], outputs: [], ...req, context },
      { root: this.root, ...(builder ? { builder } : {}), ...(addr ? { addr } : {}), ...(buildctl ? { buildctl } : {}), ...(tls ? { tls } : {}), ...(keepDaemon ? { keepDaemon } : {}) },
    ];
  }

  /**
   * Copy an image between any two places, with skopeo's transport names: `docker://REF`,
   * `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`, `docker-archive:FILE[:REF]`,
   * `containerd:[NAMESPACE/]REF`, and a bare `REF` or `berth:REF` for this store. Only the blobs
   * the target lacks are sent.
   */
  async copy(src: string, dst: string, opts: CopyOptions = {}): Promise<CopyImageResult> {
    const { copyImage } = await import('./transports/index.js');
    const { insecureRegistries, caFiles, credentials, platform: wanted, ...rest } = opts;
    const platform = await this.#platform(wanted);
    const reg = await this.#registry({ ...(insecureRegistries ? { insecureRegistries } : {}), ...(caFiles ? { caFiles } : {}), ...(credentials ? { credentials } : {}) });
    return copyImage(src, dst, { ...reg, ...rest, ...(platform ? { platform } : {}), store: () => this.store() });
  }

  /** Load every image of a docker-save or OCI archive (file, stream) or OCI layout directory. */
  async load(input: LoadInput, opts: LoadOptions = {}): Promise<LoadResult> {
    const platform = await this.#platform(opts.platform);
    const store = await this.store();
    const { loadArchive } = await import('./import/load.js');
    const src = typeof input === 'string' ? { path: input } : 'path' in input || 'dir' in input || 'stream' in input ? input : { stream: input as Readable };
    const what = opts.what ?? ('path' in src ? src.path : 'dir' in src ? src.dir : 'the input stream');
    const r = await loadArchive(store, src, { what, ...(platform ? { platform } : {}), ...(opts.allPlatforms ? { allPlatforms: true } : {}), ...op(opts) });
    const { familiar } = await import('./oci/reference.js');
    return { ...r, images: r.images.map((i) => ({ ...i, familiarNames: i.names.map(familiar) })) };
  }

  /** Save images (names, IDs or digests) to a file path or a writable stream. */
  async save(refs: string | readonly string[], dest: string | Writable, opts: SaveOptions = {}): Promise<SaveResult> {
    const platform = await this.#platform(opts.platform);
    const store = await this.store();
    const { saveImages, saveImagesToFile } = await import('./import/save.js');
    const list = typeof refs === 'string' ? [refs] : refs;
    const o = { ...(opts.format ? { format: opts.format } : {}), ...(platform ? { platform } : {}), ...compression(opts), ...op(opts) };
    return typeof dest === 'string' ? saveImagesToFile(store, list, dest, o) : saveImages(store, list, dest, o);
  }

  /** Make a one-layer image from a root filesystem tarball (path or stream; plain, gzip or zstd). */
  async import(input: string | Readable, opts: ImportOptions = {}): Promise<ImportResult> {
    const platform = await this.#platform(opts.platform);
    const store = await this.store();
    const { importRootfs } = await import('./import/rootfs.js');
    return importRootfs(store, typeof input === 'string' ? { path: input } : { stream: input }, opts.name, {
      what: opts.what ?? (typeof input === 'string' ? input : 'the input stream'),
      ...(opts.changes ? { changes: opts.changes } : {}),
      ...(opts.message !== undefined ? { message: opts.message } : {}),
      ...(platform ? { platform } : {}),
      ...compression(opts),
      ...op(opts),
    });
  }

  /** One row per tag, untagged images as `<none>` (docker's `images`, with docker's keys). */
  async images(opts: ImageListOptions = {}): Promise<ImageSummary[]> {
    const store = await this.store();
    const { listImageSummaries } = await import('./system.js');
    return listImageSummaries(store, opts);
  }

  /** Find an image by name, ID or digest: NOT_FOUND when the store has no such image. */
  async image(ref: string): Promise<ImageHandle> {
    const store = await this.store();
    const images = await import('./store/images.js');
    const found = await images.findImage(store, ref);
    const name = found.record?.name;
    return {
      name,
      digest: found.desc.digest,
      descriptor: found.desc,
      inspect: async (o = {}) => {
        const v = await images.viewImage(store, found.desc, o.platform);
        if (name) v.name = name;
        return v;
      },
      config: async (o = {}) => (await images.viewImage(store, found.desc, o.platform)).config,
      tag: async (target) => {
        const { parseReference } = await import('./oci/reference.js');
        parseReference(target); // validate before touching anything
        return images.tagImage(store, target, found.desc);
      },
      remove: async (o = {}) => {
        const { removeImages } = await import('./system.js');
        const [r] = await removeImages(store, [ref], o.force ? { force: true } : {});
        return r!;
      },
    };
  }

  /**
   * docker's `image inspect` document for each of `refs` (Id, RepoTags, RepoDigests, Config,
   * RootFS, …, plus berth's fields). `platform` is `os/arch[/variant]` or a Platform.
   */
  async inspect(refs: string | readonly string[], opts: { platform?: string | Platform } = {}): Promise<Record<string, unknown>[]> {
    const store = await this.store();
    const [{ inspectImage }, platform] = await Promise.all([import('./system.js'), this.#platform(opts.platform)]);
    const out: Record<string, unknown>[] = [];
    for (const r of typeof refs === 'string' ? [refs] : refs) out.push(await inspectImage(store, r, platform));
    return out;
  }

  /** docker's `history`: one row per history entry, newest first, with the layer sizes. */
  async history(ref: string, opts: { platform?: string | Platform } = {}): Promise<ImageHistoryRow[]> {
    const store = await this.store();
    const [{ imageHistory }, platform] = await Promise.all([import('./system.js'), this.#platform(opts.platform)]);
    return imageHistory(store, ref, platform);
  }

  /**
   * docker's `rmi`: untag and delete each of `refs` in order, one result each (an error stops at
   * the failing one; the earlier ones stay removed, as docker does).
   */
  async removeImages(refs: readonly string[], opts: { force?: boolean } = {}): Promise<RemoveImagesResult[]> {
    const store = await this.store();
    const { removeImages } = await import('./system.js');
    return removeImages(store, refs, opts.force ? { force: true } : {});
  }

  /** Tag `source` (name, ID or digest) as `target` NAME[:TAG]; the full normalised name. */
  async tag(source: string, target: string): Promise<string> {
    const { parseReference } = await import('./oci/reference.js');
    parseReference(target); // validate before touching anything
    return (await this.image(source)).tag(target);
  }

  /**
   * docker's `image prune` (and with `snapshots` and `buildCache`, `system prune`): untagged
   * images no container uses, (with `buildCache`) the build cache no running build holds, then
   * every blob nothing reaches (layers of build cache records are kept), then (with `snapshots`)
   * unused unpacked layers.
   */
  async pruneImages(opts: { dryRun?: boolean; snapshots?: boolean; buildCache?: boolean; signal?: AbortSignal } = {}): Promise<ContentPruneResult> {
    const store = await this.store();
    const { prune } = await import('./system.js');
    return prune(store, opts);
  }

  /**
   * docker's `builder prune`: every build cache record and every cache mount no running build
   * holds, then the layers only those records kept. Images are not touched.
   */
  async pruneBuildCache(opts: { dryRun?: boolean; signal?: AbortSignal } = {}): Promise<BuildCachePruneResult> {
    const store = await this.store();
    const { pruneBuilderCache } = await import('./system.js');
    return pruneBuilderCache(store, opts);
  }

  /** A platform string (`os/arch[/variant]`) parsed, or a Platform as given. */
  async #platform(p: string | Platform | undefined): Promise<Platform | undefined> {
    if (p === undefined || typeof p !== 'string') return p;
    const { parsePlatform } = await import('./oci/platform.js');
    return parsePlatform(p);
  }

  /** Remove unused content, unpacked layers and (when asked) stopped containers. */
  async prune(opts: PruneOptions = {}): Promise<PruneResult> {
    const out: PruneResult = { containers: [], blobs: [], bytes: 0, snapshots: [] };
    if (opts.containers && !opts.dryRun) {
      const rt = await this.#runtime();
      for (const i of await rt.list()) {
        opts.signal?.throwIfAborted();
        if (i.status === 'running') continue;
        await rt.remove(i.record.id, { force: true });
        out.containers.push(i.record.id);
      }
    }
    const store = await this.store();
    const system = await import('./system.js');
    if (opts.content !== false) {
      const r = await system.pruneContent(store, { ...(opts.dryRun ? { dryRun: true } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
      out.blobs = r.removed;
      out.bytes = r.bytes;
    }
    if (opts.snapshots !== false && !opts.dryRun) out.snapshots = await system.pruneSnapshots(store);
    return out;
  }

  // ---- containers ----

  /**
   * Create the container, pulling the image as `pull` says. With `missing`, create is tried
   * first: a warm create (the image resolved and unpacked by an earlier run) never opens the
   * store, so `berth run` starts as fast as the run room allows; NOT_FOUND pulls and tries again.
   */
  async #newContainer(image: string, cmd: readonly string[] | undefined, o: ContainerOptions): Promise<{ rt: Containers; record: ContainerRecord }> {
    const policy = o.pull ?? 'missing';
    if (!['missing', 'never', 'always'].includes(policy)) {
      throw new BerthError('INVALID_ARGUMENT', `invalid pull policy ${JSON.stringify(policy)}`, { hint: 'use missing, never or always' });
    }
    const co = await this.#createOptions(image, cmd, o);
    const rt = await this.#runtime();
    const v = await rt.checkRunc();
    if (v.fresh && v.warning && o.onWarning && !this.#runcWarned) {
      this.#runcWarned = true; // once: the run room's check is cached for this Berth's life
      o.onWarning(v.warning);
    }
    const store = () => this.store();
    const pull = () => this.pull(image, { ...(o.platform ? { platform: o.platform } : {}), ...op(o) });
    if (policy === 'always') await pull();
    try {
      return { rt, record: await rt.create(store, co) };
    } catch (e) {
      if (policy !== 'missing' || !(isBerthError(e, 'NOT_FOUND') && /^no such image/.test(e.message))) throw e;
    }
    await pull();
    return { rt, record: await rt.create(store, co) };
  }

  /** Translate facade options into the run room's CreateOptions (validation stays there). */
  async #createOptions(image: string, cmd: readonly string[] | undefined, o: ContainerOptions) {
    const spec = await import('./run/spec.js');
    const env = await environment(o, spec);
    if (o.network !== undefined && !['private', 'host', 'none'].includes(o.network)) {
      throw new BerthError('INVALID_ARGUMENT', `unsupported network ${JSON.stringify(o.network)}`, { hint: 'use private (the default: loopback only), host or none' });
    }
    return {
      image,
      ...(cmd && cmd.length > 0 ? { cmd: [...cmd] } : {}),
      ...(o.name !== undefined ? { name: o.name } : {}),
      ...(o.entrypoint !== undefined ? { entrypoint: o.entrypoint } : {}),
      env,
      ...(o.workdir !== undefined ? { workdir: o.workdir } : {}),
      ...(o.user !== undefined ? { user: o.user } : {}),
      volumes: [...(o.volumes ?? [])],
      tmpfs: [...(o.tmpfs ?? [])],
      readOnly: !!o.readOnly,
      ...(o.network ? { network: o.network } : {}),
      ...(o.hostname !== undefined ? { hostname: o.hostname } : {}),
      ...(o.memory !== undefined ? { memory: typeof o.memory === 'number' ? o.memory : spec.parseBytes(o.memory) } : {}),
      ...(o.cpus !== undefined ? { cpus: o.cpus } : {}),
      ...(o.pidsLimit !== undefined ? { pidsLimit: o.pidsLimit } : {}),
      capAdd: [...(o.capAdd ?? [])],
      capDrop: [...(o.capDrop ?? [])],
      privileged: !!o.privileged,
      autoRemove: !!o.rm,
      init: !!o.init,
      tty: !!o.tty,
      interactive: o.stdin === 'inherit',
      pull: 'never' as const,
      ...op(o),
    };
  }

  /** Create a container (pulling the image as `pull` says) without starting it. */
  async create(image: string, cmd?: readonly string[], opts: ContainerOptions = {}): Promise<ContainerHandle> {
    const { rt, record } = await this.#newContainer(image, cmd, opts);
    return this.#handle(rt, record.id, record.name);
  }

  /**
   * Run a command in a new container and wait for it, like execa: resolves `{ exitCode, stdout,
   * stderr, containerId }`; a non-zero exit status resolves too (see ProcessResult). stdout and
   * stderr default to 'pipe' (collected). `cmd` defaults to the image's Entrypoint and Cmd.
   * Aborting `signal` kills the container (SIGKILL) and rejects with ABORTED.
   */
  async run(image: string, cmd?: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    checkStdio(opts); // before anything is created
    const { rt, record } = await this.#newContainer(image, cmd, opts);
    const id = record.id;
    // Signals go to the container's init through `runc kill` (SIGKILL included, which runc
    // itself could not forward); abort kills every process of the container.
    const signalIt = (sig: NodeJS.Signals) => rt.kill(id, sig).catch(() => {});
    let supervising = false;
    const res = await supervised(
      opts,
      (io) => {
        supervising = true;
        return rt.supervise(id, { ...io, onStarted: (pid) => opts.onStart?.({ containerId: id, pid, kill: (s) => void signalIt(s ?? 'SIGKILL') }) });
      },
      (forward) => void rt.kill(id, 'SIGKILL', { all: true }).catch(() => forward('SIGKILL')), // not started yet: stop runc
    ).catch(async (e: unknown) => {
      // Aborted between create and start: an `rm` container goes (supervise removes the others' leftovers itself).
      if (!supervising && opts.rm) await rt.remove(id, { force: true }).catch(() => {});
      throw e;
    });
    return { ...res, containerId: id };
  }

  /** Find a container by full ID, name or unique ID prefix: NOT_FOUND when there is none. */
  async container(ref: string): Promise<ContainerHandle> {
    const rt = await this.#runtime();
    const id = await rt.find(ref);
    const info = await rt.info(id);
    return this.#handle(rt, id, info.record.name);
  }

  /** Every container, newest first, with its status and its image as docker's ps shows it. */
  async containers(): Promise<ContainerSummary[]> {
    this.#check();
    // A listing reads records only: the runtime (runc, snapshots, bundles) is not loaded for it.
    const [{ Records }, { familiar, looksLikeDigest }] = await Promise.all([import('./run/records.js'), import('./oci/reference.js')]);
    const list = this.#containers ? await (await this.#containers).list() : await new Records(this.root).list();
    return list.map((c) => {
      const { name, ref } = c.record.image;
      return { ...c, image: looksLikeDigest(ref) ? ref.replace(/^sha256:/, '').slice(0, 12) : familiar(name ?? ref) };
    });
  }

  /** docker's `ps -s`: each container's writable layer (`rw`) and whole root filesystem size, by ID. */
  async containerSizes(): Promise<Map<string, { rw: number; rootFs: number }>> {
    const store = await this.store();
    const { containerSizes } = await import('./system.js');
    return containerSizes(this.root, store);
  }

  /** docker's `container prune`: remove every container that is not running; their IDs. */
  async pruneContainers(): Promise<string[]> {
    const rt = await this.#runtime();
    return rt.prune();
  }

  #handle(rt: Containers, id: string, name: string): ContainerHandle {
    return {
      id,
      name,
      info: () => rt.info(id),
      inspect: async () => {
        const { containerInspect } = await import('./system.js');
        return containerInspect(await rt.info(id));
      },
      diff: async (o = {}) => {
        const { containerDiff } = await import('./commit.js');
        return containerDiff(rt, id, o.signal ? { signal: o.signal } : {});
      },
      commit: async (o = {}) => {
        const { commitContainer, parseEpoch } = await import('./commit.js');
        const { epoch, ...rest } = o;
        const e = typeof epoch === 'string' ? parseEpoch(epoch) : epoch;
        return commitContainer(await this.store(), rt, id, { ...rest, ...(e !== undefined ? { epoch: e } : {}) });
      },
      start: () => rt.startDetached(id),
      wait: (o = {}) => rt.wait(id, o.signal ? { signal: o.signal } : {}),
      exec: async (cmd, o = {}) => {
        const spec = await import('./run/spec.js');
        const eo = {
          args: [...cmd],
          env: await environment(o, spec),
          ...(o.workdir !== undefined ? { workdir: o.workdir } : {}),
          ...(o.user !== undefined ? { user: o.user } : {}),
          tty: !!o.tty,
          interactive: o.stdin === 'inherit',
        };
        // runc exec forwards the signals it gets to the process; SIGKILL would only stop runc.
        return supervised(
          o,
          (io) =>
            rt.exec(id, eo, {
              ...io,
              forwardSignals: (f) => {
                io.forwardSignals!(f);
                o.onStart?.({ kill: (sig) => f(sig ?? 'SIGTERM') });
              },
            }),
          (forward) => {
            forward('SIGTERM');
            setTimeout(() => forward('SIGKILL'), 2000).unref();
          },
        );
      },
      logs: (o = {}) =>
        logStream((onEntry, stop) => rt.logs(id, { ...(o.follow ? { follow: true } : {}), ...(o.tail !== undefined ? { tail: o.tail } : {}), signal: o.signal ? AbortSignal.any([o.signal, stop]) : stop }, onEntry)),
      stop: (o = {}) => rt.stop(id, { ...(o.timeout !== undefined ? { timeout: o.timeout } : {}), ...(o.stopSignal ? { signal: o.stopSignal } : {}) }),
      kill: (signal, o = {}) => rt.kill(id, signal ?? 'SIGKILL', o.all ? { all: true } : {}),
      remove: (o = {}) => rt.remove(id, o.force ? { force: true } : {}),
    };
  }

  // ---- registries and the store as a whole ----

  /** Check credentials against a registry and store them (docker's config.json or its helper). */
  async login(server: string, credentials: Credentials, opts: OpOptions & RegistrySettings = {}): Promise<{ domain: string; where: string }> {
    this.#check();
    const { login } = await import('./registry/login.js');
    const { signal, onProgress, ...reg } = opts;
    return login(server, credentials, { ...(await this.#registry(reg)), ...op({ signal, onProgress }) });
  }

  /** Forget the stored credentials of a registry. */
  async logout(server: string): Promise<{ domain: string; removed: boolean }> {
    this.#check();
    const { logout } = await import('./registry/login.js');
    return logout(server);
  }

  /** Stop the private buildkitd kept for this root (`build --keep-buildkitd`); false when none ran. */
  async stopBuildkit(): Promise<boolean> {
    this.#check();
    const { stopKeptDaemon } = await import('./build/buildkit/daemon.js');
    return stopKeptDaemon(this.root);
  }

  /** docker's `system df`. */
  async diskUsage(): Promise<DiskUsage> {
    const { diskUsage } = await import('./system.js');
    return diskUsage(await this.store());
  }

  /** Re-hash every blob and check every image is whole (problems are returned, not thrown). */
  async check(opts: { signal?: AbortSignal } = {}): Promise<CheckResult> {
    const { checkStore } = await import('./system.js');
    return checkStore(await this.store(), opts);
  }

  /** The versions of berth, Node, runc (this Berth's) and buildctl; null for a binary that is not found. Reads no store. */
  async versions(opts: { signal?: AbortSignal } = {}): Promise<Versions> {
    this.#check();
    const [{ Runc }, { Buildctl }, { readFile }, { join }] = await Promise.all([import('./run/runc.js'), import('./build/buildctl.js'), import('node:fs/promises'), import('node:path')]);
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    const runc = await new Runc({ ...(this.#opts.runc ? { binary: this.#opts.runc } : {}), root: join(this.root, 'runc') })
      .version()
      .catch(() => undefined);
    return { berth: pkg.version, node: process.version, runc: runc?.version ?? null, buildctl: (await new Buildctl().version(opts.signal)) ?? null };
  }

  /** Where the store is, how big, and which runtimes were found. */
  async info(opts: { signal?: AbortSignal } = {}): Promise<SystemInfo> {
    const { systemInfo } = await import('./system.js');
    return systemInfo(await this.store(), opts.signal);
  }

  /** Release what this Berth holds (the registry transport). Idempotent; later calls reject. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const t = this.#transport;
    this.#transport = undefined;
    if (t) await (await t.catch(() => undefined))?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

// ---- helpers ----

/** Only the defined compression options. */
function compression(o: CompressionOptions): CompressionOptions {
  return { ...(o.compress ? { compress: o.compress } : {}), ...(o.compressionLevel !== undefined ? { compressionLevel: o.compressionLevel } : {}) };
}

/** Only the defined parts of { signal, onProgress } (exact optional properties downstream). */
function op(o: { signal?: AbortSignal | undefined; onProgress?: ((e: ProgressEvent) => void) | undefined }): OpOptions {
  return { ...(o.signal ? { signal: o.signal } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}) };
}

/** `envFiles` (read and parsed as docker does) and then `env`, as `KEY=VALUE` strings. */
async function environment(o: { env?: ContainerOptions['env']; envFiles?: readonly string[] }, spec: typeof import('./run/spec.js')): Promise<string[]> {
  const env: string[] = [];
  if (o.envFiles?.length) {
    const { readFile } = await import('node:fs/promises');
    for (const f of o.envFiles) {
      const text = await readFile(f, 'utf8').catch((e: unknown) => {
        throw new BerthError('INVALID_ARGUMENT', `cannot read --env-file ${f}`, { cause: e, hint: 'check the path' });
      });
      env.push(...spec.parseEnvFile(text));
    }
  }
  env.push(...envList(o.env, spec.parseEnvFlags));
  return env;
}

function envList(env: ContainerOptions['env'], parse: (flags: readonly string[]) => string[]): string[] {
  if (!env) return [];
  if (Array.isArray(env)) return parse(env as readonly string[]);
  return Object.entries(env as Record<string, string>).map(([k, v]) => {
    if (!k || k.includes('=')) throw new BerthError('INVALID_ARGUMENT', `invalid environment variable name ${JSON.stringify(k)}`);
    return `${k}=${v}`;
  });
}

/** A Writable that keeps what is written, for 'pipe'. */
async function collector(): Promise<{ stream: Writable; text: () => string }> {
  const { Writable } = await import('node:stream');
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

async function output(o: Output | undefined, ours: NodeJS.WritableStream): Promise<{ stream?: NodeJS.WritableStream; text?: () => string }> {
  if (o === undefined || o === 'pipe') {
    const c = await collector();
    return c;
  }
  if (o === 'inherit') return { stream: ours };
  if (o === 'ignore') return {};
  return { stream: o };
}

/**
 * Run a supervised process (a container's or an exec'd one) with the facade's stdio and abort
 * handling; the run room does the work through the SuperviseIO it is given.
 */
async function supervised(
  o: { stdin?: 'inherit' | 'ignore'; stdout?: Output; stderr?: Output; tty?: boolean; signal?: AbortSignal; forwardSignals?: ForwardSignals },
  fn: (io: SuperviseIO) => Promise<number>,
  stop: (forward: (s: NodeJS.Signals) => void) => void,
): Promise<ProcessResult> {
  if (o.signal?.aborted) throw aborted(o.signal);
  checkStdio(o);
  const out = await output(o.tty ? 'inherit' : o.stdout, process.stdout);
  const err = await output(o.tty ? 'inherit' : o.stderr, process.stderr);
  let forward: ((s: NodeJS.Signals) => void) | undefined;
  let killed = false;
  const onAbort = () => {
    killed = true;
    if (forward) stop(forward);
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const exitCode = await fn({
      stdin: o.stdin === 'inherit' ? 'inherit' : 'ignore',
      tty: !!o.tty,
      ...(out.stream ? { stdout: out.stream } : {}),
      ...(err.stream ? { stderr: err.stream } : {}),
      forwardSignals: (f) => {
        forward = f;
        o.forwardSignals?.(f);
        if (killed) stop(f);
      },
    });
    if (killed && o.signal) throw aborted(o.signal);
    return { exitCode, ...(out.text ? { stdout: out.text() } : {}), ...(err.text ? { stderr: err.text() } : {}) };
  } catch (e) {
    // Killed before it started (runc reports a start failure): the abort is the reason.
    if (killed && o.signal) throw aborted(o.signal);
    throw e;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
}

/** With a terminal, runc hands the pty to our own stdio: nothing can be collected or redirected. */
function checkStdio(o: { tty?: boolean; stdout?: Output; stderr?: Output }): void {
  if (o.tty && [o.stdout, o.stderr].some((x) => x !== undefined && x !== 'inherit')) {
    throw new BerthError('INVALID_ARGUMENT', 'tty needs stdout and stderr "inherit"', { hint: 'drop tty to collect or redirect the output' });
  }
}

function aborted(signal: AbortSignal): BerthError {
  return new BerthError('ABORTED', 'aborted', { cause: signal.reason });
}

/**
 * Turn the run room's callback-style log reader into an async iterable; leaving the loop early
 * (`break`) stops a followed read through `stop`.
 */
function logStream(read: (onEntry: (e: LogEntry) => void, stop: AbortSignal) => Promise<void>): AsyncIterable<LogEntry> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<LogEntry> {
      const stopper = new AbortController();
      const queue: LogEntry[] = [];
      let done = false;
      let failure: unknown;
      let wake: (() => void) | undefined;
      const notify = () => {
        wake?.();
        wake = undefined;
      };
      read((e) => {
        queue.push(e);
        notify();
      }, stopper.signal).then(
        () => {
          done = true;
          notify();
        },
        (e: unknown) => {
          failure = e;
          done = true;
          notify();
        },
      );
      return {
        async next(): Promise<IteratorResult<LogEntry>> {
          for (;;) {
            if (queue.length > 0) return { value: queue.shift()!, done: false };
            if (failure !== undefined) throw failure;
            if (done) return { value: undefined, done: true };
            await new Promise<void>((r) => (wake = r));
          }
        },
        async return(): Promise<IteratorResult<LogEntry>> {
          stopper.abort();
          queue.length = 0;
          return { value: undefined, done: true };
        },
      };
    },
  };
}
