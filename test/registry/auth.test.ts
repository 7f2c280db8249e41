import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isBerthError } from '../../src/errors.js';
import { CredentialStore, parseWwwAuthenticate } from '../../src/registry/index.js';
import { pull } from '../../src/pull.js';
import { push } from '../../src/push.js';
import { ContentStore } from '../../src/store/store.js';
import { randomImage, runBerth, startRegistry, testdir, validateImage, type RunningRegistry } from '../kit/index.js';
import { makeTlsFiles, startTokenServer, writeHtpasswd, type TokenServer } from '../fixtures/registry-auth.js';
import { startFaultProxy } from './fault-proxy.js';

const USER = 'alice';
const PASS = 'S3cret-pass-word';

describe('WWW-Authenticate parsing', () => {
  it('reads bearer and basic challenges and refuses malformed ones with one line', () => {
    expect(parseWwwAuthenticate('Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"', 'h')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'reg', scope: 'repository:a/b:pull,push' },
    });
    expect(parseWwwAuthenticate('Basic realm="x \\"y\\""', 'h')).toEqual({ scheme: 'basic', params: { realm: 'x "y"' } });
    for (const bad of ['Bearer realm="unterminated', 'Bearer service="x"', '=', 'Bearer realm="ftp://x"', 'Bearer realm=https://a b c']) {
      const e = (() => {
        try {
          parseWwwAuthenticate(bad, 'reg.example');
        } catch (x) {
          return x;
        }
      })();
      expect(isBerthError(e, 'UNAUTHORIZED'), bad).toBe(true);
      expect((e as Error).message).toContain('malformed WWW-Authenticate');
    }
  });
});

describe('htpasswd basic auth, login and logout', () => {
  let reg: RunningRegistry;
  let dir: string;
  beforeAll(async () => {
    dir = await testdir('berth-htpasswd-');
    writeHtpasswd(join(dir, 'htpasswd'), { [USER]: PASS });
    reg = await startRegistry({ htpasswd: join(dir, 'htpasswd') });
  });
  afterAll(async () => reg?.stop());

  it('login refuses wrong credentials, stores right ones 0600, pull/push use them, logout removes them', async () => {
    const root = await testdir();
    const cfg = await testdir('berth-dockercfg-');
    const env = { DOCKER_CONFIG: cfg };
    const bad = await runBerth(['--debug', 'login', '-u', USER, '--password-stdin', reg.host], { root, env, input: 'wrong-password\n' });
    expect(bad.code).toBe(7);
    expect(bad.stderr).toMatch(/rejected the credentials/);
    expect(bad.stderr + bad.stdout).not.toContain('wrong-password');
    await expect(stat(join(cfg, 'config.json'))).rejects.toThrow();

    const ok = await runBerth(['--debug', 'login', '-u', USER, '--password-stdin', reg.host], { root, env, input: PASS + '\n' });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toBe('Login Succeeded');
    expect(ok.stderr + ok.stdout).not.toContain(PASS);
    const st = await stat(join(cfg, 'config.json'));
    expect(st.mode & 0o777).toBe(0o600);
    const saved = JSON.parse(await readFile(join(cfg, 'config.json'), 'utf8'));
    expect(Buffer.from(saved.auths[reg.host].auth, 'base64').toString()).toBe(`${USER}:${PASS}`);

    const s = await ContentStore.open(root);
    const img = await randomImage(s, { layers: 1, name: `${reg.host}/basic/app:1` });
    const p = await runBerth(['--debug', 'push', img.name], { root, env });
    expect(p.code, p.stderr).toBe(0);
    expect(p.stderr + p.stdout).not.toContain(Buffer.from(`${USER}:${PASS}`).toString('base64'));
    // The library reads the same file.
    const fromFile = new CredentialStore({ dir: cfg });
    const t = await ContentStore.open(await testdir());
    await pull(t, img.name, { credentials: (d) => fromFile.get(d) });
    await validateImage(t, img.name);

    const out = await runBerth(['logout', reg.host], { root, env });
    expect(out.code).toBe(0);
    expect(JSON.parse(await readFile(join(cfg, 'config.json'), 'utf8')).auths[reg.host]).toBeUndefined();
    const denied = await pull(await ContentStore.open(await testdir()), img.name, { credentials: (d) => fromFile.get(d) }).catch((x: unknown) => x);
    expect(isBerthError(denied, 'UNAUTHORIZED')).toBe(true);
    expect((denied as Error).message).toMatch(/requires authentication/);
  });

  it('never forwards Authorization to the other origin of a blob redirect', async () => {
    const basic = 'Basic ' + Buffer.from(`${USER}:${PASS}`).toString('base64');
    const proxy = await startFaultProxy(reg.url, { upstreamAuth: basic });
    try {
      const s = await ContentStore.open(await testdir());
      const img = await randomImage(s, { layers: 2, name: `${reg.host}/redir/app:1` });
      const creds = async () => ({ username: USER, password: PASS });
      await push(s, img.name, { credentials: creds });
      proxy.rules.push({ method: 'GET', path: /\/blobs\/sha256:/, action: { kind: 'redirect' }, times: 10 });
      const t = await ContentStore.open(await testdir());
      const r = await pull(t, img.name.replace(reg.host, proxy.host), { credentials: creds });
      await validateImage(t, r.name);
      expect(proxy.secondOrigin.length).toBe(3); // 2 layers + config
      for (const q of proxy.secondOrigin) expect(q.headers.authorization).toBeUndefined();
      expect(proxy.requests.some((q) => q.headers.authorization === basic)).toBe(true);
    } finally {
      await proxy.stop();
    }
  });

  it('reads credentials from a docker-credential-* helper (credsStore) and login stores through it', async () => {
    const bin = await testdir('berth-helper-');
    const cfg = await testdir('berth-dockercfg-');
    const db = join(bin, 'db.json');
    // A tiny credential helper speaking docker's protocol, keeping entries in a JSON file.
    await writeFile(
      join(bin, 'docker-credential-berthtest'),
      `#!/usr/bin/env node
const fs=require('fs');const db=${JSON.stringify(db)};let d={};try{d=JSON.parse(fs.readFileSync(db,'utf8'))}catch{}
let input='';process.stdin.on('data',c=>input+=c).on('end',()=>{const verb=process.argv[2];
if(verb==='get'){const e=d[input.trim()];if(!e){process.stdout.write('credentials not found in native keychain');process.exit(1)}process.stdout.write(JSON.stringify({ServerURL:input.trim(),Username:e.u,Secret:e.s}))}
else if(verb==='store'){const v=JSON.parse(input);d[v.ServerURL]={u:v.Username,s:v.Secret};fs.writeFileSync(db,JSON.stringify(d))}
else if(verb==='erase'){delete d[input.trim()];fs.writeFileSync(db,JSON.stringify(d))}});
`,
    );
    await chmod(join(bin, 'docker-credential-berthtest'), 0o755);
    await writeFile(join(cfg, 'config.json'), JSON.stringify({ credsStore: 'berthtest' }));
    const env = { DOCKER_CONFIG: cfg, PATH: `${bin}:${process.env.PATH}` };
    const root = await testdir();
    const ok = await runBerth(['login', '-u', USER, '--password-stdin', reg.host], { root, env, input: PASS });
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(await readFile(db, 'utf8'))[reg.host]).toEqual({ u: USER, s: PASS });
    expect(JSON.parse(await readFile(join(cfg, 'config.json'), 'utf8')).auths?.[reg.host]).toBeUndefined();
    const creds = new CredentialStore({ dir: cfg, env: { ...process.env, ...env } });
    expect(await creds.get(reg.host)).toEqual({ username: USER, password: PASS });
    expect(await creds.get('other.example:5000')).toBeUndefined();
    const s = await ContentStore.open(root);
    const img = await randomImage(s, { layers: 1, name: `${reg.host}/helper/app:1` });
    const r = await push(s, img.name, { credentials: (d) => creds.get(d) });
    expect(r.digest).toBe(img.root.digest);
  });
});

