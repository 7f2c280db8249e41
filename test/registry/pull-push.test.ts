import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pull } from '../../src/pull.js';
import { push } from '../../src/push.js';
import { ContentStore } from '../../src/store/store.js';
import { findImage } from '../../src/store/images.js';
import { randomImage, runBerth, startRegistry, testdir, validateImage, type RunningRegistry } from '../kit/index.js';

let reg: RunningRegistry;
beforeAll(async () => {
  reg = await startRegistry();
});
afterAll(async () => {
  await reg?.stop();
});

describe('pull and push against a real docker-registry', () => {
  it('pushes a store image and pulls it back into another store, digests equal', async () => {
    const a = await ContentStore.open(await testdir());
    const img = await randomImage(a, { layers: 3, layerSize: 200_000, name: `${reg.host}/t/roundtrip:v1` });
    const events: string[] = [];
    const pushed = await push(a, img.name, { onProgress: (e) => events.push(e.type) });
    expect(pushed.digest).toBe(img.root.digest);
    expect(pushed.copied).toBe(5); // 3 layers + config + manifest
    // Pushing again uploads nothing.
    const again = await push(a, img.name);
    expect(again.copied).toBe(0);

    const b = await ContentStore.open(await testdir());
    const pulled = await pull(b, img.name);
    expect(pulled.root.digest).toBe(img.root.digest);
    expect(pulled.name).toBe(img.name);
    expect(pulled.copied).toBe(5);
    await validateImage(b, img.name);
    // A second pull finds everything present and transfers no blob bytes.
    const second = await pull(b, img.name);
    expect(second.bytes).toBe(0);
    expect(second.copied).toBe(0);
    expect(await readdir(b.ingestDir)).toEqual([]);
  });

  it('pulls by digest and Docker schema2 manifests; the CLI prints the digest', async () => {
    const root = await testdir();
    const a = await ContentStore.open(root);
    const img = await randomImage(a, { layers: 2, docker: true, name: `${reg.host}/t/docker2:1` });
    const r = await runBerth(['push', img.name], { root });
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(img.root.digest);
    const root2 = await testdir();
    const p = await runBerth(['pull', '-q', `${reg.host}/t/docker2@${img.root.digest}`], { root: root2 });
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout.trim()).toBe(`${reg.host}/t/docker2@${img.root.digest}`);
    const b = await ContentStore.open(root2);
    const found = await findImage(b, `${reg.host}/t/docker2@${img.root.digest}`);
    expect(found.desc.digest).toBe(img.root.digest);
  });
});
