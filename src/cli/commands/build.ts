import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type { OutputSpec, ReproducibleResult, SecretSpec } from '../../index.js';
import { BerthError } from '../../index.js';
import { createBuildProgress } from '../build-progress.js';
import { defineCommand } from '../command.js';
import { pickMode } from '../progress.js';

interface BuildArgs {
  context?: string;
  tag?: string[];
  file?: string;
  buildArg?: string[];
  target?: string;
  label?: string[];
  platform?: string;
  noCache?: boolean;
  /** yargs reads `--no-cache` as the negation of `--cache`. */
  cache?: boolean;
  pull?: boolean;
  network?: string;
  secret?: string[];
  ssh?: string[];
  cacheFrom?: string[];
  cacheTo?: string[];
  output?: string[];
  push?: boolean;
  iidfile?: string;
  metadataFile?: string;
  quiet?: boolean;
  builder?: 'auto' | 'buildkit' | 'builtin';
  buildkitAddr?: string;
  tlscacert?: string;
  tlscert?: string;
  tlskey?: string;
  tlsservername?: string;
  tlsdir?: string;
  keepBuildkitd?: boolean;
  allow?: string[];
  checkReproducible?: boolean;
}

const OUTPUT_TYPES = new Set(['image', 'registry', 'docker', 'oci', 'tar', 'local']);
const ARG_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** Split a `k=v,k2="v,2"` flag value (docker's and buildctl's CSV form). */
export function splitCsv(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '"') {
      if (quoted && value[i + 1] === '"') {
        cur += '"';
        i++;
      } else quoted = !quoted;
    } else if (c === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (quoted) throw new BerthError('INVALID_ARGUMENT', `unterminated quote in ${JSON.stringify(value)}`);
  out.push(cur);
  return out;
}

