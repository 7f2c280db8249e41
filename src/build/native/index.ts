/**
 * The built-in builder: Dockerfiles built with no daemon. Stages form a graph (only what the
 * target needs is built; independent stages run concurrently); each RUN runs in runc on an
 * overlay snapshot of the previous step, COPY/ADD write into such a snapshot without a
 * container, and each step's changes (the snapshot's upper dir) become a layer. Config and
 * history are written as BuildKit writes them. Each layer step has a cache key (parent key,
 * the instruction after expansion, the build args and env it sees, the content digests of its
 * sources); `<root>/cache/steps/<key>.json` records the layer it made, so a rebuild with nothing
 * changed runs nothing and writes no layer.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile, rename } from 'node:fs/promises';
import { isAbsolute, join, posix, resolve } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError, isBerthError } from '../../errors.js';
import { compressStream } from '../../archive/compress.js';
import { DigestStream, sha256 } from '../../oci/digest.js';
import { MediaType } from '../../oci/mediatype.js';
import { formatPlatform, hostPlatform, parsePlatform } from '../../oci/platform.js';
import { formatReference, looksLikeDigest, parseReference } from '../../oci/reference.js';
import type { ContainerConfig, Descriptor, Digest, HistoryEntry, ImageConfig, Manifest, Platform } from '../../oci/types.js';
import { chainIds, Snapshotter } from '../../snapshot/snapshotter.js';
import { unpack } from '../../snapshot/unpack.js';
import { getImage, tagImage, type ImageView } from '../../store/images.js';
import { ContentStore } from '../../store/store.js';
import { pidAlive } from '../../store/lock.js';
import { Runc } from '../../run/runc.js';
import { runProcess } from '../../run/process.js';
import { nofileLimit } from '../../run/containers.js';
import { writeBundle } from '../../run/bundle.js';
import { buildSpec, DEFAULT_PATH, resolveUser, type SpecMount } from '../../run/spec.js';
import { ensureMountpoint, readInRoot } from '../../run/rootfs.js';
import { lstat, readdir, rmdir, unlink } from 'node:fs/promises';
import type { BuildRequest, BuildResult, BuildStep, Builder } from '../builder.js';
import { chompHeredoc, parseDockerfile, lineError } from '../dockerfile/parse.js';
import { toInstruction, toStages, type Dockerfile, type Instruction, type Stage } from '../dockerfile/instructions.js';
import { expandHeredoc, expandWord, type Env } from '../dockerfile/expand.js';
import { anyOf, IgnoreMatcher, loadIgnore, type PathFilter } from '../context/ignore.js';
import { findSources, hasWildcard, hashSource, type SourceMatch } from '../context/sources.js';
import { copyInto, isArchive, mkdirAllInRoot, writeHeredocFile, type Owner } from './copy.js';
import { holdCacheMount } from './cache.js';
import { goList, goQuoteList, healthHistory, parseGoDuration, type Health } from './format.js';

/** The proxy build args every build knows without an ARG (not in history unless declared). */
const PREDEFINED_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

/** The image's container config while it is being built (ContainerConfig, writable). */
interface Config {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  ArgsEscaped?: boolean;
  Healthcheck?: Health;
  Shell?: string[];
  OnBuild?: string[] | null;
}

/** One stage's image as it is being built. */
interface StageState {
  platform: Platform;
  config: Config;
  author?: string;
  layers: Descriptor[];
  diffIds: Digest[];
  history: HistoryEntry[];
  /** ARGs declared in the stage, in order, with their values. */
  args: { key: string; value: string | undefined }[];
  cmdSet: boolean;
  /** Cache key of the last step. */
  key: string;
  /** Time of the newest layer step (history `created`). */
  created: string;
  /** Whether the result starts from another image (for the result only). */
}

interface CacheRecord {
  layer: Descriptor;
  diffId: Digest;
  created: string;
}

interface Ctx {
  req: BuildRequest;
  store: ContentStore;
  snaps: Snapshotter;
  runc: Runc;
  root: string;
  df: Dockerfile;
  contextDir: string;
  ignore: PathFilter | undefined;
  metaEnv: Map<string, string>;
  platform: Platform;
  steps: BuildStep[];
  stageResults: Map<number, Promise<StageState>>;
  epoch?: number;
  /** Active snapshots and mounts to clean up if the build fails. */
  cleanups: Set<() => Promise<void>>;
  noCache: (stage: Stage) => boolean;
  usedArgs: Set<string>;
  /** Variable names the current instruction's expansions referenced. */
  used: Set<string>;
  /** Pulls under way in this build, by name and platform. */
  pulls: Map<string, Promise<void>>;
}

/** A time as Go's RFC 3339 marshalling writes it (no `.000` for whole seconds). */
function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
}

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function envMap(state: StageState): Map<string, string> {
  const m = new Map<string, string>();
  for (const a of state.args) if (a.value !== undefined) m.set(a.key, a.value);
  for (const e of state.config.Env ?? []) {
    const i = e.indexOf('=');
    m.set(i < 0 ? e : e.slice(0, i), i < 0 ? '' : e.slice(i + 1));
  }
  return m;
}

function setEnv(cfg: Config, key: string, value: string): void {
  const env = cfg.Env ?? [];
  const i = env.findIndex((e) => e === key || e.startsWith(`${key}=`));
  if (i >= 0) env[i] = `${key}=${value}`;
  else env.push(`${key}=${value}`);
  cfg.Env = env;
}

export function createNativeBuilder(opts: { root: string }): Builder {
  return {
    name: 'builtin',
    async available() {
      if (process.getuid?.() !== 0) return { ok: false, why: 'the built-in builder needs root (runc, overlay mounts)' };
      try {
        await new Runc({ root: join(opts.root, 'runc') }).version();
      } catch (e) {
        return { ok: false, why: isBerthError(e) ? e.message : String(e) };
      }
      return { ok: true, why: 'runc is usable and berth runs as root' };
    },
    build: (req) => build(opts.root, req),
  };
}