describe('token auth (auth: token) and TLS', () => {
  let reg: RunningRegistry;
  let tokens: TokenServer;
  let tls: { ca: string; cert: string; key: string };
  beforeAll(async () => {
    const dir = await testdir('berth-token-');
    await mkdir(join(dir, 'tls'));
    tls = makeTlsFiles(join(dir, 'tls'));
    tokens = await startTokenServer(dir, { [USER]: PASS }, { anonymousPull: true });
    reg = await startRegistry({
      token: { realm: tokens.url, service: tokens.service, issuer: tokens.issuer, rootcertbundle: tokens.bundle },
      tls: { certificate: tls.cert, key: tls.key },
    });
  });
  afterAll(async () => {
    await reg?.stop();
    await tokens?.stop();
  });

  it('pushes with a bearer token scoped pull,push, pulls anonymously; TLS verified with --ca only', async () => {
    const root = await testdir();
    const cfg = await testdir('berth-dockercfg-');
    const env = { DOCKER_CONFIG: cfg };
    const s = await ContentStore.open(root);
    const img = await randomImage(s, { layers: 2, name: `${reg.host}/tok/app:1` });
    const untrusted = await push(s, img.name, { credentials: async () => undefined }).catch((x: unknown) => x);
    expect(isBerthError(untrusted, 'UNAVAILABLE')).toBe(true);
    expect((untrusted as Error).message).toMatch(/TLS certificate of 127\.0\.0\.1:\d+ is not trusted/);
    // Anonymous tokens carry pull only: the push is refused.
    const anon = await push(s, img.name, { caFiles: [tls.ca], credentials: async () => undefined }).catch((x: unknown) => x);
    expect(isBerthError(anon, 'UNAUTHORIZED'), String(anon)).toBe(true);
    const login = await runBerth(['login', '--ca', tls.ca, '-u', USER, '--password-stdin', reg.host], { root, env, input: PASS });
    expect(login.code, login.stderr).toBe(0);
    const p = await runBerth(['--debug', '--progress', 'json', 'push', '--ca', tls.ca, img.name], { root, env });
    expect(p.code, p.stderr).toBe(0);
    expect(tokens.scopes.some((sc) => sc.includes('repository:tok/app:pull,push'))).toBe(true);
    for (const t of tokens.issued) expect(p.stderr + p.stdout).not.toContain(t.split('.')[2]!);

    // Anonymous pull (no config), CA from SSL_CERT_FILE.
    const root2 = await testdir();
    const q = await runBerth(['pull', img.name], { root: root2, env: { DOCKER_CONFIG: await testdir(), SSL_CERT_FILE: tls.ca } });
    expect(q.code, q.stderr).toBe(0);
    await validateImage(await ContentStore.open(root2), img.name);
  });

  it('wrong credentials against the token server: one line, exit 7', async () => {
    const s = await ContentStore.open(await testdir());
    const img = await randomImage(s, { layers: 1, name: `${reg.host}/tok/other:1` });
    const e = await push(s, img.name, { caFiles: [tls.ca], credentials: async () => ({ username: USER, password: 'nope' }) }).catch((x: unknown) => x);
    expect(isBerthError(e, 'UNAUTHORIZED'), String(e)).toBe(true);
    expect((e as Error).message).toMatch(/credentials rejected by the token server/);
  });
});
