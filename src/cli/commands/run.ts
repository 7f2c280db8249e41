import { readFileSync } from 'node:fs';
import { BerthError } from '../../errors.js';
import { defineCommand } from '../command.js';
import type { CliContext } from '../context.js';

// ---- docker-style argv: flags up to the first positional, the rest verbatim ----

export interface FlagSpec {
  name: string;
  short?: string;
  type: 'bool' | 'string' | 'array';
}

const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'root', type: 'string' },
  { name: 'debug', type: 'bool' },
  { name: 'progress', type: 'string' },
];

/**
 * Parse `berth VERB [FLAGS] POSITIONAL... [COMMAND...]` like docker: flags (with `-it` groups,
 * `--x=v`, `-e v`, `-ev`) are read until `npos` positionals were seen; everything after is the
 * command, verbatim (`sh -c 'echo --rm'` keeps its flags).
 */
export function parseDockerArgs(raw: readonly string[], verb: string | readonly string[], specs: readonly FlagSpec[], npos: number): { flags: Record<string, unknown>; positionals: string[]; rest: string[] } {
  const all = [...specs, ...GLOBAL_FLAGS];
  const verbs = Array.isArray(verb) ? verb : [verb];
  // skip global flags and the verb words
  let i = 0;
  let vi = 0;
  while (i < raw.length && vi < verbs.length) {
    if (raw[i] === verbs[vi]) vi++;
    else if (raw[i] === '--root' || raw[i] === '--progress') i++;
    i++;
  }
  const flags: Record<string, unknown> = {};
  const positionals: string[] = [];
  const set = (s: FlagSpec, v: string | boolean) => {
    if (s.type === 'array') ((flags[s.name] ??= []) as string[]).push(String(v));
    else flags[s.name] = v;
  };
  const need = (s: FlagSpec, inline: string | undefined): string => {
    if (inline !== undefined) return inline;
    const v = raw[++i];
    if (v === undefined) throw new BerthError('INVALID_ARGUMENT', `flag --${s.name} needs a value`);
    return v;
  };
  for (; i < raw.length && positionals.length < npos; i++) {
    const a = raw[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq === -1 ? a.slice(2) : a.slice(2, eq);
      const inline = eq === -1 ? undefined : a.slice(eq + 1);
      const neg = name.startsWith('no-') ? all.find((s) => s.name === name.slice(3) && s.type === 'bool') : undefined;
      const s = all.find((x) => x.name === name) ?? neg;
      if (!s) throw new BerthError('INVALID_ARGUMENT', `unknown flag: --${name}`, { hint: `see berth ${verbs.join(' ')} --help` });
      if (s.type === 'bool') set(s, neg ? false : inline === undefined ? true : !/^(false|0|no)$/i.test(inline));
      else set(s, need(s, inline));
    } else if (a.startsWith('-') && a.length > 1) {
      for (let k = 1; k < a.length; k++) {
        const ch = a[k]!;
        const s = all.find((x) => x.short === ch);
        if (!s) throw new BerthError('INVALID_ARGUMENT', `unknown shorthand flag: '${ch}' in ${a}`, { hint: `see berth ${verbs.join(' ')} --help` });
        if (s.type === 'bool') set(s, true);
        else {
          const rest = a.slice(k + 1).replace(/^=/, '');
          set(s, need(s, rest === '' ? undefined : rest));
          break;
        }
      }
    } else positionals.push(a);
  }
  return { flags, positionals, rest: raw.slice(i) };
}

/** The args given to main (bin/berth.js passes process.argv.slice(2)). */
export function rawArgs(): string[] {
  return process.argv.slice(2);
}

// ---- berth run ----

export const RUN_FLAGS: FlagSpec[] = [
  { name: 'name', type: 'string' },
  { name: 'rm', type: 'bool' },
  { name: 'detach', short: 'd', type: 'bool' },
  { name: 'interactive', short: 'i', type: 'bool' },
  { name: 'tty', short: 't', type: 'bool' },
  { name: 'env', short: 'e', type: 'array' },
  { name: 'env-file', type: 'array' },
  { name: 'workdir', short: 'w', type: 'string' },
  { name: 'user', short: 'u', type: 'string' },
  { name: 'entrypoint', type: 'string' },
  { name: 'volume', short: 'v', type: 'array' },
  { name: 'tmpfs', type: 'array' },
  { name: 'read-only', type: 'bool' },
  { name: 'network', type: 'string' },
  { name: 'net', type: 'string' },
  { name: 'hostname', type: 'string' },
  { name: 'memory', short: 'm', type: 'string' },
  { name: 'cpus', type: 'string' },
  { name: 'pids-limit', type: 'string' },
  { name: 'cap-add', type: 'array' },
  { name: 'cap-drop', type: 'array' },
  { name: 'privileged', type: 'bool' },
  { name: 'pull', type: 'string' },
  { name: 'init', type: 'bool' },
  { name: 'help', type: 'bool' },
];

