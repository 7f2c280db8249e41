import type { Readable, Writable } from 'node:stream';
import type { Descriptor, Digest } from '../oci/types.js';

/**
 * The one interface both build backends implement: BuildKit (`buildkit/`, through `buildctl`) and
 * the built-in builder (`native/`, RUN steps in runc on overlay snapshots). The request is what
 * `docker build` takes; the result is what lands in the store (or in the outputs asked for).
 */

/** `--secret id=ID,src=PATH` or `--secret id=ID,env=NAME` (`type=file|env`). */
export interface SecretSpec {
  id: string;
  src?: string;
  env?: string;
}

/**
 * `--output`: `type=image` into berth's store (the default), `docker|oci|tar|local` with `dest`
 * (`-` for stdout), `registry` / `type=image,push=true` to push, `containerd` into a containerd.
 */
export interface OutputSpec {
  type: 'image' | 'docker' | 'oci' | 'tar' | 'local' | 'registry' | 'containerd';
  dest?: string;
  push?: boolean;
  /** Every other `key=value` of the flag, passed through (e.g. `name`, `namespace`, `compression`). */
  attrs: Record<string, string>;
}

export interface BuildRequest {
  /** A directory, or a tar stream of the context (`berth build -`). */
  context: string | Readable;
  /** Path of the Dockerfile (relative to the context or absolute); default `<context>/Dockerfile`. */
  dockerfile?: string;
  /** The Dockerfile's text when it comes from stdin (`-f -`); wins over `dockerfile`. */
  dockerfileText?: string;
  tags: string[];
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  target?: string;
  /** `os/arch[/variant]`; default this host's. */
  platform?: string;
  noCache?: boolean;
  /** Stage names whose steps are not taken from the cache. */
  noCacheFilter?: string[];
  /**
   * Base images (FROM, COPY --from=IMAGE): `missing` (the default, docker's) uses the store's
   * image and pulls one that is not there; `always` (`true`, docker's `--pull`) asks the
   * registry for the newest first; `never` uses the store only. `false` is docker's default.
   */
  pull?: boolean | 'always' | 'missing' | 'never';
  /** `default|none|host` for RUN steps. */
  network?: string;
  secrets: SecretSpec[];
  /** `default|ID[=SOCKET|KEY...]`, as buildctl takes it. */
  ssh: string[];
  cacheFrom: string[];
  cacheTo: string[];
  /** Empty: one `type=image` output into the store, tagged with `tags`. */
  outputs: OutputSpec[];
  /** Where a `dest=-` output goes (the CLI passes process.stdout). */
  stdout?: Writable;
  /** Entitlements such as `security.insecure`, `network.host`. */
  allow?: string[];
  signal?: AbortSignal;
  onProgress?: (e: BuildEvent) => void;
}

/** One step of a build, as both backends report it. */
export interface BuildStep {
  /** Stable id within the build (BuildKit's vertex digest, or the builtin's step key). */
  id: string;
  /** `[stage 2/5] RUN make`, or BuildKit's vertex name. */
  name: string;
  cached: boolean;
  /** Wall time in ms (0 for a cache hit). */
  durationMs: number;
  error?: string;
}

export interface BuildResult {
  /** The root descriptor (manifest or index) written to the store, when an image output was asked for. */
  root?: Descriptor;
  /** The image ID as docker shows it: the config digest. */
  imageId?: Digest;
  /** Names tagged in the store (normalised). */
  names: string[];
  /** BuildKit's metadata file keys where known (`containerimage.digest`, `containerimage.config.digest`, ...). */
  metadata: Record<string, unknown>;
  steps: BuildStep[];
  /** Which backend built it. */
  builder: 'buildkit' | 'builtin';
}

/** Progress of a build: steps start, log, finish; plus plain messages (which backend and why). */
export type BuildEvent =
  | { type: 'message'; text: string }
  | { type: 'step-start'; step: BuildStep; total?: number }
  | { type: 'step-log'; id: string; stream: 'stdout' | 'stderr'; data: string }
  | { type: 'step-done'; step: BuildStep }
  | { type: 'warning'; text: string; line?: number };

export interface Builder {
  readonly name: 'buildkit' | 'builtin';
  /** Whether this backend can build here, and why (for `--builder auto`'s one progress line). */
  available(signal?: AbortSignal): Promise<{ ok: boolean; why: string }>;
  build(req: BuildRequest): Promise<BuildResult>;
}
