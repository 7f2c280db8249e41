/**
 * The built-in builder end to end with real runc and overlay (root): the step cache (a rebuild
 * with nothing changed runs no step and writes no blob; a changed source reruns only from its
 * step), a failed RUN's error, and that nothing is left behind (snapshots, mounts, runc state).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { storeCorpusBase } from '../corpus.js';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BuildRequest } from '../../../src/build/builder.js';
import { createNativeBuilder } from '../../../src/build/native/index.js';
import { ContentStore } from '../../../src/store/store.js';
import { Snapshotter } from '../../../src/snapshot/snapshotter.js';
import { testdir } from '../../kit/testdir.js';

const isRoot = process.getuid?.() === 0;

async function withBase(): Promise<string> {
  const root = await testdir('berth-native-');
  const layout = join(root, 'base-layout');
  await storeCorpusBase(await ContentStore.open(join(root, 'store')), layout);
  return root;
}

function request(context: string, extra: Partial<BuildRequest> = {}): BuildRequest {
  return { context, tags: ['t'], buildArgs: {}, labels: {}, secrets: [], ssh: [], cacheFrom: [], cacheTo: [], outputs: [], ...extra };
}

async function blobs(root: string): Promise<string[]> {
  return readdirSync(join(root, 'store', 'content', 'blobs', 'sha256')).sort();
}

async function assertClean(root: string): Promise<void> {
  const snaps = await Snapshotter.open(join(root, 'store'));
  expect((await snaps.list()).filter((s) => s.kind === 'active')).toEqual([]);
  expect((await readFile('/proc/self/mountinfo', 'utf8')).includes(join(root, 'store'))).toBe(false);
  const runcRoot = join(root, 'store', 'runc');
  let states: string[] = [];
  try {
    states = readdirSync(runcRoot);
  } catch {
    /* runc never ran */
  }
  expect(states).toEqual([]);
}

describe.skipIf(!isRoot)('built-in builder', () => {
  let root: string;
  beforeAll(async () => {
    root = await withBase();
  }, 60_000);

  it('caches steps: nothing changed runs nothing and writes nothing; a changed source reruns from its step', async () => {
    const ctx = join(root, 'ctx-cache');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'a.txt'), 'a\n');
    await writeFile(join(ctx, 'b.txt'), 'b\n');
    await writeFile(join(ctx, 'Dockerfile'), 'FROM base\nRUN echo one > /one\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy\nCOPY b.txt /b.txt\nRUN echo done > /done\n');
    const b = createNativeBuilder({ root: join(root, 'store') });
    const first = await b.build(request(ctx));
    expect(first.steps.map((s) => s.cached)).toEqual([false, false, false, false, false]);
    const before = await blobs(root);

    const again = await b.build(request(ctx));
    expect(again.steps.map((s) => s.cached)).toEqual([true, true, true, true, true]);
    expect(again.imageId).toBe(first.imageId);
    expect(await blobs(root)).toEqual(before);

    await writeFile(join(ctx, 'b.txt'), 'changed\n');
    const third = await b.build(request(ctx));
    expect(third.steps.map((s) => s.cached)).toEqual([true, true, true, false, false]);
    expect(third.imageId).not.toBe(first.imageId);

    const nocache = await b.build(request(ctx, { noCache: true }));
    expect(nocache.steps.every((s) => !s.cached)).toBe(true);
    await assertClean(root);
  });

  it('a failed RUN names its line and exit code, keeps the last output, tags nothing and leaves nothing', async () => {
    const ctx = join(root, 'ctx-fail');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), 'FROM base\nRUN echo ok\nRUN echo going down && exit 7\n');
    const b = createNativeBuilder({ root: join(root, 'store') });
    const err = await b.build(request(ctx, { tags: ['failed'] })).then(() => undefined, (e: Error & { code?: string }) => e);
    expect(err?.code).toBe('PROCESS');
    expect(err?.message).toMatch(/^build failed at Dockerfile:3 \(RUN echo going down && exit 7\): exit code 7; last output: going down/);
    const store = await ContentStore.open(join(root, 'store'));
    expect((await store.listImages()).map((i) => i.name)).not.toContain('docker.io/library/failed:latest');
    await assertClean(root);
  });

  it('a missing command is exit code 127', async () => {
    const ctx = join(root, 'ctx-127');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), 'FROM base\nRUN ["/no/such/command"]\n');
    const b = createNativeBuilder({ root: join(root, 'store') });
    await expect(b.build(request(ctx))).rejects.toThrow(/Dockerfile:2 .*exit code 127/);
    await assertClean(root);
  });

  it('an abort stops the running step and leaves nothing behind', async () => {
    const ctx = join(root, 'ctx-abort');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), 'FROM base\nRUN sleep 30\n');
    const b = createNativeBuilder({ root: join(root, 'store') });
    const ac = new AbortController();
    const p = b.build(request(ctx, { signal: ac.signal, onProgress: (e) => e.type === 'step-start' && setTimeout(() => ac.abort(), 500) }));
    await expect(p).rejects.toThrow();
    await assertClean(root);
  }, 30_000);

  it('multi-stage with heredocs, cache mounts and COPY --from; stages the target does not need are not built', async () => {
    const ctx = join(root, 'ctx-multi');
    await mkdir(ctx, { recursive: true });
    await writeFile(
      join(ctx, 'Dockerfile'),
      [
        'FROM base AS never',
        'RUN exit 1',
        'FROM base AS build',
        'RUN --mount=type=cache,target=/cache <<EOF',
        'echo built >> /cache/log',
        'cat /cache/log > /artifact',
        'EOF',
        'FROM base',
        'COPY --from=build /artifact /artifact',
        'CMD ["cat", "/artifact"]',
      ].join('\n'),
    );
    const b = createNativeBuilder({ root: join(root, 'store') });
    const r = await b.build(request(ctx, { tags: ['multi'] }));
    expect(r.names).toEqual(['docker.io/library/multi:latest']);
    await assertClean(root);
  });
});