/** Forward SIGINT/SIGTERM/SIGHUP/SIGQUIT to the container while it runs in the foreground. */
export function takeSignals(): { install: (fwd: (s: NodeJS.Signals) => void) => void; restore: () => void } {
  const sigs: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  const saved = new Map(sigs.map((s) => [s, process.listeners(s)] as const));
  const handlers = new Map<NodeJS.Signals, () => void>();
  return {
    install(fwd) {
      for (const s of sigs) {
        process.removeAllListeners(s);
        const h = () => fwd(s);
        handlers.set(s, h);
        process.on(s, h);
      }
    },
    restore() {
      for (const [s, h] of handlers) process.off(s, h);
      for (const [s, ls] of saved) for (const l of ls) process.on(s, l as () => void);
    },
  };
}

export async function runMain(ctx: CliContext, progressFlag = 'auto'): Promise<void> {
  const { flags: f, positionals, rest } = parseDockerArgs(rawArgs(), ['run'], RUN_FLAGS, 1);
  const image = positionals[0];
  if (!image) throw new BerthError('INVALID_ARGUMENT', '"berth run" requires at least 1 argument: IMAGE', { hint: 'berth run [OPTIONS] IMAGE [COMMAND] [ARG...]' });
  const { parseBytes, parseEnvFile, parseEnvFlags } = await import('../../run/spec.js');
  const env: string[] = [];
  for (const file of (f['env-file'] as string[] | undefined) ?? []) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      throw new BerthError('INVALID_ARGUMENT', `cannot read --env-file ${file}`, { hint: 'check the path' });
    }
    env.push(...parseEnvFile(text));
  }
  env.push(...parseEnvFlags((f.env as string[] | undefined) ?? []));
  const network = (f.network ?? f.net) as string | undefined;
  if (network !== undefined && !['host', 'none', 'bridge', 'default', 'private'].includes(network)) {
    throw new BerthError('INVALID_ARGUMENT', `unsupported --network ${JSON.stringify(network)}`, { hint: 'berth supports --network host or none (the default is a private network namespace with loopback only)' });
  }
  const pull = (f.pull as string | undefined) ?? 'missing';
  if (!['missing', 'never', 'always'].includes(pull)) throw new BerthError('INVALID_ARGUMENT', `invalid --pull ${JSON.stringify(pull)}`, { hint: 'use missing, never or always' });
  const num = (name: string): number | undefined => {
    const v = f[name] as string | undefined;
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new BerthError('INVALID_ARGUMENT', `invalid --${name} ${JSON.stringify(v)}`, { hint: 'give a number' });
    return n;
  };
  const detach = !!f.detach;
  const interactive = !!f.interactive;
  let tty = !!f.tty;
  if (tty && detach) {
    ctx.warn('-t with -d: berth cannot hand a detached container a terminal yet; running it without one');
    tty = false;
  }
  if (tty && !process.stdin.isTTY) {
    throw new BerthError('INVALID_ARGUMENT', 'the input device is not a TTY', { hint: 'drop -t, or run berth from a terminal' });
  }
  const store = await ctx.store();
  const { Containers } = await import('../../run/containers.js');
  const containers = await Containers.open(ctx.rootPath);
  const v = await containers.checkRunc();
  if (v.fresh && v.warning) ctx.warn(v.warning);
  // Unpack progress only on a terminal (or when asked): stderr is also the container's.
  const p = progressFlag !== 'auto' || process.stderr.isTTY ? ctx.progress('unpacking') : { onProgress: () => {}, done: () => {} };
  let record;
  try {
    // --pull: the CLI pulls (run/ does not depend on registry/); create then never does.
    let present = pull !== 'always';
    if (pull === 'missing') {
      const { findImage } = await import('../../store/images.js');
      present = await findImage(store, image).then(
        () => true,
        (e: unknown) => {
          if (e instanceof BerthError && e.code === 'NOT_FOUND') return false;
          throw e;
        },
      );
    }
    if (!present) {
      const { pull: pullImage } = await import('../../pull.js');
      await pullImage(store, image, { signal: ctx.signal, onProgress: p.onProgress });
    }
    record = await containers.create(store, {
      image,
      cmd: rest,
      ...(f.name !== undefined ? { name: f.name as string } : {}),
      ...(f.entrypoint !== undefined ? { entrypoint: f.entrypoint as string } : {}),
      env,
      ...(f.workdir !== undefined ? { workdir: f.workdir as string } : {}),
      ...(f.user !== undefined ? { user: f.user as string } : {}),
      volumes: (f.volume as string[] | undefined) ?? [],
      tmpfs: (f.tmpfs as string[] | undefined) ?? [],
      readOnly: !!f['read-only'],
      ...(network ? { network: network as 'host' } : {}),
      ...(f.hostname !== undefined ? { hostname: f.hostname as string } : {}),
      ...(f.memory !== undefined ? { memory: parseBytes(f.memory as string) } : {}),
      ...(num('cpus') !== undefined ? { cpus: num('cpus')! } : {}),
      ...(num('pids-limit') !== undefined ? { pidsLimit: num('pids-limit')! } : {}),
      capAdd: (f['cap-add'] as string[] | undefined) ?? [],
      capDrop: (f['cap-drop'] as string[] | undefined) ?? [],
      privileged: !!f.privileged,
      autoRemove: !!f.rm,
      init: !!f.init,
      tty,
      interactive,
      pull: 'never',
      signal: ctx.signal,
      onProgress: p.onProgress,
    });
  } finally {
    p.done();
  }
  if (detach) {
    await containers.startDetached(record.id);
    ctx.out(record.id);
    return;
  }
  const code = await foreground(ctx, (io) => containers.supervise(record.id, io), { tty, interactive });
  ctx.setExitCode(code);
}

