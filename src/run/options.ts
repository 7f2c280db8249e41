/**
 * docker run's flags (as parsed by the CLI's flag table, keyed by long name) → create options,
 * with docker's rules and berth's one-line errors. The CLI only parses and prints.
 */
import { readFileSync } from 'node:fs';
import { BerthError } from '../errors.js';
import type { CreateOptions } from './containers.js';
import { parseBytes, parseEnvFile, parseEnvFlags } from './spec.js';

export interface RunRequest {
  create: CreateOptions;
  detach: boolean;
  /** When to pull the image before creating (the caller pulls: run/ does not reach registries). */
  pull: 'missing' | 'never' | 'always';
  /** Things the user should hear about (a flag that was ignored). */
  warnings: string[];
}

export interface RunFlagContext {
  /** Whether our stdin is a terminal (-t needs one). */
  stdinIsTTY: boolean;
  hostEnv?: NodeJS.ProcessEnv;
}

const NETWORKS = ['host', 'none', 'bridge', 'default', 'private'];

function str(f: Record<string, unknown>, k: string): string | undefined {
  const v = f[k];
  return v === undefined ? undefined : String(v);
}

function list(f: Record<string, unknown>, k: string): string[] {
  const v = f[k];
  return v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)];
}

function num(f: Record<string, unknown>, k: string): number | undefined {
  const v = str(f, k);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new BerthError('INVALID_ARGUMENT', `invalid --${k} ${JSON.stringify(v)}`, { hint: 'give a number' });
  return n;
}

/** Map `berth run [FLAGS] IMAGE [COMMAND...]` to what Containers.create and the caller need. */
export function runRequest(image: string, cmd: readonly string[], f: Record<string, unknown>, ctx: RunFlagContext): RunRequest {
  const hostEnv = ctx.hostEnv ?? process.env;
  const env: string[] = [];
  for (const file of list(f, 'env-file')) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      throw new BerthError('INVALID_ARGUMENT', `cannot read --env-file ${file}`, { hint: 'check the path' });
    }
    env.push(...parseEnvFile(text, hostEnv));
  }
  env.push(...parseEnvFlags(list(f, 'env'), hostEnv));
  const network = str(f, 'network');
  if (network !== undefined && !NETWORKS.includes(network)) {
    throw new BerthError('INVALID_ARGUMENT', `unsupported --network ${JSON.stringify(network)}`, { hint: 'berth supports --network host or none (the default is a private network namespace with loopback only)' });
  }
  const pull = str(f, 'pull') ?? 'missing';
  if (!['missing', 'never', 'always'].includes(pull)) throw new BerthError('INVALID_ARGUMENT', `invalid --pull ${JSON.stringify(pull)}`, { hint: 'use missing, never or always' });
  const detach = !!f.detach;
  const warnings: string[] = [];
  let tty = !!f.tty;
  if (tty && detach) {
    warnings.push('-t with -d: berth cannot hand a detached container a terminal yet; running it without one');
    tty = false;
  }
  if (tty && !ctx.stdinIsTTY) throw new BerthError('INVALID_ARGUMENT', 'the input device is not a TTY', { hint: 'drop -t, or run berth from a terminal' });
  const memory = str(f, 'memory');
  const cpus = num(f, 'cpus');
  const pidsLimit = num(f, 'pids-limit');
  const create: CreateOptions = {
    image,
    cmd: [...cmd],
    ...(str(f, 'name') !== undefined ? { name: str(f, 'name')! } : {}),
    ...(str(f, 'entrypoint') !== undefined ? { entrypoint: str(f, 'entrypoint')! } : {}),
    env,
    ...(str(f, 'workdir') !== undefined ? { workdir: str(f, 'workdir')! } : {}),
    ...(str(f, 'user') !== undefined ? { user: str(f, 'user')! } : {}),
    volumes: list(f, 'volume'),
    tmpfs: list(f, 'tmpfs'),
    readOnly: !!f['read-only'],
    ...(network ? { network: network as CreateOptions['network'] } : {}),
    ...(str(f, 'hostname') !== undefined ? { hostname: str(f, 'hostname')! } : {}),
    ...(memory !== undefined ? { memory: parseBytes(memory) } : {}),
    ...(cpus !== undefined ? { cpus } : {}),
    ...(pidsLimit !== undefined ? { pidsLimit } : {}),
    capAdd: list(f, 'cap-add'),
    capDrop: list(f, 'cap-drop'),
    privileged: !!f.privileged,
    autoRemove: !!f.rm,
    init: !!f.init,
    tty,
    interactive: !!f.interactive,
    pull: 'never',
  };
  return { create, detach, pull: pull as RunRequest['pull'], warnings };
}