describe.skipIf(!isRoot)('built-in builder after kill -9', () => {
  it('the next build reaps the mount, snapshot and runc state a killed build left', async () => {
    const root = await withBase();
    const ctx = join(root, 'ctx-kill');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), 'FROM base\nRUN sleep 60\n');
    const dist = fileURLToPath(new URL('../../../dist/build/native/index.js', import.meta.url));
    const script = `const { createNativeBuilder } = await import(${JSON.stringify(dist)});
      await createNativeBuilder({ root: ${JSON.stringify(join(root, 'store'))} }).build({ context: ${JSON.stringify(ctx)}, tags: ['k'], buildArgs: {}, labels: {}, secrets: [], ssh: [], cacheFrom: [], cacheTo: [], outputs: [],
        onProgress: (e) => { if (e.type === 'step-start') console.log('started'); } });`;
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the build did not start in 20 s')), 20_000);
      child.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('started')) {
          // Give runc a moment to have the container up, then kill the builder outright.
          setTimeout(() => {
            clearTimeout(t);
            resolve();
          }, 1500);
        }
      });
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const snaps = await Snapshotter.open(join(root, 'store'));
    expect((await snaps.list()).filter((s) => s.kind === 'active').length).toBeGreaterThan(0);
    const { reapDeadBuilds } = await import('../../../src/build/native/index.js');
    const reaped = await reapDeadBuilds(join(root, 'store'));
    expect(reaped.length).toBeGreaterThan(0);
    await assertClean(root);
  }, 60_000);
});

describe.skipIf(!isRoot)('reproducible builds', () => {
  it('SOURCE_DATE_EPOCH: two builds without cache in two stores give the same image digest', async () => {
    const digests: string[] = [];
    for (let i = 0; i < 2; i++) {
      const root = await withBase();
      const ctx = join(root, 'ctx');
      await mkdir(join(ctx, 'dir'), { recursive: true });
      await writeFile(join(ctx, 'dir', 'f.txt'), 'same\n');
      await writeFile(join(ctx, 'Dockerfile'), 'FROM base\nRUN echo $RANDOM_NOT_USED > /a && mkdir -p /x/y && touch /x/y/z\nCOPY dir /dir/\nWORKDIR /w\nCOPY <<EOF /h.txt\nhello\nEOF\n');
      // Different context mtimes in the two runs: the epoch clamps them.
      execFileSync('touch', ['-d', i === 0 ? '2030-01-01' : '2031-06-01', join(ctx, 'dir', 'f.txt')]);
      const r = await createNativeBuilder({ root: join(root, 'store') }).build(request(ctx, { buildArgs: { SOURCE_DATE_EPOCH: '1700000000' }, noCache: true }));
      digests.push(r.root!.digest);
      const cfg = JSON.parse(readFileSync(join(root, 'store', 'content', 'blobs', 'sha256', r.imageId!.slice(7)), 'utf8')) as { created: string };
      expect(cfg.created).toBe('2023-11-14T22:13:20Z');
      await new Promise((r) => setTimeout(r, 1100)); // a different wall-clock second for the second build
    }
    expect(digests[0]).toBe(digests[1]);
  }, 60_000);
});