function pairs(value: string, flag: string): Record<string, string> {
  const o: Record<string, string> = {};
  for (const f of splitCsv(value)) {
    const eq = f.indexOf('=');
    if (eq <= 0) throw new BerthError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(value)}: ${JSON.stringify(f)} is not key=value`);
    o[f.slice(0, eq).trim().toLowerCase()] = f.slice(eq + 1);
  }
  return o;
}

/**
 * `--pull` (docker's: always ask the registry), `--pull=true|false` (false is docker's default:
 * pull only what is missing), and podman's `--pull=always|missing|never`, which yargs' boolean
 * flag cannot carry: read from the raw arguments.
 */
export function pullFlag(value: boolean | undefined, rawArgs: readonly string[]): 'always' | 'missing' | 'never' | undefined {
  const raw = [...rawArgs].reverse().find((a) => a.startsWith('--pull='))?.slice('--pull='.length);
  if (raw !== undefined && !['true', 'false'].includes(raw)) {
    if (raw === 'always' || raw === 'missing' || raw === 'never') return raw;
    throw new BerthError('INVALID_ARGUMENT', `--pull=${raw}: not a pull policy`, { hint: 'use --pull (always), --pull=missing or --pull=never' });
  }
  if (value === true) return 'always';
  if (value === false) return 'missing';
  return undefined;
}

/** The lines `build --check-reproducible` prints. */
export function reproducibleReport(r: ReproducibleResult): string[] {
  const epoch = `SOURCE_DATE_EPOCH=${r.epoch} (${r.epochFrom === 'default' ? 'default: set in neither the environment nor --build-arg' : `from the ${r.epochFrom === 'env' ? 'environment' : 'build arg'}`})`;
  if (r.reproducible) return [`reproducible: both builds gave ${r.digests[0]} (image ${r.imageIds[0]}), ${epoch}`];
  const d = r.difference!;
  const where = d.layer !== undefined ? `layer ${d.layer}, /${d.path}` : d.path;
  return [
    `not reproducible: ${where}: ${d.what.join(', ')} differ (${d.detail})`,
    `  first build ${r.digests[0]}, second build ${r.digests[1]}, ${epoch}`,
  ];
}

/** `--build-arg K=V`, or a bare `K` that takes the environment's value (skipped when unset). */
export function parseBuildArgs(list: readonly string[], env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list) {
    const eq = a.indexOf('=');
    const k = eq === -1 ? a : a.slice(0, eq);
    if (!ARG_NAME.test(k)) throw new BerthError('INVALID_ARGUMENT', `--build-arg ${JSON.stringify(a)}: ${JSON.stringify(k)} is not a valid argument name`, { hint: 'use --build-arg NAME=VALUE or NAME' });
    if (eq === -1) {
      if (env[k] !== undefined) out[k] = env[k]!;
    } else out[k] = a.slice(eq + 1);
  }
  return out;
}

export function parseLabels(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const eq = l.indexOf('=');
    if (eq === 0) throw new BerthError('INVALID_ARGUMENT', `--label ${JSON.stringify(l)}: empty key`, { hint: 'use --label KEY=VALUE' });
    out[eq === -1 ? l : l.slice(0, eq)] = eq === -1 ? '' : l.slice(eq + 1);
  }
  return out;
}

/** `--secret id=ID[,src=PATH|,env=NAME][,type=file|env]` (docker's forms). */
export function parseSecret(value: string): SecretSpec {
  const f = pairs(value, '--secret');
  for (const k of Object.keys(f)) {
    if (!['id', 'src', 'source', 'env', 'type', 'required'].includes(k)) throw new BerthError('INVALID_ARGUMENT', `--secret ${JSON.stringify(value)}: unknown key ${JSON.stringify(k)}`, { hint: 'use id=ID,src=PATH or id=ID,env=NAME' });
  }
  const id = f.id;
  if (!id) throw new BerthError('INVALID_ARGUMENT', `--secret ${JSON.stringify(value)}: no id`, { hint: 'use id=ID,src=PATH or id=ID,env=NAME' });
  const src = f.src ?? f.source;
  if (f.type !== undefined && f.type !== 'file' && f.type !== 'env') throw new BerthError('INVALID_ARGUMENT', `--secret ${JSON.stringify(value)}: type must be file or env`);
  if (src !== undefined && f.env !== undefined) throw new BerthError('INVALID_ARGUMENT', `--secret ${JSON.stringify(value)}: give src or env, not both`);
  if (f.type === 'env' || f.env !== undefined) return { id, env: f.env ?? src ?? id };
  if (src !== undefined) return { id, src: resolve(src) };
  return { id, env: id };
}

/** `--output`: `-` (a tar on stdout), a bare path (type=local), or `type=...,dest=...`. */
export function parseOutput(value: string): OutputSpec {
  if (value === '-') return { type: 'tar', dest: '-', attrs: {} };
  if (!value.includes('=')) return { type: 'local', dest: resolve(value), attrs: {} };
  const f = pairs(value, '--output');
  const type = f.type;
  if (!type) throw new BerthError('INVALID_ARGUMENT', `--output ${JSON.stringify(value)}: no type`, { hint: 'use type=image|registry|docker|oci|tar|local' });
  if (!OUTPUT_TYPES.has(type)) throw new BerthError('INVALID_ARGUMENT', `--output ${JSON.stringify(value)}: unknown type ${JSON.stringify(type)}`, { hint: 'use type=image|registry|docker|oci|tar|local' });
  const { type: _t, dest, push, ...attrs } = f;
  if (type !== 'image' && type !== 'registry' && !dest) throw new BerthError('INVALID_ARGUMENT', `--output ${JSON.stringify(value)}: type=${type} needs dest=PATH (or dest=-)`);
  return {
    type: type as OutputSpec['type'],
    ...(dest !== undefined ? { dest: dest === '-' ? '-' : resolve(dest) } : {}),
    ...(push === 'true' ? { push: true } : {}),
    attrs,
  };
}

async function readAll(s: Readable, max: number, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of s) {
    n += (c as Buffer).length;
    if (n > max) throw new BerthError('INVALID_ARGUMENT', `${what} is larger than ${max} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export default defineCommand<BuildArgs>({
  command: 'build <context>',
  describe: 'Build an image from a Dockerfile (BuildKit, or the built-in builder)',
  builder: (y) =>
    y
      .positional('context', { type: 'string', describe: 'Build context: a directory, or - for a tar on stdin' })
      .option('tag', { alias: 't', type: 'string', describe: 'Name and tag (repeatable)' })
      .option('file', { alias: 'f', type: 'string', describe: 'Dockerfile (default CONTEXT/Dockerfile; - for stdin)' })
      .option('build-arg', { type: 'string', describe: 'Build-time variable K=V (a bare K takes the environment value)' })
      .option('target', { type: 'string', describe: 'Build this stage' })
      .option('label', { type: 'string', describe: 'Image label K=V' })
      .option('platform', { type: 'string', describe: 'Target platform os/arch[/variant]' })
      .option('no-cache', { type: 'boolean', describe: 'Do not use the build cache' })
      .option('cache', { type: 'boolean', hidden: true })
      .option('pull', { type: 'boolean', describe: 'Always look for newer base images; --pull=missing (default: pull a base that is not in the store), --pull=never (the store only)' })
      .option('network', { type: 'string', describe: 'Network for RUN: default, none or host' })
      .option('secret', { type: 'string', describe: 'Secret id=ID,src=PATH or id=ID,env=NAME' })
      .option('ssh', { type: 'string', describe: 'SSH agent socket or keys: default|ID[=SOCKET|KEY...]' })
      .option('cache-from', { type: 'string', describe: 'External cache source (IMAGE or type=...,...)' })
      .option('cache-to', { type: 'string', describe: 'Cache export destination (IMAGE or type=...,...)' })
      .option('output', { alias: 'o', type: 'string', describe: 'Output: type=image (the store, default)|registry|docker|oci|tar|local,dest=PATH; - for a tar on stdout' })
      .option('push', { type: 'boolean', describe: 'Push the image (shorthand for --output type=image,push=true)' })
      .option('iidfile', { type: 'string', describe: 'Write the image ID here' })
      .option('metadata-file', { type: 'string', describe: 'Write the build result metadata (JSON) here' })
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'No progress; print the image ID only' })
      .option('builder', { type: 'string', choices: ['auto', 'buildkit', 'builtin'] as const, default: 'auto' as const, describe: 'Backend' })
      .option('buildkit-addr', { type: 'string', describe: 'BuildKit address (unix://, tcp://, docker-container://, kube-pod://; default BUILDKIT_HOST)' })
      .option('tlscacert', { type: 'string', describe: 'CA certificate for a tcp:// BuildKit' })
      .option('tlscert', { type: 'string', describe: 'Client certificate for a tcp:// BuildKit' })
      .option('tlskey', { type: 'string', describe: 'Client key for a tcp:// BuildKit' })
      .option('tlsservername', { type: 'string', describe: 'Server name to check the BuildKit certificate against' })
      .option('tlsdir', { type: 'string', describe: 'Directory with ca.pem, cert.pem and key.pem' })
      .option('keep-buildkitd', { type: 'boolean', describe: 'Keep a buildkitd berth starts running after the build (berth buildkit stop)' })
      .option('check-reproducible', { type: 'boolean', describe: 'Build twice without cache (SOURCE_DATE_EPOCH from --build-arg, the environment, else 0) and report the first file that differs; exit 5 when the images differ' })
      .option('allow', { type: 'string', describe: 'Extra entitlements (network.host, security.insecure)' }),
  async run(argv, ctx) {
    // Repeatable flags are not yargs arrays (those would swallow the context argument).
    const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
    for (const k of ['tag', 'buildArg', 'label', 'secret', 'ssh', 'cacheFrom', 'cacheTo', 'output', 'allow'] as const) (argv as Record<string, unknown>)[k] = list(argv[k]);
    // yargs hands a lone `-` positional over as an empty string.
    const context = argv.context === '' && process.argv.includes('-') ? '-' : argv.context;
    if (!context) throw new BerthError('INVALID_ARGUMENT', 'no build context given', { hint: 'give a directory, or - for a tar on stdin' });
    const noCache = argv.noCache === true || argv.cache === false;
    const pull = pullFlag(argv.pull, process.argv);
    const outputs = (argv.output ?? []).map(parseOutput);
    if (argv.push) outputs.push({ type: 'image', push: true, attrs: {} });
    if (argv.file === '-' && context === '-') throw new BerthError('INVALID_ARGUMENT', 'the context and the Dockerfile cannot both come from stdin', { hint: 'give a context directory with -f -, or a tar context with its own Dockerfile' });
    const buildArgs = parseBuildArgs(argv.buildArg ?? []);
    const labels = parseLabels(argv.label ?? []);
    const secrets = (argv.secret ?? []).map(parseSecret);
    const dockerfileText = argv.file === '-' ? await readAll(process.stdin, 4 * 1024 * 1024, 'Dockerfile on stdin') : undefined;
    const mode = argv.quiet ? 'none' : pickMode(argv.progress);
    const progress = createBuildProgress(mode);
    const berth = await ctx.berth();
    const tls = {
      ...(argv.tlscacert ? { caCert: resolve(argv.tlscacert) } : {}),
      ...(argv.tlscert ? { cert: resolve(argv.tlscert) } : {}),
      ...(argv.tlskey ? { key: resolve(argv.tlskey) } : {}),
      ...(argv.tlsservername ? { serverName: argv.tlsservername } : {}),
      ...(argv.tlsdir ? { dir: resolve(argv.tlsdir) } : {}),
    };
    const buildOpts: Parameters<typeof berth.build>[1] = {
        ...(argv.file && argv.file !== '-' ? { dockerfile: resolve(argv.file) } : {}),
        ...(dockerfileText !== undefined ? { dockerfileText } : {}),
        tags: argv.tag ?? [],
        buildArgs,
        labels,
        ...(argv.target ? { target: argv.target } : {}),
        ...(argv.platform ? { platform: argv.platform } : {}),
        ...(noCache ? { noCache: true } : {}),
        ...(pull !== undefined ? { pull } : {}),
        ...(argv.network ? { network: argv.network } : {}),
        secrets,
        ssh: argv.ssh ?? [],
        cacheFrom: argv.cacheFrom ?? [],
        cacheTo: argv.cacheTo ?? [],
        outputs,
        stdout: process.stdout,
        ...(argv.allow ? { allow: argv.allow } : {}),
        signal: ctx.signal,
        onProgress: progress.onEvent,
        builder: argv.builder ?? 'auto',
        ...(argv.buildkitAddr ? { addr: argv.buildkitAddr } : {}),
        ...(Object.keys(tls).length > 0 ? { tls } : {}),
        ...(argv.keepBuildkitd ? { keepDaemon: true } : {}),
    };
    const input = context === '-' ? process.stdin : resolve(context);
    let result;
    let repro: ReproducibleResult | undefined;
    try {
      if (argv.checkReproducible) {
        repro = await berth.checkReproducible(input, buildOpts);
        result = repro.result;
      } else result = await berth.build(input, buildOpts);
    } finally {
      progress.done();
    }
    if (repro) {
      for (const line of reproducibleReport(repro)) ctx.out(line);
      if (!repro.reproducible) ctx.setExitCode(5);
      return;
    }
    const id = result.imageId ?? result.root?.digest;
    if (argv.iidfile && id) await writeFile(argv.iidfile, id);
    if (argv.metadataFile) await writeFile(argv.metadataFile, JSON.stringify(result.metadata, null, 2) + '\n');
    // stdout carries the result only (and nothing when an output already went there).
    const toStdout = outputs.some((o) => o.dest === '-');
    if (!toStdout && id) ctx.out(id);
  },
});
