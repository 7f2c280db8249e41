/**
 * `build(req, opts)`: pick a backend and build. `--builder auto` takes BuildKit when a daemon
 * answers (or can be started) and the built-in builder otherwise, and says which and why in one
 * `message` event; `buildkit` / `builtin` use that backend and fail with its reason.
 */
import { BerthError } from '../errors.js';
import type { BuildctlTls } from './buildctl.js';
import type { Builder, BuildRequest, BuildResult } from './builder.js';
import type { ReproducibleResult } from './native/reproducible.js';

export type BuilderChoice = 'auto' | 'buildkit' | 'builtin';

export interface BuildOptions {
  /** berth's root (the store is `<root>/content`). */
  root: string;
  builder?: BuilderChoice;
  /** BuildKit address (`--buildkit-addr`; else `BUILDKIT_HOST`). */
  addr?: string;
  /** buildctl binary. */
  buildctl?: string;
  tls?: BuildctlTls;
  /** Keep a private buildkitd running after the build. */
  keepDaemon?: boolean;
}

/**
 * The backend's module is loaded here, on first use: a built-in build never loads the buildctl
 * wrapper (execa), a BuildKit build never loads the built-in builder.
 */
export async function builderFor(choice: 'buildkit' | 'builtin', opts: BuildOptions): Promise<Builder> {
  if (choice === 'builtin') return (await import('./native/index.js')).createNativeBuilder({ root: opts.root });
  const { createBuildkitBuilder } = await import('./buildkit/index.js');
  return createBuildkitBuilder({
    root: opts.root,
    ...(opts.addr ? { addr: opts.addr } : {}),
    ...(opts.buildctl ? { binary: opts.buildctl } : {}),
    ...(opts.tls ? { tls: opts.tls } : {}),
    ...(opts.keepDaemon ? { keepDaemon: true } : {}),
  });
}

/** Choose the backend (one `message` event says which and why). */
export async function chooseBuilder(req: Pick<BuildRequest, 'signal' | 'onProgress'>, opts: BuildOptions): Promise<Builder> {
  const choice = opts.builder ?? 'auto';
  const say = (text: string) => req.onProgress?.({ type: 'message', text });
  if (choice === 'buildkit' || choice === 'builtin') {
    say(`builder: ${choice} (asked for)`);
    return builderFor(choice, opts);
  }
  if (choice !== 'auto') throw new BerthError('INVALID_ARGUMENT', `unknown builder ${JSON.stringify(choice)}`, { hint: 'use auto, buildkit or builtin' });
  const bk = await builderFor('buildkit', opts);
  const a = await bk.available(req.signal);
  if (a.ok) {
    say(`builder: buildkit (${a.why})`);
    return bk;
  }
  const nb = await builderFor('builtin', opts);
  const n = await nb.available(req.signal);
  if (n.ok) {
    say(`builder: builtin (BuildKit: ${a.why})`);
    return nb;
  }
  throw new BerthError('UNAVAILABLE', `no builder can build here: BuildKit: ${a.why}; built-in: ${n.why}`, {
    hint: 'install BuildKit (buildctl and buildkitd) or point --buildkit-addr at a daemon',
  });
}

/** Build a Dockerfile into the store (or the outputs asked for). */
export async function build(req: BuildRequest, opts: BuildOptions): Promise<BuildResult> {
  const b = await chooseBuilder(req, opts);
  return b.build(req);
}

/**
 * `build --check-reproducible`: build twice without cache (one SOURCE_DATE_EPOCH) with the
 * chosen backend and compare the images; the first build is tagged.
 */
export async function checkReproducible(req: BuildRequest, opts: BuildOptions): Promise<ReproducibleResult> {
  if (req.outputs.length > 0) throw new BerthError('INVALID_ARGUMENT', '--check-reproducible compares images in the store: it takes no --output', { hint: 'drop --output (berth save the image afterwards)' });
  const b = await chooseBuilder(req, opts);
  const { checkReproducible: check } = await import('./native/reproducible.js');
  return check(opts.root, req, (r) => b.build(r));
}

export type { ReproducibleResult, ReproducibleDifference } from './native/reproducible.js';
export type { Builder, BuildRequest, BuildResult, BuildEvent, BuildStep, OutputSpec, SecretSpec } from './builder.js';
export type { BuildkitBuilderOptions } from './buildkit/index.js';
/** Stop the private buildkitd kept for `root` (loads the BuildKit room only when called). */
export async function stopKeptDaemon(...args: Parameters<typeof import('./buildkit/daemon.js').stopKeptDaemon>): ReturnType<typeof import('./buildkit/daemon.js').stopKeptDaemon> {
  return (await import('./buildkit/daemon.js')).stopKeptDaemon(...args);
}
