import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export interface RegistryOptions {
  /** htpasswd basic auth: path of a bcrypt htpasswd file. */
  htpasswd?: string;
  /** Token auth (distribution's `auth: token`). */
  token?: { realm: string; service: string; issuer: string; rootcertbundle: string };
  /** Serve TLS with this certificate and key (PEM paths). */
  tls?: { certificate: string; key: string };
  host?: string;
}

export interface RunningRegistry {
  /** host:port, e.g. 127.0.0.1:41234 */
  host: string;
  port: number;
  url: string;
  storage: string;
  process: ChildProcess;
  stop(): Promise<void>;
  logs(): string;
}

/**
 * Start a real `docker-registry` (distribution) on 127.0.0.1 with a free port, its own storage and
 * a config written here. Call stop() after the test (afterAll/afterEach).
 */
export async function startRegistry(opts: RegistryOptions = {}): Promise<RunningRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-registry-'));
  const bindHost = opts.host ?? '127.0.0.1';
  let lastErr = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort(bindHost);
    const config: Record<string, unknown> = {
      version: 0.1,
      log: { level: 'warn', accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: join(dir, 'data') }, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false } } },
      http: { addr: `${bindHost}:${port}`, secret: 'berth-test-secret', ...(opts.tls ? { tls: opts.tls } : {}) },
    };
    if (opts.htpasswd) config.auth = { htpasswd: { realm: 'berth-test', path: opts.htpasswd } };
    if (opts.token) config.auth = { token: opts.token };
    const cfgPath = join(dir, 'config.yml');
    await writeFile(cfgPath, JSON.stringify(config)); // JSON is YAML
    let out = '';
    const proc = spawn('docker-registry', ['serve', cfgPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (c: Buffer) => void (out = (out + c.toString()).slice(-20000)));
    proc.stderr!.on('data', (c: Buffer) => void (out = (out + c.toString()).slice(-20000)));
    const scheme = opts.tls ? 'https' : 'http';
    const host = `${bindHost}:${port}`;
    const url = `${scheme}://${host}`;
    const deadline = Date.now() + 10_000;
    let up = false;
    while (Date.now() < deadline && proc.exitCode === null) {
      up = await probe(url, !!opts.tls);
      if (up) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (up) {
      const stop = async () => {
        if (proc.exitCode === null) {
          proc.kill('SIGTERM');
          await new Promise<void>((r) => {
            const t = setTimeout(() => {
              proc.kill('SIGKILL');
              r();
            }, 3000);
            proc.once('exit', () => {
              clearTimeout(t);
              r();
            });
          });
        }
        await rm(dir, { recursive: true, force: true });
      };
      return { host, port, url, storage: join(dir, 'data'), process: proc, stop, logs: () => out };
    }
    proc.kill('SIGKILL');
    lastErr = out;
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`docker-registry did not start: ${lastErr.slice(-2000)}`);
}

async function probe(url: string, tls: boolean): Promise<boolean> {
  try {
    if (!tls) {
      const r = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
      return r.status === 200 || r.status === 401;
    }
    return await new Promise<boolean>((resolve) => {
      const req = request(`${url}/v2/`, { rejectUnauthorized: false, timeout: 1000 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200 || res.statusCode === 401);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => {
        req.destroy();
        resolve(false);
      });
      req.end();
    });
  } catch {
    return false;
  }
}
