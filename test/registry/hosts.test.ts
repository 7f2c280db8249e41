import { describe, expect, it } from 'vitest';
import { isBerthError } from '../../src/errors.js';
import { isPrivateAddress, plainHttpAllowed, Transport } from '../../src/registry/index.js';
import { normalizeRegistryHost } from '../../src/registry/login.js';

describe('transport rules', () => {
  it('allows plain HTTP only for loopback and named insecure hosts', () => {
    for (const h of ['localhost:5000', '127.0.0.1:5000', '127.1.2.3', '[::1]:5000', 'localhost']) expect(plainHttpAllowed(h), h).toBe(true);
    for (const h of ['registry.example.com', '10.0.0.1:5000', '128.0.0.1', 'localhost.example.com']) expect(plainHttpAllowed(h), h).toBe(false);
    expect(plainHttpAllowed('reg.lan:5000', ['reg.lan:5000'])).toBe(true);
    expect(plainHttpAllowed('reg.lan:5000', ['http://reg.lan'])).toBe(true);
    expect(plainHttpAllowed('reg.lan:5001', ['other.lan'])).toBe(false);
  });

  it('knows private and link-local address literals', () => {
    for (const h of ['10.1.2.3', '192.168.0.1:80', '172.16.0.1', '169.254.169.254', '[fe80::1]', '[fd00::1]:443', '127.0.0.1']) expect(isPrivateAddress(h), h).toBe(true);
    for (const h of ['8.8.8.8', 'auth.docker.io', '172.32.0.1', '[2001:db8::1]']) expect(isPrivateAddress(h), h).toBe(false);
  });

  it('normalises login hosts like docker', () => {
    expect(normalizeRegistryHost(undefined)).toBe('docker.io');
    expect(normalizeRegistryHost('https://index.docker.io/v1/')).toBe('docker.io');
    expect(normalizeRegistryHost('Reg.Example.com:5000')).toBe('reg.example.com:5000');
    expect(() => normalizeRegistryHost('bad host')).toThrow(/invalid registry host/);
  });

  it('refuses a --ca file that cannot be read', () => {
    const e = (() => {
      try {
        return new Transport({ caFiles: ['/nonexistent/ca.pem'] });
      } catch (x) {
        return x;
      }
    })();
    expect(isBerthError(e, 'NOT_FOUND')).toBe(true);
  });
});

describe('redirects', () => {
  it('refuses an https -> http redirect', async () => {
    const { mkdtemp, rm, readFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { createServer } = await import('node:https');
    const { makeTlsFiles } = await import('../fixtures/registry-auth.js');
    const dir = await mkdtemp(join(tmpdir(), 'berth-redirect-'));
    const tls = makeTlsFiles(dir);
    const server = createServer({ cert: await readFile(tls.cert), key: await readFile(tls.key) }, (req, res) => {
      res.writeHead(307, { location: 'http://127.0.0.2:9/blob' });
      res.end();
    });
    const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as { port: number }).port)));
    const t = new Transport({ caFiles: [tls.ca] });
    try {
      const domain = `127.0.0.1:${port}`;
      expect(await t.origin(domain)).toBe(`https://${domain}`);
      const e = await t.request(domain, { method: 'GET', url: `https://${domain}/v2/a/blobs/x`, what: 'blob x' }).catch((x: unknown) => x);
      expect(isBerthError(e, 'UNAVAILABLE'), String(e)).toBe(true);
      expect((e as Error).message).toMatch(/refusing redirect from https to http:\/\/127\.0\.0\.2:9/);
    } finally {
      await t.close();
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
