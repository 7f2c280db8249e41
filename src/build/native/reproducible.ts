/**
 * `berth build --check-reproducible`: build twice without cache with one SOURCE_DATE_EPOCH and
 * compare the two images. Equal digests: reproducible. Otherwise the first difference is named:
 * the first layer whose digest differs (index in the manifest), and in it the first file (in the
 * first build's tar order, then files only the second has) whose content, mode, owner, mtime,
 * xattrs, type or link target differ; or the config field that differs when every layer agrees.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { decompressStream } from '../../archive/compress.js';
import { readTarEntries, type TarEntryHeader } from '../../archive/tar.js';
import { BerthError } from '../../errors.js';
import { layerCompression } from '../../oci/mediatype.js';
import type { Descriptor, Digest } from '../../oci/types.js';
import { getImage, type ImageView } from '../../store/images.js';
import { ContentStore } from '../../store/store.js';
import type { BuildRequest, BuildResult } from '../builder.js';

/** The epoch used when neither the environment nor a build arg sets SOURCE_DATE_EPOCH. */
export const DEFAULT_CHECK_EPOCH = 0;

export type FileAspect = 'content' | 'mode' | 'owner' | 'mtime' | 'xattr' | 'type' | 'link' | 'missing';

export interface ReproducibleDifference {
  /** Index of the layer in the manifest (0 = the base's first layer); absent for a config difference. */
  layer?: number;
  /** Path in the layer (as in the tar, no leading `/`), or the config field (`config.created`). */
  path: string;
  what: FileAspect[] | ['config'] | ['layers'];
  /** The two values, in words (`mode 0644 vs 0600`, `only in the first build`). */
  detail: string;
}

export interface ReproducibleResult {
  reproducible: boolean;
  /** Manifest digests of the two builds. */
  digests: [Digest, Digest];
  /** Image ids (config digests) of the two builds. */
  imageIds: [Digest, Digest];
  epoch: number;
  epochFrom: 'build-arg' | 'env' | 'default';
  difference?: ReproducibleDifference;
  /** The first build (tagged with the request's tags). */
  result: BuildResult;
}

interface FileFacts {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  link: string;
  content: string;
  xattrs: string;
}