async function build(root: string, req: BuildRequest): Promise<BuildResult> {
  if (req.outputs.some((o) => o.type !== 'image')) throw new BerthError('UNSUPPORTED', `the built-in builder writes into the store only (--output type=image)`, { hint: 'use --builder buildkit for other outputs, or berth save afterwards' });
  if (typeof req.context === 'string') return buildIn(root, req, resolve(req.context));
  // A tar stream (`berth build - < ctx.tar`): unpacked by the safe extractor into a private directory.
  const dir = join(root, 'cache', 'tmp', `${process.pid}-context-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const { applyLayer } = await import('../../archive/apply.js');
    await applyLayer(req.context, dir, { whiteouts: 'apply', what: 'the build context', ...(req.signal ? { signal: req.signal } : {}) });
    return await buildIn(root, req, dir);
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

async function buildIn(root: string, req: BuildRequest, contextDir: string): Promise<BuildResult> {
  const dfPath = req.dockerfile ? (isAbsolute(req.dockerfile) ? req.dockerfile : join(contextDir, req.dockerfile)) : join(contextDir, 'Dockerfile');
  let text = req.dockerfileText;
  if (text === undefined) {
    try {
      text = await readFile(dfPath, 'utf8');
    } catch (e) {
      throw new BerthError('NOT_FOUND', `cannot read the Dockerfile ${dfPath}: ${(e as Error).message}`, { cause: e, hint: 'pass -f PATH' });
    }
  }
  const df = toStages(parseDockerfile(text, 'Dockerfile'));
  for (const w of df.warnings) req.onProgress?.({ type: 'warning', text: w.text, line: w.line });

  const platform = req.platform ? parsePlatform(req.platform) : hostPlatform();
  const epochText = req.buildArgs.SOURCE_DATE_EPOCH ?? process.env.SOURCE_DATE_EPOCH;
  const epoch = epochText !== undefined && /^\d+$/.test(epochText) ? Number(epochText) : undefined;

  // Meta args: ARG before the first FROM, visible to FROM lines (and to stages that redeclare them).
  const metaEnv = new Map<string, string>();
  for (const a of df.metaArgs) {
    for (const d of a.args) {
      const v = req.buildArgs[d.key] ?? (d.value !== undefined ? expandWord(d.value, metaEnv, df.escape).value : undefined);
      if (v !== undefined) metaEnv.set(d.key, v);
    }
  }

  const store = await ContentStore.open(root);
  const snaps = await Snapshotter.open(root);
  await reapDeadBuilds(root, snaps);
  const ctx: Ctx = {
    req,
    store,
    snaps,
    runc: new Runc({ root: join(root, 'runc') }),
    root,
    df,
    contextDir,
    ignore: anyOf(await loadIgnore(contextDir, req.dockerfileText === undefined ? dfPath : undefined)),
    metaEnv,
    platform,
    steps: [],
    stageResults: new Map(),
    ...(epoch !== undefined ? { epoch } : {}),
    cleanups: new Set(),
    noCache: (s) => !!req.noCache || (s.name !== undefined && (req.noCacheFilter ?? []).includes(s.name)),
    usedArgs: new Set(),
    used: new Set(),
    pulls: new Map(),
  };

  let target = df.stages[df.stages.length - 1]!;
  if (req.target !== undefined) {
    const t = df.stages.find((s) => s.name === req.target!.toLowerCase());
    if (!t) throw new BerthError('INVALID_ARGUMENT', `target stage "${req.target}" could not be found`, { hint: `stages: ${df.stages.map((s) => s.name ?? s.index).join(', ')}` });
    target = t;
  }
  try {
    // The lease keeps store gc off the blobs this build writes until its image is tagged.
    return await store.withLease(() => buildTarget(ctx, target));
  } finally {
    for (const c of [...ctx.cleanups].reverse()) await c().catch(() => {});
  }
}

async function buildTarget(ctx: Ctx, target: Stage): Promise<BuildResult> {
  const { req, metaEnv } = ctx;
  {
    const state = await stageResult(ctx, target.index, []);
    for (const k of Object.keys(req.buildArgs)) {
      if (!ctx.usedArgs.has(k) && !metaEnv.has(k) && !PREDEFINED_ARGS.includes(k) && k !== 'SOURCE_DATE_EPOCH') {
        req.onProgress?.({ type: 'warning', text: `build arg ${k} was given but not consumed by any ARG` });
      }
    }
    return await commitResult(ctx, state);
  }
}

/**
 * Clean what builds killed with SIGKILL left: their step mounts, active snapshots and runc
 * state (all named with the builder's pid). Safe to call any time: live builds are not touched.
 */
export async function reapDeadBuilds(root: string, snaps?: Snapshotter): Promise<string[]> {
  const s = snaps ?? (await Snapshotter.open(root));
  const dead = (id: string) => {
    const pid = Number(/^(\d+)-/.exec(id)?.[1]);
    return Number.isInteger(pid) && pid > 0 && pid !== process.pid && !pidAlive(pid);
  };
  const reaped: string[] = [];
  const runcRoot = join(root, 'runc');
  const runc = new Runc({ root: runcRoot });
  for (const name of await readdir(runcRoot).catch(() => [] as string[])) {
    if (name.startsWith('berth-build-') && dead(name.slice('berth-build-'.length))) {
      await runc.delete(name, { force: true }).catch(() => {});
      reaped.push(name);
    }
  }
  for (const name of await readdir(join(root, 'cache', 'tmp')).catch(() => [] as string[])) {
    if (dead(name)) await rm(join(root, 'cache', 'tmp', name), { recursive: true, force: true }).catch(() => {});
  }
  for (const info of await s.list()) {
    if (info.kind === 'committed' || !info.key.startsWith('build/')) continue;
    const id = info.key.slice('build/'.length);
    if (!dead(id)) continue;
    const mnt = join(root, 'cache', 'mnt', id);
    await s.unmount(mnt).catch(() => {});
    await s.remove(info.key).catch(() => {});
    await rm(mnt, { recursive: true, force: true }).catch(() => {});
    reaped.push(info.key);
  }
  return reaped;
}

/** The stage a FROM or --from names: a stage name or index, else undefined (an image). */
function stageRef(ctx: Ctx, name: string, before: number): Stage | undefined {
  const lower = name.toLowerCase();
  const byName = ctx.df.stages.find((s) => s.name === lower && s.index < before);
  if (byName) return byName;
  if (/^\d+$/.test(name)) {
    const i = Number(name);
    if (i < before) return ctx.df.stages[i];
  }
  return undefined;
}

function stageResult(ctx: Ctx, index: number, path: number[]): Promise<StageState> {
  if (path.includes(index)) throw new BerthError('INVALID_ARGUMENT', `stage cycle: ${[...path, index].join(' -> ')}`);
  let p = ctx.stageResults.get(index);
  if (!p) {
    p = buildStage(ctx, ctx.df.stages[index]!, [...path, index]);
    ctx.stageResults.set(index, p);
  }
  return p;
}

async function imageState(ctx: Ctx, view: ImageView, platform: Platform): Promise<StageState> {
  const c = clone((view.config.config ?? {}) as Config);
  if (!(c.Env ?? []).some((e) => e.startsWith('PATH='))) c.Env = [`PATH=${DEFAULT_PATH}`, ...(c.Env ?? [])];
  return {
    platform: view.config.architecture ? { architecture: view.config.architecture, os: view.config.os, ...(view.config.variant ? { variant: view.config.variant } : {}) } : platform,
    config: c,
    ...(view.config.author ? { author: view.config.author } : {}),
    layers: view.manifest.layers.map((l) => ({ ...l })),
    diffIds: [...view.config.rootfs.diff_ids],
    history: clone([...(view.config.history ?? [])]),
    args: [],
    cmdSet: false,
    key: `image:${view.configDesc.digest}`,
    created: view.config.created ?? rfc3339(0),
  };
}

function scratchState(ctx: Ctx): StageState {
  return {
    platform: ctx.platform,
    config: { Env: [`PATH=${DEFAULT_PATH}`], WorkingDir: '/' },
    layers: [],
    diffIds: [],
    history: [],
    args: [],
    cmdSet: false,
    key: 'scratch',
    created: ctx.epoch !== undefined ? rfc3339(ctx.epoch * 1000) : rfc3339(0),
  };
}

/** `--pull` as a mode: docker's `--pull` (always ask the registry), the default (pull when missing), never. */
export function pullMode(pull: BuildRequest['pull']): 'always' | 'missing' | 'never' {
  if (pull === true || pull === 'always') return 'always';
  if (pull === 'never') return 'never';
  return 'missing';
}

/**
 * The image a FROM or `--from` names: from the store, else pulled per `--pull` (the default
 * pulls a missing image; `always` asks the registry first; `never` fails naming the line).
 * A local image is used with no network at all unless `--pull` asked for it. One pull per
 * name per build (stages that share a base wait for the same pull).
 */
async function resolveImage(ctx: Ctx, name: string, line: number, platform: Platform = ctx.platform): Promise<ImageView> {
  const mode = pullMode(ctx.req.pull);
  const local = () => getImage(ctx.store, name, platform);
  // An image id names a local image only: never ask a registry.
  if (mode !== 'always' || looksLikeDigest(name)) {
    try {
      return await local();
    } catch (e) {
      if (!isBerthError(e, 'NOT_FOUND')) throw e;
      if (mode === 'never' || looksLikeDigest(name)) {
        throw new BerthError('NOT_FOUND', `${ctx.df.file}:${line}: ${name}: image not found in berth's store (--pull=never)`, {
          hint: `pull it first (berth pull ${name}), build the stage that makes it, or drop --pull=never`,
        });
      }
    }
  }
  const key = `${name}\n${formatPlatform(platform)}`;
  let p = ctx.pulls.get(key);
  if (!p) {
    ctx.req.onProgress?.({ type: 'message', text: `pulling ${name} (${mode === 'always' ? '--pull' : 'not in the store'})` });
    p = import('../../pull.js').then(({ pull }) => pull(ctx.store, name, { platform, ...(ctx.req.signal ? { signal: ctx.req.signal } : {}) })).then(() => undefined);
    ctx.pulls.set(key, p);
  }
  try {
    await p;
  } catch (e) {
    ctx.req.signal?.throwIfAborted();
    const code = isBerthError(e) ? e.code : 'UNAVAILABLE';
    throw new BerthError(code, `${ctx.df.file}:${line}: FROM ${name}: cannot pull it: ${(e as Error).message}`, {
      cause: e,
      hint: isBerthError(e) && e.hint ? e.hint : `check the name, or berth pull ${name} first`,
    });
  }
  return local();
}

