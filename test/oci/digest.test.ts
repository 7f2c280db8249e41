import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { parseDigest, randomHex, sha256, sha256Text, VerifyingStream } from '../../src/oci/digest.js';
import { parseManifestOrIndex } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/mediatype.js';

const sink = () => new Writable({ write: (_c, _e, cb) => cb() });

describe('digests', () => {
  it('sha256Text equals node:crypto at every padding boundary, for UTF-8 and past its 4 KiB cut-over', () => {
    const texts = ['', 'abc', 'sha256:' + 'a'.repeat(64), 'é✓ ünïcode', 'y'.repeat(1000), 'w'.repeat(4096), 'x'.repeat(5000)];
    for (let n = 50; n <= 130; n++) texts.push('k'.repeat(n)); // 55/56/64/119/120/128 bytes: one or two padding blocks
    for (const t of texts) expect(sha256Text(t), JSON.stringify(t.slice(0, 20))).toBe(createHash('sha256').update(t, 'utf8').digest('hex'));
    expect(sha256Text('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'); // FIPS 180-2 example
  });

  it('randomHex gives n fresh random bytes in hex', () => {
    const a = randomHex(32);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(randomHex(32)).not.toBe(a);
    expect(randomHex(3)).toMatch(/^[0-9a-f]{6}$/);
  });

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
