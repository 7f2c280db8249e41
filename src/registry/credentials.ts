import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../errors.js';
import type { Credentials } from './auth.js';
import { DOCKER_HUB_AUTH_KEY } from './hosts.js';

/**
 * Credentials kept the way docker keeps them: `$DOCKER_CONFIG/config.json` (default
 * `~/.docker`), with `auths` (base64 `user:password`), `credHelpers` per registry and a default
 * `credsStore`, both run as `docker-credential-<name>` helpers.
 */
interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [k: string]: unknown;
}

export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker');
}

/** The key docker uses for a registry domain (`https://index.docker.io/v1/` for Docker Hub). */
export function authKey(domain: string): string {
  return domain === 'docker.io' || domain === 'index.docker.io' || domain === 'registry-1.docker.io' ? DOCKER_HUB_AUTH_KEY : domain;
}

/** Host part of a key as docker normalises it (`https://host/v1/` -> `host`). */
function keyHost(k: string): string {
  return k.replace(/^https?:\/\//, '').split('/')[0]!.toLowerCase();
}

export class CredentialStore {
  readonly dir: string;
  readonly path: string;
  readonly #env: NodeJS.ProcessEnv;

  constructor(opts: { dir?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.#env = opts.env ?? process.env;
    this.dir = opts.dir ?? dockerConfigDir(this.#env);
    this.path = join(this.dir, 'config.json');
  }

  async #read(): Promise<DockerConfig> {
    let raw: string;
    try {
      raw = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw new BerthError('UNAVAILABLE', `cannot read ${this.path}: ${(e as Error).message}`);
    }
    try {
      const v = JSON.parse(raw) as unknown;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
      return v as DockerConfig;
    } catch {
      throw new BerthError('INVALID_ARGUMENT', `${this.path} is not valid JSON`, { hint: 'fix or remove the file' });
    }
  }

  async #write(cfg: DockerConfig): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      const fh = await open(tmp, 'wx', 0o600);
      await fh.writeFile(JSON.stringify(cfg, null, '\t') + '\n');
      await fh.sync();
      await fh.close();
      await chmod(tmp, 0o600);
      await rename(tmp, this.path);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw new BerthError('UNAVAILABLE', `cannot write ${this.path}: ${(e as Error).message}`);
    }
  }

  /** The helper that keeps credentials for `domain`, if any. */
  helperFor(cfg: DockerConfig, domain: string): string | undefined {
    const key = authKey(domain);
    const helpers = cfg.credHelpers ?? {};
    for (const [k, v] of Object.entries(helpers)) if (k === key || keyHost(k) === keyHost(key)) return v;
    return cfg.credsStore || undefined;
  }

  async get(domain: string): Promise<Credentials | undefined> {
    const cfg = await this.#read();
    const key = authKey(domain);
    const helper = this.helperFor(cfg, domain);
    if (helper) {
      const out = await runHelper(helper, 'get', key, this.#env);
      if (out === undefined) return undefined;
      let v: { Username?: string; Secret?: string };
      try {
        v = JSON.parse(out) as { Username?: string; Secret?: string };
      } catch {
        throw new BerthError('PROCESS', `docker-credential-${helper} returned invalid output`);
      }
      if (!v.Secret) return undefined;
      return v.Username === '<token>' ? { identityToken: v.Secret } : { username: v.Username ?? '', password: v.Secret };
    }
    const auths = cfg.auths ?? {};
    const entry = auths[key] ?? Object.entries(auths).find(([k]) => keyHost(k) === keyHost(key))?.[1];
    if (!entry) return undefined;
    if (entry.identitytoken) return { identityToken: entry.identitytoken, ...(entry.username ? { username: entry.username } : {}) };
    if (entry.auth) {
      const dec = Buffer.from(entry.auth, 'base64').toString('utf8');
      const i = dec.indexOf(':');
      if (i === -1) throw new BerthError('INVALID_ARGUMENT', `${this.path}: the auth entry for ${key} is not base64 of user:password`);
      return { username: dec.slice(0, i), password: dec.slice(i + 1) };
    }
    if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
    return undefined;
  }

  /** Save credentials (after they were verified): to the configured helper, else config.json (0600). */
  async store(domain: string, c: Credentials): Promise<{ where: string }> {
    const cfg = await this.#read();
    const key = authKey(domain);
    const helper = this.helperFor(cfg, domain);
    if (helper) {
      await runHelper(helper, 'store', JSON.stringify({ ServerURL: key, Username: c.username ?? '<token>', Secret: c.password ?? c.identityToken ?? '' }), this.#env);
      return { where: `docker-credential-${helper}` };
    }
    cfg.auths ??= {};
    cfg.auths[key] = { auth: Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`, 'utf8').toString('base64') };
    await this.#write(cfg);
    return { where: this.path };
  }

  /** Remove stored credentials; false when there were none. */
  async erase(domain: string): Promise<boolean> {
    const cfg = await this.#read();
    const key = authKey(domain);
    const helper = this.helperFor(cfg, domain);
    let removed = false;
    if (helper) {
      removed = (await runHelper(helper, 'erase', key, this.#env)) !== undefined;
    }
    const auths = cfg.auths ?? {};
    for (const k of Object.keys(auths)) {
      if (k === key || keyHost(k) === keyHost(key)) {
        delete auths[k];
        removed = true;
      }
    }
    if (removed && Object.keys(cfg).length) await this.#write(cfg);
    return removed;
  }
}

/**
 * Run `docker-credential-<name> <verb>` with `input` on stdin. Returns stdout, or undefined when
 * the helper says it has no credentials. Helper output is never put into error messages.
 */
async function runHelper(name: string, verb: 'get' | 'store' | 'erase', input: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new BerthError('INVALID_ARGUMENT', `invalid credential helper name ${JSON.stringify(name)}`);
  const bin = `docker-credential-${name}`;
  // Loaded here: most pulls run no helper.
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const p = spawn(bin, [verb], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let outLen = 0;
    p.stdout.on('data', (b: Buffer) => {
      if (outLen < 1 << 20) out.push(b);
      outLen += b.length;
    });
    p.stderr.resume();
    p.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'ENOENT'
          ? new BerthError('NOT_FOUND', `credential helper ${bin} not found in PATH`, { hint: 'install it or remove it from the docker config' })
          : new BerthError('PROCESS', `credential helper ${bin} failed to start: ${e.code ?? e.message}`),
      ),
    );
    p.on('close', (code) => {
      const text = Buffer.concat(out).toString('utf8').trim();
      if (code === 0) resolve(text);
      else if (/credentials not found/i.test(text)) resolve(undefined);
      else reject(new BerthError('PROCESS', `credential helper ${bin} ${verb} exited with status ${code}`));
    });
    p.stdin.on('error', () => {});
    p.stdin.end(input);
  });
}