async function buildStage(ctx: Ctx, stage: Stage, path: number[]): Promise<StageState> {
  const from = expandWord(stage.from.image, ctx.metaEnv, ctx.df.escape).value;
  let state: StageState;
  const ref = stageRef(ctx, from, stage.index);
  if (ref) state = clone(await stageResult(ctx, ref.index, path));
  else if (from.toLowerCase() === 'scratch') state = scratchState(ctx);
  else {
    let platform = ctx.platform;
    if (stage.from.platform !== undefined) {
      try {
        platform = parsePlatform(expandWord(stage.from.platform, ctx.metaEnv, ctx.df.escape).value);
      } catch (e) {
        throw lineError(ctx.df.file, stage.from.line, `FROM --platform: ${(e as Error).message}`);
      }
    }
    state = await imageState(ctx, await resolveImage(ctx, from, stage.from.line, platform), platform);
  }
  state.args = [];
  state.cmdSet = false;

  // Other stages this one copies from: start them now, so independent stages build concurrently.
  for (const ins of stage.instructions) {
    const f = ins.kind === 'COPY' ? ins.flags.get('from')?.[0] : undefined;
    if (f) {
      const r = stageRef(ctx, expandWord(f, ctx.metaEnv, ctx.df.escape).value, stage.index);
      if (r) void stageResult(ctx, r.index, path).catch(() => {});
    }
  }

  // ONBUILD triggers of the base run first.
  const triggers = state.config.OnBuild ?? [];
  delete state.config.OnBuild;
  const list: Instruction[] = [];
  for (const t of triggers) {
    const p = parseDockerfile(t, ctx.df.file);
    for (const n of p.nodes) list.push(toInstruction({ ...n, line: stage.from.line, endLine: stage.from.line }, ctx.df.file, ctx.df.escape));
  }
  list.push(...stage.instructions);
  for (const ins of list) {
    ctx.req.signal?.throwIfAborted();
    const before = envMap(state);
    ctx.used = new Set();
    await dispatch(ctx, stage, state, ins, path);
    checkDeclared(ctx, stage, ins, before);
  }
  return state;
}

/**
 * A variable that an ARG of this stage declares only further down was used too early: an error
 * naming both lines. A meta ARG used without being redeclared in the stage expands to nothing,
 * as in BuildKit: a warning.
 */
function checkDeclared(ctx: Ctx, stage: Stage, ins: Instruction, before: Map<string, string>): void {
  for (const name of ctx.used) {
    if (before.has(name)) continue;
    const later = stage.instructions.find((i) => i.kind === 'ARG' && i.line > ins.line && i.args.some((a) => a.key === name));
    if (later) throw lineError(ctx.df.file, ins.line, `${name} is used before ARG ${name} declares it (line ${later.line})`, `move ARG ${name} above line ${ins.line}`);
    if (ctx.metaEnv.has(name)) {
      ctx.req.onProgress?.({ type: 'warning', line: ins.line, text: `${name} is a global ARG not redeclared in this stage: it expands to nothing here (add ARG ${name} after FROM)` });
    }
  }
}

function history(state: StageState, createdBy: string, empty: boolean): void {
  state.history.push({ created: state.created, created_by: createdBy, ...(empty ? { empty_layer: true } : {}) });
}

function metaStep(state: StageState, createdBy: string): void {
  state.key = sha256(`${state.key}\n${createdBy}`);
  history(state, createdBy, true);
}

