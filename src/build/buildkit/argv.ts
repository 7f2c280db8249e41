/**
 * A BuildRequest as `buildctl build` arguments (pure: no I/O). The dockerfile.v0 frontend takes
 * docker's options as `--opt` keys; outputs, secrets, ssh and caches map to buildctl's own flags.
 */
import { BerthError } from '../../errors.js';
import type { BuildRequest, OutputSpec } from '../builder.js';
import { LAYOUT_ID, type NamedContext } from './contexts.js';

export interface ArgvPlan {
  contextDir: string;
  dockerfileDir: string;
  dockerfileName: string;
  namedContexts: readonly NamedContext[];
  /** berth's `<root>/content`, given as `--oci-layout berth=...` when there are named contexts. */
  layoutDir: string;
  metadataFile: string;
  progress: 'rawjson' | 'plain';
}

/** Where the build's result goes, as berth handles it. */
export interface OutputPlan {
  /** The `--output` values. */
  outputs: string[];
  /** `type=oci,dest=-` read into the store. */
  toStore: boolean;
  /** Some other output writes to stdout (`dest=-`): pipe buildctl's stdout to req.stdout. */
  toStdout: boolean;
  /** The image is pushed by BuildKit. */
  push: boolean;
}

/** Quote one `key=value` of a CSV flag value the way buildctl's csv reader wants it. */
function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csv(fields: Record<string, string | undefined>): string {
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => csvField(`${k}=${v}`))
    .join(',');
}

/** Plan the outputs: empty means one OCI tar on stdout, loaded into the store. */
export function planOutputs(req: Pick<BuildRequest, 'outputs' | 'tags'>): OutputPlan {
  const outs = req.outputs.length > 0 ? req.outputs : [{ type: 'image', attrs: {} } as OutputSpec];
  const plan: OutputPlan = { outputs: [], toStore: false, toStdout: false, push: false };
  for (const o of outs) {
    const attrs = { ...o.attrs };
    const push = o.push === true || o.type === 'registry' || attrs.push === 'true';
    delete attrs.push;
    if (o.type === 'image' || o.type === 'registry') {
      if (!push) {
        if (plan.toStore) continue;
        plan.toStore = true;
        plan.outputs.push('type=oci,dest=-');
        continue;
      }
      const name = attrs.name ?? req.tags.join(',');
      if (!name) throw new BerthError('INVALID_ARGUMENT', 'pushing needs a name', { hint: 'give -t NAME:TAG with --push' });
      delete attrs.name;
      plan.push = true;
      plan.outputs.push(csv({ type: 'image', name, push: 'true', ...attrs }));
      continue;
    }
    if (o.type === 'containerd') {
      throw new BerthError('UNSUPPORTED', 'the BuildKit backend cannot write into containerd', { hint: 'build into the store, then berth save | ctr images import -' });
    }
    if (o.type === 'docker' || o.type === 'oci' || o.type === 'tar' || o.type === 'local') {
      if (!o.dest) throw new BerthError('INVALID_ARGUMENT', `--output type=${o.type} needs dest=PATH (or dest=- for stdout)`);
      if (o.dest === '-') {
        if (plan.toStdout || o.type === 'local') {
          throw new BerthError('INVALID_ARGUMENT', o.type === 'local' ? 'type=local cannot write to stdout' : 'only one output can go to stdout', { hint: 'give dest=PATH' });
        }
        plan.toStdout = true;
      }
      const name = (o.type === 'docker' || o.type === 'oci') && req.tags.length > 0 && attrs.name === undefined ? req.tags.join(',') : attrs.name;
      delete attrs.name;
      plan.outputs.push(csv({ type: o.type, ...(name ? { name } : {}), dest: o.dest, ...attrs }));
      continue;
    }
    throw new BerthError('INVALID_ARGUMENT', `unknown output type ${JSON.stringify(o.type)}`, { hint: 'use image, registry, docker, oci, tar or local' });
  }
  if (plan.toStore && plan.toStdout) throw new BerthError('INVALID_ARGUMENT', 'an image into the store and a dest=- output both need stdout', { hint: 'give dest=PATH' });
  return plan;
}

/** docker's `--cache-from IMAGE` is buildctl's `--import-cache type=registry,ref=IMAGE`. */
function cacheSpec(v: string): string {
  return v.includes('=') ? v : `type=registry,ref=${v}`;
}

export function buildctlArgs(req: BuildRequest, plan: ArgvPlan, outputs: OutputPlan): string[] {
  const a: string[] = ['--frontend', 'dockerfile.v0', '--progress', plan.progress];
  a.push('--local', `context=${plan.contextDir}`, '--local', `dockerfile=${plan.dockerfileDir}`, '--opt', `filename=${plan.dockerfileName}`);
  for (const [k, v] of Object.entries(req.buildArgs)) a.push('--opt', `build-arg:${k}=${v}`);
  for (const [k, v] of Object.entries(req.labels)) a.push('--opt', `label:${k}=${v}`);
  if (req.target) a.push('--opt', `target=${req.target}`);
  if (req.platform) a.push('--opt', `platform=${req.platform}`);
  if (req.noCache) a.push('--no-cache');
  if (req.noCacheFilter?.length) a.push('--opt', `no-cache=${req.noCacheFilter.join(',')}`);
  if (req.pull === true || req.pull === 'always') a.push('--opt', 'image-resolve-mode=pull');
  else if (req.pull === 'never') a.push('--opt', 'image-resolve-mode=local');
  const allow = new Set(req.allow ?? []);
  if (req.network && req.network !== 'default') {
    if (req.network !== 'none' && req.network !== 'host') throw new BerthError('INVALID_ARGUMENT', `--network ${req.network}: BuildKit runs steps with default, none or host`);
    a.push('--opt', `force-network-mode=${req.network}`);
    if (req.network === 'host') allow.add('network.host');
  }
  for (const x of allow) a.push('--allow', x);
  for (const s of req.secrets) a.push('--secret', csv({ id: s.id, ...(s.src !== undefined ? { src: s.src } : {}), ...(s.env !== undefined ? { env: s.env } : {}) }));
  for (const s of req.ssh) a.push('--ssh', s);
  for (const c of req.cacheFrom) a.push('--import-cache', cacheSpec(c));
  for (const c of req.cacheTo) a.push('--export-cache', cacheSpec(c));
  if (plan.namedContexts.length > 0) {
    a.push('--oci-layout', `${LAYOUT_ID}=${plan.layoutDir}`);
    for (const c of plan.namedContexts) a.push('--opt', `context:${c.name}=oci-layout://${LAYOUT_ID}@${c.digest}`);
  }
  for (const o of outputs.outputs) a.push('--output', o);
  a.push('--metadata-file', plan.metadataFile);
  return a;
}