describe.skipIf(!isRoot)('bad input', () => {
  let root: string;
  beforeAll(async () => {
    root = await withBase();
  }, 60_000);

  it.each([
    ['an ARG used before its declaration', 'FROM base\nENV X=$V\nARG V=1\n', /^Dockerfile:2: V is used before ARG V declares it \(line 3\)/],
    ['--chown to an unknown user', 'FROM base\nCOPY --chown=nosuchuser Dockerfile /x\n', /^Dockerfile:2: unable to find user nosuchuser/],
    // Not in the store: pulled by default, from a registry that refuses at once (no internet here).
    ['a FROM that resolves nowhere', 'FROM base\nFROM 127.0.0.1:1/nothing-here:1\n', /^Dockerfile:2: FROM 127\.0\.0\.1:1\/nothing-here:1: cannot pull it: /],
    ['an unknown target', 'FROM base AS a\n', /target stage "zzz" could not be found/],
    ['an unterminated heredoc', 'FROM base\nRUN <<EOF\necho\n', /^Dockerfile:2: unterminated heredoc EOF/],
    ['a COPY with no matching source', 'FROM base\nCOPY *.nomatch /x/\n', /^Dockerfile:2: COPY \*\.nomatch: .* not found/],
    ['a --network the builder lacks', 'FROM base\nRUN --network=bridge true\n', /^Dockerfile:2: RUN --network=bridge is not supported/],
  ])('%s: one line naming the Dockerfile line, nothing tagged, nothing left', async (_what, text, re) => {
    const ctx = join(root, `ctx-bad-${Math.random().toString(16).slice(2)}`);
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), text);
    const b = createNativeBuilder({ root: join(root, 'store') });
    const before = await blobs(root);
    const err = await b.build(request(ctx, { tags: ['bad'], ...(/target/.test(re.source) ? { target: 'zzz' } : {}) })).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(re);
    expect(err?.message.includes('\n')).toBe(false);
    const store = await ContentStore.open(join(root, 'store'));
    expect((await store.listImages()).map((i) => i.name)).not.toContain('docker.io/library/bad:latest');
    expect(await blobs(root)).toEqual(before);
    await assertClean(root);
  });
});

describe.skipIf(!isRoot)('COPY rules', () => {
  it('--exclude, --parents, and destinations through symlinks stay inside the rootfs', async () => {
    const root = await withBase();
    const ctx = join(root, 'ctx-copy');
    await mkdir(join(ctx, 'src', 'a'), { recursive: true });
    await writeFile(join(ctx, 'src', 'a', 'x.txt'), 'x');
    await writeFile(join(ctx, 'src', 'b.log'), 'log');
    await writeFile(join(ctx, 'src', 'c.txt'), 'c');
    const unique = `berth-escape-${process.pid}-${Date.now()}`;
    await writeFile(join(ctx, `${unique}.txt`), 'must stay in the image');
    await writeFile(
      join(ctx, 'Dockerfile'),
      [
        'FROM base',
        'RUN mkdir /real && ln -s /real /via-link && ln -s ../../../../../.. /escape',
        'COPY --exclude=*.log src/ /ex/',
        'COPY --parents src/a/x.txt src/c.txt /par/',
        'COPY f*.txt /via-link/',
        `COPY ${unique}.txt /escape/tmp/`,
        `RUN test -f /ex/c.txt && test -f /ex/a/x.txt && test ! -e /ex/b.log && test -f /par/src/a/x.txt && test -f /par/src/c.txt && test -f /tmp/${unique}.txt`,
      ].join('\n'),
    );
    await writeFile(join(ctx, 'f1.txt'), '1');
    await createNativeBuilder({ root: join(root, 'store') }).build(request(ctx));
    expect(existsSync(`/tmp/${unique}.txt`)).toBe(false);
    await assertClean(root);
  });
});