/** Run a supervised process in the foreground: stdio through us, signals forwarded. */
export async function foreground(
  _ctx: CliContext,
  fn: (io: import('../../run/containers.js').SuperviseIO) => Promise<number>,
  o: { tty: boolean; interactive: boolean },
): Promise<number> {
  const sig = takeSignals();
  process.stdout.on('error', () => {});
  try {
    return await fn({
      stdin: o.interactive ? 'inherit' : 'ignore',
      tty: o.tty,
      stdout: process.stdout,
      stderr: process.stderr,
      forwardSignals: (fwd) => sig.install(fwd),
    });
  } finally {
    sig.restore();
  }
}

export default defineCommand({
  command: 'run [IMAGE] [COMMAND..]',
  describe: 'Run a command in a new container',
  builder: (y) =>
    y
      .strict(false)
      .parserConfiguration({ 'unknown-options-as-args': true })
      .positional('IMAGE', { type: 'string', describe: 'Image name or id' })
      .positional('COMMAND', { type: 'string', array: true, describe: 'Command and arguments (default: the image Entrypoint and Cmd)' })
      .option('name', { type: 'string', describe: 'Container name' })
      .option('rm', { type: 'boolean', describe: 'Remove the container when it exits' })
      .option('detach', { alias: 'd', type: 'boolean', describe: 'Run in the background and print the container id' })
      .option('interactive', { alias: 'i', type: 'boolean', describe: 'Keep stdin open' })
      .option('tty', { alias: 't', type: 'boolean', describe: 'Allocate a terminal (foreground only)' })
      .option('env', { alias: 'e', type: 'string', array: true, describe: 'Set NAME=VALUE (or pass NAME from the environment)' })
      .option('env-file', { type: 'string', array: true, describe: 'Read environment variables from a file' })
      .option('workdir', { alias: 'w', type: 'string', describe: 'Working directory inside the container' })
      .option('user', { alias: 'u', type: 'string', describe: 'name|uid[:group|gid]' })
      .option('entrypoint', { type: 'string', describe: 'Override the image Entrypoint' })
      .option('volume', { alias: 'v', type: 'string', array: true, describe: 'Bind mount /host:/ctr[:ro]' })
      .option('tmpfs', { type: 'string', array: true, describe: 'Mount a tmpfs: /path[:options]' })
      .option('read-only', { type: 'boolean', describe: 'Mount the root filesystem read-only' })
      .option('network', { type: 'string', describe: 'host or none (default: private namespace, loopback only)' })
      .option('hostname', { type: 'string', describe: 'Container hostname' })
      .option('memory', { alias: 'm', type: 'string', describe: 'Memory limit (e.g. 512m)' })
      .option('cpus', { type: 'string', describe: 'Number of CPUs (e.g. 1.5)' })
      .option('pids-limit', { type: 'string', describe: 'Process limit (-1: unlimited)' })
      .option('cap-add', { type: 'string', array: true, describe: 'Add a capability (or ALL)' })
      .option('cap-drop', { type: 'string', array: true, describe: 'Drop a capability (or ALL)' })
      .option('privileged', { type: 'boolean', describe: 'All capabilities, no masked paths, all devices' })
      .option('pull', { type: 'string', describe: 'missing | never | always' })
      .option('init', { type: 'boolean', describe: 'Run tini as PID 1 (reaps zombies, forwards signals)' }),
  async run(argv, ctx) {
    await runMain(ctx, argv.progress);
  },
});
