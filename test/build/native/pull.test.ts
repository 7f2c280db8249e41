/**
 * FROM of an image that is not in berth's store, against a real docker-registry on 127.0.0.1:
 * the default pulls it when missing; a local image is used with no network (the registry is
 * stopped); `--pull` (always) takes the registry's newer image; `--pull=never` fails naming
 * the Dockerfile line. Real runc runs a RUN step on the pulled base.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { storeCorpusBase } from '../corpus.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildEvent, BuildRequest } from '../../../src/build/builder.js';
import { createNativeBuilder } from '../../../src/build/native/index.js';
import { getImage, tagImage } from '../../../src/store/images.js';
import { ContentStore } from '../../../src/store/store.js';
import { push } from '../../../src/push.js';
import { isBerthError } from '../../../src/errors.js';
import { randomImage, startRegistry, testdir, type RunningRegistry } from '../../kit/index.js';

const isRoot = process.getuid?.() === 0;

function request(context: string, extra: Partial<BuildRequest> = {}): BuildRequest {
  return { context, tags: ['t'], buildArgs: {}, labels: {}, secrets: [], ssh: [], cacheFrom: [], cacheTo: [], outputs: [], ...extra };
}

describe.skipIf(!isRoot)('built-in builder: FROM pulls per --pull', () => {
  let dir: string;
  let reg: RunningRegistry;
  let src: ContentStore;
  let name: string;
  let ctx: string;
  beforeAll(async () => {
    dir = await testdir('berth-native-pull-');
    reg = await startRegistry();
    const layout = join(dir, 'base-layout');
    src = await ContentStore.open(join(dir, 'src'));
    name = `${reg.host}/corpus/base:1`;
    await storeCorpusBase(src, layout, name);
    await push(src, name);
    ctx = join(dir, 'ctx');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), `# pulled base\nFROM ${name}\nRUN echo built > /built\n`);
  }, 60_000);
  afterAll(async () => {
    await reg?.stop();
  });

  it('default: a missing base is pulled (one message), then used with the registry gone', async () => {
    const root = join(dir, 'r1');
    const events: BuildEvent[] = [];
    const r = await createNativeBuilder({ root }).build(request(ctx, { onProgress: (e) => events.push(e) }));
    expect(events.filter((e) => e.type === 'message' && e.text.startsWith('pulling ')).length).toBe(1);
    const store = await ContentStore.open(root);
    const base = await getImage(store, name);
    const built = await getImage(store, 't');
    expect(built.manifest.layers.slice(0, base.manifest.layers.length)).toEqual(base.manifest.layers);
    expect(built.manifest.layers.length).toBe(base.manifest.layers.length + 1);
    expect(r.steps.map((s) => s.cached)).toEqual([false]);

    // The base is local now: with the registry unreachable the default mode still builds.
    const other = await startRegistry();
    const stopped = `${other.host}/corpus/base:1`;
    await other.stop();
    await tagImage(store, stopped, base.root);
    await writeFile(join(ctx, 'Dockerfile.local'), `FROM ${stopped}\nRUN echo again > /again\n`);
    const ev2: BuildEvent[] = [];
    const r2 = await createNativeBuilder({ root }).build(request(ctx, { dockerfile: 'Dockerfile.local', onProgress: (e) => ev2.push(e) }));
    expect(ev2.some((e) => e.type === 'message' && e.text.startsWith('pulling '))).toBe(false);
    expect(r2.imageId).toMatch(/^sha256:/);

    // --pull (always) must ask that registry: it is gone, so the build fails naming the FROM line.
    const err = await createNativeBuilder({ root }).build(request(ctx, { dockerfile: 'Dockerfile.local', pull: 'always' })).then(() => undefined, (e: unknown) => e);
    expect(isBerthError(err)).toBe(true);
    expect((err as Error).message).toMatch(/^Dockerfile:1: FROM .*cannot pull it/);
  }, 120_000);

  it('--pull=never: a missing base fails naming the line, nothing tagged', async () => {
    const root = join(dir, 'r2');
    const err = await createNativeBuilder({ root }).build(request(ctx, { pull: 'never' })).then(() => undefined, (e: unknown) => e);
    expect(isBerthError(err, 'NOT_FOUND')).toBe(true);
    expect((err as Error).message).toContain('Dockerfile:2:');
    expect((err as Error).message).toContain('--pull=never');
    const store = await ContentStore.open(root);
    expect((await store.readIndex()).manifests).toEqual([]);
  }, 60_000);

  it('--pull (always) takes the newer image the registry now has under the tag', async () => {
    const root = join(dir, 'r3');
    await writeFile(join(ctx, 'Dockerfile.meta'), `FROM ${name.replace(':1', ':2')}\nLABEL x=y\n`);
    const v1 = await randomImage(src, { name: name.replace(':1', ':2'), layers: 1 });
    await push(src, name.replace(':1', ':2'));
    const first = await createNativeBuilder({ root }).build(request(ctx, { dockerfile: 'Dockerfile.meta' }));
    const store = await ContentStore.open(root);
    expect((await getImage(store, 't')).manifest.layers).toEqual(v1.manifest.layers);
    const v2 = await randomImage(src, { name: name.replace(':1', ':2'), layers: 2 });
    await push(src, name.replace(':1', ':2'));
    // Default: the local (older) image is used.
    const again = await createNativeBuilder({ root }).build(request(ctx, { dockerfile: 'Dockerfile.meta' }));
    expect(again.imageId).toBe(first.imageId);
    const always = await createNativeBuilder({ root }).build(request(ctx, { dockerfile: 'Dockerfile.meta', pull: true }));
    expect((await getImage(store, 't')).manifest.layers).toEqual(v2.manifest.layers);
    expect(always.imageId).not.toBe(first.imageId);
  }, 60_000);
});

describe('--pull on the command line', () => {
  it('docker forms and podman policies; an unknown policy is refused', async () => {
    const { pullFlag } = await import('../../../src/cli/commands/build.js');
    expect(pullFlag(undefined, ['build', '.'])).toBeUndefined();
    expect(pullFlag(true, ['build', '--pull', '.'])).toBe('always');
    expect(pullFlag(false, ['build', '--pull=false', '.'])).toBe('missing');
    expect(pullFlag(false, ['build', '--pull=never', '.'])).toBe('never');
    expect(pullFlag(false, ['build', '--pull=missing', '.'])).toBe('missing');
    expect(pullFlag(false, ['build', '--pull=always', '.'])).toBe('always');
    expect(() => pullFlag(false, ['build', '--pull=sometimes', '.'])).toThrow(/--pull=sometimes: not a pull policy/);
  });
});
