import { describe, expect, it } from 'vitest';
import type { BuildRequest } from '../../../src/build/builder.js';
import { buildctlArgs, planOutputs } from '../../../src/build/buildkit/argv.js';
import { referencedImages, storeContexts } from '../../../src/build/buildkit/contexts.js';
import { loadArchive } from '../../../src/import/load.js';
import { tagImage } from '../../../src/store/images.js';
import { ContentStore } from '../../../src/store/store.js';
import { fileURLToPath } from 'node:url';
import { testdir } from '../../kit/testdir.js';

const base: BuildRequest = { context: '/ctx', tags: [], buildArgs: {}, labels: {}, secrets: [], ssh: [], cacheFrom: [], cacheTo: [], outputs: [] };
const plan = { contextDir: '/ctx', dockerfileDir: '/df', dockerfileName: 'Dockerfile.dev', namedContexts: [], layoutDir: '/root/content', metadataFile: '/tmp/m.json', progress: 'rawjson' as const };

describe('buildctl arguments', () => {
  it('docker flags map to dockerfile.v0 options and buildctl flags', () => {
    const req: BuildRequest = {
      ...base,
      tags: ['a:1'],
      buildArgs: { V: '1', EMPTY: '' },
      labels: { 'org.x': 'y z' },
      target: 'final',
      platform: 'linux/arm64',
      noCache: true,
      noCacheFilter: ['deps'],
      pull: true,
      network: 'host',
      secrets: [{ id: 's1', src: '/s' }, { id: 's2', env: 'TOKEN' }],
      ssh: ['default'],
      cacheFrom: ['reg/app:cache', 'type=local,src=/c'],
      cacheTo: ['type=inline'],
    };
    const a = buildctlArgs(req, { ...plan, namedContexts: [{ name: 'base', ref: 'docker.io/library/base:latest', digest: `sha256:${'a'.repeat(64)}` }] }, planOutputs(req));
    expect(a).toEqual([
      '--frontend', 'dockerfile.v0', '--progress', 'rawjson',
      '--local', 'context=/ctx', '--local', 'dockerfile=/df', '--opt', 'filename=Dockerfile.dev',
      '--opt', 'build-arg:V=1', '--opt', 'build-arg:EMPTY=',
      '--opt', 'label:org.x=y z',
      '--opt', 'target=final', '--opt', 'platform=linux/arm64',
      '--no-cache', '--opt', 'no-cache=deps', '--opt', 'image-resolve-mode=pull',
      '--opt', 'force-network-mode=host', '--allow', 'network.host',
      '--secret', 'id=s1,src=/s', '--secret', 'id=s2,env=TOKEN',
      '--ssh', 'default',
      '--import-cache', 'type=registry,ref=reg/app:cache', '--import-cache', 'type=local,src=/c',
      '--export-cache', 'type=inline',
      '--oci-layout', 'berth=/root/content', '--opt', `context:base=oci-layout://berth@sha256:${'a'.repeat(64)}`,
      '--output', 'type=oci,dest=-',
      '--metadata-file', '/tmp/m.json',
    ]);
  });

  it('outputs: the store by default, push through BuildKit, files passed through', () => {
    expect(planOutputs(base)).toEqual({ outputs: ['type=oci,dest=-'], toStore: true, toStdout: false, push: false });
    expect(planOutputs({ ...base, tags: ['r/a:1', 'r/a:2'], outputs: [{ type: 'image', push: true, attrs: {} }] }).outputs).toEqual(['type=image,"name=r/a:1,r/a:2",push=true']);
    expect(planOutputs({ ...base, tags: ['a:1'], outputs: [{ type: 'docker', dest: '-', attrs: {} }] })).toEqual({ outputs: ['type=docker,name=a:1,dest=-'], toStore: false, toStdout: true, push: false });
    expect(planOutputs({ ...base, outputs: [{ type: 'local', dest: '/out', attrs: {} }] }).outputs).toEqual(['type=local,dest=/out']);
    expect(planOutputs({ ...base, outputs: [{ type: 'tar', dest: '/o.tar', attrs: { compression: 'gzip' } }] }).outputs).toEqual(['type=tar,dest=/o.tar,compression=gzip']);
  });

  it('bad outputs are INVALID_ARGUMENT / UNSUPPORTED', () => {
    const bad = (o: BuildRequest['outputs'], tags: string[] = []) => {
      try {
        planOutputs({ ...base, tags, outputs: o });
        return 'ok';
      } catch (e) {
        return (e as { code: string }).code;
      }
    };
    expect(bad([{ type: 'nope' as never, attrs: {} }])).toBe('INVALID_ARGUMENT');
    expect(bad([{ type: 'local', dest: '-', attrs: {} }])).toBe('INVALID_ARGUMENT');
    expect(bad([{ type: 'tar', attrs: {} }])).toBe('INVALID_ARGUMENT');
    expect(bad([{ type: 'image', push: true, attrs: {} }])).toBe('INVALID_ARGUMENT');
    expect(bad([{ type: 'tar', dest: '-', attrs: {} }, { type: 'oci', dest: '-', attrs: {} }])).toBe('INVALID_ARGUMENT');
    expect(bad([{ type: 'containerd', attrs: {} }])).toBe('UNSUPPORTED');
  });
});

describe('images a Dockerfile names', () => {
  it('FROM, COPY --from, RUN --mount from; stages, scratch and ARGs', () => {
    const df = [
      '# syntax=docker/dockerfile:1',
      'ARG BASE=base',
      'ARG TAG',
      'FROM --platform=$BUILDPLATFORM ${BASE} AS build',
      'RUN --mount=type=cache,target=/c \\',
      '    --mount=type=bind,from=tools:1,target=/t make',
      'FROM scratch AS empty',
      'FROM myapp:${TAG:-dev}',
      'COPY --from=build /out /out',
      'COPY --from=helper:2 /x /x',
      'COPY --from=0 /y /y',
    ].join('\n');
    expect(referencedImages(df)).toEqual(['base', 'tools:1', 'myapp:dev', 'helper:2']);
    expect(referencedImages(df, { BASE: 'other', TAG: 'v2' })).toEqual(['other', 'tools:1', 'myapp:v2', 'helper:2']);
  });

  it('only names the store holds become named contexts, pinned to the stored digest', async () => {
    const root = await testdir();
    const store = await ContentStore.open(root);
    const tar = fileURLToPath(new URL('../../fixtures/buildkit-samples/v0.32.2-run-basic-oci.tar', import.meta.url));
    const r = await loadArchive(store, { path: tar });
    await tagImage(store, 'base', r.images[0]!.root);
    const got = await storeContexts(store, 'FROM base\nFROM alpine\nCOPY --from=docker.io/library/base:latest / /', {});
    expect(got).toEqual([
      { name: 'base', ref: 'docker.io/library/base:latest', digest: r.images[0]!.root.digest },
      { name: 'docker.io/library/base:latest', ref: 'docker.io/library/base:latest', digest: r.images[0]!.root.digest },
    ]);
  });
});