async function layerFiles(store: ContentStore, desc: Descriptor, signal?: AbortSignal): Promise<Map<string, FileFacts>> {
  const files = new Map<string, FileFacts>();
  const comp = layerCompression(desc.mediaType) ?? 'gzip';
  let input: Readable = await store.fetch(desc);
  if (comp !== 'none') input = input.pipe(decompressStream(comp));
  await readTarEntries(
    input,
    async (h: TarEntryHeader, body: Readable) => {
      const hash = createHash('sha256');
      for await (const c of body) hash.update(c as Buffer);
      const x = [...(h.xattrs ?? new Map<string, Buffer>()).entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}=${v.toString('hex')}`);
      files.set(h.name.replace(/^\.?\//, ''), {
        type: h.type,
        mode: (h.mode ?? 0) & 0o7777,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        mtime: h.mtime ?? 0,
        size: h.size,
        link: h.linkname ?? '',
        content: hash.digest('hex'),
        xattrs: x.join(','),
      });
    },
    { what: `layer ${desc.digest}`, ...(signal ? { signal } : {}) },
  );
  return files;
}

function octal(n: number): string {
  return `0${n.toString(8).padStart(3, '0')}`;
}

/** What differs between one file's facts in the two builds, with the values in words. */
function fileDifference(a: FileFacts, b: FileFacts): { what: FileAspect[]; detail: string } | undefined {
  const what: FileAspect[] = [];
  const words: string[] = [];
  if (a.type !== b.type) {
    what.push('type');
    words.push(`type ${a.type} vs ${b.type}`);
  }
  if (a.content !== b.content || a.size !== b.size) {
    what.push('content');
    words.push(a.size !== b.size ? `size ${a.size} vs ${b.size}` : `content sha256:${a.content.slice(0, 12)} vs sha256:${b.content.slice(0, 12)}`);
  }
  if (a.link !== b.link) {
    what.push('link');
    words.push(`link ${a.link} vs ${b.link}`);
  }
  if (a.mode !== b.mode) {
    what.push('mode');
    words.push(`mode ${octal(a.mode)} vs ${octal(b.mode)}`);
  }
  if (a.uid !== b.uid || a.gid !== b.gid) {
    what.push('owner');
    words.push(`owner ${a.uid}:${a.gid} vs ${b.uid}:${b.gid}`);
  }
  if (a.mtime !== b.mtime) {
    what.push('mtime');
    words.push(`mtime ${a.mtime} vs ${b.mtime}`);
  }
  if (a.xattrs !== b.xattrs) {
    what.push('xattr');
    words.push(`xattrs {${a.xattrs}} vs {${b.xattrs}}`);
  }
  return what.length ? { what, detail: words.join(', ') } : undefined;
}

/** The first path (dotted, with [i] for arrays) where two JSON values differ. */
function jsonDifference(a: unknown, b: unknown, path: string): { path: string; detail: string } | undefined {
  if (JSON.stringify(a) === JSON.stringify(b)) return undefined;
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    if (Array.isArray(a) && Array.isArray(b)) {
      for (let i = 0; i < Math.max(a.length, b.length); i++) {
        const d = jsonDifference(a[i], b[i], `${path}[${i}]`);
        if (d) return d;
      }
    } else {
      const ao = a as Record<string, unknown>;
      const bo = b as Record<string, unknown>;
      for (const k of [...new Set([...Object.keys(ao), ...Object.keys(bo)])]) {
        const d = jsonDifference(ao[k], bo[k], `${path}.${k}`);
        if (d) return d;
      }
    }
  }
  return { path, detail: `${JSON.stringify(a) ?? 'absent'} vs ${JSON.stringify(b) ?? 'absent'}` };
}

/** The first difference between two images in one store (undefined when they are equal). */
export async function imageDifference(store: ContentStore, a: ImageView, b: ImageView, signal?: AbortSignal): Promise<ReproducibleDifference | undefined> {
  if (a.root.digest === b.root.digest) return undefined;
  const la = a.manifest.layers;
  const lb = b.manifest.layers;
  for (let i = 0; i < Math.min(la.length, lb.length); i++) {
    if (la[i]!.digest === lb[i]!.digest) continue;
    const fa = await layerFiles(store, la[i]!, signal);
    const fb = await layerFiles(store, lb[i]!, signal);
    for (const [path, facts] of fa) {
      const other = fb.get(path);
      if (!other) return { layer: i, path, what: ['missing'], detail: 'only in the first build' };
      const d = fileDifference(facts, other);
      if (d) return { layer: i, path, ...d };
    }
    for (const path of fb.keys()) if (!fa.has(path)) return { layer: i, path, what: ['missing'], detail: 'only in the second build' };
    // Same files, same facts: the tar bytes differ in order or encoding.
    return { layer: i, path: '(tar stream)', what: ['content'], detail: `same files, different archive bytes: ${la[i]!.digest} vs ${lb[i]!.digest}` };
  }
  if (la.length !== lb.length) return { path: 'layers', what: ['layers'], detail: `${la.length} layers vs ${lb.length}` };
  const d = jsonDifference(a.config, b.config, 'config');
  if (d) return { path: d.path, what: ['config'], detail: d.detail };
  return { path: 'manifest', what: ['config'], detail: `manifests differ: ${a.root.digest} vs ${b.root.digest}` };
}

/**
 * Build `req` twice without cache with one SOURCE_DATE_EPOCH (the build arg, else the
 * environment, else DEFAULT_CHECK_EPOCH) and compare. The first build is tagged with the
 * request's tags; the second with none (its own blobs are left for gc).
 */
export async function checkReproducible(root: string, req: BuildRequest, build: (req: BuildRequest) => Promise<BuildResult>): Promise<ReproducibleResult> {
  const fromArg = req.buildArgs.SOURCE_DATE_EPOCH;
  const fromEnv = process.env.SOURCE_DATE_EPOCH;
  const epochFrom = fromArg !== undefined ? 'build-arg' : fromEnv !== undefined && fromEnv !== '' ? 'env' : 'default';
  const epochText = fromArg ?? (epochFrom === 'env' ? fromEnv! : String(DEFAULT_CHECK_EPOCH));
  if (!/^\d+$/.test(epochText)) throw new BerthError('INVALID_ARGUMENT', `SOURCE_DATE_EPOCH=${epochText} (${epochFrom === 'env' ? 'environment' : 'build arg'}) is not a whole number of seconds`);
  const epoch = Number(epochText);
  const buildArgs = { ...req.buildArgs, SOURCE_DATE_EPOCH: epochText };
  const first = await build({ ...req, buildArgs, noCache: true });
  const second = await build({ ...req, buildArgs, noCache: true, tags: [] });
  const store = await ContentStore.open(root);
  const view = (r: BuildResult) => getImage(store, r.root!.digest);
  const a = await view(first);
  const b = await view(second);
  const difference = await imageDifference(store, a, b, req.signal);
  return {
    reproducible: difference === undefined,
    digests: [first.root!.digest, second.root!.digest],
    imageIds: [first.imageId!, second.imageId!],
    epoch,
    epochFrom,
    ...(difference ? { difference } : {}),
    result: first,
  };
}
