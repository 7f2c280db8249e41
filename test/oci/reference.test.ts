import { describe, expect, it } from 'vitest';
import { familiarString, formatReference, normalizeReference, parseReference } from '../../src/oci/reference.js';
import { formatPlatform, parsePlatform, platformMatches } from '../../src/oci/platform.js';
import { isBerthError } from '../../src/errors.js';

const HEX = 'a'.repeat(64);

describe('reference normalisation (docker semantics)', () => {
  it.each([
    ['alpine', 'docker.io/library/alpine:latest'],
    ['alpine:3.20', 'docker.io/library/alpine:3.20'],
    ['library/alpine', 'docker.io/library/alpine:latest'],
    ['index.docker.io/library/alpine', 'docker.io/library/alpine:latest'],
    ['user/app:v1', 'docker.io/user/app:v1'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/a/b:t', 'localhost:5000/a/b:t'],
    ['127.0.0.1:5000/a', '127.0.0.1:5000/a:latest'],
    ['ghcr.io/o/r/deep/name:1.0-rc_1', 'ghcr.io/o/r/deep/name:1.0-rc_1'],
    [`alpine@sha256:${HEX}`, `docker.io/library/alpine@sha256:${HEX}`],
    [`alpine:3@sha256:${HEX}`, `docker.io/library/alpine:3@sha256:${HEX}`],
    ['Registry.Example.COM/a', 'Registry.Example.COM/a:latest'],
    ['a__b/c--d.e_f', 'docker.io/a__b/c--d.e_f:latest'],
    ['[::1]:5000/x', '[::1]:5000/x:latest'],
  ])('%s -> %s', (input, want) => {
    expect(normalizeReference(input)).toBe(want);
  });

  it.each([
    ['Alpine', /must be lowercase/],
    ['user/App', /must be lowercase/],
    ['', /empty/],
    ['alpine:', /invalid tag/],
    ['alpine:-x', /invalid tag/],
    ['a'.repeat(256), /not be more than 255/],
    ['alpine@sha256:abc', /invalid digest/],
    ['alpine@md5:0123456789abcdef0123456789abcdef', /unsupported digest/],
    ['al pine', /whitespace/],
    ['a//b', /invalid reference format/],
    ['-a/b', /invalid/],
    ['a/b_', /invalid reference format/],
    ['alpine:' + 'x'.repeat(129), /invalid tag/],
    ['../../etc/passwd', /invalid/],
  ])('rejects %s', (input, why) => {
    let err: unknown;
    try {
      parseReference(input);
    } catch (e) {
      err = e;
    }
    expect(isBerthError(err)).toBe(true);
    expect((err as Error).message).toMatch(why);
  });

  it('gives the familiar form back', () => {
    expect(familiarString(parseReference('docker.io/library/alpine:latest'))).toBe('alpine:latest');
    expect(familiarString(parseReference('docker.io/user/x:1'))).toBe('user/x:1');
    expect(familiarString(parseReference('localhost:5000/x:1'))).toBe('localhost:5000/x:1');
    expect(formatReference(parseReference('alpine', { defaultTag: false }))).toBe('docker.io/library/alpine');
  });
});

describe('platforms', () => {
  it('parses and normalises', () => {
    expect(formatPlatform(parsePlatform('linux/amd64'))).toBe('linux/amd64');
    expect(formatPlatform(parsePlatform('linux/arm64/v8'))).toBe('linux/arm64');
    expect(formatPlatform(parsePlatform('linux/arm'))).toBe('linux/arm/v7');
    expect(formatPlatform(parsePlatform('linux/x86_64'))).toBe('linux/amd64');
    expect(formatPlatform(parsePlatform('linux/aarch64'))).toBe('linux/arm64');
    expect(() => parsePlatform('linux/amd64/v2/x')).toThrow(/invalid platform/);
  });
  it('matches variants', () => {
    expect(platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(true);
    expect(platformMatches(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v6' })).toBe(true);
    expect(platformMatches(parsePlatform('linux/arm/v6'), { os: 'linux', architecture: 'arm', variant: 'v7' })).toBe(false);
    expect(platformMatches(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'arm64' })).toBe(false);
    expect(platformMatches(parsePlatform('linux/amd64'), { os: 'windows', architecture: 'amd64' })).toBe(false);
  });
});