async function dispatch(ctx: Ctx, stage: Stage, state: StageState, ins: Instruction, path: number[]): Promise<void> {
  const esc = ctx.df.escape;
  const env = () => envMap(state);
  const ex = (w: string, e: Env = env()) => {
    try {
      const r = expandWord(w, e, esc);
      for (const n of r.used) ctx.used.add(n);
      return r.value;
    } catch (err) {
      throw lineError(ctx.df.file, ins.line, (err as Error).message);
    }
  };
  const cfg = state.config;
  switch (ins.kind) {
    case 'ARG': {
      const parts: string[] = [];
      for (const a of ins.args) {
        ctx.usedArgs.add(a.key);
        let v: string | undefined = ctx.req.buildArgs[a.key];
        if (v === undefined && a.value !== undefined) v = ex(a.value);
        if (v === undefined && ctx.metaEnv.has(a.key)) v = ctx.metaEnv.get(a.key);
        const i = state.args.findIndex((x) => x.key === a.key);
        if (i >= 0) state.args.splice(i, 1);
        state.args.push({ key: a.key, value: v });
        parts.push(v === undefined ? a.key : `${a.key}=${v}`);
      }
      metaStep(state, `ARG ${parts.join(' ')}`);
      return;
    }
    case 'ENV': {
      const e = env();
      const pairs = ins.pairs.map((p) => [ex(p.key, e), ex(p.value, e)] as const);
      for (const [k, v] of pairs) setEnv(cfg, k, v);
      metaStep(state, `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`);
      return;
    }
    case 'LABEL': {
      const e = env();
      const pairs = ins.pairs.map((p) => [ex(p.key, e), ex(p.value, e)] as const);
      cfg.Labels = { ...(cfg.Labels ?? {}) };
      for (const [k, v] of pairs) cfg.Labels[k] = v;
      metaStep(state, `LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`);
      return;
    }
    case 'USER':
      cfg.User = ex(ins.value);
      metaStep(state, `USER ${cfg.User}`);
      return;
    case 'STOPSIGNAL':
      cfg.StopSignal = ex(ins.value);
      metaStep(state, `STOPSIGNAL ${cfg.StopSignal}`);
      return;
    case 'MAINTAINER':
      state.author = ex(ins.value);
      metaStep(state, `MAINTAINER ${state.author}`);
      return;
    case 'EXPOSE': {
      const e = env();
      const ports = ins.values.map((v) => ex(v, e)).map((p) => (p.includes('/') ? p.toLowerCase() : `${p}/tcp`));
      cfg.ExposedPorts = { ...(cfg.ExposedPorts ?? {}) };
      for (const p of ports) cfg.ExposedPorts[p] = {};
      metaStep(state, `EXPOSE ${goList([...ports].sort())}`);
      return;
    }
    case 'VOLUME': {
      const e = env();
      const vols = ins.values.map((v) => ex(v, e));
      cfg.Volumes = { ...(cfg.Volumes ?? {}) };
      for (const v of vols) cfg.Volumes[v] = {};
      metaStep(state, `VOLUME ${goList(vols)}`);
      return;
    }
    case 'SHELL':
      cfg.Shell = [...ins.cmd];
      metaStep(state, `SHELL ${goList(ins.cmd)}`);
      return;
    case 'CMD': {
      const args = ins.shell ? [...(cfg.Shell ?? ['/bin/sh', '-c']), ins.cmd[0]!] : ins.cmd;
      cfg.Cmd = args;
      cfg.ArgsEscaped = true;
      state.cmdSet = true;
      metaStep(state, `CMD ${goQuoteList(args)}`);
      return;
    }
    case 'ENTRYPOINT': {
      const args = ins.shell ? [...(cfg.Shell ?? ['/bin/sh', '-c']), ins.cmd[0]!] : ins.cmd;
      cfg.Entrypoint = args;
      if (!state.cmdSet) delete cfg.Cmd;
      metaStep(state, `ENTRYPOINT ${goQuoteList(args)}`);
      return;
    }
    case 'HEALTHCHECK': {
      let h: Health;
      if (ins.none) h = { Test: ['NONE'] };
      else {
        h = { Test: ins.shell ? ['CMD-SHELL', ins.cmd[0]!] : ['CMD', ...ins.cmd] };
        const dur = (name: string, field: 'Interval' | 'Timeout' | 'StartPeriod' | 'StartInterval') => {
          const v = ins.flags.get(name)?.[0];
          if (v === undefined) return;
          const ns = parseGoDuration(v);
          if (ns === undefined || ns < 0) throw lineError(ctx.df.file, ins.line, `HEALTHCHECK --${name}=${v} is not a duration`);
          if (ns > 0) h[field] = ns;
        };
        dur('interval', 'Interval');
        dur('timeout', 'Timeout');
        dur('start-period', 'StartPeriod');
        dur('start-interval', 'StartInterval');
        const r = ins.flags.get('retries')?.[0];
        if (r !== undefined) {
          if (!/^\d+$/.test(r)) throw lineError(ctx.df.file, ins.line, `HEALTHCHECK --retries=${r} is not a number`);
          if (Number(r) > 0) h.Retries = Number(r);
        }
      }
      cfg.Healthcheck = h;
      metaStep(state, healthHistory(h));
      return;
    }
    case 'ONBUILD':
      cfg.OnBuild = [...(cfg.OnBuild ?? []), ins.expression];
      state.key = sha256(`${state.key}\nONBUILD ${ins.expression}`);
      return;
    case 'WORKDIR': {
      const wd = ex(ins.value);
      const abs = posix.normalize(posix.isAbsolute(wd) ? wd : posix.join(cfg.WorkingDir || '/', wd));
      cfg.WorkingDir = abs;
      const user = cfg.User ?? '';
      await layerStep(ctx, stage, state, ins, `WORKDIR ${abs}`, [user], async (rootfs) => {
        const owner = await ownerOf(rootfs, user, ctx, ins.line);
        await mkdirAllInRoot(rootfs, abs, owner.uid === 0 && owner.gid === 0 ? undefined : owner);
      });
      return;
    }
    case 'RUN':
      await runStep(ctx, stage, state, ins as Instruction & { kind: 'RUN' }, path);
      return;
    case 'COPY':
    case 'ADD':
      await copyStep(ctx, stage, state, ins, path);
      return;
    case 'FROM':
      throw lineError(ctx.df.file, ins.line, 'FROM inside a stage');
  }
}

async function ownerOf(rootfs: string, spec: string, ctx: Ctx, line: number): Promise<Owner> {
  try {
    const u = resolveUser(spec, await readInRoot(rootfs, '/etc/passwd'), await readInRoot(rootfs, '/etc/group'));
    return { uid: u.uid, gid: u.gid };
  } catch (e) {
    throw lineError(ctx.df.file, line, (e as Error).message);
  }
}

/** Make sure the committed snapshot chain of the state's layers exists; returns its top name. */
async function ensureChain(ctx: Ctx, state: StageState): Promise<string | undefined> {
  if (state.layers.length === 0) return undefined;
  const view = {
    name: 'build',
    root: state.layers[0]!,
    manifestDesc: state.layers[0]!,
    configDesc: state.layers[0]!,
    manifest: { schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: state.layers[0]!, layers: state.layers } as Manifest,
    config: { architecture: state.platform.architecture, os: state.platform.os, rootfs: { type: 'layers', diff_ids: state.diffIds } } as ImageConfig,
  } as ImageView;
  const { chainId } = await unpack(ctx.snaps, ctx.store, view, ctx.req.signal ? { signal: ctx.req.signal } : {});
  return chainId;
}

