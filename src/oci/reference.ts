import { BerthError } from '../errors.js';
import { isDigest } from './digest.js';
import type { Digest } from './types.js';

/**
 * Image references, parsed and normalised as docker does (distribution/reference):
 * `alpine` -> `docker.io/library/alpine:latest`.
 */
export interface Reference {
  /** Registry host[:port], normalised (`docker.io` for Docker Hub). */
  readonly domain: string;
  /** Repository path inside the registry (`library/alpine`). */
  readonly path: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

export const DEFAULT_DOMAIN = 'docker.io';
export const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
export const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';
const NAME_TOTAL_LENGTH_MAX = 255;

const ALNUM = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
const HOST = `(?:${DOMAIN_NAME}|${IPV6})`;
const DOMAIN = `${HOST}(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
const TAG_RE = new RegExp(`^${TAG}$`);
const ANCHORED_HEX64 = /^[a-f0-9]{64}$/;

function invalid(input: string, why: string): BerthError {
  const shown = input.length > 100 ? input.slice(0, 100) + '…' : input;
  return new BerthError('INVALID_ARGUMENT', `invalid reference ${JSON.stringify(shown)}: ${why}`);
}

/** Split `host/...` the way docker's splitDockerDomain does. */
function splitDomain(name: string): { domain: string; remainder: string } {
  const i = name.indexOf('/');
  let domain: string;
  let remainder: string;
  if (i === -1 || (!/[.:]/.test(name.slice(0, i)) && name.slice(0, i) !== 'localhost' && name.slice(0, i).toLowerCase() === name.slice(0, i))) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = name.slice(0, i);
    remainder = name.slice(i + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder };
}

export interface ParseOptions {
  /** Add `:latest` when there is neither tag nor digest (default true). */
  defaultTag?: boolean;
}

/** Parse and normalise a reference. Throws INVALID_ARGUMENT with the reason. */
export function parseReference(input: string, opts: ParseOptions = {}): Reference {
  if (typeof input !== 'string' || input.length === 0) throw invalid(String(input ?? ''), 'empty reference');
  if (/\s/.test(input)) throw invalid(input, 'contains whitespace');
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    const d = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!d.startsWith('sha256:')) {
      if (/^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/.test(d)) {
        throw new BerthError('UNSUPPORTED', `invalid reference ${JSON.stringify(input)}: unsupported digest algorithm`, {
          hint: 'berth supports sha256 digests only',
        });
      }
      throw invalid(input, 'invalid digest format');
    }
    if (!ANCHORED_HEX64.test(d.slice(7))) throw invalid(input, 'invalid digest format (expected sha256: and 64 lowercase hex characters)');
    digest = d as Digest;
  }
  let tag: string | undefined;
  // A tag is after the last ':' that comes after the last '/'.
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw invalid(input, 'invalid tag format (letters, digits, _ . - only, at most 128, not starting with . or -)');
  }
  if (rest.length === 0) throw invalid(input, 'empty repository name');
  const { domain, remainder } = splitDomain(rest);
  if (!DOMAIN_RE.test(domain)) throw invalid(input, `invalid registry host ${JSON.stringify(domain)}`);
  if (remainder.toLowerCase() !== remainder && PATH_RE.test(remainder.toLowerCase())) {
    throw invalid(input, 'repository name must be lowercase');
  }
  if (!PATH_RE.test(remainder)) {
    throw invalid(input, 'invalid reference format (repository path components are lowercase letters, digits and separators . _ __ -)');
  }
  if (domain.length + 1 + remainder.length > NAME_TOTAL_LENGTH_MAX) {
    throw invalid(input, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }
  if (tag === undefined && digest === undefined && opts.defaultTag !== false) tag = DEFAULT_TAG;
  const ref: { domain: string; path: string; tag?: string; digest?: Digest } = { domain, path: remainder };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** `docker.io/library/alpine` */
export function repositoryName(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

/** Full normalised string: `docker.io/library/alpine:latest`, `host/a@sha256:…`. */
export function formatReference(ref: Reference): string {
  let s = repositoryName(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** Docker's short form: `alpine:latest`, `user/app:1`, `localhost:5000/a:b`. */
export function familiarName(ref: Reference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return repositoryName(ref);
  return ref.path.startsWith(OFFICIAL_REPO_PREFIX) ? ref.path.slice(OFFICIAL_REPO_PREFIX.length) : ref.path;
}

export function familiarString(ref: Reference): string {
  let s = familiarName(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** A name as docker prints it (`docker.io/library/alpine:latest` -> `alpine:latest`); the input itself when it does not parse. */
export function familiar(input: string): string {
  try {
    return familiarString(parseReference(input));
  } catch {
    return input;
  }
}

/** Normalise a user-given name: `alpine` -> `docker.io/library/alpine:latest`. */
export function normalizeReference(input: string): string {
  return formatReference(parseReference(input));
}

/** True when the input looks like a (possibly short) digest or image id rather than a name. */
export function looksLikeDigest(input: string): boolean {
  return isDigest(input) || /^(sha256:)?[a-f0-9]{12,64}$/.test(input);
}
