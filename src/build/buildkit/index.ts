/**
 * The BuildKit backend: `buildctl build --frontend dockerfile.v0` with the image coming back as
 * `--output type=oci,dest=-`, read straight from buildctl's stdout into the store's loader (every
 * member hashed into the ingest as it flows, every digest and diff_id checked, nothing visible
 * before it is verified, no temporary tarball), then tagged by the root digest the archive and
 * the metadata file agree on. Other outputs (`--push`, `type=docker|oci|tar|local`) are BuildKit's.
 */
import { randomBytes } from 'node:crypto';
import { readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { applyLayer } from '../../archive/apply.js';
import { BerthError, fromSystemError } from '../../errors.js';
import { loadArchive, type LoadResult } from '../../import/load.js';
import type { Descriptor, Digest } from '../../oci/types.js';
import { tagImage } from '../../store/images.js';
import { ContentStore, mkdirp } from '../../store/store.js';
import { Buildctl, MIN_BUILDCTL, RAWJSON_BUILDCTL, versionAtLeast, type BuildctlTls, type BuildctlVersion } from '../buildctl.js';
import type { BuildEvent, Builder, BuildRequest, BuildResult } from '../builder.js';
import { buildctlArgs, planOutputs } from './argv.js';
import { storeContexts } from './contexts.js';
import { buildkitDir, DEFAULT_ADDR, findDaemon, keptDaemon, onPath } from './daemon.js';
import { ProgressReader } from './progress.js';

export interface BuildkitBuilderOptions {
  root: string;
  /** Daemon address; default `BUILDKIT_HOST`, else a running daemon or a private one. */
  addr?: string;
  /** buildctl binary (default `BERTH_BUILDCTL` or `buildctl` on PATH). */
  binary?: string;
  tls?: BuildctlTls;
  /** Leave a private buildkitd berth started running after the build. */
  keepDaemon?: boolean;
  /** buildkitd binary for a private daemon (default `BERTH_BUILDKITD` or `buildkitd` on PATH). */
  daemonBinary?: string;
}

const MAX_DOCKERFILE = 4 * 1024 * 1024;

export function createBuildkitBuilder(opts: BuildkitBuilderOptions): Builder {
  const buildctl = new Buildctl({ ...(opts.binary ? { binary: opts.binary } : {}), ...(opts.addr ? { addr: opts.addr } : {}), ...(opts.tls ? { tls: opts.tls } : {}) });
  const explicit = buildctl.addr !== undefined;
  let version: Promise<BuildctlVersion> | undefined;

  /** buildctl's version, or an UNAVAILABLE error naming what to install. */
  const checkVersion = (signal?: AbortSignal) =>
    (version ??= (async () => {
      const v = await cachedVersion(buildctl, opts.root, signal);
      if (!v) {
        throw new BerthError('UNAVAILABLE', `${buildctl.binary} not found`, {
          hint: 'install BuildKit (buildctl, from github.com/moby/buildkit releases), set BERTH_BUILDCTL, or use --builder builtin',
        });
      }
      if (!versionAtLeast(v, MIN_BUILDCTL)) {
        throw new BerthError('UNAVAILABLE', `${buildctl.binary} ${v.raw} is too old`, {
          hint: `install buildctl v${MIN_BUILDCTL.join('.')} or newer (named contexts from OCI layouts and --metadata-file)`,
        });
      }
      return v;
    })());

  return {
    name: 'buildkit',

    async available(signal) {
      try {
        await checkVersion(signal);
      } catch (e) {
        version = undefined;
        return { ok: false, why: (e as BerthError).oneLine() };
      }
      if (explicit) {
        const p = await buildctl.probe(signal ? { signal } : {});
        return p.ok ? { ok: true, why: `BuildKit answers at ${buildctl.addr}` } : { ok: false, why: `BuildKit at ${buildctl.addr} does not answer (${p.why})` };
      }
      if (await keptDaemon(opts.root)) return { ok: true, why: "berth's private buildkitd is running" };
      const p = await buildctl.withAddr(DEFAULT_ADDR).probe({ timeoutMs: 5000, ...(signal ? { signal } : {}) });
      if (p.ok) return { ok: true, why: `BuildKit answers at ${DEFAULT_ADDR}` };
      const bin = await onPath(opts.daemonBinary ?? process.env.BERTH_BUILDKITD ?? 'buildkitd');
      if (bin && process.getuid?.() === 0) return { ok: true, why: `no daemon answers, but ${bin} can be started` };
      return { ok: false, why: `no BuildKit daemon answers at ${DEFAULT_ADDR}${bin ? ' and berth is not root' : ' and buildkitd is not on PATH'}` };
    },

    async build(req) {
      const v = await checkVersion(req.signal);
      return runBuild(req, { ...opts, buildctl, explicit, version: v });
    },
  };
}

interface RunOptions extends BuildkitBuilderOptions {
  buildctl: Buildctl;
  explicit: boolean;
  version: BuildctlVersion;
}

/**
 * buildctl's version, remembered in `<root>/buildkit/buildctl-version.json` per binary (path,
 * size and mtime): asking costs a process start on every build otherwise.
 */
async function cachedVersion(buildctl: Buildctl, root: string, signal?: AbortSignal): Promise<BuildctlVersion | undefined> {
  const path = await onPath(buildctl.binary);
  if (!path) return undefined;
  const st = await stat(path).catch(() => undefined);
  if (!st) return undefined;
  const key = `${path}:${st.size}:${st.mtimeMs}`;
  const file = join(buildkitDir(root), 'buildctl-version.json');
  try {
    const c = JSON.parse(await readFile(file, 'utf8')) as { key?: string; version?: BuildctlVersion };
    if (c.key === key && c.version && typeof c.version.major === 'number') return c.version;
  } catch {
    /* no cache yet */
  }
  const v = await buildctl.versionInfo(signal);
  if (v) {
    await mkdirp(buildkitDir(root)).catch(() => {});
    const tmp = `${file}.${process.pid}`;
    await writeFile(tmp, JSON.stringify({ key, version: v }))
      .then(() => rename(tmp, file))
      .catch(() => {});
  }
  return v;
}

async function isDir(p: string, what: string): Promise<void> {
  const st = await stat(p).catch((e) => {
    throw fromSystemError(e, what);
  });
  if (!st.isDirectory()) throw new BerthError('INVALID_ARGUMENT', `${what} is not a directory`, { hint: 'give a directory, or - for a tar on stdin' });
}

async function runBuild(req: BuildRequest, o: RunOptions): Promise<BuildResult> {
  const emit = (e: BuildEvent) => req.onProgress?.(e);
  const outputs = planOutputs(req);
  const store = await ContentStore.open(o.root);
  const tmp = join(buildkitDir(o.root), 'tmp', `${process.pid}-${randomBytes(6).toString('hex')}`);
  await mkdirp(tmp);
  let daemon: Awaited<ReturnType<typeof findDaemon>> | undefined;
  try {
    // ---- context and Dockerfile ----
    let contextDir: string;
    if (typeof req.context === 'string') {
      contextDir = resolve(req.context);
      await isDir(contextDir, `build context ${req.context}`);
    } else {
      contextDir = join(tmp, 'context');
      await mkdirp(contextDir);
      await applyLayer(req.context, contextDir, { whiteouts: 'apply', what: 'build context from stdin', ...(req.signal ? { signal: req.signal } : {}) }).catch((e) => {
        throw e instanceof BerthError ? new BerthError(e.code === 'INTERNAL' ? 'INVALID_ARGUMENT' : e.code, `build context from stdin: ${e.message}`, { cause: e, hint: 'give a tar of the context on stdin' }) : e;
      });
    }
    let dockerfileDir: string;
    let dockerfileName: string;
    let text: string;
    if (req.dockerfileText !== undefined) {
      dockerfileDir = join(tmp, 'dockerfile');
      dockerfileName = 'Dockerfile';
      await mkdirp(dockerfileDir);
      await writeFile(join(dockerfileDir, dockerfileName), req.dockerfileText);
      text = req.dockerfileText;
    } else {
      const path = resolve(contextDir, req.dockerfile ?? 'Dockerfile');
      const st = await stat(path).catch(() => undefined);
      if (!st) throw new BerthError('NOT_FOUND', `Dockerfile ${req.dockerfile ?? join(contextDir, 'Dockerfile')} not found`, { hint: 'give -f PATH, or put a Dockerfile in the context' });
      if (!st.isFile()) throw new BerthError('INVALID_ARGUMENT', `Dockerfile ${path} is not a file`);
      const real = await realpath(path);
      const rel = relative(await realpath(contextDir), real);
      if (rel.startsWith('..') || isAbsolute(rel)) {
        throw new BerthError('INVALID_ARGUMENT', `Dockerfile ${req.dockerfile} is outside the build context ${contextDir}`, { hint: 'move it into the context, or give it on stdin with -f -' });
      }
      if (st.size > MAX_DOCKERFILE) throw new BerthError('INVALID_ARGUMENT', `Dockerfile ${path} is larger than ${MAX_DOCKERFILE} bytes`);
      dockerfileDir = dirname(real);
      dockerfileName = basename(real);
      text = await readFile(real, 'utf8');
    }

    // ---- named contexts from the store (skipped with --pull: the registry's is wanted) ----
    const namedContexts = req.pull ? [] : await storeContexts(store, text, req.buildArgs);
    const progressMode = versionAtLeast(o.version, RAWJSON_BUILDCTL) ? 'rawjson' : 'plain';
    const metadataFile = join(tmp, 'metadata.json');
    const args = buildctlArgs(req, { contextDir, dockerfileDir, dockerfileName, namedContexts, layoutDir: store.contentDir, metadataFile, progress: progressMode }, outputs);

    // ---- the daemon ----
    daemon = await findDaemon(o.buildctl, {
      root: o.root,
      explicit: o.explicit,
      ...(o.keepDaemon ? { keep: true } : {}),
      ...(o.daemonBinary ? { daemonBinary: o.daemonBinary } : {}),
      ...(req.signal ? { signal: req.signal } : {}),
    });
    emit({ type: 'message', text: `buildkit: ${daemon.why}` });
    for (const c of namedContexts) emit({ type: 'message', text: `buildkit: ${c.name} from berth's store (${c.digest})` });

    // ---- build, streaming the result into the store ----
    const reader = new ProgressReader(progressMode, emit);
    const run = daemon.buildctl.build(args, {
      stdout: outputs.toStore || outputs.toStdout ? 'pipe' : 'ignore',
      onStderrLine: (l) => reader.line(l),
      ...(req.signal ? { signal: req.signal } : {}),
    });
    const loadAbort = new AbortController();
    let load: Promise<LoadResult | { error: unknown }> | undefined;
    if (outputs.toStore) {
      load = loadArchive(store, { stream: run.stdout! }, { signal: loadAbort.signal, allPlatforms: true, what: 'buildctl output' }).catch((error: unknown) => {
        // The loader stopped reading: stop buildctl too (it would block on a full pipe).
        run.stdout?.destroy();
        return { error };
      });
    } else if (outputs.toStdout) {
      if (!req.stdout) throw new BerthError('INVALID_ARGUMENT', 'dest=- needs somewhere to write', { hint: 'pass stdout in the request' });
      run.stdout!.pipe(req.stdout, { end: false });
    }
    const exit = await run.done;
    reader.close();
    if (exit.exitCode !== 0 || exit.cancelled) {
      loadAbort.abort(new BerthError('ABORTED', 'build failed'));
      await load;
      if (req.signal?.aborted || exit.cancelled) throw new BerthError('ABORTED', 'build interrupted: buildctl stopped, nothing tagged');
      throw reader.failure({ exitCode: exit.exitCode, signal: exit.signal, dockerfile: req.dockerfileText !== undefined ? 'Dockerfile' : dockerfileName, addr: daemon.buildctl.addr });
    }
    const metadata = await readMetadata(metadataFile);
    const result: BuildResult = { names: [], metadata, steps: reader.steps(), builder: 'buildkit' };
    if (load) {
      const loaded = await load;
      if ('error' in loaded) throw loaded.error instanceof BerthError ? loaded.error : fromSystemError(loaded.error, 'reading the build result');
      const img = loaded.images[0];
      if (!img || loaded.images.length !== 1) throw new BerthError('INTERNAL', `buildctl's OCI output held ${loaded.images.length} images, expected one`);
      const want = metadata['containerimage.digest'];
      if (typeof want === 'string' && want !== img.root.digest) {
        throw new BerthError('DIGEST_MISMATCH', `buildctl reported image ${want} but its output holds ${img.root.digest}`, { hint: 'nothing was tagged; build again' });
      }
      const { annotations: _a, platform: _p, ...root } = img.root;
      result.root = root as Descriptor;
      if (img.configs.length === 1) result.imageId = img.configs[0]!;
      else if (typeof metadata['containerimage.config.digest'] === 'string') result.imageId = metadata['containerimage.config.digest'] as Digest;
      for (const t of req.tags) result.names.push(await tagImage(store, t, result.root));
    } else if (outputs.push) {
      const d = metadata['containerimage.descriptor'] as Descriptor | undefined;
      if (d && typeof d.digest === 'string') result.root = { mediaType: d.mediaType, digest: d.digest, size: d.size };
      if (typeof metadata['containerimage.config.digest'] === 'string') result.imageId = metadata['containerimage.config.digest'] as Digest;
    }
    return result;
  } finally {
    await daemon?.release().catch(() => {});
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
  }
}

async function readMetadata(path: string): Promise<Record<string, unknown>> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch {
    return {};
  }
  try {
    const v = JSON.parse(raw) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