/** Prepare and mount an active snapshot on the state's chain; the returned release unmounts and removes it. */
async function mountWork(ctx: Ctx, state: StageState, label: string): Promise<{ key: string; rootfs: string; release: () => Promise<void> }> {
  const parent = await ensureChain(ctx, state);
  // The pid in the key lets the next build (reapDeadBuilds) clean up after a killed one.
  const id = `${process.pid}-${label}-${randomBytes(4).toString('hex')}`;
  const key = `build/${id}`;
  const rootfs = join(ctx.root, 'cache', 'mnt', id);
  await mkdir(rootfs, { recursive: true });
  await ctx.snaps.prepare(key, parent);
  let mounted = false;
  const release = async () => {
    ctx.cleanups.delete(release);
    if (mounted) await ctx.snaps.unmount(rootfs);
    mounted = false;
    await ctx.snaps.remove(key).catch(() => {});
    await rm(rootfs, { recursive: true, force: true }).catch(() => {});
  };
  ctx.cleanups.add(release);
  await ctx.snaps.mount(key, rootfs);
  mounted = true;
  return {
    key,
    rootfs,
    release,
  };
}

function stepName(stage: Stage, ins: Instruction, text: string): string {
  return `[${stage.name ?? `stage-${stage.index}`}] ${text.length > 80 ? `${text.slice(0, 77)}...` : text}`;
}

/**
 * One step that makes a layer: from the cache when its key has a record whose layer is in the
 * store, else `perform` on a mounted snapshot, then the snapshot's changes → layer → store.
 */