describe.skipIf(!isRoot)('RUN features', () => {
  it('a heredoc script with its own interpreter, secret and bind-from-stage mounts; a tar stream context; secrets never in a layer', async () => {
    const root = await withBase();
    const ctx = join(root, 'ctx-run');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(root, 'token'), 'the-secret-value');
    await writeFile(
      join(ctx, 'Dockerfile'),
      [
        'FROM base AS tools',
        'RUN echo from-tools > /tool.txt',
        'FROM base',
        'RUN <<EOF',
        '#!/bin/sh',
        'echo "script $0" > /script.txt',
        'EOF',
        'RUN --mount=type=secret,id=tok cat /run/secrets/tok | wc -c > /secret-size',
        'RUN --mount=type=bind,from=tools,source=/tool.txt,target=/mnt/t cp /mnt/t /copied-tool.txt',
        'RUN test "$(cat /script.txt)" = "script /dev/pipes/EOF" && test "$(cat /secret-size)" -eq 16 && test "$(cat /copied-tool.txt)" = from-tools && test ! -e /run/secrets/tok && test ! -e /mnt/t',
      ].join('\n'),
    );
    const { Readable } = await import('node:stream');
    const tar = execFileSync('tar', ['-C', ctx, '-cf', '-', '.']);
    const r = await createNativeBuilder({ root: join(root, 'store') }).build(request('', { context: Readable.from([tar]), secrets: [{ id: 'tok', src: join(root, 'token') }] }));
    expect(r.steps.length).toBe(5);
    // No layer holds the secret.
    for (const f of await blobs(root)) {
      const raw = readFileSync(join(root, 'store', 'content', 'blobs', 'sha256', f));
      const data = raw[0] === 0x1f ? (await import('node:zlib')).gunzipSync(raw) : raw;
      expect(data.includes('the-secret-value')).toBe(false);
    }
    await assertClean(root);
  });
});

describe.skipIf(!isRoot)('build cache accounting', () => {
  it('usage counts records and cache mounts; prune drops dead records, and everything with all', async () => {
    const root = await withBase();
    const ctx = join(root, 'ctx-acct');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), 'FROM base\nRUN --mount=type=cache,target=/c echo x > /c/f && echo y > /y\nRUN echo z > /z\n');
    await createNativeBuilder({ root: join(root, 'store') }).build(request(ctx));
    const { buildCacheUsage, pruneBuildCache } = await import('../../../src/build/native/cache.js');
    const store = await ContentStore.open(join(root, 'store'));
    const u = await buildCacheUsage(join(root, 'store'), store);
    expect(u).toMatchObject({ records: 2, live: 2, mounts: 1 });
    expect(u.mountBytes).toBeGreaterThan(0);
    expect(await pruneBuildCache(join(root, 'store'), store)).toMatchObject({ records: 0, mounts: [] });
    expect(await pruneBuildCache(join(root, 'store'), store, { all: true })).toMatchObject({ records: 2, mounts: [expect.stringMatching(/^[0-9a-f]{32}$/)] });
    expect(await buildCacheUsage(join(root, 'store'), store)).toMatchObject({ records: 0, mounts: 0 });
  });
});

describe.skipIf(!isRoot)('ADD of a URL', () => {
  it('fetches over http from 127.0.0.1, checks --checksum, mode 0600, no extraction; a wrong checksum fails on its line', async () => {
    const root = await withBase();
    const { createServer } = await import('node:http');
    const body = execFileSync('tar', ['-czf', '-', '-C', root, 'base-layout/oci-layout']);
    const server = createServer((req, res) => {
      if (req.url === '/files/pkg.tar.gz') {
        res.writeHead(200, { 'content-length': body.length, 'last-modified': new Date(1_000_000_000_000).toUTCString() });
        res.end(body);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const sum = `sha256:${(await import('node:crypto')).createHash('sha256').update(body).digest('hex')}`;
      const ctx = join(root, 'ctx-url');
      await mkdir(ctx, { recursive: true });
      await writeFile(
        join(ctx, 'Dockerfile'),
        `FROM base\nADD --checksum=${sum} http://127.0.0.1:${port}/files/pkg.tar.gz /dl/\nRUN test "$(stat -c %a /dl/pkg.tar.gz)" = 600 && test "$(stat -c %s /dl/pkg.tar.gz)" = ${body.length}\n`,
      );
      const b = createNativeBuilder({ root: join(root, 'store') });
      await b.build(request(ctx));
      await writeFile(join(ctx, 'Dockerfile'), `FROM base\nADD --checksum=sha256:${'0'.repeat(64)} http://127.0.0.1:${port}/files/pkg.tar.gz /dl/\n`);
      await expect(b.build(request(ctx))).rejects.toThrow(/^Dockerfile:2: ADD .* does not match --checksum/);
      await writeFile(join(ctx, 'Dockerfile'), `FROM base\nADD http://127.0.0.1:${port}/missing /dl/\n`);
      await expect(b.build(request(ctx))).rejects.toThrow(/^Dockerfile:2: ADD .*answered 404/);
      expect(readdirSync(join(root, 'store', 'cache', 'tmp'))).toEqual([]);
      await assertClean(root);
    } finally {
      server.close();
    }
  });
});
