import { BerthError } from '../errors.js';
import { parseDigest } from './digest.js';
import { isConfig, isIndex, isManifest, isSchema1, MediaType } from './mediatype.js';
import type { Descriptor, ImageConfig, Index, Manifest } from './types.js';

/** Caps on JSON documents read from untrusted places. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

function bad(what: string, why: string): BerthError {
  return new BerthError('INVALID_ARGUMENT', `${what}: ${why}`);
}

export function parseJson(bytes: Uint8Array, what: string, cap = MAX_MANIFEST_BYTES): unknown {
  if (bytes.length > cap) throw bad(what, `document of ${bytes.length} bytes is larger than the ${cap}-byte limit`);
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    throw bad(what, 'not valid JSON');
  }
}

/** Validate one descriptor from untrusted JSON. */
export function parseDescriptor(v: unknown, what: string): Descriptor {
  if (typeof v !== 'object' || v === null) throw bad(what, 'descriptor is not an object');
  const d = v as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || d.mediaType.length === 0 || d.mediaType.length > 255) throw bad(what, 'descriptor has no valid mediaType');
  const digest = parseDigest(d.digest, what);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw bad(what, `descriptor ${digest} has an invalid size`);
  if (d.annotations !== undefined && (typeof d.annotations !== 'object' || d.annotations === null || Object.values(d.annotations).some((x) => typeof x !== 'string'))) {
    throw bad(what, `descriptor ${digest} has invalid annotations`);
  }
  return v as Descriptor;
}

/** Which kind of document the bytes are, looking at the content (mediaType field and shape). */
export function detectDocumentType(doc: Record<string, unknown>): string | undefined {
  if (typeof doc.mediaType === 'string') return doc.mediaType;
  if (Array.isArray(doc.manifests)) return MediaType.OCI_INDEX;
  if (doc.config !== undefined && Array.isArray(doc.layers)) return MediaType.OCI_MANIFEST;
  if (doc.schemaVersion === 1) return MediaType.DOCKER_MANIFEST_V1;
  return undefined;
}

/**
 * Parse a manifest or index, checking that what the content says it is agrees with what the
 * descriptor that pointed at it said (type confusion is rejected).
 */
export function parseManifestOrIndex(bytes: Uint8Array, desc: Pick<Descriptor, 'mediaType'> & { digest?: string }, what = desc.digest ?? 'manifest'):
  | { kind: 'index'; index: Index; mediaType: string }
  | { kind: 'manifest'; manifest: Manifest; mediaType: string } {
  const doc = parseJson(bytes, what);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad(what, 'manifest is not a JSON object');
  const o = doc as Record<string, unknown>;
  const actual = detectDocumentType(o);
  if (isSchema1(actual) || o.schemaVersion === 1) {
    throw new BerthError('UNSUPPORTED', `${what}: Docker schema 1 manifests are not supported`, { hint: 'push the image again with a current client (schema 2)' });
  }
  if (o.schemaVersion !== 2) throw bad(what, `unsupported schemaVersion ${JSON.stringify(o.schemaVersion)}`);
  const declaredIsIndex = isIndex(desc.mediaType);
  const declaredIsManifest = isManifest(desc.mediaType);
  if (Array.isArray(o.manifests)) {
    if (declaredIsManifest || (actual !== undefined && !isIndex(actual))) throw bad(what, `content is an index but was declared as ${desc.mediaType}`);
    const manifests = o.manifests.map((m, i) => parseDescriptor(m, `${what} manifests[${i}]`));
    return { kind: 'index', index: { ...(o as object), schemaVersion: 2, manifests } as Index, mediaType: actual ?? desc.mediaType };
  }
  if (o.config !== undefined || Array.isArray(o.layers)) {
    if (declaredIsIndex || (actual !== undefined && !isManifest(actual) && actual !== MediaType.OCI_MANIFEST)) {
      throw bad(what, `content is a manifest but was declared as ${desc.mediaType}`);
    }
    if (!Array.isArray(o.layers)) throw bad(what, 'manifest has no layers array');
    const config = parseDescriptor(o.config, `${what} config`);
    const layers = o.layers.map((l, i) => parseDescriptor(l, `${what} layers[${i}]`));
    return { kind: 'manifest', manifest: { ...(o as object), schemaVersion: 2, config, layers } as Manifest, mediaType: actual ?? desc.mediaType };
  }
  throw bad(what, 'neither a manifest nor an index');
}

export function parseImageConfig(bytes: Uint8Array, what = 'image config'): ImageConfig {
  const doc = parseJson(bytes, what, MAX_CONFIG_BYTES);
  if (typeof doc !== 'object' || doc === null) throw bad(what, 'not a JSON object');
  const c = doc as Record<string, unknown>;
  const rootfs = c.rootfs as Record<string, unknown> | undefined;
  if (!rootfs || !Array.isArray(rootfs.diff_ids)) throw bad(what, 'no rootfs.diff_ids');
  rootfs.diff_ids.forEach((d, i) => parseDigest(d, `${what} rootfs.diff_ids[${i}]`));
  if (typeof c.os !== 'string' || typeof c.architecture !== 'string') throw bad(what, 'missing os or architecture');
  return doc as ImageConfig;
}

/** Whether a descriptor is a manifest, index or config (small JSON read whole). */
export function isJsonDocument(desc: Descriptor): boolean {
  return isIndex(desc.mediaType) || isManifest(desc.mediaType) || isConfig(desc.mediaType);
}