async function layerStep(ctx: Ctx, stage: Stage, state: StageState, ins: Instruction, createdBy: string, inputs: unknown[], perform: (rootfs: string, step: BuildStep) => Promise<void>): Promise<void> {
  const key = sha256(JSON.stringify([state.key, createdBy, inputs, ctx.epoch ?? null])).slice(7);
  const step: BuildStep = { id: key.slice(0, 16), name: stepName(stage, ins, createdBy), cached: false, durationMs: 0 };
  const recordPath = join(ctx.root, 'cache', 'steps', `${key}.json`);
  if (!ctx.noCache(stage)) {
    const rec = await readFile(recordPath, 'utf8').then((t) => JSON.parse(t) as CacheRecord, () => undefined);
    // Held in the build's lease first: a prune that removes the record meanwhile cannot take the layer.
    if (rec) await ctx.store.hold(rec.layer);
    if (rec && (await ctx.store.exists(rec.layer))) {
      step.cached = true;
      ctx.steps.push(step);
      ctx.req.onProgress?.({ type: 'step-start', step });
      ctx.req.onProgress?.({ type: 'step-done', step });
      state.layers.push(rec.layer);
      state.diffIds.push(rec.diffId);
      state.created = rec.created;
      state.key = key;
      history(state, createdBy, false);
      return;
    }
  }
  const t0 = Date.now();
  ctx.steps.push(step);
  ctx.req.onProgress?.({ type: 'step-start', step });
  const work = await mountWork(ctx, state, step.id);
  try {
    try {
      await perform(work.rootfs, step);
    } finally {
      await ctx.snaps.unmount(work.rootfs);
    }
    const tap = new DigestStream();
    const layerStream = await ctx.snaps.diff(work.key, { ...(ctx.epoch !== undefined ? { epoch: ctx.epoch } : {}), ...(ctx.req.signal ? { signal: ctx.req.signal } : {}) });
    const gz = compressStream('gzip');
    const put = ctx.store.putStream(gz as unknown as Readable, { what: `layer of ${createdBy.slice(0, 40)}` });
    await pipeline(layerStream, tap, gz, ctx.req.signal ? { signal: ctx.req.signal } : {});
    const blob = await put;
    const diffId = tap.digest();
    const layer: Descriptor = { mediaType: MediaType.OCI_LAYER_GZIP, digest: blob.digest, size: blob.size };
    const chain = chainIds([...state.diffIds, diffId]);
    const name = chain[chain.length - 1]!;
    if (!(await ctx.snaps.has(name))) {
      await ctx.snaps.commit(name, work.key).catch((e) => {
        if (!isBerthError(e, 'ALREADY_EXISTS')) throw e;
      });
    }
    const created = ctx.epoch !== undefined ? rfc3339(ctx.epoch * 1000) : rfc3339(Date.now());
    const rec: CacheRecord = { layer, diffId, created };
    await mkdir(join(ctx.root, 'cache', 'steps'), { recursive: true });
    const tmp = `${recordPath}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify(rec));
    await rename(tmp, recordPath);
    state.layers.push(layer);
    state.diffIds.push(diffId);
    state.created = created;
    state.key = key;
    history(state, createdBy, false);
    step.durationMs = Date.now() - t0;
    ctx.req.onProgress?.({ type: 'step-done', step });
  } catch (e) {
    step.error = (e as Error).message;
    step.durationMs = Date.now() - t0;
    ctx.req.onProgress?.({ type: 'step-done', step });
    throw e;
  } finally {
    await work.release();
  }
}

/** BuildKit's `RUN |N K=V ... args` history string. */
function runCommandString(args: string[], buildArgs: { key: string; value: string | undefined }[], env: Map<string, string>): string {
  const pairs: string[] = [];
  const idx = new Map<string, number>();
  for (const a of buildArgs) {
    const v = env.get(a.key) ?? a.value ?? '';
    const s = `${a.key}=${v}`;
    const i = idx.get(a.key);
    if (i !== undefined) pairs[i] = s;
    else {
      idx.set(a.key, pairs.length);
      pairs.push(s);
    }
  }
  return [...(pairs.length ? [`|${pairs.length}`, ...pairs] : []), ...args].join(' ');
}

function parseMountFlag(spec: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of spec.split(',')) {
    const i = part.indexOf('=');
    if (i < 0) out[part] = 'true';
    else out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

async function runStep(ctx: Ctx, stage: Stage, state: StageState, ins: Instruction & { kind: 'RUN' }, path: number[]): Promise<void> {
  const cfg = state.config;
  const shell = cfg.Shell ?? ['/bin/sh', '-c'];
  let args: string[];
  const scripts: { name: string; data: string }[] = [];
  if (ins.heredocs.length > 0 && ins.shell) {
    const only = /^<<-?\s*(['"]?)([^'"\s<]+)\1$/.exec(ins.cmd[0]!.trim());
    if (ins.heredocs.length === 1 && only) {
      const h = ins.heredocs[0]!;
      const data = h.chomp ? chompHeredoc(h.data) : h.data;
      if (data.startsWith('#!')) {
        scripts.push({ name: h.name, data });
        args = [`/dev/pipes/${h.name}`];
      } else args = [...shell, data];
    } else {
      let full = ins.cmd[0]!;
      for (const h of ins.heredocs) full += `\n${h.data}${h.name}`;
      args = [...shell, full];
    }
  } else args = ins.shell ? [...shell, ins.cmd[0]!] : [...ins.cmd];

  const env = envMap(state);
  const createdBy = `RUN ${runCommandString(args, state.args, env)}`;
  const network = ins.flags.get('network')?.[0] ?? ctx.req.network ?? 'default';
  if (!['default', 'none', 'host'].includes(network)) throw lineError(ctx.df.file, ins.line, `RUN --network=${network} is not supported`, 'use default, none or host');
  if (network === 'host' && !(ctx.req.allow ?? []).includes('network.host')) throw lineError(ctx.df.file, ins.line, 'RUN --network=host needs --allow network.host');
  const security = ins.flags.get('security')?.[0];
  if (security === 'insecure' && !(ctx.req.allow ?? []).includes('security.insecure')) throw lineError(ctx.df.file, ins.line, 'RUN --security=insecure needs --allow security.insecure');

  // Mounts: parsed now (cache key), made when the step runs.
  const mountSpecs = (ins.flags.get('mount') ?? []).map((m) => parseMountFlag(expandWord(m, env, ctx.df.escape).value));
  const inputs: unknown[] = [cfg.User ?? '', cfg.WorkingDir ?? '/', [...env.entries()], network, security ?? ''];
  for (const m of mountSpecs) {
    const type = m.type ?? 'bind';
    if (type === 'bind' && !m.from) {
      const matches = await findSources(ctx.contextDir, m.source ?? m.src ?? '/', ctx.ignore);
      inputs.push(['bind', m, await Promise.all(matches.map((x) => hashSource(x, ctx.ignore)))]);
    } else inputs.push([type, m]);
  }

  await layerStep(ctx, stage, state, ins, createdBy, inputs, async (rootfs, step) => {
    const mounts: SpecMount[] = [];
    const extra: (() => Promise<void>)[] = [];
    const stepTmp = join(ctx.root, 'cache', 'tmp', `${process.pid}-${step.id}-${randomBytes(4).toString('hex')}`);
    await mkdir(stepTmp, { recursive: true });
    extra.push(() => rm(stepTmp, { recursive: true, force: true }));
    try {
      for (const m of mountSpecs) {
        const type = m.type ?? 'bind';
        const target = m.target ?? m.dst ?? m.destination;
        if (!target && type !== 'secret' && type !== 'ssh') throw lineError(ctx.df.file, ins.line, `RUN --mount=type=${type} needs a target`);
        const abs = target ? posix.normalize(posix.isAbsolute(target) ? target : posix.join(cfg.WorkingDir || '/', target)) : '';
        const ro = m.readonly === 'true' || m.ro === 'true' || m.readonly === '' ;
        if (type === 'tmpfs') {
          mounts.push({ destination: abs, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', ...(m.size ? [`size=${m.size}`] : [])] });
        } else if (type === 'cache') {
          const id = m.id ?? abs;
          const name = createHash('sha256').update(id).digest('hex').slice(0, 32);
          const dir = join(ctx.root, 'cache', 'mounts', name);
          // Held before it is made: a prune never removes a cache mount a running build uses.
          extra.push(await holdCacheMount(ctx.root, name));
          await mkdir(dir, { recursive: true, mode: 0o755 });
          mounts.push({ destination: abs, type: 'bind', source: dir, options: ['rbind', 'rprivate', ...(ro ? ['ro'] : [])] });
        } else if (type === 'bind') {
          let srcRoot = ctx.contextDir;
          let ignore: PathFilter | undefined = ctx.ignore;
          if (m.from) {
            const from = await fromSource(ctx, stage, m.from, ins.line, path);
            srcRoot = from.rootfs;
            ignore = undefined;
            extra.push(from.release);
          }
          // A private copy: a bind mount must never let a RUN step write into the context.
          const srcPath = m.source ?? m.src ?? '/';
          const matches = await findSources(srcRoot, srcPath, ignore);
          if (matches.length === 0) throw lineError(ctx.df.file, ins.line, `RUN --mount=type=bind: source ${srcPath} not found`);
          const copyDir = join(stepTmp, `bind-${mounts.length}`);
          await mkdir(copyDir, { recursive: true });
          const match = matches[0]!;
          const host = match.isDir ? copyDir : join(copyDir, 'file');
          await copyInto(copyDir, [match], match.isDir ? '/' : '/file', false, { contextOwner: !m.from, ...(ignore ? { ignore } : {}) });
          mounts.push({ destination: abs, type: 'bind', source: host, options: ['rbind', 'rprivate', ...(m.rw === 'true' || m.readwrite === 'true' ? [] : ['ro'])] });
        } else if (type === 'secret') {
          const id = m.id ?? (target ? posix.basename(target) : '');
          const sec = ctx.req.secrets.find((s) => s.id === id);
          if (!sec) {
            if (m.required === 'true') throw lineError(ctx.df.file, ins.line, `secret ${id} not provided`, `pass --secret id=${id},src=FILE`);
            continue;
          }
          const data = sec.env !== undefined ? Buffer.from(process.env[sec.env] ?? '') : await readFile(sec.src!);
          const f = join(stepTmp, `secret-${mounts.length}`);
          await writeFile(f, data, { mode: 0o400 });
          mounts.push({ destination: abs || `/run/secrets/${id}`, type: 'bind', source: f, options: ['rbind', 'rprivate', 'ro'] });
        } else if (type === 'ssh') {
          throw lineError(ctx.df.file, ins.line, 'RUN --mount=type=ssh is not supported by the built-in builder', 'use --builder buildkit');
        } else throw lineError(ctx.df.file, ins.line, `RUN --mount=type=${type} is not a mount type`);
      }
      if (scripts.length > 0) {
        const pipes = join(stepTmp, 'pipes');
        await mkdir(pipes);
        for (const s of scripts) await writeFile(join(pipes, s.name), s.data, { mode: 0o755 });
        mounts.push({ destination: '/dev/pipes', type: 'bind', source: pipes, options: ['rbind', 'rprivate', 'ro'] });
      }
      const resolved = resolveUser(cfg.User, await readInRoot(rootfs, '/etc/passwd'), await readInRoot(rootfs, '/etc/group'));
      // BuildKit (containerd's WithAdditionalGIDs) lists the primary group among the supplementary ones.
      const user = { ...resolved, additionalGids: [...new Set([resolved.gid, ...resolved.additionalGids])] };
      const cwd = cfg.WorkingDir || '/';
      await mkdirAllInRoot(rootfs, cwd, undefined);
      const runEnv = [...(cfg.Env ?? [])];
      const envKeys = new Set(runEnv.map((e) => e.split('=')[0]));
      for (const a of state.args) if (a.value !== undefined && !envKeys.has(a.key)) runEnv.push(`${a.key}=${a.value}`);
      for (const p of PREDEFINED_ARGS) if (ctx.req.buildArgs[p] !== undefined && !envKeys.has(p)) runEnv.push(`${p}=${ctx.req.buildArgs[p]}`);
      const hosts = join(stepTmp, 'hosts');
      await writeFile(hosts, '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n');
      const resolv = join(stepTmp, 'resolv.conf');
      await writeFile(resolv, await readFile('/etc/resolv.conf', 'utf8').catch(() => ''));
      const spec = buildSpec({
        args,
        env: runEnv,
        cwd,
        user,
        rootfs,
        hostname: 'buildkitsandbox',
        nofile: await nofileLimit(),
        network: network === 'host' ? 'host' : network === 'none' ? 'none' : 'private',
        mounts,
        files: { hosts, resolvConf: resolv },
        ...(security === 'insecure' ? { privileged: true } : {}),
      });
      // Mount points: only the top-level runtime ones (proc, dev, sys, the /etc files; the
      // layer writer drops them when they are stubs) and the step's own mounts, whose stubs
      // are removed again after the run, as BuildKit does.
      for (const d of ['/proc', '/dev', '/sys']) await ensureMountpoint(rootfs, d, 'dir');
      for (const f of ['/etc/hosts', '/etc/resolv.conf']) await ensureMountpoint(rootfs, f, 'file');
      const stubs: { dest: string; first: string }[] = [];
      for (const m of mounts) {
        const first = await firstMissing(rootfs, m.destination);
        if (first) stubs.push({ dest: m.destination, first });
        const isFile = m.type === 'bind' && !!m.source && (await lstat(m.source)).isFile();
        await ensureMountpoint(rootfs, m.destination, isFile ? 'file' : 'dir');
      }
      extra.unshift(() => removeStubs(rootfs, stubs));
      const bundle = join(stepTmp, 'bundle');
      await writeBundle(bundle, spec);
      const tail: string[] = [];
      const sink = (stream: 'stdout' | 'stderr') =>
        new Writable({
              write(chunk: Buffer, _enc, cb) {
            const s = chunk.toString('utf8');
            ctx.req.onProgress?.({ type: 'step-log', id: step.id, stream, data: s });
            tail.push(...s.split('\n'));
            if (tail.length > 40) tail.splice(0, tail.length - 40);
            cb();
          },
        });
      const res = await runProcess(ctx.runc, {
        id: `berth-build-${process.pid}-${step.id}-${randomBytes(3).toString('hex')}`,
        bundle,
        io: { stdin: 'ignore', stdout: sink('stdout'), stderr: sink('stderr') },
        ...(ctx.req.signal ? { signal: ctx.req.signal, graceMs: 2000 } : {}),
      });
      ctx.req.signal?.throwIfAborted();
      if (res.exitCode !== 0) {
        const last = tail.filter((l) => l.trim() !== '').slice(-5);
        const what = ins.cmd.join(' ').replace(/\s+/g, ' ');
        throw new BerthError('PROCESS', `build failed at ${ctx.df.file}:${ins.line} (RUN ${what.length > 60 ? `${what.slice(0, 57)}...` : what}): exit code ${res.exitCode}${last.length ? `; last output: ${last.join(' | ')}` : ''}`, {
          exitCode: 1,
          ...(res.error ? { cause: res.error } : {}),
        });
      }
    } finally {
      for (const f of extra.reverse()) await f().catch(() => {});
    }
  });
}

/** The first component of `path` that does not exist in the rootfs, or undefined. */
async function firstMissing(rootfs: string, path: string): Promise<string | undefined> {
  let cur = '/';
  for (const part of posix.normalize(path).split('/').filter(Boolean)) {
    cur = posix.join(cur, part);
    try {
      await lstat(join(rootfs, cur));
    } catch {
      return cur;
    }
  }
  return undefined;
}

/** Remove mount-point stubs a step's mounts needed: empty files and directories, up to the first that did not exist. */
async function removeStubs(rootfs: string, stubs: { dest: string; first: string }[]): Promise<void> {
  for (const s of [...stubs].reverse()) {
    for (let cur = s.dest; cur.length >= s.first.length; cur = posix.dirname(cur)) {
      const host = join(rootfs, cur);
      try {
        const st = await lstat(host);
        if (st.isDirectory()) {
          if ((await readdir(host)).length > 0) break;
          await rmdir(host);
        } else if (st.isFile() && st.size === 0) await unlink(host);
        else break;
      } catch {
        break;
      }
      if (cur === s.first) break;
    }
  }
}

/** The rootfs of another stage or an image, mounted for reading (COPY --from, --mount from=). */
async function fromSource(ctx: Ctx, stage: Stage, name: string, line: number, path: number[]): Promise<{ rootfs: string; release: () => Promise<void>; key: string }> {
  const ref = stageRef(ctx, name, stage.index);
  let state: StageState;
  if (ref) state = await stageResult(ctx, ref.index, path);
  else if (name.toLowerCase() === 'scratch') state = scratchState(ctx);
  else state = await imageState(ctx, await resolveImage(ctx, name, line), ctx.platform);
  const w = await mountWork(ctx, state, 'from');
  return { rootfs: w.rootfs, release: w.release, key: state.key };
}

async function copyStep(ctx: Ctx, stage: Stage, state: StageState, ins: Instruction & { kind: 'COPY' | 'ADD' }, path: number[]): Promise<void> {
  const cfg = state.config;
  const env = envMap(state);
  const ex = (w: string) => {
    try {
      const r = expandWord(w, env, ctx.df.escape);
      for (const n of r.used) ctx.used.add(n);
      return r.value;
    } catch (err) {
      throw lineError(ctx.df.file, ins.line, (err as Error).message);
    }
  };
  const fromName = ins.flags.get('from')?.[0] !== undefined ? ex(ins.flags.get('from')![0]!) : undefined;
  const chown = ins.flags.get('chown')?.[0] !== undefined ? ex(ins.flags.get('chown')![0]!) : undefined;
  const chmodText = ins.flags.get('chmod')?.[0] !== undefined ? ex(ins.flags.get('chmod')![0]!) : undefined;
  if (chmodText !== undefined && !/^[0-7]{3,4}$/.test(chmodText)) throw lineError(ctx.df.file, ins.line, `invalid --chmod=${chmodText}`, 'give an octal mode such as 0755');
  const chmod = chmodText !== undefined ? parseInt(chmodText, 8) : undefined;
  const parents = ins.flags.has('parents') && ins.flags.get('parents')![0] !== 'false';
  const srcWords = ins.srcs.filter((s) => !(/^\d*<<-?/.test(s) && ins.heredocs.some((h) => s.replace(/^\d*<<-?/, '').replace(/['"]/g, '') === h.name)));
  const srcs = srcWords.map(ex);
  const destRaw = ex(ins.dest);
  const dest = posix.normalize(posix.isAbsolute(destRaw) ? destRaw : posix.join(cfg.WorkingDir || '/', destRaw));
  const destIsDir = destRaw.endsWith('/') || destRaw === '.' || destRaw.endsWith('/.') || srcs.length + ins.heredocs.length > 1 || srcs.some(hasWildcard);
  const isUrl = (s: string) => ins.kind === 'ADD' && /^https?:\/\//.test(s);
  if (ins.kind === 'ADD' && srcs.some((s) => /^git:\/\//.test(s) || s.startsWith('git@') || /\.git(#.*)?$/.test(s))) {
    throw lineError(ctx.df.file, ins.line, 'ADD of a git repository is not supported by the built-in builder', 'clone it into the context, or use --builder buildkit');
  }
  const checksum = ins.flags.get('checksum')?.[0] !== undefined ? ex(ins.flags.get('checksum')![0]!) : undefined;
  if (checksum !== undefined && !srcs.every(isUrl)) throw lineError(ctx.df.file, ins.line, 'ADD --checksum only applies to URL sources');
  const flagText = [...(ins.flags.has('parents') ? ['--parents'] : []), ...(chown !== undefined ? [`--chown=${chown}`] : []), ...(chmodText !== undefined ? [`--chmod=${chmodText}`] : [])];
  const createdBy = [ins.kind, ...flagText, ...srcs, ...ins.heredocs.map((h) => `<<${h.name}`), destRaw].join(' ');

  // Sources and their content digests (the cache key).
  let from: { rootfs: string; release: () => Promise<void>; key: string } | undefined;
  const downloads: string[] = [];
  try {
    const inputs: unknown[] = [dest, chown ?? '', chmod ?? '', cfg.User ?? ''];
    let matches: SourceMatch[] = [];
    const excludes = (ins.flags.get('exclude') ?? []).map(ex);
    inputs.push(excludes, parents);
    const exclude = excludes.length ? new IgnoreMatcher(excludes) : undefined;
    let ignore: PathFilter | undefined;
    if (fromName !== undefined) {
      from = await fromSource(ctx, stage, fromName, ins.line, path);
      inputs.push(from.key);
    } else ignore = ctx.ignore;
    const root = from ? from.rootfs : ctx.contextDir;
    const fetched = new Set<string>();
    for (const s of srcs) {
      if (isUrl(s)) {
        const dir = join(ctx.root, 'cache', 'tmp', `${process.pid}-add-${randomBytes(4).toString('hex')}`);
        downloads.push(dir);
        let f;
        try {
          const { fetchUrl } = await import('./fetch.js');
          f = await fetchUrl(s, dir, { ...(checksum !== undefined ? { checksum } : {}), ...(ctx.req.signal ? { signal: ctx.req.signal } : {}) });
        } catch (e) {
          throw lineError(ctx.df.file, ins.line, (e as Error).message, isBerthError(e) ? e.hint : undefined);
        }
        fetched.add(f.path);
        matches.push({ rel: f.name, host: f.path, isDir: false });
        inputs.push(s, f.digest);
        continue;
      }
      const m = await findSources(root, s, ignore);
      if (m.length === 0) throw lineError(ctx.df.file, ins.line, `${ins.kind} ${s}: ${JSON.stringify(posix.normalize(`/${s}`))} not found${from ? ` in ${fromName}` : ' in the build context'}`, from ? undefined : 'check the path and .dockerignore');
      matches.push(...m);
      if (!from) inputs.push(s, await Promise.all(m.map((x) => hashSource(x, ignore, ctx.req.signal))));
      else inputs.push(s);
    }
    const docs = ins.heredocs.map((h) => {
      const raw = h.chomp ? chompHeredoc(h.data) : h.data;
      return { name: h.name, data: h.expand ? expandHeredoc(raw, env) : raw };
    });
    inputs.push(docs);
    if (ins.kind === 'ADD') inputs.push('add');
    await layerStep(ctx, stage, state, ins, createdBy, inputs, async (rootfs) => {
      const owner = chown !== undefined ? await ownerOf(rootfs, chown, ctx, ins.line) : undefined;
      const o = { parents, ...(exclude ? { exclude } : {}), ...(owner ? { chown: owner } : {}), ...(chmod !== undefined ? { chmod } : {}), contextOwner: !from, ...(ignore ? { ignore } : {}), ...(ctx.req.signal ? { signal: ctx.req.signal } : {}) };
      for (const d of docs) await writeHeredocFile(rootfs, d.name, d.data, dest, destIsDir, o);
      if (ins.kind === 'ADD' && !from) {
        const plain: SourceMatch[] = [];
        for (const m of matches) {
          if (!m.isDir && !fetched.has(m.host) && (await isArchive(m.host))) {
            const dir = await mkdirAllInRoot(rootfs, dest, owner);
            const { applyLayer } = await import('../../archive/apply.js');
            const { createReadStream } = await import('node:fs');
            await applyLayer(createReadStream(m.host), dir, { whiteouts: 'apply', what: `ADD ${m.rel}`, ...(ctx.req.signal ? { signal: ctx.req.signal } : {}) });
          } else plain.push(m);
        }
        matches = plain;
      }
      await copyInto(rootfs, matches, dest, destIsDir, o);
    });
  } finally {
    await from?.release();
    for (const d of downloads) await rm(d, { recursive: true, force: true }).catch(() => {});
  }
}

async function commitResult(ctx: Ctx, state: StageState): Promise<BuildResult> {
  const cfg = clone(state.config);
  for (const [k, v] of Object.entries(ctx.req.labels)) (cfg.Labels ??= {})[k] = v;
  const created = ctx.epoch !== undefined ? rfc3339(ctx.epoch * 1000) : state.created;
  const history = ctx.epoch !== undefined ? state.history.map((h) => ({ ...h, created })) : state.history;
  const config: ImageConfig = {
    created,
    ...(state.author ? { author: state.author } : {}),
    architecture: state.platform.architecture,
    os: state.platform.os,
    ...(state.platform.variant ? { variant: state.platform.variant } : {}),
    config: cfg as ContainerConfig,
    rootfs: { type: 'layers', diff_ids: state.diffIds },
    history,
  };
  // A rebuild with nothing changed makes the same config and manifest: no ingest, no index write.
  const put = async (bytes: Buffer, what: string): Promise<{ digest: Digest; size: number }> => {
    const desc = { digest: sha256(bytes) as Digest, size: bytes.length };
    if (await ctx.store.exists(desc)) {
      await ctx.store.hold(desc);
      if (await ctx.store.exists(desc)) return desc;
    }
    return ctx.store.putBytes(bytes, { what });
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const c = await put(configBytes, 'image config');
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config: { mediaType: MediaType.OCI_CONFIG, digest: c.digest, size: c.size },
    layers: state.layers,
  } as Manifest;
  const mBytes = Buffer.from(JSON.stringify(manifest));
  const m = await put(mBytes, 'image manifest');
  const rootDesc: Descriptor = { mediaType: MediaType.OCI_MANIFEST, digest: m.digest, size: m.size };
  const names: string[] = [];
  const current = ctx.req.tags.length > 0 ? new Map((await ctx.store.listImages()).map((r) => [r.name, r.desc.digest])) : new Map<string, string>();
  for (const t of ctx.req.tags) {
    const ref = parseReference(t);
    const full = !ref.digest ? formatReference({ domain: ref.domain, path: ref.path, tag: ref.tag ?? 'latest' }) : undefined;
    names.push(full !== undefined && current.get(full) === rootDesc.digest ? full : await tagImage(ctx.store, t, rootDesc));
  }
  return {
    root: rootDesc,
    imageId: c.digest,
    names,
    metadata: { 'containerimage.digest': m.digest, 'containerimage.config.digest': c.digest, 'containerimage.descriptor': rootDesc },
    steps: ctx.steps,
    builder: 'builtin',
  };
}

