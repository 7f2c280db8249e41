import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { parseDigest, sha256, VerifyingStream } from '../../src/oci/digest.js';
import { parseManifestOrIndex } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/mediatype.js';

const sink = () => new Writable({ write: (_c, _e, cb) => cb() });

describe('digests', () => {
  it('validates before use', () => {
    expect(() => parseDigest('sha256:../../etc')).toThrow(/invalid digest/);
    expect(() => parseDigest('sha256:' + 'A'.repeat(64))).toThrow(/invalid digest/);
    expect(() => parseDigest('sha512:' + 'a'.repeat(128))).toThrow(/unsupported digest algorithm/);
    expect(parseDigest('sha256:' + 'a'.repeat(64))).toBe('sha256:' + 'a'.repeat(64));
  });

  it('verifying stream accepts exact content and rejects extra, short and altered bytes', async () => {
    const data = Buffer.from('hello berth');
    const d = sha256(data);
    await pipeline(Readable.from([data]), new VerifyingStream({ digest: d, size: data.length }), sink());
    await expect(pipeline(Readable.from([data, Buffer.from('x')]), new VerifyingStream({ digest: d, size: data.length }), sink())).rejects.toThrow(/more bytes/);
    await expect(pipeline(Readable.from([data.subarray(1)]), new VerifyingStream({ digest: d, size: data.length }), sink())).rejects.toThrow(/size 10/);
    const bad = Buffer.from(data);
    bad[0] = 0x48;
    await expect(pipeline(Readable.from([bad]), new VerifyingStream({ digest: d, size: data.length }), sink())).rejects.toThrow(/does not match/);
  });

  it('rejects manifest/index type confusion and schema 1', () => {
    const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: { mediaType: MediaType.OCI_CONFIG, digest: sha256('x'), size: 1 }, layers: [] }));
    expect(parseManifestOrIndex(m, { mediaType: MediaType.OCI_MANIFEST }).kind).toBe('manifest');
    expect(() => parseManifestOrIndex(m, { mediaType: MediaType.OCI_INDEX })).toThrow(/declared as/);
    const i = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
    expect(() => parseManifestOrIndex(i, { mediaType: MediaType.DOCKER_MANIFEST })).toThrow(/declared as/);
    expect(() => parseManifestOrIndex(Buffer.from('{"schemaVersion":1,"fsLayers":[]}'), { mediaType: MediaType.DOCKER_MANIFEST_V1 })).toThrow(/schema 1/);
    expect(() => parseManifestOrIndex(Buffer.alloc(5 * 1024 * 1024, 0x20), { mediaType: MediaType.OCI_MANIFEST })).toThrow(/limit/);
  });
});
